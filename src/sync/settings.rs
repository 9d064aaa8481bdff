//! The settings outside a source's mapping that change what its run produces:
//! when their digest differs from the one its last applied run stored, every
//! record of the source is planned again once (SPEC: nothing that changes a
//! run's result may be hidden by change detection).

use xxhash_rust::xxh3::Xxh3;

use crate::config::{Config, SourceConfig};
use crate::mapping::Mapping;

/// Bumped when the planner starts depending on another setting.
const SETTINGS_VERSION: u64 = 1;

/// A digest of the plan settings: the sources' precedence order (it picks
/// the title and other scalar fields) and `default_locale`. The mapping is
/// not here: it seeds each record's fingerprint already.
pub fn plan_settings_digest(config: &Config) -> u64 {
    let mut h = Xxh3::with_seed(SETTINGS_VERSION);
    for s in &config.sources {
        // Length-prefixed, so `ab`,`c` and `a`,`bc` differ.
        h.update(&(s.name.len() as u64).to_le_bytes());
        h.update(s.name.as_bytes());
    }
    h.update(&[0xff]);
    h.update(config.default_locale.as_bytes());
    h.digest()
}

/// A digest of what a source is read with: its mapping and its connector's
/// settings. A cursor stored under another digest is not used: the run reads
/// in full (a changed `map:` or LDAP base must see every record again).
pub fn read_digest(source: &SourceConfig, mapping: &Mapping) -> u64 {
    let mut h = Xxh3::with_seed(SETTINGS_VERSION);
    h.update(&mapping.digest().to_le_bytes());
    // The settings' debug form: stable within a build, and a new build
    // that prints them differently only costs one full read.
    h.update(format!("{:?}", source.connector).as_bytes());
    h.digest()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::plan_settings_digest;
    use crate::config;

    fn digest_of(yaml: &str) -> u64 {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("liaison.yaml");
        std::fs::write(&path, yaml).unwrap();
        plan_settings_digest(&config::load(&path).unwrap())
    }

    fn two(first: &str, second: &str, extra: &str) -> String {
        format!(
            "store: sqlite://x.db\n{extra}sources:\n  - {{name: {first}, type: csv, path: a.csv}}\n  \
             - {{name: {second}, type: csv, path: b.csv}}\n"
        )
    }

    #[test]
    fn order_and_default_locale_change_the_digest_and_other_keys_do_not() {
        let base = digest_of(&two("a", "b", ""));
        assert_ne!(base, digest_of(&two("b", "a", "")), "source order");
        assert_ne!(
            base,
            digest_of(&two("a", "b", "default_locale: cs\n")),
            "locale"
        );
        assert_eq!(
            base,
            digest_of(&two("a", "b", "safety:\n  max_deprovision: 3\n")),
            "limits do not change what a run produces"
        );
    }
}
