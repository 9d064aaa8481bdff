//! CRM connector for Liaison: contacts, their accounts (companies) and the
//! link between them, read from a CRM's REST API (SPEC §2, `type: crm`).
//!
//! Three presets, each following the vendor's published API:
//! - **Daktela v6** ([`Preset::Daktela`]): `GET /api/v6/contacts.json` and
//!   `/api/v6/accounts.json` with the `X-AUTH-TOKEN` header, `skip`/`take`
//!   paging (at most 1,000 a page) checked against the `total` each page
//!   reports, `filter[…]` on `edited` for changes reads. A contact's key is
//!   its `name`; its `account` is joined with the account's own record.
//!   Deletions show only in full reads (Daktela lists no deleted contacts).
//! - **HubSpot v3** ([`Preset::Hubspot`]): `GET /crm/v3/objects/contacts`
//!   with `properties` and `associations=companies`, cursor paging
//!   (`paging.next.after`), a private-app bearer token; changes through
//!   `POST /crm/v3/objects/contacts/search` on `lastmodifieddate`, split into
//!   windows past the search's 10,000-result cap, 200 a page; the companies
//!   of changed contacts through the v4 associations batch read; deletions
//!   through the `archived=true` listing. Companies come from the batch read
//!   of `/crm/v3/objects/companies`, their `domain` feeding `account_domains`.
//! - **`rest`** ([`Preset::Rest`]): the generic form, all from config: URL
//!   templates, a JSON pointer to the records, a paging strategy, an auth
//!   scheme, an incremental filter and where the key and the account link are.
//!
//! Every record is the CRM's JSON object flattened into dotted names
//! (`customFields.email`, `properties.email`); arrays become multi-valued
//! attributes (see [`flatten`]). The record's key is the CRM's record id.
//!
//! HTTP: per-request timeouts, gzip, a concurrency limit and a token-bucket
//! rate limit per source, `429` answered by waiting its `Retry-After`
//! (then [`SourceError::RateLimited`] once the retries run out), `5xx` and
//! connection errors retried with exponential backoff, `401`/`403` as
//! [`SourceError::Auth`]. A read that stops before its last page ends with
//! an error and no end item: it is never complete. The token is a
//! [`Secret`]: never logged, never in an error.
//!
//! Changes reads use the modification time as the cursor: the server's own
//! clock at the start of the read (Daktela's `_time`, HubSpot's `Date`
//! header), read again from that time less `overlap` next time, so clock
//! skew and indexing lag are covered; records in the overlap come twice,
//! which the host does not mind.
//!
//! [`webhook`] checks incoming webhook calls (HubSpot's v3 signature, a
//! shared-secret header) for the daemon's `POST /hooks/SOURCE`.

mod cursor;
mod daktela;
pub mod flatten;
mod http;
mod hubspot;
mod records;
mod rest;
pub mod webhook;

#[cfg(test)]
mod tests;

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use liaison_plugin_api::{
    spawn_read, Connector, ItemStream, ReadContext, ReadMode, ReadRequest, SourceError,
};

pub use webhook::{WebhookCheck, WebhookConfig, WebhookError, WebhookRequest};

/// Items waiting between the read's task and the host: batches of a page.
const CAPACITY: usize = 16;

/// A secret value (an API token, a client secret): `Debug` and `Display`
/// print `***`; [`Secret::expose`] gives it where it is sent.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a value.
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The secret itself: for the request that carries it, never for a log.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// Which CRM API a source reads.
#[derive(Debug, Clone, PartialEq)]
pub enum Preset {
    /// Daktela v6.
    Daktela,
    /// HubSpot CRM v3.
    Hubspot,
    /// Any JSON REST API, described by [`RestConfig`].
    Rest(Box<RestConfig>),
}

impl Preset {
    /// The preset's name as written in config.
    pub fn name(&self) -> &'static str {
        match self {
            Preset::Daktela => "daktela",
            Preset::Hubspot => "hubspot",
            Preset::Rest(_) => "rest",
        }
    }
}

/// Defaults of one preset, within what the vendor publishes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PresetDefaults {
    /// Requests in flight at once.
    pub concurrency: usize,
    /// Requests per second (a token bucket of this size).
    pub rate_limit: f64,
    /// Records asked for per page.
    pub page_size: usize,
    /// The largest page the API serves.
    pub max_page_size: usize,
    /// How far back a changes read starts before the stored cursor.
    pub overlap: Duration,
}

impl PresetDefaults {
    /// Daktela publishes no request rate; its pages hold at most 1,000
    /// records. Times are the instance's wall clock without an offset, so
    /// the overlap covers a daylight-saving fall-back hour.
    pub const DAKTELA: PresetDefaults = PresetDefaults {
        concurrency: 2,
        rate_limit: 10.0,
        page_size: 1000,
        max_page_size: 1000,
        overlap: Duration::from_secs(65 * 60),
    };

    /// HubSpot private apps may make 100 requests per 10 s (Free and
    /// Starter; 190 on Professional and Enterprise) and list at most 100
    /// objects a page; the search endpoints allow 5 requests a second and
    /// 200 results a page, and lag behind writes by seconds.
    pub const HUBSPOT: PresetDefaults = PresetDefaults {
        concurrency: 4,
        rate_limit: 9.0,
        page_size: 100,
        max_page_size: 100,
        overlap: Duration::from_secs(5 * 60),
    };

    /// A generic API: modest defaults.
    pub const REST: PresetDefaults = PresetDefaults {
        concurrency: 2,
        rate_limit: 5.0,
        page_size: 100,
        max_page_size: 10_000,
        overlap: Duration::from_secs(5 * 60),
    };

    /// The defaults of preset `name` (`daktela`, `hubspot`, `rest`).
    pub fn of(name: &str) -> PresetDefaults {
        match name {
            "daktela" => PresetDefaults::DAKTELA,
            "hubspot" => PresetDefaults::HUBSPOT,
            _ => PresetDefaults::REST,
        }
    }
}

/// HubSpot's search: 200 results a page at most.
pub const HUBSPOT_SEARCH_PAGE: usize = 200;
/// HubSpot's search: no result past the 10,000th of one query.
pub const HUBSPOT_SEARCH_CAP: usize = 10_000;
/// HubSpot's search: 5 requests a second per account; we stay below.
pub const HUBSPOT_SEARCH_RATE: f64 = 4.0;

/// `timeout` when not configured: one request's limit.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// `retries` when not configured: tries after the first.
pub const DEFAULT_RETRIES: u32 = 4;
/// `retry_backoff` when not configured: the first wait, doubled each time.
pub const DEFAULT_RETRY_BACKOFF: Duration = Duration::from_secs(1);
/// `max_retry_after` when not configured: a `Retry-After` up to this long is
/// waited for within the read; a longer one fails the run with it.
pub const DEFAULT_MAX_RETRY_AFTER: Duration = Duration::from_secs(60);

/// HubSpot contact properties always asked for (besides `properties:`).
pub const HUBSPOT_CONTACT_PROPERTIES: &[&str] = &[
    "email",
    "firstname",
    "lastname",
    "phone",
    "company",
    "hs_language",
    "lastmodifieddate",
];

/// HubSpot company properties always asked for (besides `company_properties:`).
pub const HUBSPOT_COMPANY_PROPERTIES: &[&str] = &["name", "domain"];

/// Settings of one `type: crm` source, validated by the daemon's config loader.
#[derive(Debug, Clone, PartialEq)]
pub struct CrmConfig {
    /// The source's name, in messages and logs.
    pub source: String,
    /// Which API.
    pub preset: Preset,
    /// The CRM's base URL (`https://acme.daktela.com`, `https://api.hubapi.com`).
    pub url: url::Url,
    /// The API token (Daktela's access token, HubSpot's private-app token,
    /// the `rest` auth's token); `None` only for `rest` without token auth.
    pub token: Option<Secret>,
    /// PEM certificates trusted besides the system roots.
    pub ca_file: Option<PathBuf>,
    /// One request's limit (connect, send, the whole body).
    pub timeout: Duration,
    /// Requests in flight at once.
    pub concurrency: usize,
    /// Requests per second.
    pub rate_limit: f64,
    /// HubSpot: search requests per second (also within `rate_limit`).
    pub search_rate_limit: f64,
    /// Records asked for per page.
    pub page_size: usize,
    /// How far back a changes read starts before the stored cursor.
    pub overlap: Duration,
    /// Tries after the first for a `429`, a `5xx` or a connection error.
    pub retries: u32,
    /// The first wait before a retry; doubled for each next one.
    pub retry_backoff: Duration,
    /// The longest `Retry-After` waited for within a read.
    pub max_retry_after: Duration,
    /// HubSpot: contact properties asked for besides the usual ones.
    pub properties: Vec<String>,
    /// HubSpot: company properties asked for besides `name` and `domain`.
    pub company_properties: Vec<String>,
    /// How `POST /hooks/SOURCE` calls are checked, when webhooks are on.
    pub webhook: Option<WebhookConfig>,
}

impl CrmConfig {
    /// The preset's defaults for `source` at `url`, with `token`.
    pub fn new(
        source: impl Into<String>,
        preset: Preset,
        url: url::Url,
        token: Option<Secret>,
    ) -> Self {
        let d = PresetDefaults::of(preset.name());
        CrmConfig {
            source: source.into(),
            preset,
            url,
            token,
            ca_file: None,
            timeout: DEFAULT_TIMEOUT,
            concurrency: d.concurrency,
            rate_limit: d.rate_limit,
            search_rate_limit: HUBSPOT_SEARCH_RATE,
            page_size: d.page_size,
            overlap: d.overlap,
            retries: DEFAULT_RETRIES,
            retry_backoff: DEFAULT_RETRY_BACKOFF,
            max_retry_after: DEFAULT_MAX_RETRY_AFTER,
            properties: Vec::new(),
            company_properties: Vec::new(),
            webhook: None,
        }
    }

    /// `source "NAME" (crm PRESET)`: how messages name the source.
    fn describe(&self) -> String {
        format!("source {:?} (crm {})", self.source, self.preset.name())
    }
}

/// The generic form (`preset: rest`).
#[derive(Debug, Clone, PartialEq)]
pub struct RestConfig {
    /// Where the contacts are listed.
    pub contacts: Endpoint,
    /// A URL template for changes reads, with `{since}` (the time to read
    /// changes from, formatted as `incremental.format` says); `None`: every
    /// read is full.
    pub incremental: Option<Incremental>,
    /// Where a record's key is (a dotted field path, e.g. `id`).
    pub key: String,
    /// Where a contact names its account(s) (a dotted path, e.g. `company_id`).
    pub account_link: Option<String>,
    /// How the linked accounts are read.
    pub accounts: Option<AccountsEndpoint>,
    /// How requests authenticate.
    pub auth: RestAuth,
}

/// A listing: a path (a URL template relative to `url`, may hold a query),
/// where the records are in each page, and how pages follow each other.
#[derive(Debug, Clone, PartialEq)]
pub struct Endpoint {
    /// The path and query, e.g. `/api/contacts?active=1`.
    pub path: String,
    /// JSON pointer to the records' array in a page (`/data`; empty: the page
    /// is the array).
    pub records: String,
    /// How to get the next page.
    pub paging: Paging,
}

/// How a listing's pages follow each other.
#[derive(Debug, Clone, PartialEq)]
pub enum Paging {
    /// One page holds everything.
    None,
    /// `?offset=N&limit=M`: pages at growing offsets, until a short page (or
    /// `total`, when a JSON pointer to it is given).
    Offset {
        /// The offset parameter's name.
        offset_param: String,
        /// The page size parameter's name.
        limit_param: String,
        /// JSON pointer to the total count, if the API gives one.
        total: Option<String>,
    },
    /// `?page=N&per_page=M`, numbered from `first`, until a short page.
    Page {
        /// The page number parameter's name.
        page_param: String,
        /// The page size parameter's name.
        size_param: String,
        /// The first page's number (usually 1).
        first: u64,
    },
    /// `?cursor=C`: the next page's cursor is in each page, at `next`.
    Cursor {
        /// The cursor parameter's name.
        param: String,
        /// JSON pointer to the next cursor (absent or empty: the last page).
        next: String,
        /// The page size parameter's name, if the API takes one.
        limit_param: Option<String>,
    },
    /// The next page's whole URL is in each page, at `next`.
    NextLink {
        /// JSON pointer to the next page's URL (absent or empty: the last page).
        next: String,
    },
}

/// How a changes read filters.
#[derive(Debug, Clone, PartialEq)]
pub struct Incremental {
    /// The changes listing's path, with `{since}` where the time goes.
    pub path: String,
    /// How `{since}` is written.
    pub format: TimeFormat,
}

/// How a time is written in a URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TimeFormat {
    /// `2024-05-01T10:00:00Z`.
    Rfc3339,
    /// Seconds since the Unix epoch.
    Unix,
    /// Milliseconds since the Unix epoch.
    UnixMs,
    /// A strftime pattern (`%Y-%m-%d %H:%M:%S`), in UTC.
    Pattern(String),
}

/// How the accounts a contact links to are read.
#[derive(Debug, Clone, PartialEq)]
pub enum AccountsEndpoint {
    /// One request per account: a path with `{id}` (`/api/companies/{id}`),
    /// answering the account object (at `record`, a JSON pointer).
    ById {
        /// The path template.
        path: String,
        /// JSON pointer to the account in the answer (empty: the whole answer).
        record: String,
    },
    /// Every account listed once at the start of a read.
    List {
        /// The listing.
        endpoint: Endpoint,
        /// Where an account's id is (dotted path).
        key: String,
    },
}

/// How `rest` requests authenticate.
#[derive(Debug, Clone, PartialEq)]
pub enum RestAuth {
    /// No credentials.
    None,
    /// `Authorization: Bearer TOKEN`.
    Bearer,
    /// `NAME: TOKEN`.
    Header(String),
    /// `?NAME=TOKEN` (the token is then never shown with the URL).
    Query(String),
    /// OAuth2 client credentials: a bearer token from `token_url`, renewed
    /// before it expires and after a `401`.
    OAuth2 {
        /// The token endpoint (absolute).
        token_url: url::Url,
        /// The client id.
        client_id: String,
        /// The client secret.
        client_secret: Secret,
        /// Scopes, space-separated, if any.
        scope: Option<String>,
    },
}

/// The `crm` connector.
#[derive(Debug, Clone)]
pub struct CrmConnector {
    config: Arc<CrmConfig>,
}

impl CrmConnector {
    /// A connector for one `type: crm` source.
    pub fn new(config: CrmConfig) -> Self {
        CrmConnector {
            config: Arc::new(config),
        }
    }

    /// The settings this connector reads with.
    pub fn config(&self) -> &CrmConfig {
        &self.config
    }
}

impl Connector for CrmConnector {
    fn kind(&self) -> &'static str {
        "crm"
    }

    /// Reads on the host's runtime. A changes request with a cursor reads
    /// changes since it (less `overlap`); a cursor this connector cannot read
    /// fails with [`SourceError::CursorExpired`], so the host reads in full.
    fn read(
        &self,
        request: &ReadRequest,
        ctx: &ReadContext,
    ) -> Result<ItemStream<'_>, SourceError> {
        let config = Arc::clone(&self.config);
        let since = match (request.mode, &request.cursor) {
            (ReadMode::Changes, Some(c)) => {
                Some(cursor::Since::parse(c.as_str()).ok_or_else(|| {
                    SourceError::CursorExpired(format!(
                        "{}: the stored cursor is not one this connector made",
                        config.describe()
                    ))
                })?)
            }
            _ => None,
        };
        let http = Arc::new(http::Http::new(&config, ctx.cancel.clone())?);
        let cancel = ctx.cancel.clone();
        let now = ctx.now();
        spawn_read(ctx, CAPACITY, move |tx| async move {
            let read = records::Read {
                config: Arc::clone(&config),
                http,
                cancel,
                now,
                tx,
            };
            let result = match &config.preset {
                Preset::Daktela => daktela::read(&read, since).await,
                Preset::Hubspot => hubspot::read(&read, since).await,
                Preset::Rest(rest) => rest::read(&read, rest, since).await,
            };
            result.map_err(|e| records::describe(&config, e))
        })
    }
}
