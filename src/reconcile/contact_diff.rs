//! What changed in a linked contact's own fields (SPEC §3: journaled as
//! `contact SOURCE:ID FIELD`, counted as an update of its user).

use serde_json::{json, Value};

use super::FieldChange;
use crate::model::{ContactFields, ContactRecord, Login};

/// Each field of contact `new` that differs from `old`, as old → new, named
/// `contact SOURCE:ID FIELD`. Only called for contacts whose content changed.
pub fn contact_changes(source: &str, old: &ContactRecord, new: &ContactRecord) -> Vec<FieldChange> {
    let (old, new) = (old.to_fields(), new.to_fields());
    let prefix = format!("contact {source}:{}", new.contact_id);
    let mut out = Vec::new();
    for (field, get) in FIELDS {
        let (before, after) = (get(&old), get(&new));
        if before != after {
            out.push(FieldChange {
                field: format!("{prefix} {field}").into(),
                old: before,
                new: after,
            });
        }
    }
    out
}

type Getter = fn(&ContactFields) -> Value;

/// The contact fields a person sees, in the order the journal lists them.
const FIELDS: [(&str, Getter); 14] = [
    ("name", |c| json!(c.name)),
    ("email", |c| json!(c.email.as_str())),
    ("phone", |c| json!(c.phone)),
    ("account_id", |c| json!(c.account_id)),
    ("account_name", |c| json!(c.account_name)),
    ("account_domains", |c| json!(c.account_domains)),
    ("login", |c| json!(c.login.as_ref().map(Login::as_str))),
    ("description", |c| json!(c.description)),
    ("locale", |c| json!(c.locale)),
    ("account_contacts", |c| json!(c.account_contacts)),
    ("account_tickets", |c| json!(c.account_tickets)),
    ("external_comments", |c| json!(c.external_comments)),
    ("grants", |c| json!(c.grants)),
    ("attributes", |c| json!(c.attributes)),
];

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::model::{Attributes, Email};

    fn contact(phone: Option<&str>, grants: &[&str]) -> ContactRecord {
        ContactRecord::new(ContactFields {
            contact_id: "c-7".into(),
            name: "Ann".into(),
            email: Email::parse("ann@x.example").unwrap(),
            phone: phone.map(Into::into),
            account_id: None,
            account_name: None,
            account_domains: Vec::new(),
            login: None,
            description: None,
            locale: None,
            account_contacts: None,
            account_tickets: Some(true),
            external_comments: None,
            grants: grants.iter().map(|g| g.to_string()).collect(),
            attributes: Attributes::new(),
            fingerprint: 0,
        })
    }

    #[test]
    fn names_each_changed_field_of_the_contact_and_nothing_else() {
        let old = contact(Some("111"), &["a"]);
        let new = contact(None, &["a", "b"]);
        let changes = contact_changes("partners", &old, &new);
        let got: Vec<(&str, String, String)> = changes
            .iter()
            .map(|c| (c.field.as_ref(), c.old.to_string(), c.new.to_string()))
            .collect();
        assert_eq!(
            got,
            [
                (
                    "contact partners:c-7 phone",
                    "\"111\"".into(),
                    "null".into()
                ),
                (
                    "contact partners:c-7 grants",
                    "[\"a\"]".into(),
                    "[\"a\",\"b\"]".into()
                ),
            ]
        );
        assert!(contact_changes("partners", &old, &old).is_empty());
    }
}
