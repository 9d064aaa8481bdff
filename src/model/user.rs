//! External users, their contacts and accounts.

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

use super::{Attributes, Email, Login};

/// Internal user id: allocated in creation order, so it is time-ordered; never reused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct UserId(pub i64);

impl fmt::Display for UserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

macro_rules! text_enum {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name { $($(#[$vmeta])* $variant),+ }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The lower-case name used in config, the store and JSON.
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $name {
            type Err = String;
            fn from_str(s: &str) -> Result<Self, String> {
                match s {
                    $($text => Ok($name::$variant),)+
                    other => Err(format!(
                        "unknown {} {other:?}, expected one of: {}",
                        stringify!($name).to_lowercase(),
                        [$($text),+].join(", ")
                    )),
                }
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }
    };
}

text_enum! {
    /// Where a user is in its lifecycle.
    Status {
        /// Registered, awaiting approval.
        Pending => "pending",
        /// Can log in.
        Active => "active",
        /// Deactivated: reversible, links kept.
        Disabled => "disabled",
        /// Registration refused.
        Rejected => "rejected",
    }
}

text_enum! {
    /// Who owns a user's life: sources, the user's own registration, or an admin.
    Origin {
        /// Created and owned by sync.
        Sync => "sync",
        /// Self-registered.
        Registration => "registration",
        /// Made by an admin.
        Manual => "manual",
    }
}

text_enum! {
    /// Who disabled a user; sync never re-enables what an admin disabled.
    DisabledBy {
        /// Sync, because its last contact left its sources.
        Sync => "sync",
        /// An admin.
        Admin => "admin",
    }
}

/// The three access flags of an external user.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, serde::Serialize)]
pub struct Flags {
    /// May see other external users of the same account, read-only.
    pub account_contacts: bool,
    /// May see all tickets of the account, not only those of the linked contacts.
    pub account_tickets: bool,
    /// May write external comments and read internal comments marked external.
    pub external_comments: bool,
}

/// An external user as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExternalUser {
    /// Internal id.
    pub id: UserId,
    /// Unique, immutable login.
    pub login: Login,
    /// Display name.
    pub title: String,
    /// Free note.
    pub description: Option<String>,
    /// Notification address.
    pub email: Option<Email>,
    /// Language of e-mails.
    pub locale: String,
    /// Lifecycle state.
    pub status: Status,
    /// Who disabled the user, when `status` is `disabled`.
    pub disabled_by: Option<DisabledBy>,
    /// When the user was disabled (ms since the Unix epoch), for `delete_after`.
    pub disabled_at: Option<i64>,
    /// Who owns the user.
    pub origin: Origin,
    /// Access flags.
    pub flags: Flags,
    /// Grants, sorted and unique.
    pub grants: Vec<String>,
    /// Custom attributes.
    pub attributes: Attributes,
    /// The fields an admin set on this `sync` user that none of its contacts
    /// gives (SPEC §1 names, `attributes.KEY` for one attribute): sync keeps
    /// them as they are instead of resetting them to what the contacts say
    /// (see [`crate::reconcile::UserFields::keep_admin_fields`]). Users of
    /// other origins keep every field no contact gives without being listed.
    pub admin_fields: BTreeSet<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_enums_round_trip() {
        for s in Status::ALL {
            assert_eq!(s.as_str().parse::<Status>(), Ok(*s));
        }
        for o in Origin::ALL {
            assert_eq!(o.as_str().parse::<Origin>(), Ok(*o));
        }
        assert!("enabled"
            .parse::<Status>()
            .unwrap_err()
            .contains("pending, active"));
    }
}
