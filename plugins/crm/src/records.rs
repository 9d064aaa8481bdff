//! What every preset's read shares: the context, records built from JSON
//! with shared schemas, and the hand-over to the host.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::SystemTime;

use liaison_plugin_api::{
    BadRow, Cancel, Cursor, Item, ItemSender, Location, ReadEnd, ReadMode, Record, Schema,
    SourceError, Value,
};

use crate::http::Http;
use crate::CrmConfig;

/// One read in progress.
pub(crate) struct Read {
    /// The source's settings.
    pub config: Arc<CrmConfig>,
    /// Its HTTP client.
    pub http: Arc<Http>,
    /// Set when the run stops.
    pub cancel: Cancel,
    /// The context's clock at the start (when a server gives no time).
    pub now: SystemTime,
    /// Where the items go.
    pub tx: ItemSender,
}

impl Read {
    /// Fails when the run was cancelled.
    pub(crate) fn check_cancel(&self) -> Result<(), SourceError> {
        if self.cancel.is_cancelled() {
            return Err(SourceError::Incomplete("the read was cancelled".into()));
        }
        Ok(())
    }

    /// Hands `items` to the host. The host gone (it failed or stopped
    /// reading) ends the read here.
    pub(crate) async fn send(&self, items: Vec<Item>) -> Result<(), SourceError> {
        self.tx
            .send_batch(items)
            .await
            .map_err(|_| SourceError::Incomplete("the reader stopped".into()))
    }

    /// The end item: the read is complete.
    pub(crate) async fn end(
        &self,
        mode: ReadMode,
        cursor: Option<String>,
    ) -> Result<(), SourceError> {
        tracing::info!(
            source = %self.config.source,
            mode = mode.as_str(),
            requests = self.http.requests.load(std::sync::atomic::Ordering::Relaxed),
            "CRM read complete"
        );
        self.tx
            .send(Item::End(ReadEnd {
                mode,
                cursor: cursor.map(Cursor::new),
            }))
            .await
            .map_err(|_| SourceError::Incomplete("the reader stopped".into()))
    }
}

/// Schemas by their names, so records of one shape share one.
#[derive(Default)]
pub(crate) struct Schemas {
    known: HashMap<Vec<String>, Arc<Schema>>,
}

/// Shapes kept; past it the cache starts again (JSON records rarely have
/// more than a few shapes).
const MAX_SCHEMAS: usize = 4096;

impl Schemas {
    fn get(&mut self, names: Vec<String>) -> Arc<Schema> {
        if let Some(schema) = self.known.get(&names) {
            return Arc::clone(schema);
        }
        if self.known.len() >= MAX_SCHEMAS {
            self.known.clear();
        }
        let schema = Arc::new(Schema::new(names.clone()));
        self.known.insert(names, Arc::clone(&schema));
        schema
    }

    /// A contact record keyed `key` from its attributes; without a key, a
    /// bad row.
    pub(crate) fn item(&mut self, key: Option<String>, attrs: Vec<(String, Value)>) -> Item {
        let Some(key) = key.filter(|k| !k.is_empty()) else {
            let at = attrs
                .iter()
                .find(|(n, _)| n == "name" || n == "id")
                .and_then(|(_, v)| v.first())
                .unwrap_or("?")
                .to_owned();
            return Item::Bad(BadRow {
                location: Location::Remote {
                    kind: "contact",
                    id: at,
                },
                message: "the record has no key (its id field is missing or empty)".into(),
                partial: None,
                key: None,
            });
        };
        let (names, values): (Vec<String>, Vec<Value>) = attrs.into_iter().unzip();
        let schema = self.get(names);
        let location = Location::Remote {
            kind: "contact",
            id: key.clone(),
        };
        Item::Record(Record::new(location, schema, values).with_key(key))
    }
}

/// `e` with the source named in its message.
pub(crate) fn describe(config: &CrmConfig, e: SourceError) -> SourceError {
    let name = config.describe();
    match e {
        SourceError::Io { what, source } => SourceError::Io {
            what: format!("{name}: {what}"),
            source,
        },
        SourceError::NotFound(m) => SourceError::NotFound(format!("{name}: {m}")),
        SourceError::Unreachable(m) => SourceError::Unreachable(format!("{name}: {m}")),
        SourceError::Auth(m) => SourceError::Auth(format!("{name}: {m}")),
        SourceError::RateLimited {
            message,
            retry_after,
        } => SourceError::RateLimited {
            message: format!("{name}: {message}"),
            retry_after,
        },
        SourceError::Incomplete(m) => SourceError::Incomplete(format!(
            "{name}: {m}; the read stopped before its last page and nothing is applied"
        )),
        SourceError::Invalid(m) => SourceError::Invalid(format!("{name}: {m}")),
        SourceError::CursorExpired(m) => SourceError::CursorExpired(format!("{name}: {m}")),
    }
}

/// The value at JSON `pointer` (`/result/data`; empty: the whole value).
pub(crate) fn at<'v>(value: &'v serde_json::Value, pointer: &str) -> Option<&'v serde_json::Value> {
    if pointer.is_empty() || pointer == "/" {
        return Some(value);
    }
    value.pointer(pointer)
}

/// The array at `pointer` of a page, or an error naming what was expected.
pub(crate) fn page_records<'v>(
    value: &'v serde_json::Value,
    pointer: &str,
    what: &str,
) -> Result<&'v [serde_json::Value], SourceError> {
    match at(value, pointer) {
        Some(serde_json::Value::Array(items)) => Ok(items),
        Some(serde_json::Value::Null) | None if pointer.is_empty() => Err(SourceError::Invalid(
            format!("{what}: the answer is not a list of records"),
        )),
        _ => Err(SourceError::Invalid(format!(
            "{what}: no list of records at {pointer:?} in the answer"
        ))),
    }
}
