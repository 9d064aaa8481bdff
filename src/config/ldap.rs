//! `type: ldap`: builds [`liaison_plugin_ldap::LdapConfig`], every value
//! checked when the config loads (the URL, DNs, the filter with the position
//! of its first problem, the CA file) and every problem reported at its key.

use liaison_plugin_ldap::{
    dn::Dn, Bind, BindPassword, ChangeDetection, Filter, GroupsConfig, LdapConfig, LdapUrl, Scope,
    DEFAULT_ANCHOR, DEFAULT_CONNECT_TIMEOUT, DEFAULT_FILTER, DEFAULT_GROUP_FILTER,
    DEFAULT_MEMBER_ATTRIBUTE, DEFAULT_PAGE_SIZE, DEFAULT_TIMEOUT, MAX_PAGE_SIZE,
};

use super::walk::{self, Ctx, Section};
use super::yaml::{quote, Node};

/// Keys of a `type: ldap` source.
pub(super) const LDAP_KEYS: &[&str] = &[
    "url",
    "starttls",
    "ca_file",
    "bind_dn",
    "bind_password",
    "base_dn",
    "scope",
    "filter",
    "attributes",
    "anchor",
    "page_size",
    "connect_timeout",
    "timeout",
    "groups",
    "change_detection",
];

/// Keys of an ldap source's `groups:`.
const GROUP_KEYS: &[&str] = &[
    "base_dn",
    "scope",
    "filter",
    "member_attribute",
    "member_of",
];

/// Reads the ldap keys of `section` (the source `name`).
pub(super) fn ldap(
    ctx: &mut Ctx<'_>,
    section: &Section<'_>,
    name: Option<&str>,
) -> Option<LdapConfig> {
    let url = section
        .require(ctx, "url")
        .and_then(|n| url(ctx, &section.child("url"), n));
    let starttls = section
        .get("starttls")
        .and_then(|n| walk::boolean(ctx, &section.child("starttls"), n))
        .unwrap_or(false);
    let tls = url.as_ref().map(|u| u.tls);
    if starttls && tls == Some(true) {
        if let Some(n) = section.get("starttls") {
            ctx.error(
                n.span,
                &section.child("starttls"),
                "only for ldap:// URLs (ldaps:// is TLS from the start)",
            );
        }
    }
    let ca_file = match section.get("ca_file") {
        Some(n) => ca_file(
            ctx,
            &section.child("ca_file"),
            n,
            tls.map(|t| t || starttls),
        ),
        None => Some(None),
    };
    let bind = bind(ctx, section);
    let base_dn = section
        .require(ctx, "base_dn")
        .and_then(|n| dn(ctx, &section.child("base_dn"), n));
    let scope = match section.get("scope") {
        Some(n) => scope(ctx, &section.child("scope"), n),
        None => Some(Scope::Sub),
    };
    let filter = match section.get("filter") {
        Some(n) => filter(ctx, &section.child("filter"), n),
        None => Filter::parse(DEFAULT_FILTER).ok(),
    };
    let attributes = match section.get("attributes") {
        Some(n) => attributes(ctx, &section.child("attributes"), n).map(Some),
        None => Some(None),
    };
    let anchor = match section.get("anchor") {
        Some(n) => attribute(ctx, &section.child("anchor"), n),
        None => Some(DEFAULT_ANCHOR.to_owned()),
    };
    let page_size = match section.get("page_size") {
        Some(n) => page_size(ctx, &section.child("page_size"), n),
        None => Some(DEFAULT_PAGE_SIZE),
    };
    let duration = |ctx: &mut Ctx<'_>, key: &str, default| match section.get(key) {
        Some(n) => walk::positive_duration(ctx, &section.child(key), n),
        None => Some(default),
    };
    let connect_timeout = duration(ctx, "connect_timeout", DEFAULT_CONNECT_TIMEOUT);
    let timeout = duration(ctx, "timeout", DEFAULT_TIMEOUT);
    let groups = match section.get("groups") {
        Some(_) => groups(ctx, section).map(Some),
        None => Some(None),
    };
    let change_detection = match section.get("change_detection") {
        Some(n) => change_detection(
            ctx,
            &section.child("change_detection"),
            n,
            anchor.as_deref(),
        ),
        None => Some(ChangeDetection::Auto),
    };
    Some(LdapConfig {
        source: name?.to_owned(),
        url: url?,
        starttls,
        ca_file: ca_file?,
        bind: bind?,
        base_dn: base_dn?,
        scope: scope?,
        filter: filter?,
        attributes: attributes?,
        anchor: anchor?,
        page_size: page_size?,
        connect_timeout: connect_timeout?,
        timeout: timeout?,
        groups: groups?,
        change_detection: change_detection?,
    })
}

fn url(ctx: &mut Ctx<'_>, path: &str, node: &Node) -> Option<LdapUrl> {
    let text = walk::non_empty_string(ctx, path, node)?;
    match LdapUrl::parse(&text) {
        Ok(url) => Some(url),
        Err(why) => {
            ctx.error(node.span, path, format!("{why}, found {}", quote(&text)));
            None
        }
    }
}

/// `ca_file`: a readable file of PEM certificates, for a TLS connection.
fn ca_file(
    ctx: &mut Ctx<'_>,
    path: &str,
    node: &Node,
    tls: Option<bool>,
) -> Option<Option<std::path::PathBuf>> {
    let file = walk::path(ctx, path, node)?;
    if tls == Some(false) {
        ctx.error(
            node.span,
            path,
            "only used over TLS: an ldaps:// URL or starttls: true",
        );
        return None;
    }
    match liaison_plugin_ldap::check_ca_file(&file) {
        Ok(_) => Some(Some(file)),
        Err(why) => {
            ctx.error(node.span, path, why);
            None
        }
    }
}

/// `bind_dn` and `bind_password`, both or neither (anonymous).
fn bind(ctx: &mut Ctx<'_>, section: &Section<'_>) -> Option<Option<Bind>> {
    let dn_node = section.get("bind_dn");
    let password_node = section.get("bind_password");
    let dn = dn_node.and_then(|n| self::dn(ctx, &section.child("bind_dn"), n));
    // Resolved like every secret; messages name the reference, never the value.
    let password =
        password_node.and_then(|n| walk::secret(ctx, &section.child("bind_password"), n));
    match (dn_node, password_node) {
        (None, None) => Some(None),
        (Some(n), None) => {
            ctx.error(
                n.span,
                &section.child("bind_dn"),
                "needs bind_password (for example ${env:LDAP_PASSWORD})",
            );
            None
        }
        (None, Some(n)) => {
            ctx.error(
                n.span,
                &section.child("bind_password"),
                "needs bind_dn (the DN to bind as)",
            );
            None
        }
        (Some(_), Some(_)) => Some(Some(Bind {
            dn: dn?,
            password: BindPassword::new(password?.expose()),
        })),
    }
}

/// A non-empty DN that parses.
fn dn(ctx: &mut Ctx<'_>, path: &str, node: &Node) -> Option<String> {
    let text = walk::non_empty_string(ctx, path, node)?;
    match Dn::parse(&text) {
        Ok(_) => Some(text.trim().to_owned()),
        Err(why) => {
            ctx.error(
                node.span,
                path,
                format!("not a DN ({why}): {}", quote(&text)),
            );
            None
        }
    }
}

fn scope(ctx: &mut Ctx<'_>, path: &str, node: &Node) -> Option<Scope> {
    let text = walk::string(ctx, path, node)?;
    let scope = Scope::parse(&text);
    if scope.is_none() {
        let hint = match text.to_ascii_lowercase().as_str() {
            "subtree" | "sub" => "; did you mean \"sub\"?",
            "onelevel" | "one" | "single" => "; did you mean \"one\"?",
            "base" | "baseobject" => "; did you mean \"base\"?",
            _ => "",
        };
        let message = format!("expected sub, one or base, found {}{hint}", quote(&text));
        ctx.error(node.span, path, message);
    }
    scope
}

/// A filter, checked (RFC 4515); a problem is told with its character.
fn filter(ctx: &mut Ctx<'_>, path: &str, node: &Node) -> Option<Filter> {
    let text = walk::non_empty_string(ctx, path, node)?;
    match Filter::parse(&text) {
        Ok(filter) => Some(filter),
        Err(e) => {
            let at =
                e.at.map(|at| format!(" at character {at}"))
                    .unwrap_or_default();
            let message = format!("invalid LDAP filter {}: {}{at}", quote(&text), e.message);
            ctx.error(node.span, path, message);
            None
        }
    }
}

/// `attributes`: a list of attribute names, `*` (all user attributes) or `+`.
fn attributes(ctx: &mut Ctx<'_>, path: &str, node: &Node) -> Option<Vec<String>> {
    let items = walk::list(ctx, path, node)?;
    let mut names: Vec<String> = Vec::with_capacity(items.len());
    let mut ok = true;
    for (i, item) in items.iter().enumerate() {
        let item_path = format!("{path}[{i}]");
        let name = match item.as_str() {
            Some("*") | Some("+") => item.as_str().map(str::to_owned),
            _ => attribute(ctx, &item_path, item),
        };
        match name {
            Some(name) if names.iter().any(|n| n.eq_ignore_ascii_case(&name)) => {
                ctx.error(
                    item.span,
                    &item_path,
                    format!("duplicate attribute {}", quote(&name)),
                );
                ok = false;
            }
            Some(name) => names.push(name),
            None => ok = false,
        }
    }
    if items.is_empty() {
        ctx.error(
            node.span,
            path,
            "the list is empty (leave it out for all user attributes)",
        );
        ok = false;
    }
    ok.then_some(names)
}

/// An attribute name (`mail`, `objectGUID`, `2.5.4.3`, `cn;lang-cs`).
fn attribute(ctx: &mut Ctx<'_>, path: &str, node: &Node) -> Option<String> {
    let text = walk::non_empty_string(ctx, path, node)?;
    let (base, options) = text.split_once(';').unwrap_or((&text, ""));
    let descr = base.starts_with(|c: char| c.is_ascii_alphabetic())
        && base.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
    let oid = !base.is_empty()
        && base
            .split('.')
            .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()));
    let options_ok = options.is_empty()
        || options
            .split(';')
            .all(|o| !o.is_empty() && o.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'));
    if (descr || oid) && options_ok {
        return Some(text);
    }
    ctx.error(
        node.span,
        path,
        format!(
            "{} is not an attribute name (letters, digits and -, starting with a letter, or an OID)",
            quote(&text)
        ),
    );
    None
}

fn page_size(ctx: &mut Ctx<'_>, path: &str, node: &Node) -> Option<u32> {
    let n = walk::unsigned(ctx, path, node)?;
    if (1..=MAX_PAGE_SIZE).contains(&n) {
        return Some(n);
    }
    let message = format!(
        "expected a number of entries from 1 to {MAX_PAGE_SIZE} (default {DEFAULT_PAGE_SIZE}), found {n}"
    );
    ctx.error(node.span, path, message);
    None
}

fn change_detection(
    ctx: &mut Ctx<'_>,
    path: &str,
    node: &Node,
    anchor: Option<&str>,
) -> Option<ChangeDetection> {
    let text = walk::string(ctx, path, node)?;
    let Some(detection) = ChangeDetection::parse(&text) else {
        let message = format!(
            "expected auto, sync, modify_timestamp or none, found {}",
            quote(&text)
        );
        ctx.error(node.span, path, message);
        return None;
    };
    if detection == ChangeDetection::Sync
        && anchor.is_some_and(|a| !a.eq_ignore_ascii_case("entryUUID"))
    {
        ctx.error(
            node.span,
            path,
            "sync (RFC 4533) names deleted entries by entryUUID, so it needs anchor: entryUUID",
        );
        return None;
    }
    Some(detection)
}

/// `groups:`: where groups are and how their members are listed.
fn groups(ctx: &mut Ctx<'_>, section: &Section<'_>) -> Option<GroupsConfig> {
    let map = section.section(ctx, "groups")?;
    map.deny_unknown(ctx, GROUP_KEYS, "in groups");
    let base_dn = map
        .require(ctx, "base_dn")
        .and_then(|n| dn(ctx, &map.child("base_dn"), n));
    let scope = match map.get("scope") {
        Some(n) => scope(ctx, &map.child("scope"), n),
        None => Some(Scope::Sub),
    };
    let filter = match map.get("filter") {
        Some(n) => filter(ctx, &map.child("filter"), n),
        None => Filter::parse(DEFAULT_GROUP_FILTER).ok(),
    };
    let member_attribute = match map.get("member_attribute") {
        Some(n) => attribute(ctx, &map.child("member_attribute"), n),
        None => Some(DEFAULT_MEMBER_ATTRIBUTE.to_owned()),
    };
    let member_of = map
        .get("member_of")
        .and_then(|n| walk::boolean(ctx, &map.child("member_of"), n))
        .unwrap_or(false);
    Some(GroupsConfig {
        base_dn: base_dn?,
        scope: scope?,
        filter: filter?,
        member_attribute: member_attribute?,
        member_of,
    })
}
