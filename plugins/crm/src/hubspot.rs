//! HubSpot CRM v3.
//!
//! - Full read: `GET /crm/v3/objects/contacts?limit=100&properties=…&associations=companies`,
//!   following `paging.next.after`.
//! - Changes read: `POST /crm/v3/objects/contacts/search` on
//!   `lastmodifieddate >= since`, sorted by it, 200 a page. One search query
//!   gives at most 10,000 results, so when the next page would pass that cap
//!   a new query starts at the last page's `lastmodifieddate` (a window; the
//!   records of that instant come again, which is fine in a changes read).
//!   Should 10,000 contacts share one instant, that instant is read by
//!   `hs_object_id` in windows of its own. Search results carry no
//!   associations: the companies of changed contacts come from
//!   `POST /crm/v4/associations/contacts/companies/batch/read`. Deletions:
//!   the `archived=true` listing, those archived since the cursor.
//! - Companies: `POST /crm/v3/objects/companies/batch/read`, 100 at a time,
//!   each once per read. A contact's companies are `companies.id`,
//!   `companies.name`, `companies.domain`, … (one value per company, the
//!   primary company first).

use std::collections::{HashMap, HashSet};

use liaison_plugin_api::{Deletion, Item, Location, ReadMode, SourceError, Value};
use serde_json::{json, Map, Value as Json};

use crate::cursor::{parse_rfc3339_ms, system_ms, Since};
use crate::flatten::{flatten, scalar_text};
use crate::records::{page_records, Read, Schemas};
use crate::{
    HUBSPOT_COMPANY_PROPERTIES, HUBSPOT_CONTACT_PROPERTIES, HUBSPOT_SEARCH_CAP, HUBSPOT_SEARCH_PAGE,
};

const CONTACTS: &str = "/crm/v3/objects/contacts";
const SEARCH: &str = "/crm/v3/objects/contacts/search";
const COMPANIES_BATCH: &str = "/crm/v3/objects/companies/batch/read";
const ASSOCIATIONS_BATCH: &str = "/crm/v4/associations/contacts/companies/batch/read";
/// Ids per batch read (HubSpot's limit for objects).
const BATCH: usize = 100;
/// The association type of a contact's primary company.
const PRIMARY_TYPE_ID: u64 = 1;

/// Reads contacts (all, or those modified since `since`) with their companies.
pub(crate) async fn read(read: &Read, since: Option<Since>) -> Result<(), SourceError> {
    let mut state = State {
        properties: properties(&read.config.properties, HUBSPOT_CONTACT_PROPERTIES),
        company_properties: properties(&read.config.company_properties, HUBSPOT_COMPANY_PROPERTIES),
        companies: HashMap::new(),
        schemas: Schemas::default(),
        sent: HashSet::new(),
    };
    match since {
        None => full(read, &mut state).await,
        Some(since) => changes(read, &mut state, since.minus(read.config.overlap).ms()).await,
    }
}

struct State {
    properties: Vec<String>,
    company_properties: Vec<String>,
    /// Companies read so far, by id (`None`: not found).
    companies: HashMap<String, Option<Map<String, Json>>>,
    schemas: Schemas,
    /// Contacts handed out in a full read.
    sent: HashSet<String>,
}

/// `extra` after `always`, each once.
fn properties(extra: &[String], always: &[&str]) -> Vec<String> {
    let mut out: Vec<String> = always.iter().map(|s| (*s).to_owned()).collect();
    for p in extra {
        if !out.contains(p) {
            out.push(p.clone());
        }
    }
    out
}

async fn full(read: &Read, state: &mut State) -> Result<(), SourceError> {
    let limit = read.config.page_size.clamp(1, 100);
    let mut after: Option<String> = None;
    let mut cursor: Option<i64> = None;
    loop {
        read.check_cancel()?;
        let mut url = read.http.url(CONTACTS)?;
        {
            let mut q = url.query_pairs_mut();
            q.append_pair("limit", &limit.to_string())
                .append_pair("archived", "false")
                .append_pair("associations", "companies")
                .append_pair("properties", &state.properties.join(","));
            if let Some(after) = &after {
                q.append_pair("after", after);
            }
        }
        let reply = read.http.get(url).await?;
        cursor.get_or_insert(reply.date_ms.unwrap_or_else(|| system_ms(read.now)));
        let results = page_records(&reply.json, "/results", CONTACTS)?;
        let mut contacts: Vec<(Map<String, Json>, Vec<String>)> = Vec::with_capacity(results.len());
        for contact in results {
            let Json::Object(contact) = contact else {
                continue;
            };
            let companies = listed_companies(contact);
            contacts.push((contact.clone(), companies));
        }
        emit(read, state, contacts, true).await?;
        match next_after(&reply.json) {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    let cursor = cursor.unwrap_or_else(|| system_ms(read.now));
    read.end(ReadMode::Full, Some(Since::Ms(cursor).to_cursor()))
        .await
}

/// A contact's companies as its `associations` list them, primary first.
fn listed_companies(contact: &Map<String, Json>) -> Vec<String> {
    let Some(Json::Array(results)) = contact
        .get("associations")
        .and_then(|a| a.get("companies"))
        .and_then(|c| c.get("results"))
    else {
        return Vec::new();
    };
    let mut primary = Vec::new();
    let mut others = Vec::new();
    for r in results {
        let Some(id) = r.get("id").and_then(scalar_text) else {
            continue;
        };
        let is_primary = r.get("type").and_then(Json::as_str) == Some("contact_to_company");
        if is_primary {
            primary.push(id);
        } else {
            others.push(id);
        }
    }
    dedup(primary.into_iter().chain(others))
}

fn dedup(ids: impl Iterator<Item = String>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for id in ids {
        if !out.contains(&id) {
            out.push(id);
        }
    }
    out
}

/// `paging.next.after`, when there is a next page.
fn next_after(page: &Json) -> Option<String> {
    page.pointer("/paging/next/after")
        .and_then(scalar_text)
        .filter(|s| !s.is_empty())
}

/// The search queries a changes read goes through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Query {
    /// `lastmodifieddate >= from` (`> from` when `strict`), by `lastmodifieddate`.
    Since { from: i64, strict: bool },
    /// `lastmodifieddate == at` and `hs_object_id > after_id`, by `hs_object_id`.
    Tie { at: i64, after_id: i64 },
}

impl Query {
    fn body(self, properties: &[String], after: u64) -> Json {
        let (filters, sort) = match self {
            Query::Since { from, strict } => (
                json!([{"propertyName": "lastmodifieddate", "operator": if strict { "GT" } else { "GTE" }, "value": from.to_string()}]),
                "lastmodifieddate",
            ),
            Query::Tie { at, after_id } => (
                json!([
                    {"propertyName": "lastmodifieddate", "operator": "EQ", "value": at.to_string()},
                    {"propertyName": "hs_object_id", "operator": "GT", "value": after_id.to_string()},
                ]),
                "hs_object_id",
            ),
        };
        json!({
            "filterGroups": [{"filters": filters}],
            "sorts": [{"propertyName": sort, "direction": "ASCENDING"}],
            "properties": properties,
            "limit": HUBSPOT_SEARCH_PAGE,
            "after": after.to_string(),
        })
    }
}

/// The body of a `lastmodifieddate >= from` (or `>`) search page: for tests.
#[cfg(test)]
pub(crate) fn window_body(from: i64, strict: bool, properties: &[String], after: u64) -> Json {
    Query::Since { from, strict }.body(properties, after)
}

async fn changes(read: &Read, state: &mut State, since_ms: i64) -> Result<(), SourceError> {
    let mut query = Query::Since {
        from: since_ms,
        strict: false,
    };
    let mut after: u64 = 0;
    let mut cursor: Option<i64> = None;
    let url = read.http.url(SEARCH)?;
    loop {
        read.check_cancel()?;
        let reply = read
            .http
            .post(url.clone(), &query.body(&state.properties, after), true)
            .await?;
        cursor.get_or_insert(reply.date_ms.unwrap_or_else(|| system_ms(read.now)));
        let results = page_records(&reply.json, "/results", SEARCH)?;
        let mut last: Option<(i64, i64)> = None;
        let mut contacts = Vec::with_capacity(results.len());
        for contact in results {
            let Json::Object(contact) = contact else {
                continue;
            };
            let modified = contact
                .get("properties")
                .and_then(|p| p.get("lastmodifieddate"))
                .and_then(Json::as_str)
                .and_then(parse_rfc3339_ms)
                .or_else(|| {
                    contact
                        .get("updatedAt")
                        .and_then(Json::as_str)
                        .and_then(parse_rfc3339_ms)
                });
            let id = contact
                .get("id")
                .and_then(scalar_text)
                .and_then(|s| s.parse::<i64>().ok());
            if let (Some(m), Some(id)) = (modified, id) {
                last = Some((m, id));
            }
            contacts.push((contact.clone(), Vec::new()));
        }
        associate(read, &mut contacts).await?;
        emit(read, state, contacts, false).await?;
        let Some(next) = next_after(&reply.json) else {
            // This query is done.
            match query {
                Query::Tie { at, .. } => {
                    query = Query::Since {
                        from: at,
                        strict: true,
                    };
                    after = 0;
                    continue;
                }
                Query::Since { .. } => break,
            }
        };
        let next: u64 = next.parse().map_err(|_| {
            SourceError::Invalid(format!(
                "{SEARCH}: paging.next.after {next:?} is not a number"
            ))
        })?;
        if next + (HUBSPOT_SEARCH_PAGE as u64) <= HUBSPOT_SEARCH_CAP as u64 {
            after = next;
            continue;
        }
        // The next page would pass the search's cap: a new window.
        let Some((last_modified, last_id)) = last else {
            return Err(SourceError::Invalid(format!(
                "{SEARCH}: a full page without lastmodifieddate; cannot go past {HUBSPOT_SEARCH_CAP} results"
            )));
        };
        query = match query {
            Query::Since { from, .. } if last_modified > from => Query::Since {
                from: last_modified,
                strict: false,
            },
            Query::Since { from, .. } => Query::Tie {
                at: from,
                after_id: last_id,
            },
            Query::Tie { at, .. } => Query::Tie {
                at,
                after_id: last_id,
            },
        };
        tracing::debug!(source = %read.config.source, ?query, "HubSpot search window");
        after = 0;
    }
    deletions(read, since_ms).await?;
    let cursor = cursor.unwrap_or_else(|| system_ms(read.now));
    read.end(ReadMode::Changes, Some(Since::Ms(cursor).to_cursor()))
        .await
}

/// The companies of `contacts` (search results, which carry none), primary
/// first, from the v4 associations batch read.
async fn associate(
    read: &Read,
    contacts: &mut [(Map<String, Json>, Vec<String>)],
) -> Result<(), SourceError> {
    let url = read.http.url(ASSOCIATIONS_BATCH)?;
    for chunk in contacts.chunks_mut(BATCH) {
        let inputs: Vec<Json> = chunk
            .iter()
            .filter_map(|(c, _)| c.get("id").and_then(scalar_text))
            .map(|id| json!({"id": id}))
            .collect();
        if inputs.is_empty() {
            continue;
        }
        let reply = read
            .http
            .post(url.clone(), &json!({"inputs": inputs}), false)
            .await?;
        let mut by_contact: HashMap<String, Vec<String>> = HashMap::new();
        for result in page_records(&reply.json, "/results", ASSOCIATIONS_BATCH)? {
            let Some(from) = result.pointer("/from/id").and_then(scalar_text) else {
                continue;
            };
            let mut primary = Vec::new();
            let mut others = Vec::new();
            for to in result
                .get("to")
                .and_then(Json::as_array)
                .into_iter()
                .flatten()
            {
                let Some(id) = to.get("toObjectId").and_then(scalar_text) else {
                    continue;
                };
                let is_primary = to
                    .get("associationTypes")
                    .and_then(Json::as_array)
                    .is_some_and(|types| {
                        types.iter().any(|t| {
                            t.get("typeId").and_then(Json::as_u64) == Some(PRIMARY_TYPE_ID)
                        })
                    });
                if is_primary {
                    primary.push(id);
                } else {
                    others.push(id);
                }
            }
            by_contact.insert(from, dedup(primary.into_iter().chain(others)));
        }
        for (contact, companies) in chunk.iter_mut() {
            if let Some(id) = contact.get("id").and_then(scalar_text) {
                *companies = by_contact.remove(&id).unwrap_or_default();
            }
        }
    }
    Ok(())
}

/// Contacts archived since `since_ms`, as deletions.
async fn deletions(read: &Read, since_ms: i64) -> Result<(), SourceError> {
    let mut after: Option<String> = None;
    loop {
        read.check_cancel()?;
        let mut url = read.http.url(CONTACTS)?;
        {
            let mut q = url.query_pairs_mut();
            q.append_pair("limit", "100")
                .append_pair("archived", "true");
            if let Some(after) = &after {
                q.append_pair("after", after);
            }
        }
        let reply = read.http.get(url).await?;
        let mut items = Vec::new();
        for contact in page_records(&reply.json, "/results", CONTACTS)? {
            let Some(id) = contact.get("id").and_then(scalar_text) else {
                continue;
            };
            let archived_at = contact
                .get("archivedAt")
                .and_then(Json::as_str)
                .and_then(parse_rfc3339_ms);
            // Without an archive time it may be recent: a deletion of a
            // contact already gone is harmless.
            if archived_at.is_none_or(|t| t >= since_ms) {
                items.push(Item::Deleted(Deletion {
                    location: Location::Remote {
                        kind: "contact",
                        id: id.clone(),
                    },
                    key: id,
                }));
            }
        }
        read.send(items).await?;
        match next_after(&reply.json) {
            Some(next) => after = Some(next),
            None => return Ok(()),
        }
    }
}

/// Reads the companies `contacts` name that are not read yet, then hands
/// the contacts over as records.
async fn emit(
    read: &Read,
    state: &mut State,
    contacts: Vec<(Map<String, Json>, Vec<String>)>,
    full: bool,
) -> Result<(), SourceError> {
    let mut missing: Vec<String> = contacts
        .iter()
        .flat_map(|(_, ids)| ids.iter())
        .filter(|id| !state.companies.contains_key(*id))
        .cloned()
        .collect();
    missing.sort();
    missing.dedup();
    let url = read.http.url(COMPANIES_BATCH)?;
    for chunk in missing.chunks(BATCH) {
        let body = json!({
            "properties": state.company_properties,
            "inputs": chunk.iter().map(|id| json!({"id": id})).collect::<Vec<_>>(),
        });
        let reply = read.http.post(url.clone(), &body, false).await?;
        for id in chunk {
            state.companies.insert(id.clone(), None);
        }
        for company in page_records(&reply.json, "/results", COMPANIES_BATCH)? {
            let (Some(id), Some(Json::Object(props))) = (
                company.get("id").and_then(scalar_text),
                company.get("properties"),
            ) else {
                continue;
            };
            state.companies.insert(id, Some(props.clone()));
        }
    }
    let mut items = Vec::with_capacity(contacts.len());
    for (mut contact, company_ids) in contacts {
        let key = contact.get("id").and_then(scalar_text);
        if full {
            if let Some(key) = &key {
                if !state.sent.insert(key.clone()) {
                    continue;
                }
            }
        }
        contact.remove("associations");
        let mut attrs = flatten(&contact);
        let known: Vec<(&String, &Map<String, Json>)> = company_ids
            .iter()
            .filter_map(|id| Some((id, state.companies.get(id)?.as_ref()?)))
            .collect();
        attrs.push((
            "companies.id".into(),
            Value::Many(known.iter().map(|(id, _)| (*id).clone()).collect()),
        ));
        for p in &state.company_properties {
            let values = known
                .iter()
                .map(|(_, props)| props.get(p).and_then(scalar_text).unwrap_or_default())
                .collect();
            attrs.push((format!("companies.{p}"), Value::Many(values)));
        }
        items.push(state.schemas.item(key, attrs));
    }
    read.send(items).await
}
