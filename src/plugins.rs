//! The one explicit list of connector plugins compiled into this build.
//!
//! Adding a connector: its crate under `plugins/`, a Cargo feature, a variant of
//! [`crate::config::ConnectorConfig`] with its settings, and one arm below.

use liaison_plugin_api::Connector;

use crate::config::ConnectorConfig;

/// Every connector type name the product knows, built in or not.
pub const KNOWN: &[&str] = &["csv", "ldap", "crm", "exec"];

/// The connector types whose records carry a key (SPEC §2 "Keys and
/// anchors"): the key is the contact id, and `map:` gives no `contact_id`.
pub const KEYED: &[&str] = &["ldap", "crm", "exec"];

/// The connector types compiled into this build.
pub const BUILT_IN: &[&str] = &[
    #[cfg(feature = "csv")]
    "csv",
    #[cfg(feature = "exec")]
    "exec",
    #[cfg(feature = "ldap")]
    "ldap",
    #[cfg(feature = "crm")]
    "crm",
];

/// Builds the connector for one configured source.
pub fn build(config: &ConnectorConfig) -> Box<dyn Connector> {
    match *config {
        #[cfg(feature = "csv")]
        ConnectorConfig::Csv(ref c) => Box::new(liaison_plugin_csv::CsvConnector::new(c.clone())),
        #[cfg(feature = "exec")]
        ConnectorConfig::Exec(ref c) => {
            Box::new(liaison_plugin_exec::ExecConnector::new(c.clone()))
        }
        #[cfg(feature = "ldap")]
        ConnectorConfig::Ldap(ref c) => {
            Box::new(liaison_plugin_ldap::LdapConnector::new(c.clone()))
        }
        #[cfg(feature = "crm")]
        ConnectorConfig::Crm(ref c) => Box::new(liaison_plugin_crm::CrmConnector::new(c.clone())),
    }
}
