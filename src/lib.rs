//! Liaison: keeps a directory of external portal users in step with the CRM,
//! LDAP directories and CSV exports where those people already live.
//!
//! The data path is `plugins → mapping → reconcile (pure Plan) → store`; see the
//! README's architecture section for where each concept lives.

pub mod api;
pub mod cli;
pub mod clock;
pub mod config;
pub mod daemon;
pub mod logging;
pub mod mail;
pub mod mapping;
pub mod model;
pub mod password;
pub mod plugins;
pub mod reconcile;
pub mod store;
pub mod suggest;
pub mod sync;
pub mod telemetry;
