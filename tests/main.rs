//! Integration tests: one binary (link time matters on 2 cores), a module per
//! feature. They run the real `liaison` binary on real files in temp dirs.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

mod accounts_cli;
mod admin_cli;
mod bulk_load;
mod crm_source;
mod crm_webhooks;
mod csv_source;
mod daemon;
mod errors_cli;
mod exec_source;
mod exec_sync;
mod export_cli;
mod guard;
mod ldap_changes;
mod ldap_failures;
mod ldap_source;
mod lifecycle;
mod mail_dispatch;
mod mail_failures;
mod mail_preview;
mod mail_transport;
mod metrics;
mod outbox_cli;
mod passwords_cli;
mod plugin_check;
mod registration_cli;
mod regression;
mod source_preview;
mod status_cli;
mod store;
mod sync_cli;
mod template_limits;
mod users_cli;
mod validate;
