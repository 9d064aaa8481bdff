//! Async connectors on the host's tokio runtime, read from a plain iterator.
//!
//! LDAP (ldap3), the CRM (reqwest) and exec (tokio's process) do their I/O in
//! async tasks, while the host's read side is synchronous: a thread that parses,
//! digests and hands batches on. [`spawn_read`] runs the connector's future as a
//! task and gives the host an [`ItemStream`] over a bounded channel, so a slow
//! reader holds the task back (backpressure) and at most `capacity` items wait
//! in memory. Dropping the stream aborts the task.

use std::future::Future;

use tokio::sync::mpsc;

use crate::{Item, ItemStream, ReadContext, SourceError};

/// Items an async read may have waiting for the reader: enough to keep both
/// sides busy, few enough that a million-record read stays within its bound.
pub const DEFAULT_CAPACITY: usize = 1024;

/// Where an async read puts its items.
#[derive(Debug, Clone)]
pub struct ItemSender(mpsc::Sender<Batch>);

/// What goes through the channel: one item (or the read's error), or several
/// items at once. A batch takes one slot of the capacity.
#[derive(Debug)]
enum Batch {
    One(Result<Item, SourceError>),
    Many(Vec<Item>),
}

/// The reader went away (the read failed elsewhere, or was cancelled): the
/// producing task should stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the reader stopped")]
pub struct ReaderGone;

impl ItemSender {
    /// Hands one item to the reader, waiting while `capacity` items wait.
    pub async fn send(&self, item: Item) -> Result<(), ReaderGone> {
        self.0
            .send(Batch::One(Ok(item)))
            .await
            .map_err(|_| ReaderGone)
    }

    /// Hands several items to the reader at once, in order, waiting while the
    /// channel is full. A batch takes one place of `capacity`, so a producer
    /// that batches passes a capacity of `items / batch size` to
    /// [`spawn_read`]. One hand-over per batch instead of per item saves the
    /// two threads a wake-up each (measured: the larger part of the cost of a
    /// million small records).
    pub async fn send_batch(&self, items: Vec<Item>) -> Result<(), ReaderGone> {
        if items.is_empty() {
            return Ok(());
        }
        self.0
            .send(Batch::Many(items))
            .await
            .map_err(|_| ReaderGone)
    }

    /// Ends the read as failed with `error` (the task's own `Err` does the same).
    pub async fn fail(&self, error: SourceError) -> Result<(), ReaderGone> {
        self.0
            .send(Batch::One(Err(error)))
            .await
            .map_err(|_| ReaderGone)
    }
}

/// Runs `produce` as a task on the context's runtime and returns the items it
/// sends as a stream. The task's `Err` becomes the stream's last item; a task
/// that returns (or panics) without sending [`Item::End`] leaves a stream
/// without an end, which the host counts as a failed read.
pub fn spawn_read<F, Fut>(
    ctx: &ReadContext,
    capacity: usize,
    produce: F,
) -> Result<ItemStream<'static>, SourceError>
where
    F: FnOnce(ItemSender) -> Fut,
    Fut: Future<Output = Result<(), SourceError>> + Send + 'static,
{
    let runtime = ctx.runtime().ok_or_else(|| {
        SourceError::Invalid("this connector needs the host's async runtime".into())
    })?;
    let (tx, rx) = mpsc::channel(capacity.max(1));
    let sender = ItemSender(tx.clone());
    let work = produce(sender);
    let task = runtime.spawn(async move {
        if let Err(error) = work.await {
            let _ = tx.send(Batch::One(Err(error))).await;
        }
    });
    Ok(Box::new(Received {
        rx,
        pending: Vec::new().into_iter(),
        task,
    }))
}

/// The reading end of [`spawn_read`].
struct Received {
    rx: mpsc::Receiver<Batch>,
    /// The rest of the batch being read.
    pending: std::vec::IntoIter<Item>,
    task: tokio::task::JoinHandle<()>,
}

impl Iterator for Received {
    type Item = Result<Item, SourceError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(item) = self.pending.next() {
                return Some(Ok(item));
            }
            // Called on the host's reading thread, never on a runtime thread.
            match self.rx.blocking_recv()? {
                Batch::One(item) => return Some(item),
                Batch::Many(items) => self.pending = items.into_iter(),
            }
        }
    }
}

impl Drop for Received {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// `items` followed by `end`, unless `items` failed: what a synchronous
/// connector returns so that its complete reads end the way the contract says.
pub fn ending_with<'a>(
    items: impl Iterator<Item = Result<Item, SourceError>> + Send + 'a,
    end: crate::ReadEnd,
) -> ItemStream<'a> {
    let mut end = Some(end);
    let mut failed = false;
    let mut items = items.fuse();
    Box::new(std::iter::from_fn(move || match items.next() {
        Some(item) => {
            failed |= item.is_err();
            Some(item)
        }
        None if failed => None,
        None => end.take().map(|end| Ok(Item::End(end))),
    }))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::{ReadEnd, ReadMode};

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap()
    }

    fn end() -> ReadEnd {
        ReadEnd {
            mode: ReadMode::Full,
            cursor: None,
        }
    }

    fn deleted(key: &str) -> Item {
        Item::Deleted(crate::Deletion {
            key: key.into(),
            location: crate::Location::Remote {
                kind: "contact",
                id: key.into(),
            },
        })
    }

    #[test]
    fn items_arrive_in_order_and_the_task_error_comes_last() {
        let rt = runtime();
        let ctx = ReadContext::default().with_runtime(rt.handle().clone());
        let stream = spawn_read(&ctx, 2, |tx| async move {
            for k in ["a", "b", "c"] {
                tx.send(deleted(k))
                    .await
                    .map_err(|_| SourceError::Invalid("gone".into()))?;
            }
            Err(SourceError::Incomplete("dropped".into()))
        })
        .unwrap();
        let got: Vec<_> = stream.collect();
        assert_eq!(got.len(), 4);
        assert!(matches!(&got[0], Ok(Item::Deleted(d)) if d.key == "a"));
        assert!(matches!(&got[2], Ok(Item::Deleted(d)) if d.key == "c"));
        assert!(matches!(&got[3], Err(SourceError::Incomplete(_))));
    }

    #[test]
    fn a_slow_reader_holds_the_task_back_to_the_capacity() {
        let rt = runtime();
        let ctx = ReadContext::default().with_runtime(rt.handle().clone());
        let sent = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counter = sent.clone();
        let mut stream = spawn_read(&ctx, 4, move |tx| async move {
            for i in 0..100 {
                if tx.send(deleted(&i.to_string())).await.is_err() {
                    return Ok(());
                }
                counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            }
            Ok(())
        })
        .unwrap();
        assert!(stream.next().is_some());
        std::thread::sleep(std::time::Duration::from_millis(50));
        // One taken, four waiting, one more accepted as the taken slot freed.
        let n = sent.load(std::sync::atomic::Ordering::SeqCst);
        assert!(n <= 6, "{n} items sent past a capacity of 4");
        drop(stream);
    }

    #[test]
    fn dropping_the_stream_stops_the_task() {
        let rt = runtime();
        let ctx = ReadContext::default().with_runtime(rt.handle().clone());
        let (done_tx, done_rx) = std::sync::mpsc::channel();
        let stream = spawn_read(&ctx, 1, move |tx| async move {
            let mut i = 0u64;
            while tx.send(deleted(&i.to_string())).await.is_ok() {
                i += 1;
            }
            let _ = done_tx.send(i);
            Ok(())
        })
        .unwrap();
        drop(stream);
        // Either aborted (the sender drops) or it saw the reader go.
        let outcome = done_rx.recv_timeout(std::time::Duration::from_secs(5));
        assert!(matches!(
            outcome,
            Ok(_) | Err(std::sync::mpsc::RecvTimeoutError::Disconnected)
        ));
    }

    #[test]
    fn batches_arrive_item_by_item_in_order_between_single_items() {
        let rt = runtime();
        let ctx = ReadContext::default().with_runtime(rt.handle().clone());
        let stream = spawn_read(&ctx, 1, |tx| async move {
            let gone = |_| SourceError::Invalid("gone".into());
            tx.send(deleted("a")).await.map_err(gone)?;
            tx.send_batch(vec![deleted("b"), deleted("c")])
                .await
                .map_err(gone)?;
            tx.send_batch(Vec::new()).await.map_err(gone)?;
            tx.send_batch(vec![deleted("d")]).await.map_err(gone)?;
            tx.send(Item::End(end())).await.map_err(gone)?;
            Ok(())
        })
        .unwrap();
        let keys: Vec<String> = stream
            .map(|item| match item.unwrap() {
                Item::Deleted(d) => d.key,
                Item::End(_) => "end".into(),
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(keys, ["a", "b", "c", "d", "end"]);
    }

    #[test]
    fn without_a_runtime_an_async_connector_says_so() {
        let err = spawn_read(&ReadContext::default(), 1, |_tx| async { Ok(()) })
            .err()
            .unwrap();
        assert!(err.to_string().contains("runtime"), "{err}");
    }

    #[test]
    fn a_synchronous_read_ends_with_its_end_unless_it_failed() {
        let ok = vec![Ok(deleted("a"))];
        let items: Vec<_> = ending_with(ok.into_iter(), end()).collect();
        assert!(matches!(items.last(), Some(Ok(Item::End(_)))));
        let failed = vec![Ok(deleted("a")), Err(SourceError::Invalid("x".into()))];
        let items: Vec<_> = ending_with(failed.into_iter(), end()).collect();
        assert_eq!(items.len(), 2);
        assert!(matches!(items.last(), Some(Err(_))));
    }
}
