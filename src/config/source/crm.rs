//! `type: crm`: builds [`liaison_plugin_crm::CrmConfig`] (keys in
//! [`super::CRM_KEYS`]; the README's "Reading a CRM" says what each means).

use liaison_plugin_crm::{
    AccountsEndpoint, CrmConfig, Endpoint, Incremental, Paging, Preset, PresetDefaults, RestAuth,
    RestConfig, Secret, TimeFormat, WebhookConfig, DEFAULT_MAX_RETRY_AFTER, DEFAULT_RETRIES,
    DEFAULT_RETRY_BACKOFF, DEFAULT_TIMEOUT,
};

use super::super::walk::{self, Ctx, Section};
use super::super::yaml::{quote, Node, Value};

const PRESETS: &[&str] = &["daktela", "hubspot", "rest"];
const WEBHOOK_KEYS: &[&str] = &["secret", "header"];
const REST_KEYS: &[&str] = &[
    "contacts",
    "changes",
    "key",
    "account_link",
    "accounts",
    "auth",
];
const ENDPOINT_KEYS: &[&str] = &["path", "records", "paging"];
const ACCOUNTS_KEYS: &[&str] = &["path", "records", "record", "paging", "key"];
const CHANGES_KEYS: &[&str] = &["path", "format"];
const PAGING_KEYS: &[&str] = &[
    "type",
    "offset_param",
    "limit_param",
    "total",
    "page_param",
    "size_param",
    "first",
    "param",
    "next",
];
const PAGING_TYPES: &[&str] = &["none", "offset", "page", "cursor", "next_link"];
const AUTH_KEYS: &[&str] = &[
    "type",
    "name",
    "token_url",
    "client_id",
    "client_secret",
    "scope",
];
const AUTH_TYPES: &[&str] = &["none", "bearer", "header", "query", "oauth2"];
/// The most requests a source may have in flight.
const MAX_CONCURRENCY: u32 = 32;
/// The most tries after the first.
const MAX_RETRIES: u32 = 10;

pub(super) fn crm(
    ctx: &mut Ctx<'_>,
    section: &Section<'_>,
    name: Option<&str>,
) -> Option<CrmConfig> {
    let preset_name = section
        .require(ctx, "preset")
        .and_then(|n| preset(ctx, &section.child("preset"), n));
    let url = section
        .require(ctx, "url")
        .and_then(|n| walk::http_url(ctx, &section.child("url"), n));
    let defaults = PresetDefaults::of(preset_name.unwrap_or("rest"));
    let rest = match (preset_name, section.get("rest")) {
        (Some("rest"), Some(_)) => section.section(ctx, "rest").and_then(|s| rest(ctx, &s)),
        (Some("rest"), None) => {
            section.require(ctx, "rest");
            None
        }
        (Some(p), Some(_)) => {
            let span = section.key_span("rest").unwrap_or(section.span);
            let message = format!(
                "only for preset rest (this source's preset is {})",
                quote(p)
            );
            ctx.error(span, &section.child("rest"), message);
            None
        }
        (_, _) => None,
    };
    let token = match section.get("token") {
        Some(n) => {
            walk::secret(ctx, &section.child("token"), n).map(|s| Some(Secret::new(s.expose())))
        }
        None => {
            let needs = match (preset_name, &rest) {
                (Some("daktela" | "hubspot"), _) => true,
                (Some("rest"), Some(r)) => matches!(
                    r.auth,
                    RestAuth::Bearer | RestAuth::Header(_) | RestAuth::Query(_)
                ),
                _ => false,
            };
            if needs {
                section.require(ctx, "token");
                None
            } else {
                Some(None)
            }
        }
    };
    let ca_file = section
        .get("ca_file")
        .map(|n| walk::path(ctx, &section.child("ca_file"), n));
    let duration = |ctx: &mut Ctx<'_>, key: &str, default| match section.get(key) {
        Some(n) => walk::positive_duration(ctx, &section.child(key), n),
        None => Some(default),
    };
    let timeout = duration(ctx, "timeout", DEFAULT_TIMEOUT);
    let overlap = duration(ctx, "overlap", defaults.overlap);
    let retry_backoff = duration(ctx, "retry_backoff", DEFAULT_RETRY_BACKOFF);
    let max_retry_after = duration(ctx, "max_retry_after", DEFAULT_MAX_RETRY_AFTER);
    let concurrency = bounded(
        ctx,
        section,
        "concurrency",
        1,
        MAX_CONCURRENCY,
        defaults.concurrency as u32,
    );
    let retries = bounded(ctx, section, "retries", 0, MAX_RETRIES, DEFAULT_RETRIES);
    let max_page = u32::try_from(defaults.max_page_size).unwrap_or(u32::MAX);
    let page_size = bounded(
        ctx,
        section,
        "page_size",
        1,
        max_page,
        defaults.page_size as u32,
    );
    let rate_limit = match section.get("rate_limit") {
        Some(n) => rate(ctx, &section.child("rate_limit"), n),
        None => Some(defaults.rate_limit),
    };
    let hubspot_only = |ctx: &mut Ctx<'_>, key: &str| -> Option<Vec<String>> {
        let node = section.get(key)?;
        if preset_name.is_some_and(|p| p != "hubspot") {
            let span = section.key_span(key).unwrap_or(node.span);
            ctx.error(
                span,
                &section.child(key),
                "only for preset hubspot (HubSpot returns only the properties asked for)",
            );
            return None;
        }
        names(ctx, &section.child(key), node)
    };
    let search_rate_limit = match section.get("search_rate_limit") {
        Some(n) if preset_name.is_some_and(|p| p != "hubspot") => {
            let span = section.key_span("search_rate_limit").unwrap_or(n.span);
            ctx.error(
                span,
                &section.child("search_rate_limit"),
                "only for preset hubspot (its search endpoints' own limit)",
            );
            None
        }
        Some(n) => rate(ctx, &section.child("search_rate_limit"), n),
        None => Some(liaison_plugin_crm::HUBSPOT_SEARCH_RATE),
    };
    let properties = hubspot_only(ctx, "properties");
    let company_properties = hubspot_only(ctx, "company_properties");
    let webhook = match section.get("webhook") {
        Some(_) => section
            .section(ctx, "webhook")
            .map(|s| webhook(ctx, &s, preset_name)),
        None => Some(None),
    };
    let preset = match preset_name? {
        "daktela" => Preset::Daktela,
        "hubspot" => Preset::Hubspot,
        _ => Preset::Rest(Box::new(rest?)),
    };
    let mut config = CrmConfig::new(name?, preset, url?, token?);
    config.ca_file = given(ca_file)?;
    config.timeout = timeout?;
    config.overlap = overlap?;
    config.retry_backoff = retry_backoff?;
    config.max_retry_after = max_retry_after?;
    config.concurrency = concurrency? as usize;
    config.retries = retries?;
    config.page_size = page_size? as usize;
    config.rate_limit = rate_limit?;
    config.search_rate_limit = search_rate_limit?;
    config.properties = properties.unwrap_or_default();
    config.company_properties = company_properties.unwrap_or_default();
    config.webhook = webhook?;
    Some(config)
}

/// An optional key read: absent is `Some(None)`, read is `Some(Some(v))`,
/// and a value with an error (already reported) is `None`.
fn given<T>(read: Option<Option<T>>) -> Option<Option<T>> {
    match read {
        None => Some(None),
        Some(Some(v)) => Some(Some(v)),
        Some(None) => None,
    }
}

fn preset(ctx: &mut Ctx<'_>, path: &str, node: &Node) -> Option<&'static str> {
    let text = walk::string(ctx, path, node)?;
    if let Some(p) = PRESETS.iter().find(|p| **p == text) {
        return Some(p);
    }
    let message = format!(
        "unknown preset {} (known: {})",
        quote(&text),
        PRESETS.join(", ")
    );
    ctx.error(node.span, path, message);
    None
}

/// A whole number in `min..=max`; `default` when absent.
fn bounded(
    ctx: &mut Ctx<'_>,
    section: &Section<'_>,
    key: &str,
    min: u32,
    max: u32,
    default: u32,
) -> Option<u32> {
    let Some(node) = section.get(key) else {
        return Some(default);
    };
    let path = section.child(key);
    let n = walk::unsigned(ctx, &path, node)?;
    if (min..=max).contains(&n) {
        return Some(n);
    }
    ctx.error(
        node.span,
        &path,
        format!("expected a number from {min} to {max} (default {default}), found {n}"),
    );
    None
}

/// Requests per second: a number above 0, at most 1000.
fn rate(ctx: &mut Ctx<'_>, path: &str, node: &Node) -> Option<f64> {
    let value = match node.value {
        Value::Int(i) => Some(i as f64),
        Value::Float(x) => Some(x),
        _ => None,
    };
    match value {
        Some(r) if r > 0.0 && r <= 1000.0 => Some(r),
        _ => {
            let message = format!("expected requests per second, a number above 0 and at most 1000 (such as 10 or 2.5), found {}", node.describe());
            ctx.error(node.span, path, message);
            None
        }
    }
}

/// A list of non-empty names.
fn names(ctx: &mut Ctx<'_>, path: &str, node: &Node) -> Option<Vec<String>> {
    let items = walk::list(ctx, path, node)?;
    let mut out = Vec::with_capacity(items.len());
    let mut ok = true;
    for (i, item) in items.iter().enumerate() {
        match walk::non_empty_string(ctx, &format!("{path}[{i}]"), item) {
            Some(s) => out.push(s),
            None => ok = false,
        }
    }
    ok.then_some(out)
}

/// `webhook: {secret, header}`: HubSpot's v3 signature with the app's client
/// secret for preset hubspot, a shared-secret header otherwise.
fn webhook(
    ctx: &mut Ctx<'_>,
    section: &Section<'_>,
    preset: Option<&str>,
) -> Option<WebhookConfig> {
    section.deny_unknown(ctx, WEBHOOK_KEYS, "in webhook");
    let secret = section
        .require(ctx, "secret")
        .and_then(|n| walk::secret(ctx, &section.child("secret"), n))
        .map(|s| Secret::new(s.expose()));
    if preset == Some("hubspot") {
        if let Some(node) = section.get("header") {
            let message = "HubSpot signs its calls (X-HubSpot-Signature-v3): there is no secret header to name";
            ctx.error(node.span, &section.child("header"), message);
            return None;
        }
        return Some(WebhookConfig::HubspotV3 {
            client_secret: secret?,
        });
    }
    let header = match section.get("header") {
        Some(n) => {
            let text = walk::non_empty_string(ctx, &section.child("header"), n)?;
            if !text
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            {
                ctx.error(
                    n.span,
                    &section.child("header"),
                    format!("{} is not a header name", quote(&text)),
                );
                return None;
            }
            text
        }
        None => liaison_plugin_crm::webhook::DEFAULT_SECRET_HEADER.to_owned(),
    };
    Some(WebhookConfig::SharedSecret {
        header,
        secret: secret?,
    })
}

/// `rest:`, the generic form.
fn rest(ctx: &mut Ctx<'_>, section: &Section<'_>) -> Option<RestConfig> {
    section.deny_unknown(ctx, REST_KEYS, "in rest");
    let contacts = section
        .require(ctx, "contacts")
        .and_then(|_| section.section(ctx, "contacts"))
        .and_then(|s| {
            s.deny_unknown(ctx, ENDPOINT_KEYS, "");
            endpoint(ctx, &s)
        });
    let incremental = match section.get("changes") {
        Some(_) => section.section(ctx, "changes").map(|s| changes(ctx, &s)),
        None => Some(None),
    };
    let key = match section.get("key") {
        Some(n) => field(ctx, &section.child("key"), n),
        None => Some("id".to_owned()),
    };
    let account_link = section
        .get("account_link")
        .map(|n| field(ctx, &section.child("account_link"), n));
    let accounts = match section.get("accounts") {
        Some(_) => section.section(ctx, "accounts").map(|s| accounts(ctx, &s)),
        None => Some(None),
    };
    if let (Some(Some(_)), None) = (&accounts, &account_link) {
        let span = section.key_span("accounts").unwrap_or(section.span);
        ctx.error(
            span,
            &section.child("accounts"),
            "needs account_link: where a contact names its accounts",
        );
    }
    let auth = match section.get("auth") {
        Some(_) => section.section(ctx, "auth").and_then(|s| auth(ctx, &s)),
        None => Some(RestAuth::Bearer),
    };
    Some(RestConfig {
        contacts: contacts?,
        incremental: incremental?,
        key: key?,
        account_link: given(account_link)?,
        accounts: accounts?,
        auth: auth?,
    })
}

/// A dotted field path (`id`, `company.id`).
fn field(ctx: &mut Ctx<'_>, path: &str, node: &Node) -> Option<String> {
    let text = walk::non_empty_string(ctx, path, node)?;
    if text.split('.').any(str::is_empty) {
        ctx.error(
            node.span,
            path,
            format!(
                "expected a dotted field path such as id or company.id, found {}",
                quote(&text)
            ),
        );
        return None;
    }
    Some(text)
}

/// A path template relative to `url` (it may hold a query).
fn path_template(ctx: &mut Ctx<'_>, path: &str, node: &Node, holes: &[&str]) -> Option<String> {
    let text = walk::non_empty_string(ctx, path, node)?;
    if !text.starts_with('/') {
        ctx.error(
            node.span,
            path,
            format!(
                "expected a path starting with / (relative to url), found {}",
                quote(&text)
            ),
        );
        return None;
    }
    let mut rest = text.as_str();
    while let Some(open) = rest.find('{') {
        let Some(close) = rest[open..].find('}') else {
            ctx.error(node.span, path, "a { without its }");
            return None;
        };
        let hole = &rest[open + 1..open + close];
        if !holes.contains(&hole) {
            let allowed = if holes.is_empty() {
                "none here".to_owned()
            } else {
                holes
                    .iter()
                    .map(|h| format!("{{{h}}}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            ctx.error(
                node.span,
                path,
                format!("unknown placeholder {{{hole}}} (allowed: {allowed})"),
            );
            return None;
        }
        rest = &rest[open + close + 1..];
    }
    for hole in holes {
        if !text.contains(&format!("{{{hole}}}")) {
            ctx.error(
                node.span,
                path,
                format!("the template must hold {{{hole}}}"),
            );
            return None;
        }
    }
    Some(text)
}

/// A JSON pointer (`/data`, `/result/data`) or empty (the whole answer).
fn pointer(ctx: &mut Ctx<'_>, section: &Section<'_>, key: &str) -> Option<String> {
    let Some(node) = section.get(key) else {
        return Some(String::new());
    };
    let path = section.child(key);
    let text = walk::string(ctx, &path, node)?;
    if !(text.is_empty() || text.starts_with('/')) {
        ctx.error(
            node.span,
            &path,
            format!(
                "expected a JSON pointer such as /data (or \"\" for the whole answer), found {}",
                quote(&text)
            ),
        );
        return None;
    }
    Some(text)
}

fn endpoint(ctx: &mut Ctx<'_>, section: &Section<'_>) -> Option<Endpoint> {
    let path = section
        .require(ctx, "path")
        .and_then(|n| path_template(ctx, &section.child("path"), n, &[]));
    let records = pointer(ctx, section, "records");
    let paging = match section.get("paging") {
        Some(_) => section.section(ctx, "paging").and_then(|s| paging(ctx, &s)),
        None => Some(Paging::None),
    };
    Some(Endpoint {
        path: path?,
        records: records?,
        paging: paging?,
    })
}

fn paging(ctx: &mut Ctx<'_>, section: &Section<'_>) -> Option<Paging> {
    section.deny_unknown(ctx, PAGING_KEYS, "in paging");
    let kind = section.require(ctx, "type").and_then(|n| {
        let text = walk::string(ctx, &section.child("type"), n)?;
        if PAGING_TYPES.contains(&text.as_str()) {
            return Some(text);
        }
        ctx.error(
            n.span,
            &section.child("type"),
            format!(
                "unknown paging {} (known: {})",
                quote(&text),
                PAGING_TYPES.join(", ")
            ),
        );
        None
    })?;
    let name = |ctx: &mut Ctx<'_>, key: &str, default: &str| match section.get(key) {
        Some(n) => walk::non_empty_string(ctx, &section.child(key), n),
        None => Some(default.to_owned()),
    };
    let optional_pointer =
        |ctx: &mut Ctx<'_>, key: &str| section.get(key).map(|_| pointer(ctx, section, key));
    Some(match kind.as_str() {
        "none" => Paging::None,
        "offset" => Paging::Offset {
            offset_param: name(ctx, "offset_param", "offset")?,
            limit_param: name(ctx, "limit_param", "limit")?,
            total: given(optional_pointer(ctx, "total"))?,
        },
        "page" => Paging::Page {
            page_param: name(ctx, "page_param", "page")?,
            size_param: name(ctx, "size_param", "per_page")?,
            first: match section.get("first") {
                Some(n) => u64::from(walk::unsigned(ctx, &section.child("first"), n)?),
                None => 1,
            },
        },
        "cursor" => Paging::Cursor {
            param: name(ctx, "param", "cursor")?,
            next: section
                .require(ctx, "next")
                .and_then(|_| pointer(ctx, section, "next"))?,
            limit_param: given(
                section
                    .get("limit_param")
                    .map(|n| walk::non_empty_string(ctx, &section.child("limit_param"), n)),
            )?,
        },
        _ => Paging::NextLink {
            next: section
                .require(ctx, "next")
                .and_then(|_| pointer(ctx, section, "next"))?,
        },
    })
}

fn changes(ctx: &mut Ctx<'_>, section: &Section<'_>) -> Option<Incremental> {
    section.deny_unknown(ctx, CHANGES_KEYS, "in changes");
    let path = section
        .require(ctx, "path")
        .and_then(|n| path_template(ctx, &section.child("path"), n, &["since"]));
    let format = match section.get("format") {
        Some(n) => {
            let text = walk::non_empty_string(ctx, &section.child("format"), n)?;
            match text.as_str() {
                "rfc3339" => Some(TimeFormat::Rfc3339),
                "unix" => Some(TimeFormat::Unix),
                "unix_ms" => Some(TimeFormat::UnixMs),
                p if p.contains('%') => Some(TimeFormat::Pattern(p.to_owned())),
                _ => {
                    let message = format!("expected rfc3339, unix, unix_ms or a strftime pattern such as \"%Y-%m-%d %H:%M:%S\", found {}", quote(&text));
                    ctx.error(n.span, &section.child("format"), message);
                    None
                }
            }
        }
        None => Some(TimeFormat::Rfc3339),
    };
    Some(Incremental {
        path: path?,
        format: format?,
    })
}

fn accounts(ctx: &mut Ctx<'_>, section: &Section<'_>) -> Option<AccountsEndpoint> {
    section.deny_unknown(ctx, ACCOUNTS_KEYS, "in accounts");
    let node = section.require(ctx, "path")?;
    let by_id = node.as_str().is_some_and(|p| p.contains("{id}"));
    if by_id {
        for key in ["records", "paging", "key"] {
            if let Some(span) = section.key_span(key) {
                ctx.error(
                    span,
                    &section.child(key),
                    "only for a listing of accounts (a path without {id})",
                );
            }
        }
        let path = path_template(ctx, &section.child("path"), node, &["id"]);
        let record = pointer(ctx, section, "record");
        return Some(AccountsEndpoint::ById {
            path: path?,
            record: record?,
        });
    }
    if let Some(span) = section.key_span("record") {
        ctx.error(
            span,
            &section.child("record"),
            "only for a path with {id} (a listing's records are at records:)",
        );
    }
    let endpoint = endpoint(ctx, section);
    let key = match section.get("key") {
        Some(n) => field(ctx, &section.child("key"), n),
        None => Some("id".to_owned()),
    };
    Some(AccountsEndpoint::List {
        endpoint: endpoint?,
        key: key?,
    })
}

fn auth(ctx: &mut Ctx<'_>, section: &Section<'_>) -> Option<RestAuth> {
    section.deny_unknown(ctx, AUTH_KEYS, "in auth");
    let kind = section.require(ctx, "type").and_then(|n| {
        let text = walk::string(ctx, &section.child("type"), n)?;
        if AUTH_TYPES.contains(&text.as_str()) {
            return Some(text);
        }
        ctx.error(
            n.span,
            &section.child("type"),
            format!(
                "unknown auth {} (known: {})",
                quote(&text),
                AUTH_TYPES.join(", ")
            ),
        );
        None
    })?;
    let name = |ctx: &mut Ctx<'_>| {
        section
            .require(ctx, "name")
            .and_then(|n| walk::non_empty_string(ctx, &section.child("name"), n))
    };
    Some(match kind.as_str() {
        "none" => RestAuth::None,
        "bearer" => RestAuth::Bearer,
        "header" => RestAuth::Header(name(ctx)?),
        "query" => RestAuth::Query(name(ctx)?),
        _ => {
            let token_url = section
                .require(ctx, "token_url")
                .and_then(|n| walk::http_url(ctx, &section.child("token_url"), n));
            let client_id = section
                .require(ctx, "client_id")
                .and_then(|n| walk::non_empty_string(ctx, &section.child("client_id"), n));
            let client_secret = section
                .require(ctx, "client_secret")
                .and_then(|n| walk::secret(ctx, &section.child("client_secret"), n))
                .map(|s| Secret::new(s.expose()));
            let scope = given(
                section
                    .get("scope")
                    .map(|n| walk::non_empty_string(ctx, &section.child("scope"), n)),
            );
            RestAuth::OAuth2 {
                token_url: token_url?,
                client_id: client_id?,
                client_secret: client_secret?,
                scope: scope?,
            }
        }
    })
}
