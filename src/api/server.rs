//! The accept loop: one hyper HTTP/1 connection per client, a bounded number
//! at once, each with a header read timeout; on shutdown, stop accepting,
//! close connections gracefully and give up on them after the drain limit.

use std::future::Future;
use std::io;
use std::pin::pin;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;
use tracing::{debug, info, warn};

/// How much any one client may take of the listener.
#[derive(Debug, Clone)]
pub struct Limits {
    /// A client must send a request's headers within this long, counted
    /// from when the connection is ready for a request (so it also closes
    /// idle keep-alive connections).
    pub header_read_timeout: Duration,
    /// A route must answer within this long, or the client gets 503.
    pub request_timeout: Duration,
    /// Largest request body accepted (413 above it).
    pub max_body_bytes: usize,
    /// Largest webhook body accepted (a HubSpot call batches up to 100 events).
    pub max_hook_body_bytes: usize,
    /// Connections served at once; more wait in the kernel's backlog.
    pub max_connections: usize,
    /// After shutdown, how long requests in flight may take to finish before
    /// their connections are dropped.
    pub drain_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            header_read_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(10),
            max_body_bytes: 4 * 1024,
            max_hook_body_bytes: 256 * 1024,
            max_connections: 256,
            drain_timeout: Duration::from_secs(5),
        }
    }
}

/// hyper's read buffer per connection; it bounds a request's head too.
/// hyper refuses less than 8 KiB.
const MAX_READ_BUFFER: usize = 16 * 1024;

/// Pause after an accept error that is not one client's (such as running out
/// of file descriptors), so the loop does not spin.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// Serves `router` on `listener` until `shutdown` completes; then drains.
pub(super) async fn run(
    listener: TcpListener,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
    limits: Limits,
) -> io::Result<()> {
    if let Ok(addr) = listener.local_addr() {
        info!(%addr, "HTTP listener serving /healthz, /readyz, /metrics and /hooks");
    }
    let (stop_tx, stop_rx) = watch::channel(false);
    let slots = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let mut connections = JoinSet::new();
    let mut shutdown = pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            () = &mut shutdown => break,
            accepted = accept(&listener, &slots) => accepted,
            Some(_) = connections.join_next(), if !connections.is_empty() => continue,
        };
        match accepted {
            Ok((stream, slot)) => {
                let connection = serve_connection(stream, router.clone(), &limits, stop_rx.clone());
                connections.spawn(async move {
                    connection.await;
                    drop(slot);
                });
            }
            Err(e) if is_clients_fault(&e) => debug!(error = %e, "accept failed"),
            Err(e) => {
                warn!(error = %e, "accept failed; pausing");
                tokio::time::sleep(ACCEPT_BACKOFF).await;
            }
        }
    }
    drop(listener);
    let _ = stop_tx.send(true);
    drain(connections, limits.drain_timeout).await;
    Ok(())
}

/// Waits for a free connection slot, then for a client.
async fn accept(
    listener: &TcpListener,
    slots: &Arc<Semaphore>,
) -> io::Result<(TcpStream, OwnedSemaphorePermit)> {
    let slot = slots
        .clone()
        .acquire_owned()
        .await
        .map_err(|_| io::Error::other("connection slots closed"))?;
    let (stream, _peer) = listener.accept().await?;
    Ok((stream, slot))
}

/// One client's connection until it closes, times out or is told to stop.
fn serve_connection(
    stream: TcpStream,
    router: Router,
    limits: &Limits,
    mut stop: watch::Receiver<bool>,
) -> impl Future<Output = ()> + Send + 'static {
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .max_buf_size(MAX_READ_BUFFER);
    let connection =
        builder.serve_connection(TokioIo::new(stream), TowerToHyperService::new(router));
    async move {
        let mut connection = pin!(connection);
        let finished = tokio::select! {
            finished = connection.as_mut() => finished,
            // The one change is to `true`; a dropped sender also means stop.
            _ = stop.changed() => {
                connection.as_mut().graceful_shutdown();
                connection.await
            }
        };
        if let Err(e) = finished {
            debug!(error = %e, "connection ended with an error");
        }
    }
}

/// Lets connections finish within `limit`, then drops the rest.
async fn drain(mut connections: JoinSet<()>, limit: Duration) {
    let all_done = async { while connections.join_next().await.is_some() {} };
    if tokio::time::timeout(limit, all_done).await.is_err() {
        warn!(
            left = connections.len(),
            "HTTP connections still open after the drain limit; closing them"
        );
        connections.shutdown().await;
    }
}

/// Errors of one connection that was never ours to serve.
fn is_clients_fault(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionRefused
    )
}
