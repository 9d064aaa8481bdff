//! The fields of the standard layout, the `attributes.KEY` form, and how their
//! text is read (flags, grants).

use std::fmt;

/// The standard layout's column names (also the keys `map:` accepts, besides
/// `attributes.KEY`).
pub const STANDARD_FIELDS: &[&str] = &[
    "contact_id",
    "name",
    "email",
    "phone",
    "account_id",
    "account_name",
    "account_domains",
    "login",
    "description",
    "locale",
    "account_contacts",
    "account_tickets",
    "external_comments",
    "grants",
    "portal_access",
];

/// Prefix of custom attribute columns and keys.
pub(crate) const ATTRIBUTE_PREFIX: &str = "attributes.";

/// One field of the standard layout; the discriminant indexes [`STANDARD_FIELDS`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Field {
    ContactId,
    Name,
    Email,
    Phone,
    AccountId,
    AccountName,
    AccountDomains,
    Login,
    Description,
    Locale,
    AccountContacts,
    AccountTickets,
    ExternalComments,
    Grants,
    PortalAccess,
}

/// Number of standard fields.
pub(crate) const FIELD_COUNT: usize = 15;

impl Field {
    /// Every field, in [`STANDARD_FIELDS`] order.
    pub(crate) const ALL: [Field; FIELD_COUNT] = [
        Field::ContactId,
        Field::Name,
        Field::Email,
        Field::Phone,
        Field::AccountId,
        Field::AccountName,
        Field::AccountDomains,
        Field::Login,
        Field::Description,
        Field::Locale,
        Field::AccountContacts,
        Field::AccountTickets,
        Field::ExternalComments,
        Field::Grants,
        Field::PortalAccess,
    ];

    /// The fields a contact cannot do without.
    pub(crate) const REQUIRED: [Field; 3] = [Field::ContactId, Field::Name, Field::Email];

    /// Position in [`Field::ALL`].
    pub(crate) fn index(self) -> usize {
        self as usize
    }

    /// The column name.
    pub(crate) fn name(self) -> &'static str {
        STANDARD_FIELDS[self.index()]
    }

    /// The field a column name stands for.
    pub(crate) fn from_name(name: &str) -> Option<Field> {
        Field::ALL.into_iter().find(|f| f.name() == name)
    }
}

impl fmt::Display for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Where a column or `map:` key puts its value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Target {
    /// A standard field.
    Field(Field),
    /// A custom attribute, by key (without the `attributes.` prefix).
    Attribute(String),
}

impl Target {
    /// The target of a column name or map key; `None` for anything else
    /// (including `attributes.` with no key).
    pub(crate) fn parse(name: &str) -> Option<Target> {
        match name.strip_prefix(ATTRIBUTE_PREFIX) {
            Some("") => None,
            Some(key) => Some(Target::Attribute(key.to_owned())),
            None => Field::from_name(name).map(Target::Field),
        }
    }
}

/// Reads a flag: `true/false`, `yes/no`, `1/0`, any case (the text is already
/// trimmed). `None` for anything else.
pub(crate) fn parse_flag(text: &str) -> Option<bool> {
    const TRUE: [&str; 3] = ["true", "yes", "1"];
    const FALSE: [&str; 3] = ["false", "no", "0"];
    if TRUE.iter().any(|t| text.eq_ignore_ascii_case(t)) {
        Some(true)
    } else if FALSE.iter().any(|t| text.eq_ignore_ascii_case(t)) {
        Some(false)
    } else {
        None
    }
}

/// Splits a grants column at `|`, trimming each part and dropping empty ones.
pub(crate) fn split_grants(text: &str) -> impl Iterator<Item = &str> {
    text.split('|').map(str::trim).filter(|g| !g.is_empty())
}

/// "contact_id, name, …, portal_access and attributes.KEY", for error messages.
pub(crate) fn valid_keys() -> String {
    format!("{} and {ATTRIBUTE_PREFIX}KEY", STANDARD_FIELDS.join(", "))
}
