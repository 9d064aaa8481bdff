//! E-mail content: the two kinds of mail (SPEC §4), their templates per
//! locale, and the RFC 5322 message built from them with lettre. Sending is
//! the dispatcher's; this module only renders and builds.
//!
//! - [`MailKind`]: `welcome` and `registration_confirmation`, as the CLI and
//!   the templates folder name them.
//! - [`Templates`]: three minijinja templates per kind and locale — subject,
//!   plain text, HTML — built into the binary for `en` and `cs`, each file
//!   overridable from `mail.templates` (`<kind>/<locale>.subject|txt|html`).
//!   Checked when the config is loaded; a user's locale without templates
//!   falls back to `default_locale`, then `en`.
//! - [`build_message`]: From, To (the user's name encoded by lettre, control
//!   characters removed), Subject (one line), the caller's stable Message-ID,
//!   Date, `Auto-Submitted: auto-generated`, and a multipart/alternative body
//!   of the text and HTML parts, UTF-8.
//!
//! Template variables: `login`, `title`, `email`, `locale`, `portal_url`,
//! `account` (the account names joined by `, `), `accounts` (the list), and
//! for `welcome` also `set_password_url` and `expires` (the token's expiry,
//! written for the locale). HTML templates escape every value; text and
//! subject templates do not, and no value can carry a line break anywhere.
//!
//! ```
//! use liaison::mail::{build_message, MailKind, MailVars, MessageMeta, Templates};
//!
//! let templates = Templates::load(None, "en").expect("built-in templates");
//! let vars = MailVars {
//!     login: "jiri.dvorak".into(),
//!     title: "Jiří Dvořák".into(),
//!     email: "jiri@acme.example".into(),
//!     locale: "cs".into(),
//!     portal_url: Some("https://portal.example/login".into()),
//!     accounts: vec!["Acme".into()],
//!     set_password_url: None,
//!     expires: None,
//! };
//! let meta = MessageMeta {
//!     from: "Support <support@example.com>",
//!     message_id: "<17.c0ffee@example.com>",
//!     date: chrono::Utc::now(),
//! };
//! let message = build_message(&templates, MailKind::RegistrationConfirmation, &vars, &meta)
//!     .expect("a message");
//! let text = String::from_utf8(message.formatted()).expect("ASCII headers");
//! assert!(text.contains("Message-ID: <17.c0ffee@example.com>"));
//! ```

mod builtin;
pub mod dispatch;
mod error;
mod kind;
mod message;
mod preview;
mod render;
mod send;
mod templates;
mod transport;
mod vars;
pub mod window;

pub use error::{MailError, TemplateError, TemplateErrors};
pub use kind::{MailKind, UnknownKind};
pub use message::{build_message, message_id, MessageMeta};
pub use preview::{preview_vars, PREVIEW_TOKEN};
pub use render::Rendered;
pub use send::{Accepted, Deliver, SendError};
pub use templates::{Part, Templates};
pub use transport::{check_ca_pem, Transport, TransportError};
pub use vars::MailVars;
