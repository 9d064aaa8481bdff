//! The generic form: a listing described in config (URL template, JSON
//! pointer to the records, paging strategy), an optional incremental URL
//! template with `{since}`, and the accounts a contact links to, read by id
//! or listed once. A contact's linked accounts become `accounts.FIELD`
//! attributes, one value per account, in the order the link names them.

use std::collections::{HashMap, HashSet};

use futures_util::stream::{self, StreamExt};
use liaison_plugin_api::{ReadMode, SourceError};
use serde_json::{Map, Value as Json};

use crate::cursor::{system_ms, Since};
use crate::flatten::{flatten, flatten_into, lookup, scalar_text};
use crate::records::{at, page_records, Read, Schemas};
use crate::{AccountsEndpoint, Endpoint, Paging, RestConfig, TimeFormat};

/// Pages of a listing, one after the other.
struct Pages<'e> {
    endpoint: &'e Endpoint,
    path: String,
    size: usize,
    /// What to ask for next: `None` when done.
    next: Option<Next>,
}

enum Next {
    First,
    Offset(u64),
    Page(u64),
    Cursor(String),
    Link(String),
}

impl<'e> Pages<'e> {
    fn new(endpoint: &'e Endpoint, path: String, size: usize) -> Self {
        let next = match endpoint.paging {
            Paging::Offset { .. } => Next::Offset(0),
            Paging::Page { first, .. } => Next::Page(first),
            _ => Next::First,
        };
        Pages {
            endpoint,
            path,
            size,
            next: Some(next),
        }
    }

    /// The next page's records, and the server's `Date` (ms); `None` when done.
    async fn next(&mut self, read: &Read) -> Result<Option<(Vec<Json>, Option<i64>)>, SourceError> {
        let Some(next) = self.next.take() else {
            return Ok(None);
        };
        let mut url = match &next {
            Next::Link(link) => read.http.url(link)?,
            _ => read.http.url(&self.path)?,
        };
        let size = self.size.to_string();
        match (&self.endpoint.paging, &next) {
            (
                Paging::Offset {
                    offset_param,
                    limit_param,
                    ..
                },
                Next::Offset(offset),
            ) => {
                url.query_pairs_mut()
                    .append_pair(offset_param, &offset.to_string())
                    .append_pair(limit_param, &size);
            }
            (
                Paging::Page {
                    page_param,
                    size_param,
                    ..
                },
                Next::Page(page),
            ) => {
                url.query_pairs_mut()
                    .append_pair(page_param, &page.to_string())
                    .append_pair(size_param, &size);
            }
            (
                Paging::Cursor {
                    param, limit_param, ..
                },
                next,
            ) => {
                let mut q = url.query_pairs_mut();
                if let Some(limit) = limit_param {
                    q.append_pair(limit, &size);
                }
                if let Next::Cursor(c) = next {
                    q.append_pair(param, c);
                }
            }
            _ => {}
        }
        let what = format!("GET {}", url.path());
        let reply = read.http.get(url).await?;
        let records = page_records(&reply.json, &self.endpoint.records, &what)?.to_vec();
        let full_page = records.len() >= self.size && !records.is_empty();
        self.next = match (&self.endpoint.paging, next) {
            (Paging::None, _) => None,
            (Paging::Offset { total, .. }, Next::Offset(offset)) => {
                let reached = offset + records.len() as u64;
                let total = total
                    .as_deref()
                    .and_then(|p| at(&reply.json, p))
                    .and_then(|t| t.as_u64().or_else(|| t.as_str()?.parse().ok()));
                match total {
                    Some(total) if reached < total && !records.is_empty() => {
                        Some(Next::Offset(reached))
                    }
                    Some(_) => None,
                    None => full_page.then_some(Next::Offset(reached)),
                }
            }
            (Paging::Page { .. }, Next::Page(page)) => full_page.then_some(Next::Page(page + 1)),
            (Paging::Cursor { next, .. }, _) => at(&reply.json, next)
                .and_then(scalar_text)
                .filter(|c| !c.is_empty())
                .map(Next::Cursor),
            (Paging::NextLink { next }, _) => at(&reply.json, next)
                .and_then(scalar_text)
                .filter(|c| !c.is_empty())
                .map(Next::Link),
            _ => None,
        };
        Ok(Some((records, reply.date_ms)))
    }
}

/// Reads contacts (all, or changed since `since` when the config has an
/// incremental template) with their linked accounts.
pub(crate) async fn read(
    read: &Read,
    rest: &RestConfig,
    since: Option<Since>,
) -> Result<(), SourceError> {
    let config = &read.config;
    let (mode, path) = match (&rest.incremental, since) {
        (Some(inc), Some(since)) => {
            let since = since.minus(config.overlap);
            let text = format_time(since.ms(), &inc.format);
            let encoded: String = url::form_urlencoded::byte_serialize(text.as_bytes()).collect();
            (ReadMode::Changes, inc.path.replace("{since}", &encoded))
        }
        _ => (ReadMode::Full, rest.contacts.path.clone()),
    };
    let mut accounts: HashMap<String, Option<Map<String, Json>>> = HashMap::new();
    if let Some(AccountsEndpoint::List { endpoint, key }) = &rest.accounts {
        let mut pages = Pages::new(endpoint, endpoint.path.clone(), config.page_size);
        while let Some((records, _)) = pages.next(read).await? {
            read.check_cancel()?;
            for record in records {
                if let Json::Object(account) = record {
                    if let Some(id) = lookup(&account, key).into_iter().next() {
                        accounts.insert(id, Some(account));
                    }
                }
            }
        }
    }
    let mut schemas = Schemas::default();
    let mut sent: HashSet<String> = HashSet::new();
    let mut cursor: Option<i64> = None;
    let mut pages = Pages::new(&rest.contacts, path, config.page_size);
    while let Some((records, date)) = pages.next(read).await? {
        read.check_cancel()?;
        cursor.get_or_insert(date.unwrap_or_else(|| system_ms(read.now)));
        let contacts: Vec<Map<String, Json>> = records
            .into_iter()
            .filter_map(|r| match r {
                Json::Object(m) => Some(m),
                _ => None,
            })
            .collect();
        let links: Vec<Vec<String>> = contacts
            .iter()
            .map(|c| {
                rest.account_link
                    .as_deref()
                    .map(|l| lookup(c, l))
                    .unwrap_or_default()
            })
            .collect();
        if let Some(AccountsEndpoint::ById { path, record }) = &rest.accounts {
            let mut missing: Vec<String> = links
                .iter()
                .flatten()
                .filter(|id| !accounts.contains_key(*id))
                .cloned()
                .collect();
            missing.sort();
            missing.dedup();
            let fetched: Vec<(String, Option<Map<String, Json>>)> = stream::iter(missing)
                .map(|id| async move {
                    let encoded: String =
                        url::form_urlencoded::byte_serialize(id.as_bytes()).collect();
                    let url = read.http.url(&path.replace("{id}", &encoded))?;
                    let reply = read.http.get(url).await?;
                    let account = at(&reply.json, record).and_then(Json::as_object).cloned();
                    Ok::<_, SourceError>((id, account))
                })
                .buffered(config.concurrency.max(1))
                .collect::<Vec<_>>()
                .await
                .into_iter()
                .collect::<Result<_, _>>()?;
            accounts.extend(fetched);
        }
        let mut items = Vec::with_capacity(contacts.len());
        for (contact, ids) in contacts.into_iter().zip(links) {
            let key = lookup(&contact, &rest.key).into_iter().next();
            if mode == ReadMode::Full {
                if let Some(key) = &key {
                    if !sent.insert(key.clone()) {
                        continue;
                    }
                }
            }
            let mut attrs = flatten(&contact);
            if rest.accounts.is_some() {
                let linked: Vec<Json> = ids
                    .iter()
                    .filter_map(|id| accounts.get(id)?.clone().map(Json::Object))
                    .collect();
                let mut wrapper = Map::new();
                wrapper.insert("accounts".into(), Json::Array(linked));
                flatten_into(&wrapper, "", &mut attrs);
            }
            items.push(schemas.item(key, attrs));
        }
        read.send(items).await?;
    }
    let cursor = cursor.unwrap_or_else(|| system_ms(read.now));
    let cursor = rest
        .incremental
        .is_some()
        .then(|| Since::Ms(cursor).to_cursor());
    read.end(mode, cursor).await
}

/// `ms` written as `format` says.
pub(crate) fn format_time(ms: i64, format: &TimeFormat) -> String {
    let t = chrono::DateTime::from_timestamp_millis(ms).unwrap_or_default();
    match format {
        TimeFormat::Rfc3339 => t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        TimeFormat::Unix => (ms.div_euclid(1000)).to_string(),
        TimeFormat::UnixMs => ms.to_string(),
        TimeFormat::Pattern(p) => t.format(p).to_string(),
    }
}
