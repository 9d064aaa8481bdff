//! Converting between rows and domain values.

use rusqlite::Row;

use crate::model::{
    Attributes, ContactFields, ContactRecord, DisabledBy, Domain, Email, ExternalUser, Flags,
    Login, Origin, Status, UserId,
};
use crate::store::{DriverError, StoreError};

/// Columns of `users` in the order [`user_from_row`] reads them.
pub const USER_COLUMNS: &str = "id, login, title, description, email, locale, status, \
     disabled_by, disabled_at, origin, account_contacts, account_tickets, external_comments, \
     grants, attributes, created_at, updated_at, admin_fields";

/// How many columns [`USER_COLUMNS`] names.
pub const USER_COLUMN_COUNT: usize = 18;

/// Columns of `contacts` (record part) in the order [`contact_from_row`] reads them, from `offset`.
pub const CONTACT_COLUMNS: &str = "contact_id, name, email, phone, account_id, account_name, \
     login, description, locale, account_contacts, account_tickets, external_comments, grants, attributes, \
     fingerprint, account_domains";

fn corrupt(what: &'static str, detail: impl ToString) -> StoreError {
    StoreError::Corrupt {
        what,
        detail: detail.to_string(),
    }
}

/// Grants as stored: a JSON array.
pub fn grants_json<'a>(g: impl Iterator<Item = &'a str>) -> String {
    serde_json::to_string(&g.collect::<Vec<_>>()).unwrap_or_else(|_| "[]".to_owned())
}

/// Attributes as stored: a JSON object, from pairs already in key order.
pub fn attributes_json<'a>(a: impl Iterator<Item = (&'a str, &'a str)>) -> String {
    let pairs: Vec<(&str, &str)> = a.collect();
    serde_json::to_string(&PairsJson(&pairs)).unwrap_or_else(|_| "{}".to_owned())
}

/// Key/value pairs (already in key order) serialized as a JSON object.
pub struct PairsJson<'a>(pub &'a [(&'a str, &'a str)]);

impl serde::Serialize for PairsJson<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_map(self.0.iter().map(|(k, v)| (k, v)))
    }
}

fn parse_grants(s: &str) -> Result<Vec<String>, StoreError> {
    serde_json::from_str(s).map_err(|e| corrupt("grants", e))
}

fn parse_attributes(s: &str) -> Result<Attributes, StoreError> {
    serde_json::from_str(s).map_err(|e| corrupt("attributes", e))
}

fn sql(e: rusqlite::Error) -> StoreError {
    StoreError::Query {
        what: "reading a row",
        source: DriverError::new(e),
    }
}

/// A user row (see [`USER_COLUMNS`]) plus its two timestamps.
pub fn user_from_row(row: &Row<'_>) -> Result<(ExternalUser, i64, i64), StoreError> {
    let get_s = |i: usize| row.get::<_, String>(i).map_err(sql);
    let get_o = |i: usize| row.get::<_, Option<String>>(i).map_err(sql);
    let get_b = |i: usize| row.get::<_, bool>(i).map_err(sql);
    let email = match get_o(4)? {
        Some(e) => Some(Email::parse(&e).map_err(|e| corrupt("user e-mail", e))?),
        None => None,
    };
    let user = ExternalUser {
        id: UserId(row.get(0).map_err(sql)?),
        login: Login::from_trusted(get_s(1)?),
        title: get_s(2)?,
        description: get_o(3)?,
        email,
        locale: get_s(5)?,
        status: get_s(6)?
            .parse::<Status>()
            .map_err(|e| corrupt("status", e))?,
        disabled_by: get_o(7)?
            .map(|s| s.parse::<DisabledBy>())
            .transpose()
            .map_err(|e| corrupt("disabled_by", e))?,
        disabled_at: row.get(8).map_err(sql)?,
        origin: get_s(9)?
            .parse::<Origin>()
            .map_err(|e| corrupt("origin", e))?,
        flags: Flags {
            account_contacts: get_b(10)?,
            account_tickets: get_b(11)?,
            external_comments: get_b(12)?,
        },
        grants: parse_grants(&get_s(13)?)?,
        attributes: parse_attributes(&get_s(14)?)?,
        admin_fields: match get_o(17)? {
            Some(text) => serde_json::from_str(&text).map_err(|e| corrupt("admin_fields", e))?,
            None => Default::default(),
        },
    };
    Ok((user, row.get(15).map_err(sql)?, row.get(16).map_err(sql)?))
}

/// A contact record from [`CONTACT_COLUMNS`] starting at column `at`.
pub fn contact_from_row(row: &Row<'_>, at: usize) -> Result<ContactRecord, StoreError> {
    let get_s = |i: usize| row.get::<_, String>(at + i).map_err(sql);
    let get_o = |i: usize| row.get::<_, Option<String>>(at + i).map_err(sql);
    let get_f = |i: usize| row.get::<_, Option<bool>>(at + i).map_err(sql);
    Ok(ContactRecord::new(ContactFields {
        contact_id: get_s(0)?,
        name: get_s(1)?,
        email: Email::parse(&get_s(2)?).map_err(|e| corrupt("contact e-mail", e))?,
        phone: get_o(3)?,
        account_id: get_o(4)?,
        account_name: get_o(5)?,
        account_domains: get_o(15)?
            .map(|d| {
                d.split('|')
                    .map(|d| Domain::from_trusted(d.to_owned()))
                    .collect()
            })
            .unwrap_or_default(),
        login: get_o(6)?.map(Login::from_trusted),
        description: get_o(7)?,
        locale: get_o(8)?,
        account_contacts: get_f(9)?,
        account_tickets: get_f(10)?,
        external_comments: get_f(11)?,
        grants: parse_grants(&get_s(12)?)?,
        attributes: parse_attributes(&get_s(13)?)?,
        fingerprint: row.get::<_, i64>(at + 14).map_err(sql)? as u64,
    }))
}

/// Milliseconds since the epoch as RFC 3339 (UTC).
pub fn rfc3339(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_default()
}

/// The search text (see [`crate::store::search`]) of a row whose columns 1–5
/// are `login, title, email, description, attributes`.
pub fn search_text_of_row(row: &Row<'_>) -> Result<String, StoreError> {
    let login = row.get::<_, String>(1).map_err(sql)?;
    let title = row.get::<_, String>(2).map_err(sql)?;
    let email = row.get::<_, Option<String>>(3).map_err(sql)?;
    let description = row.get::<_, Option<String>>(4).map_err(sql)?;
    let attributes = parse_attributes(&row.get::<_, String>(5).map_err(sql)?)?;
    Ok(crate::store::search::search_text(
        &login,
        &title,
        email.as_deref(),
        description.as_deref(),
        attributes.iter().map(|(_, v)| v.as_str()),
    ))
}
