//! The domain: accounts, contacts, external users and the rules that bind them
//! (e-mail identity, immutable logins, status lifecycle).

mod account;
mod attributes;
mod contact;
mod email;
mod locale;
mod login;
mod user;

pub use account::{parse_domain_list, Account, AccountId, Domain, DomainError, DomainMatch};
pub use attributes::Attributes;
pub use contact::{ContactFields, ContactParts, ContactRecord};
pub use email::{Email, EmailError};
pub use locale::is_language_tag;
pub use login::{derive_login_base, Login, LoginError};
pub use user::{DisabledBy, ExternalUser, Flags, Origin, Status, UserId};
