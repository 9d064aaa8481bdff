//! Merging the contacts of one user into the user's fields, independent of order.

use serde_json::json;

use super::FieldChange;
use crate::model::{Attributes, ContactRecord, Email, ExternalUser, Flags, Origin};

/// The user fields an admin may set, as SPEC §1 names them (one attribute is
/// `attributes.KEY`, see [`attribute_field`]).
pub const ADMIN_FIELDS: [&str; 9] = [
    "title",
    "description",
    "email",
    "locale",
    "account_contacts",
    "account_tickets",
    "external_comments",
    "grants",
    "attributes",
];

/// The field name of one attribute, as [`gives`] and
/// [`ExternalUser::admin_fields`] name it.
pub fn attribute_field(key: &str) -> String {
    format!("attributes.{key}")
}

/// Whether `record` gives the user field `field` (see [`ADMIN_FIELDS`]): a
/// contact always gives a title and an e-mail; the other fields only when
/// its source said something (a value, a flag, at least one grant, that
/// attribute). A field a linked contact gives belongs to that contact's
/// source: the next sync sets it from the contact again.
pub fn gives(record: &ContactRecord, field: &str) -> bool {
    match field {
        "title" | "email" => true,
        "description" => record.description().is_some(),
        "locale" => record.locale().is_some(),
        "account_contacts" => record.account_contacts.is_some(),
        "account_tickets" => record.account_tickets.is_some(),
        "external_comments" => record.external_comments.is_some(),
        "grants" => record.grants().next().is_some(),
        "attributes" => record.attributes().next().is_some(),
        other => match other.strip_prefix("attributes.") {
            Some(key) => record.attributes().any(|(k, _)| k == key),
            None => false,
        },
    }
}

/// The fields of an external user that sources decide.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserFields {
    /// Display name.
    pub title: String,
    /// Free note.
    pub description: Option<String>,
    /// Notification address.
    pub email: Email,
    /// Language of e-mails.
    pub locale: String,
    /// Access flags.
    pub flags: Flags,
    /// Grants, sorted and unique.
    pub grants: Vec<String>,
    /// Custom attributes.
    pub attributes: Attributes,
}

/// Merges a user's contacts, given as (source rank, record) in any order.
///
/// The record with the smallest (source rank, contact id) supplies the title and
/// e-mail; description and locale come from the first record in that order that
/// has one; a flag is true only if every record says so (least privilege); grants
/// are the union; attributes merge with the smallest record winning a clash.
/// Returns `None` for no contacts.
pub fn merge_fields(
    contacts: &[(usize, &ContactRecord)],
    default_locale: &str,
) -> Option<UserFields> {
    let mut sorted: Vec<&(usize, &ContactRecord)> = contacts.iter().collect();
    sorted.sort_by(|a, b| (a.0, a.1.contact_id()).cmp(&(b.0, b.1.contact_id())));
    let primary = sorted.first()?.1;
    let first_some = |get: fn(&ContactRecord) -> Option<&str>| {
        sorted.iter().find_map(|(_, r)| get(r).map(str::to_owned))
    };
    let all =
        |get: fn(&ContactRecord) -> Option<bool>| sorted.iter().all(|(_, r)| get(r) == Some(true));
    let mut grants: Vec<String> = sorted
        .iter()
        .flat_map(|(_, r)| r.grants().map(str::to_owned))
        .collect();
    grants.sort();
    grants.dedup();
    let mut attributes = Attributes::new();
    for (_, r) in &sorted {
        for (k, v) in r.attributes() {
            attributes.insert_if_absent(k, v);
        }
    }
    Some(UserFields {
        title: primary.name().to_owned(),
        description: first_some(ContactRecord::description),
        email: primary.email(),
        locale: first_some(ContactRecord::locale).unwrap_or_else(|| default_locale.to_owned()),
        flags: Flags {
            account_contacts: all(|r| r.account_contacts),
            account_tickets: all(|r| r.account_tickets),
            external_comments: all(|r| r.external_comments),
        },
        grants,
        attributes,
    })
}

impl UserFields {
    /// Puts back the fields of `user` that its linked `contacts` do not give
    /// and that are not theirs to reset: on a `sync` user those an admin set
    /// ([`ExternalUser::admin_fields`]), on a user of another origin (made by
    /// an admin or a registration) every one. What a contact gives always
    /// wins. Keeps a merge idempotent: kept values are the stored ones.
    pub fn keep_admin_fields(&mut self, user: &ExternalUser, contacts: &[&ContactRecord]) {
        let keeps = |field: &str| {
            (user.origin != Origin::Sync || user.admin_fields.contains(field))
                && !contacts.iter().any(|r| gives(r, field))
        };
        if keeps("description") {
            self.description = user.description.clone();
        }
        if keeps("locale") {
            self.locale = user.locale.clone();
        }
        if keeps("account_contacts") {
            self.flags.account_contacts = user.flags.account_contacts;
        }
        if keeps("account_tickets") {
            self.flags.account_tickets = user.flags.account_tickets;
        }
        if keeps("external_comments") {
            self.flags.external_comments = user.flags.external_comments;
        }
        if keeps("grants") {
            self.grants = user.grants.clone();
        }
        for (k, v) in user.attributes.iter() {
            if keeps(&attribute_field(k)) {
                self.attributes.insert(k.clone(), v.clone());
            }
        }
    }

    /// The fields of a stored user, for comparison.
    pub fn of(user: &ExternalUser) -> Option<UserFields> {
        Some(UserFields {
            title: user.title.clone(),
            description: user.description.clone(),
            email: user.email.clone()?,
            locale: user.locale.clone(),
            flags: user.flags,
            grants: user.grants.clone(),
            attributes: user.attributes.clone(),
        })
    }

    /// What changes from `user` to these fields, field by field. E-mail compares
    /// case-insensitively: a change of case alone is not a change.
    pub fn diff_from(&self, user: &ExternalUser) -> Vec<FieldChange> {
        let mut out = Vec::new();
        let mut check = |field: &'static str, old: serde_json::Value, new: serde_json::Value| {
            if old != new {
                out.push(FieldChange {
                    field: field.into(),
                    old,
                    new,
                });
            }
        };
        check("title", json!(user.title), json!(self.title));
        check(
            "description",
            json!(user.description),
            json!(self.description),
        );
        if user.email.as_ref() != Some(&self.email) {
            check(
                "email",
                json!(user.email.as_ref().map(Email::as_str)),
                json!(self.email.as_str()),
            );
        }
        check("locale", json!(user.locale), json!(self.locale));
        check(
            "account_contacts",
            json!(user.flags.account_contacts),
            json!(self.flags.account_contacts),
        );
        check(
            "account_tickets",
            json!(user.flags.account_tickets),
            json!(self.flags.account_tickets),
        );
        check(
            "external_comments",
            json!(user.flags.external_comments),
            json!(self.flags.external_comments),
        );
        check("grants", json!(user.grants), json!(self.grants));
        check("attributes", json!(user.attributes), json!(self.attributes));
        out
    }
}
