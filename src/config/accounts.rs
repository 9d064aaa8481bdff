//! `accounts:`: accounts the config declares, `- {id, name, domains: [...]}`.
//! Their names win over the sources'; their domains join the sources'.

use std::collections::HashMap;

use super::model::AccountConfig;
use super::walk::{self, Ctx, Section};
use super::yaml::{quote, Node};
use super::Span;
use crate::model::{AccountId, Domain};

const ACCOUNT_KEYS: &[&str] = &["id", "name", "domains"];

/// The `accounts:` list. Every problem is reported with its position: a
/// duplicate id, a bad domain, a domain two entries claim.
pub(super) fn accounts(ctx: &mut Ctx<'_>, node: &Node) -> Vec<AccountConfig> {
    let Some(items) = walk::list(ctx, "accounts", node) else {
        return Vec::new();
    };
    let mut ids: HashMap<String, Span> = HashMap::new();
    let mut claimed: HashMap<Domain, (String, Span)> = HashMap::new();
    let mut out = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let path = format!("accounts[{i}]");
        let Some(section) = Section::new(ctx, &path, item) else {
            continue;
        };
        section.deny_unknown(ctx, ACCOUNT_KEYS, "for an account");
        let id = section
            .require(ctx, "id")
            .and_then(|n| account_id(ctx, &section.child("id"), n, &mut ids));
        let name = section
            .require(ctx, "name")
            .and_then(|n| walk::non_empty_string(ctx, &section.child("name"), n));
        let domains = section
            .get("domains")
            .map(|n| domains(ctx, &section.child("domains"), n))
            .unwrap_or_default();
        let (Some(id), Some(name)) = (id, name) else {
            continue;
        };
        for (domain, span) in &domains {
            match claimed.get(domain) {
                Some((first, at)) => ctx.error(
                    *span,
                    &section.child("domains"),
                    format!(
                        "domain {} is already account {}'s (line {}); a domain belongs to one account",
                        quote(domain.as_str()),
                        quote(first),
                        at.line
                    ),
                ),
                None => {
                    claimed.insert(domain.clone(), (id.clone(), *span));
                }
            }
        }
        out.push(AccountConfig {
            id: AccountId(id),
            name,
            domains: domains.into_iter().map(|(d, _)| d).collect(),
            span: section.span,
        });
    }
    out
}

/// A non-empty account id, unique in the list.
fn account_id(
    ctx: &mut Ctx<'_>,
    path: &str,
    node: &Node,
    ids: &mut HashMap<String, Span>,
) -> Option<String> {
    let id = walk::scalar_text(ctx, path, node)?;
    let id = id.trim().to_owned();
    if id.is_empty() {
        ctx.error(node.span, path, "must not be empty");
        return None;
    }
    if let Some(first) = ids.get(&id) {
        let message = format!(
            "duplicate account id {} (first at line {})",
            quote(&id),
            first.line
        );
        ctx.error(node.span, path, message);
        return None;
    }
    ids.insert(id.clone(), node.span);
    Some(id)
}

/// The `domains` list: each a valid e-mail domain, lower-cased, listed once.
fn domains(ctx: &mut Ctx<'_>, path: &str, node: &Node) -> Vec<(Domain, Span)> {
    let Some(items) = walk::list(ctx, path, node) else {
        return Vec::new();
    };
    let mut out: Vec<(Domain, Span)> = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let item_path = format!("{path}[{i}]");
        let Some(text) = walk::string(ctx, &item_path, item) else {
            continue;
        };
        match Domain::parse(&text) {
            Ok(domain) if out.iter().any(|(d, _)| *d == domain) => ctx.error(
                item.span,
                &item_path,
                format!("domain {} is listed twice", quote(domain.as_str())),
            ),
            Ok(domain) => out.push((domain, item.span)),
            Err(e) => ctx.error(item.span, &item_path, e),
        }
    }
    out
}
