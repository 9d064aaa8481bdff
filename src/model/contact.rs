//! A contact as a source describes it after mapping, in two forms:
//! [`ContactFields`], plain and mutable, to build one; [`ContactRecord`], packed,
//! to hold a million of them (one allocation for all text of a record).

use std::fmt;

use super::{Attributes, Domain, Email, Login};

/// One contact after mapping, unpacked: the standard layout, typed. `None` in
/// an optional field means the source did not say. Pack it with
/// [`ContactRecord::new`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContactFields {
    /// The contact's anchor within its source.
    pub contact_id: String,
    /// Contact name and the user's title.
    pub name: String,
    /// Correlation key and notification address.
    pub email: Email,
    /// Phone number.
    pub phone: Option<String>,
    /// The contact's account id.
    pub account_id: Option<String>,
    /// The account's display name.
    pub account_name: Option<String>,
    /// The account's e-mail domains, in source order (empty: not said).
    pub account_domains: Vec<Domain>,
    /// A login the source asks for.
    pub login: Option<Login>,
    /// Free note about who the user represents.
    pub description: Option<String>,
    /// Language of e-mails.
    pub locale: Option<String>,
    /// `account_contacts` as the source gave it.
    pub account_contacts: Option<bool>,
    /// `account_tickets` as the source gave it.
    pub account_tickets: Option<bool>,
    /// `external_comments` as the source gave it.
    pub external_comments: Option<bool>,
    /// Grants, in source order.
    pub grants: Vec<String>,
    /// Custom attributes.
    pub attributes: Attributes,
    /// Digest of the source record this was mapped from and of the mapping
    /// ([`crate::mapping::Mapping::fingerprint`]); stored per contact, so a run
    /// over unchanged input compares digests without mapping again. 0: unknown.
    pub fingerprint: u64,
}

/// A contact's fields borrowed from wherever they were assembled (a mapping's
/// draft, an unpacked record): [`ContactRecord::pack`] copies them once.
#[derive(Debug, Clone, Copy)]
pub struct ContactParts<'a> {
    /// The contact's anchor within its source.
    pub contact_id: &'a str,
    /// Contact name and the user's title.
    pub name: &'a str,
    /// The e-mail address as spelled (checked).
    pub email: &'a str,
    /// The e-mail address lower-cased.
    pub email_normalized: &'a str,
    /// Phone number.
    pub phone: Option<&'a str>,
    /// The contact's account id.
    pub account_id: Option<&'a str>,
    /// The account's display name.
    pub account_name: Option<&'a str>,
    /// The account's e-mail domains, checked and lower-cased, joined by `|`.
    pub account_domains: Option<&'a str>,
    /// A login the source asks for (checked).
    pub login: Option<&'a str>,
    /// Free note about who the user represents.
    pub description: Option<&'a str>,
    /// Language of e-mails.
    pub locale: Option<&'a str>,
    /// `account_contacts` as the source gave it.
    pub account_contacts: Option<bool>,
    /// `account_tickets` as the source gave it.
    pub account_tickets: Option<bool>,
    /// `external_comments` as the source gave it.
    pub external_comments: Option<bool>,
    /// Grants, in source order.
    pub grants: &'a [String],
    /// Custom attributes.
    pub attributes: &'a Attributes,
    /// See [`ContactFields::fingerprint`].
    pub fingerprint: u64,
}

/// The text fields of a record, in packing order.
#[derive(Clone, Copy)]
enum Text {
    ContactId,
    Name,
    Email,
    /// The normalized e-mail, empty when it equals the e-mail as spelled.
    EmailNorm,
    Phone,
    AccountId,
    AccountName,
    Login,
    Description,
    Locale,
    /// Every grant, each as `LEN:TEXT` (see [`Counted`]).
    Grants,
    /// Every attribute, key then value, each as `LEN:TEXT`.
    Attributes,
    /// The account's domains joined by `|`. Last, so that a record without
    /// them packs and digests exactly as before the field existed.
    AccountDomains,
}

const TEXTS: usize = 13;

/// One contact after mapping, packed: all its text (grants and attributes too)
/// shares one allocation, so the records of a million-row source fit in a few
/// hundred megabytes.
/// Read it through its accessors; unpack it with [`ContactRecord::to_fields`].
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct ContactRecord {
    text: Box<str>,
    /// End of each [`Text`] field in `text`; a field starts where the one
    /// before it ends.
    ends: [u32; TEXTS],
    /// Bit `i` set: optional [`Text`] field `i` is present (`Some`).
    present: u16,
    /// `account_contacts` as the source gave it.
    pub account_contacts: Option<bool>,
    /// `account_tickets` as the source gave it.
    pub account_tickets: Option<bool>,
    /// `external_comments` as the source gave it.
    pub external_comments: Option<bool>,
    /// See [`ContactFields::fingerprint`].
    pub fingerprint: u64,
}

/// Seeds [`ContactRecord::content_digest`]; change it whenever the packed
/// layout changes, so stored digests stop matching.
const CONTENT_SEED: u64 = 0x6c69_6169_736f_6e01;

impl ContactRecord {
    /// Packs `fields`.
    pub fn new(fields: ContactFields) -> Self {
        let domains = join_domains(&fields.account_domains);
        ContactRecord::pack(&ContactParts {
            contact_id: &fields.contact_id,
            name: &fields.name,
            email: fields.email.as_str(),
            email_normalized: fields.email.normalized(),
            phone: fields.phone.as_deref(),
            account_id: fields.account_id.as_deref(),
            account_name: fields.account_name.as_deref(),
            account_domains: domains.as_deref(),
            login: fields.login.as_ref().map(Login::as_str),
            description: fields.description.as_deref(),
            locale: fields.locale.as_deref(),
            account_contacts: fields.account_contacts,
            account_tickets: fields.account_tickets,
            external_comments: fields.external_comments,
            grants: &fields.grants,
            attributes: &fields.attributes,
            fingerprint: fields.fingerprint,
        })
    }

    /// Packs borrowed `parts`: one allocation for all their text.
    pub fn pack(parts: &ContactParts<'_>) -> Self {
        let norm = match parts.email_normalized == parts.email {
            true => "",
            false => parts.email_normalized,
        };
        // A counted run's exact length: the digits of its length, `:`, the text
        // (exact, so the packed text is never reallocated to shrink).
        let counted = |len: usize| len.checked_ilog10().map_or(1, |d| d as usize + 1) + 1 + len;
        let grants_len: usize = parts.grants.iter().map(|g| counted(g.len())).sum();
        let attributes_len: usize = parts
            .attributes
            .iter()
            .map(|(k, v)| counted(k.len()) + counted(v.len()))
            .sum();
        let texts: [Option<&str>; TEXTS - 3] = [
            Some(parts.contact_id),
            Some(parts.name),
            Some(parts.email),
            Some(norm),
            parts.phone,
            parts.account_id,
            parts.account_name,
            parts.login,
            parts.description,
            parts.locale,
        ];
        let capacity = texts.iter().flatten().map(|t| t.len()).sum::<usize>()
            + parts.account_domains.map_or(0, str::len);
        let mut text = String::with_capacity(capacity + grants_len + attributes_len);
        let mut ends = [0u32; TEXTS];
        let mut present = 0u16;
        // Records are small: a field's end always fits (a 4 GiB row does not parse).
        let end = |text: &String| u32::try_from(text.len()).unwrap_or(u32::MAX);
        for (i, t) in texts.iter().enumerate() {
            if let Some(t) = t {
                text.push_str(t);
                present |= 1 << i;
            }
            ends[i] = end(&text);
        }
        for g in parts.grants {
            push_counted(&mut text, g);
        }
        present |= 1 << Text::Grants as usize;
        ends[Text::Grants as usize] = end(&text);
        for (k, v) in parts.attributes {
            push_counted(&mut text, k);
            push_counted(&mut text, v);
        }
        present |= 1 << Text::Attributes as usize;
        ends[Text::Attributes as usize] = end(&text);
        if let Some(domains) = parts.account_domains {
            text.push_str(domains);
            present |= 1 << Text::AccountDomains as usize;
        }
        ends[Text::AccountDomains as usize] = end(&text);
        debug_assert_eq!(text.len(), capacity + grants_len + attributes_len);
        ContactRecord {
            text: text.into_boxed_str(),
            ends,
            present,
            account_contacts: parts.account_contacts,
            account_tickets: parts.account_tickets,
            external_comments: parts.external_comments,
            fingerprint: parts.fingerprint,
        }
    }

    /// Unpacks the record, e.g. to change a field and pack it again.
    pub fn to_fields(&self) -> ContactFields {
        let own = |t: Text| self.get(t).map(str::to_owned);
        ContactFields {
            contact_id: self.contact_id().to_owned(),
            name: self.name().to_owned(),
            email: self.email(),
            phone: own(Text::Phone),
            account_id: own(Text::AccountId),
            account_name: own(Text::AccountName),
            account_domains: self
                .account_domains()
                .map(|d| Domain::from_trusted(d.to_owned()))
                .collect(),
            login: self.login().map(|l| Login::from_trusted(l.to_owned())),
            description: own(Text::Description),
            locale: own(Text::Locale),
            account_contacts: self.account_contacts,
            account_tickets: self.account_tickets,
            external_comments: self.external_comments,
            grants: self.grants().map(str::to_owned).collect(),
            attributes: self.attributes().collect(),
            fingerprint: self.fingerprint,
        }
    }

    fn get(&self, field: Text) -> Option<&str> {
        let i = field as usize;
        if self.present & (1 << i) == 0 {
            return None;
        }
        let start = if i == 0 { 0 } else { self.ends[i - 1] as usize };
        self.text.get(start..self.ends[i] as usize)
    }

    fn required(&self, field: Text) -> &str {
        self.get(field).unwrap_or_default()
    }

    /// True when both records say the same about the contact, whatever rows
    /// they were mapped from (the fingerprint is not compared).
    pub fn same_content(&self, other: &ContactRecord) -> bool {
        self.text == other.text
            && self.ends == other.ends
            && self.present == other.present
            && self.account_contacts == other.account_contacts
            && self.account_tickets == other.account_tickets
            && self.external_comments == other.external_comments
    }

    /// A digest of what [`ContactRecord::same_content`] compares: stored with
    /// the contact, it tells a re-read row that maps to the same contact (a
    /// changed mapping, a column no mapping reads) without loading the contact.
    pub fn content_digest(&self) -> u64 {
        use xxhash_rust::xxh3::xxh3_64_with_seed;
        // Without domains, the last end repeats the one before it and says
        // nothing: it is left out, so such a record digests as it did before
        // `account_domains` existed and stored digests keep matching.
        let texts = match self.present & (1 << Text::AccountDomains as usize) {
            0 => TEXTS - 1,
            _ => TEXTS,
        };
        let mut tail = [0u8; TEXTS * 4 + 5];
        for (i, end) in self.ends[..texts].iter().enumerate() {
            tail[i * 4..i * 4 + 4].copy_from_slice(&end.to_le_bytes());
        }
        let flag = |b: Option<bool>| match b {
            None => 0,
            Some(false) => 1,
            Some(true) => 2,
        };
        let at = texts * 4;
        tail[at..at + 2].copy_from_slice(&self.present.to_le_bytes());
        tail[at + 2] = flag(self.account_contacts);
        tail[at + 3] = flag(self.account_tickets);
        tail[at + 4] = flag(self.external_comments);
        let tail = &tail[..at + 5];
        xxh3_64_with_seed(tail, xxh3_64_with_seed(self.text.as_bytes(), CONTENT_SEED))
    }

    /// The contact's anchor within its source.
    pub fn contact_id(&self) -> &str {
        self.required(Text::ContactId)
    }

    /// Contact name and the user's title.
    pub fn name(&self) -> &str {
        self.required(Text::Name)
    }

    /// The e-mail address as the source spelled it.
    pub fn email_str(&self) -> &str {
        self.required(Text::Email)
    }

    /// The e-mail address lower-cased: the correlation key.
    pub fn email_normalized(&self) -> &str {
        match self.required(Text::EmailNorm) {
            "" => self.email_str(),
            norm => norm,
        }
    }

    /// The part of the e-mail address before the `@`, as spelled.
    pub fn email_local_part(&self) -> &str {
        let email = self.email_str();
        email.rsplit_once('@').map_or(email, |(local, _)| local)
    }

    /// The e-mail address as an [`Email`] (allocates).
    pub fn email(&self) -> Email {
        Email::from_trusted(self.email_str(), self.email_normalized())
    }

    /// Phone number.
    pub fn phone(&self) -> Option<&str> {
        self.get(Text::Phone)
    }

    /// The contact's account id.
    pub fn account_id(&self) -> Option<&str> {
        self.get(Text::AccountId)
    }

    /// The account's display name.
    pub fn account_name(&self) -> Option<&str> {
        self.get(Text::AccountName)
    }

    /// The account's e-mail domains (checked, lower case), in source order.
    pub fn account_domains(&self) -> impl Iterator<Item = &str> {
        self.get(Text::AccountDomains)
            .into_iter()
            .flat_map(|d| d.split('|'))
    }

    /// The account's domains as packed: joined by `|`, `None` when not said.
    pub fn account_domains_text(&self) -> Option<&str> {
        self.get(Text::AccountDomains)
    }

    /// A login the source asks for (already validated).
    pub fn login(&self) -> Option<&str> {
        self.get(Text::Login)
    }

    /// Free note about who the user represents.
    pub fn description(&self) -> Option<&str> {
        self.get(Text::Description)
    }

    /// Language of e-mails.
    pub fn locale(&self) -> Option<&str> {
        self.get(Text::Locale)
    }

    /// Grants, in source order.
    pub fn grants(&self) -> impl Iterator<Item = &str> {
        Counted(self.required(Text::Grants))
    }

    /// Custom attributes, by key.
    pub fn attributes(&self) -> impl Iterator<Item = (&str, &str)> {
        let mut parts = Counted(self.required(Text::Attributes));
        std::iter::from_fn(move || Some((parts.next()?, parts.next()?)))
    }
}

/// Domains joined by `|` (no domain holds one), `None` for none.
fn join_domains(domains: &[Domain]) -> Option<String> {
    let mut joined = String::new();
    for d in domains {
        if !joined.is_empty() {
            joined.push('|');
        }
        joined.push_str(d.as_str());
    }
    (!joined.is_empty()).then_some(joined)
}

/// Appends `s` as `LEN:TEXT`: any text, separators included, packs safely.
fn push_counted(out: &mut String, s: &str) {
    use std::fmt::Write;
    // Writing into a `String` cannot fail.
    let _ = write!(out, "{}:", s.len());
    out.push_str(s);
}

/// The texts of a run of [`push_counted`] entries.
struct Counted<'a>(&'a str);

impl<'a> Iterator for Counted<'a> {
    type Item = &'a str;

    fn next(&mut self) -> Option<&'a str> {
        let (len, rest) = self.0.split_once(':')?;
        let len: usize = len.parse().ok()?;
        let text = rest.get(..len)?;
        self.0 = rest.get(len..)?;
        Some(text)
    }
}

impl From<ContactFields> for ContactRecord {
    fn from(fields: ContactFields) -> Self {
        ContactRecord::new(fields)
    }
}

impl fmt::Debug for ContactRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.to_fields().fmt(f)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn fields() -> ContactFields {
        ContactFields {
            contact_id: "c-1".into(),
            name: "Jiří Dvořák".into(),
            email: Email::parse("Jiri.Dvorak@Example.com").unwrap(),
            phone: None,
            account_id: Some("acc-1".into()),
            account_name: Some(String::new()),
            account_domains: Vec::new(),
            login: Some(Login::from_trusted("jd".into())),
            description: None,
            locale: Some("cs".into()),
            account_contacts: Some(true),
            account_tickets: None,
            external_comments: Some(false),
            grants: vec!["sales".into()],
            attributes: [("tier".to_owned(), "gold".to_owned())]
                .into_iter()
                .collect(),
            fingerprint: 7,
        }
    }

    #[test]
    fn packs_and_unpacks_every_field() {
        let f = fields();
        let r = ContactRecord::new(f.clone());
        assert_eq!(r.to_fields(), f);
        assert_eq!(r.contact_id(), "c-1");
        assert_eq!(r.name(), "Jiří Dvořák");
        assert_eq!(r.email_str(), "Jiri.Dvorak@Example.com");
        assert_eq!(r.email_normalized(), "jiri.dvorak@example.com");
        assert_eq!(r.email_local_part(), "Jiri.Dvorak");
        assert_eq!(r.phone(), None, "absent stays absent");
        assert_eq!(
            r.account_name(),
            Some(""),
            "present but empty stays present"
        );
        assert_eq!(r.login(), Some("jd"));
        assert_eq!(r.locale(), Some("cs"));
        assert_eq!(r.grants().collect::<Vec<_>>(), ["sales"]);
        assert_eq!(r.attributes().collect::<Vec<_>>(), [("tier", "gold")]);
    }

    #[test]
    fn grants_and_attributes_with_separators_round_trip() {
        let mut f = fields();
        f.grants = vec!["a:b".into(), String::new(), "12:x|y".into()];
        f.attributes = [
            ("k:1".to_owned(), "v:2:3".to_owned()),
            ("e".to_owned(), String::new()),
        ]
        .into_iter()
        .collect();
        let r = ContactRecord::new(f.clone());
        assert_eq!(r.to_fields(), f);
    }

    #[test]
    fn a_lower_case_address_is_stored_once() {
        let mut f = fields();
        f.email = Email::parse("ann@example.com").unwrap();
        let r = ContactRecord::new(f);
        assert_eq!(r.email_normalized(), "ann@example.com");
        assert_eq!(r.text.matches("ann@example.com").count(), 1);
    }

    #[test]
    fn a_record_without_domains_digests_as_before_the_field_existed() {
        // The digest of `fields()` as the build before `account_domains` made it.
        assert_eq!(
            ContactRecord::new(fields()).content_digest(),
            0x8491_f0b3_b020_5356
        );
    }

    #[test]
    fn domains_pack_and_change_the_digest() {
        let mut f = fields();
        f.account_domains = vec![
            Domain::parse("a.example").unwrap(),
            Domain::parse("b.example").unwrap(),
        ];
        let r = ContactRecord::new(f.clone());
        assert_eq!(r.to_fields(), f);
        assert_eq!(
            r.account_domains().collect::<Vec<_>>(),
            ["a.example", "b.example"]
        );
        assert_eq!(r.account_domains_text(), Some("a.example|b.example"));
        let plain = ContactRecord::new(fields());
        assert_ne!(r.content_digest(), plain.content_digest());
        assert!(!r.same_content(&plain));
        assert_eq!(plain.account_domains().count(), 0);
    }
}
