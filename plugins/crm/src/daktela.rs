//! Daktela v6: `GET /api/v6/contacts.json` and `/api/v6/accounts.json`.
//!
//! Pages are `skip`/`take` (at most 1,000), sorted by `name` so that they do
//! not move under us; every page reports the listing's `total`, and a total
//! that changes during a full read (a contact added or deleted meanwhile
//! shifts the pages) makes the read go over the pages again, skipping the
//! contacts it already handed out — a shifted page must never hide a
//! contact from a full read. A changes read filters `edited >= since`.
//! Answers are `{"error": [...], "result": {"data": [...], "total": N},
//! "_time": "Y-m-d H:i:s"}`; `_time`, the server's clock, is the cursor.

use std::collections::{HashMap, HashSet};

use futures_util::stream::{self, StreamExt};
use liaison_plugin_api::{ReadMode, SourceError};
use serde_json::{Map, Value as Json};

use crate::cursor::{Since, LOCAL_FORMAT};
use crate::flatten::{flatten, lookup};
use crate::records::{Read, Schemas};

const CONTACTS: &str = "/api/v6/contacts.json";
const ACCOUNTS: &str = "/api/v6/accounts.json";
/// Account names asked for in one `in` filter.
const ACCOUNTS_PER_REQUEST: usize = 50;
/// Passes over a listing that keeps changing before the read gives up.
const MAX_PASSES: usize = 3;

/// One page as Daktela answers it.
struct Page {
    data: Vec<Json>,
    total: u64,
    time: Option<String>,
}

/// Reads contacts (all, or those edited since `since`) joined to their accounts.
pub(crate) async fn read(read: &Read, since: Option<Since>) -> Result<(), SourceError> {
    let config = &read.config;
    let take = config.page_size.clamp(1, 1000);
    let since = since.map(|s| s.minus(config.overlap));
    let filter = since.map(|s| match s {
        Since::Local(t) => t.format(LOCAL_FORMAT).to_string(),
        // A cursor in ms (not Daktela's): read as UTC wall-clock time.
        Since::Ms(_) => s_local(s),
    });
    let mode = if since.is_some() {
        ReadMode::Changes
    } else {
        ReadMode::Full
    };
    let mut accounts = Accounts::default();
    let mut schemas = Schemas::default();
    let mut sent: HashSet<String> = HashSet::new();
    let mut cursor: Option<String> = None;
    for pass in 1..=MAX_PASSES {
        read.check_cancel()?;
        let first = page(read, filter.as_deref(), 0, take).await?;
        if cursor.is_none() {
            cursor = Some(first.time.clone().unwrap_or_else(|| fallback_time(read)));
        }
        let total = first.total;
        let offsets: Vec<u64> = (1..)
            .map(|i| i * take as u64)
            .take_while(|&skip| skip < total)
            .collect();
        let mut changed = false;
        emit(
            read,
            &mut accounts,
            &mut schemas,
            &mut sent,
            mode,
            first.data,
        )
        .await?;
        let mut pages = stream::iter(offsets)
            .map(|skip| page(read, filter.as_deref(), skip, take))
            .buffered(config.concurrency.max(1));
        while let Some(next) = pages.next().await {
            let next = next?;
            read.check_cancel()?;
            if next.total != total {
                changed = true;
            }
            emit(
                read,
                &mut accounts,
                &mut schemas,
                &mut sent,
                mode,
                next.data,
            )
            .await?;
        }
        if !changed || mode == ReadMode::Changes {
            // A changes read tolerates a shifted page: whatever it missed
            // was edited after the cursor and comes next time.
            let cursor = cursor.map(|t| local_cursor(&t)).transpose()?;
            return read.end(mode, cursor).await;
        }
        tracing::info!(
            source = %config.source,
            pass,
            "Daktela's contact count changed during the read; going over the pages again"
        );
    }
    Err(SourceError::Incomplete(format!(
        "the contacts kept changing during {MAX_PASSES} passes over {CONTACTS}"
    )))
}

/// A cursor from Daktela's `_time`.
fn local_cursor(time: &str) -> Result<String, SourceError> {
    chrono::NaiveDateTime::parse_from_str(time, LOCAL_FORMAT)
        .map(|t| Since::Local(t).to_cursor())
        .map_err(|_| SourceError::Invalid(format!("{CONTACTS}: _time {time:?} is not Y-m-d H:i:s")))
}

/// The read's start by the context's clock, as UTC wall-clock time (a
/// server that gave no `_time`).
fn fallback_time(read: &Read) -> String {
    s_local(Since::Ms(crate::cursor::system_ms(read.now)))
}

fn s_local(s: Since) -> String {
    chrono::DateTime::from_timestamp_millis(s.ms())
        .map(|t| t.naive_utc().format(LOCAL_FORMAT).to_string())
        .unwrap_or_default()
}

/// The contacts of one page, joined to their accounts, handed over. In a
/// full read a contact already handed out (a page that shifted) is not
/// handed out twice.
async fn emit(
    read: &Read,
    accounts: &mut Accounts,
    schemas: &mut Schemas,
    sent: &mut HashSet<String>,
    mode: ReadMode,
    data: Vec<Json>,
) -> Result<(), SourceError> {
    let names: Vec<String> = data
        .iter()
        .filter_map(Json::as_object)
        .filter_map(account_name)
        .collect();
    accounts.fetch(read, names).await?;
    let mut items = Vec::with_capacity(data.len());
    for contact in data {
        let Json::Object(mut contact) = contact else {
            continue;
        };
        let key = lookup(&contact, "name").into_iter().next();
        if mode == ReadMode::Full {
            if let Some(key) = &key {
                if !sent.insert(key.clone()) {
                    continue;
                }
            }
        }
        if let Some(account) = account_name(&contact).and_then(|n| accounts.get(&n)) {
            contact.insert("account".into(), Json::Object(account.clone()));
        }
        items.push(schemas.item(key, flatten(&contact)));
    }
    read.send(items).await
}

/// The account a contact names: `account` as an object's `name`, or a string.
fn account_name(contact: &Map<String, Json>) -> Option<String> {
    match contact.get("account")? {
        Json::String(s) if !s.is_empty() => Some(s.clone()),
        Json::Object(o) => o.get("name").and_then(Json::as_str).map(str::to_owned),
        _ => None,
    }
}

/// Accounts read so far, by name (`None`: Daktela does not know it).
#[derive(Default)]
struct Accounts {
    known: HashMap<String, Option<Map<String, Json>>>,
}

impl Accounts {
    fn get(&self, name: &str) -> Option<&Map<String, Json>> {
        self.known.get(name)?.as_ref()
    }

    /// Reads the accounts among `names` not read yet, a few per request.
    async fn fetch(&mut self, read: &Read, names: Vec<String>) -> Result<(), SourceError> {
        let mut missing: Vec<String> = names
            .into_iter()
            .filter(|n| !self.known.contains_key(n))
            .collect();
        missing.sort();
        missing.dedup();
        for chunk in missing.chunks(ACCOUNTS_PER_REQUEST) {
            let mut url = read.http.url(ACCOUNTS)?;
            {
                let mut q = url.query_pairs_mut();
                q.append_pair("filter[0][field]", "name")
                    .append_pair("filter[0][operator]", "in");
                for (i, name) in chunk.iter().enumerate() {
                    q.append_pair(&format!("filter[0][value][{i}]"), name);
                }
                q.append_pair("skip", "0").append_pair("take", "1000");
            }
            let reply = read.http.get(url).await?;
            let page = parse(&reply.json, ACCOUNTS)?;
            for name in chunk {
                self.known.insert(name.clone(), None);
            }
            for account in page.data {
                if let Json::Object(account) = account {
                    if let Some(name) = account.get("name").and_then(Json::as_str) {
                        self.known.insert(name.to_owned(), Some(account.clone()));
                    }
                }
            }
        }
        Ok(())
    }
}

/// `GET /api/v6/contacts.json` at `skip`.
async fn page(
    read: &Read,
    edited_since: Option<&str>,
    skip: u64,
    take: usize,
) -> Result<Page, SourceError> {
    let mut url = read.http.url(CONTACTS)?;
    {
        let mut q = url.query_pairs_mut();
        if let Some(since) = edited_since {
            q.append_pair("filter[0][field]", "edited")
                .append_pair("filter[0][operator]", "gte")
                .append_pair("filter[0][value]", since);
        }
        q.append_pair("sort[0][field]", "name")
            .append_pair("sort[0][dir]", "asc")
            .append_pair("skip", &skip.to_string())
            .append_pair("take", &take.to_string());
    }
    let reply = read.http.get(url).await?;
    parse(&reply.json, CONTACTS)
}

/// A listing's answer: its records, `total` and `_time`; its `error` list,
/// when not empty, fails the read.
fn parse(json: &Json, what: &str) -> Result<Page, SourceError> {
    if let Some(errors) = json.get("error") {
        let empty = match errors {
            Json::Array(a) => a.is_empty(),
            Json::Object(o) => o.is_empty(),
            Json::Null => true,
            Json::String(s) => s.is_empty(),
            _ => false,
        };
        if !empty {
            return Err(SourceError::Invalid(format!(
                "{what}: Daktela answered errors: {errors}"
            )));
        }
    }
    let result = json
        .get("result")
        .ok_or_else(|| SourceError::Invalid(format!("{what}: no \"result\" in the answer")))?;
    let data = match result.get("data") {
        Some(Json::Array(items)) => items.clone(),
        _ => {
            return Err(SourceError::Invalid(format!(
                "{what}: no \"result.data\" list in the answer"
            )))
        }
    };
    let total = match result.get("total") {
        Some(Json::Number(n)) => n.as_u64(),
        Some(Json::String(s)) => s.parse().ok(),
        _ => None,
    }
    .ok_or_else(|| {
        SourceError::Invalid(format!("{what}: no \"result.total\" count in the answer"))
    })?;
    Ok(Page {
        data,
        total,
        time: json.get("_time").and_then(Json::as_str).map(str::to_owned),
    })
}
