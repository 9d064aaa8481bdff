//! The kinds of mail (SPEC §4), named as in the CLI and the templates folder.

use std::fmt;
use std::str::FromStr;

/// Which mail: what it is for decides its template and its variables.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum MailKind {
    /// The first time a user becomes active: login, portal and set-password link.
    Welcome,
    /// After a registration: it has been recorded.
    RegistrationConfirmation,
}

impl MailKind {
    /// Every kind, in the order `--help` and errors list them.
    pub const ALL: [MailKind; 2] = [MailKind::Welcome, MailKind::RegistrationConfirmation];

    /// The name in the CLI, the outbox and the templates folder.
    pub fn as_str(self) -> &'static str {
        match self {
            MailKind::Welcome => "welcome",
            MailKind::RegistrationConfirmation => "registration_confirmation",
        }
    }

    /// The variables its templates may use, beyond those every kind has.
    pub(crate) fn own_variables(self) -> &'static [&'static str] {
        match self {
            MailKind::Welcome => &["set_password_url", "expires"],
            MailKind::RegistrationConfirmation => &[],
        }
    }
}

impl serde::Serialize for MailKind {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl fmt::Display for MailKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A name that is no [`MailKind`]; its message lists the known ones.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown mail kind {name:?} (known: {})", known_kinds())]
pub struct UnknownKind {
    /// The name given.
    pub name: String,
}

/// `welcome, registration_confirmation`.
fn known_kinds() -> String {
    MailKind::ALL.map(MailKind::as_str).join(", ")
}

impl FromStr for MailKind {
    type Err = UnknownKind;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        MailKind::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| UnknownKind { name: s.to_owned() })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_unknown_lists_the_known() {
        for kind in MailKind::ALL {
            assert_eq!(kind.as_str().parse::<MailKind>().unwrap(), kind);
        }
        let e = "welcom".parse::<MailKind>().unwrap_err();
        assert_eq!(
            e.to_string(),
            "unknown mail kind \"welcom\" (known: welcome, registration_confirmation)"
        );
    }
}
