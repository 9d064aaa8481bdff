//! A contact being assembled from field texts, and the checks that turn it into
//! a [`Mapped`] result. Both mapping paths (standard layout and templates) end here,
//! so the rules for empty values, flags, grants and required fields are one code.

use std::borrow::Cow;

use super::fields::{parse_flag, split_grants, Field, Target, FIELD_COUNT};
use super::Mapped;
use crate::model::{parse_domain_list, Attributes, ContactParts, ContactRecord, Email, Login};

/// Field texts collected for one record: trimmed, empty ones left out.
#[derive(Debug, Default)]
pub(crate) struct Draft<'a> {
    values: [Option<Cow<'a, str>>; FIELD_COUNT],
    grants: Vec<String>,
    attributes: Attributes,
    /// Required fields the source cannot give at all, with the reason.
    unavailable: Vec<(Field, String)>,
}

impl<'a> Draft<'a> {
    /// Sets a target from its text. Empty (after trimming) means "not said";
    /// grants are split at `|` and added.
    pub(crate) fn set(&mut self, target: &Target, text: Cow<'a, str>) {
        match target {
            Target::Field(field) => self.set_field(*field, text),
            Target::Attribute(key) => self.set_attribute(key, text),
        }
    }

    /// Sets a standard field from its text.
    pub(crate) fn set_field(&mut self, field: Field, text: Cow<'a, str>) {
        let Some(text) = trimmed(text) else { return };
        if field == Field::Grants {
            self.grants.extend(split_grants(&text).map(str::to_owned));
        } else {
            self.values[field.index()] = Some(text);
        }
    }

    /// Sets custom attribute `key`; an empty value leaves it absent.
    pub(crate) fn set_attribute(&mut self, key: &str, text: Cow<'a, str>) {
        if let Some(text) = trimmed(text) {
            self.attributes.insert(key.to_owned(), text.into_owned());
        }
    }

    /// Adds grants given as a list (each item trimmed, empty ones dropped).
    pub(crate) fn add_grants(&mut self, items: impl IntoIterator<Item = String>) {
        for item in items {
            let item = item.trim();
            if !item.is_empty() {
                self.grants.push(item.to_owned());
            }
        }
    }

    /// Records that `field` cannot be given at all (e.g. the header has no such
    /// column), so that a missing required field is reported with that reason.
    pub(crate) fn unavailable(&mut self, field: Field, why: String) {
        self.unavailable.push((field, why));
    }

    /// The contact id, when it is set and is one line (an id holding a line
    /// break names no contact).
    pub(crate) fn contact_id(&self) -> Option<String> {
        self.get(Field::ContactId)
            .filter(|id| !spans_lines(id))
            .map(str::to_owned)
    }

    fn get(&self, field: Field) -> Option<&str> {
        self.values[field.index()].as_deref()
    }

    /// Checks the draft and builds the contact: `portal_access` saying no skips it;
    /// every problem (a required field empty, a bad e-mail, login or flag) is
    /// reported together in one [`Mapped::Invalid`].
    pub(crate) fn finish(self) -> Mapped {
        let mut problems = Vec::new();
        if let Some(portal) = self.get(Field::PortalAccess) {
            match parse_flag(portal) {
                Some(false) => return Mapped::Skipped,
                Some(true) => {}
                None => problems.push(bad_flag(Field::PortalAccess, portal)),
            }
        }
        let mut missing = Vec::new();
        for field in Field::REQUIRED {
            if self.get(field).is_some() {
                continue;
            }
            match self.unavailable.iter().find(|(f, _)| *f == field) {
                Some((_, why)) => problems.push(why.clone()),
                None => missing.push(field.name()),
            }
        }
        match missing.as_slice() {
            [] => {}
            [one] => problems.push(format!("required field {one} is empty")),
            many => problems.push(format!("required fields {} are empty", many.join(", "))),
        }
        // An id is one line: a line break in it means rows were merged (two
        // stray quotes), not an id. (A line break fails the e-mail check too.)
        if self.get(Field::ContactId).is_some_and(spans_lines) {
            problems
                .push("contact_id holds a line break (rows merged by a stray quote?)".to_owned());
        }
        let email = self.get(Field::Email).map(Email::check).transpose();
        let email = email.unwrap_or_else(|e| {
            problems.push(format!("email: {e}"));
            None
        });
        let login = self.get(Field::Login).map(Login::parse).transpose();
        let login = login.unwrap_or_else(|e| {
            problems.push(format!("login: {e}"));
            None
        });
        let account_domains = self.account_domains().unwrap_or_else(|e| {
            problems.push(e);
            None
        });
        let mut flag = |field: Field| {
            let text = self.get(field)?;
            let value = parse_flag(text);
            if value.is_none() {
                problems.push(bad_flag(field, text));
            }
            value
        };
        let account_contacts = flag(Field::AccountContacts);
        let account_tickets = flag(Field::AccountTickets);
        let external_comments = flag(Field::ExternalComments);

        // Without problems, the required fields are all there.
        let (true, Some(email)) = (problems.is_empty(), email) else {
            return Mapped::Invalid {
                contact_id: self.contact_id(),
                message: problems.join("; "),
            };
        };
        let (Some(contact_id), Some(name)) = (self.get(Field::ContactId), self.get(Field::Name))
        else {
            return Mapped::Invalid {
                contact_id: None,
                message: "required fields contact_id, name are empty".to_owned(),
            };
        };
        // Packed straight from the draft's texts: one allocation a contact.
        let (email, email_normalized) = email;
        Mapped::Contact(ContactRecord::pack(&ContactParts {
            contact_id,
            name,
            email,
            email_normalized: &email_normalized,
            phone: self.get(Field::Phone),
            account_id: self.get(Field::AccountId),
            account_name: self.get(Field::AccountName),
            account_domains: account_domains.as_deref(),
            login: login.as_ref().map(Login::as_str),
            description: self.get(Field::Description),
            locale: self.get(Field::Locale),
            account_contacts,
            account_tickets,
            external_comments,
            grants: &self.grants,
            attributes: &self.attributes,
            fingerprint: 0,
        }))
    }
}

impl Draft<'_> {
    /// `account_domains` checked and lower-cased, joined by `|` (`None`
    /// when not said); a bad domain is the row's problem, naming the column.
    fn account_domains(&self) -> Result<Option<String>, String> {
        let Some(text) = self.get(Field::AccountDomains) else {
            return Ok(None);
        };
        let domains = parse_domain_list(text).map_err(|e| format!("account_domains: {e}"))?;
        let joined: Vec<&str> = domains.iter().map(|d| d.as_str()).collect();
        Ok((!joined.is_empty()).then(|| joined.join("|")))
    }
}

/// Whether `text` holds a line break.
fn spans_lines(text: &str) -> bool {
    text.contains(['\n', '\r'])
}

fn bad_flag(field: Field, text: &str) -> String {
    format!("{field}: {text:?} is not a yes/no value (expected true/false, yes/no or 1/0)")
}

/// `s` without surrounding whitespace (as [`str::trim`]), skipping the
/// character decoding when both ends are visible ASCII (the usual field).
fn trim(s: &str) -> &str {
    let visible = |b: Option<&u8>| b.is_some_and(|b| b.is_ascii() && !b.is_ascii_whitespace());
    match visible(s.as_bytes().first()) && visible(s.as_bytes().last()) {
        true => s,
        false => s.trim(),
    }
}

/// The text trimmed, or `None` when nothing is left; borrows stay borrowed.
fn trimmed(text: Cow<'_, str>) -> Option<Cow<'_, str>> {
    match text {
        Cow::Borrowed(s) => Some(trim(s)).filter(|t| !t.is_empty()).map(Cow::Borrowed),
        Cow::Owned(s) => {
            let trimmed = trim(&s);
            if trimmed.is_empty() {
                None
            } else if trimmed.len() == s.len() {
                Some(Cow::Owned(s))
            } else {
                Some(Cow::Owned(trimmed.to_owned()))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn trim_is_str_trim(s in "[ \t\r\na.é\u{a0}\u{2003}\u{3000}x]{0,8}") {
            prop_assert_eq!(super::trim(&s), s.trim());
        }
    }
}
