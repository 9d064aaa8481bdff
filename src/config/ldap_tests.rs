//! `type: ldap` sources: typed values, defaults, and every error at its position.

#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::time::Duration;

use liaison_plugin_ldap::{ChangeDetection, LdapConfig, Scope};

use super::*;

fn env(name: &str) -> Option<String> {
    (name == "LDAP_PASSWORD").then(|| "s3cr3t-bind".to_owned())
}

/// Loads `text` as if it were `DIR/liaison.yaml`.
fn load_in(dir: &Path, text: &str) -> Result<Config, ConfigErrors> {
    let file = dir.join("liaison.yaml");
    load::load_with(text, Path::new("liaison.yaml"), &file, &env)
}

/// The ldap settings of the one source `dir` with `keys` (indented lines).
fn ldap_in(dir: &Path, keys: &str) -> Result<LdapConfig, Vec<String>> {
    let text = format!("store: sqlite://x\nsources:\n  - name: dir\n    type: ldap\n{keys}");
    match load_in(dir, &text) {
        Ok(config) => match &config.sources[0].connector {
            ConnectorConfig::Ldap(ldap) => Ok(ldap.clone()),
            #[allow(unreachable_patterns)]
            other => panic!("not an ldap source: {other:?}"),
        },
        Err(errors) => Err(errors
            .iter()
            .map(|e| format!("{}:{}: {}", e.span.line, e.span.column, e.message))
            .collect()),
    }
}

fn ldap(keys: &str) -> Result<LdapConfig, Vec<String>> {
    ldap_in(Path::new("/etc/liaison"), keys)
}

const MINIMAL: &str =
    "    url: ldap://ldap.example.com\n    base_dn: ou=people,dc=example,dc=com\n";

/// A certificate (any will do: only its PEM form is checked).
const CERT: &str = "-----BEGIN CERTIFICATE-----
MIIBszCCAVmgAwIBAgIUW0rGnYjxR1Eo4nOcNH7C1dFXkMAwCgYIKoZIzj0EAwIw
LzEtMCsGA1UEAwwkbGlhaXNvbiB0ZXN0IENBIGZvciBjb25maWcgdW5pdCB0ZXN0
czAeFw0yNjAxMDEwMDAwMDBaFw0zNjAxMDEwMDAwMDBaMC8xLTArBgNVBAMMJGxp
YWlzb24gdGVzdCBDQSBmb3IgY29uZmlnIHVuaXQgdGVzdHMwWTATBgcqhkjOPQIB
BggqhkjOPQMBBwNCAAQ7p0iS8Qp0n6d5v3i3kqk2p1o1w2bq3m6wQv5w1n1o7m8H
Dq5y4Yx3o2w1v6g0Xr4Fz3m1b2l0a1n8c2o9d0pWo1MwUTAdBgNVHQ4EFgQUo2a1
b3c4d5e6f7g8h9i0j1k2l3mwHwYDVR0jBBgwFoAUo2a1b3c4d5e6f7g8h9i0j1k2
l3mwDwYDVR0TAQH/BAUwAwEB/zAKBggqhkjOPQQDAgNIADBFAiEA0m1n2o3p4q5r
6s7t8u9v0w1x2y3z4a5b6c7d8e9f0g1h2i0CIBj3k4l5m6n7o8p9q0r1s2t3u4v5
w6x7y8z9a0b1c2d3
-----END CERTIFICATE-----
";

#[test]
fn an_ldap_source_loads_into_typed_values() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("ca.pem"), CERT).unwrap();
    let c = ldap_in(
        dir.path(),
        r#"    url: ldaps://ldap.example.com
    ca_file: ca.pem
    bind_dn: cn=liaison,ou=services,dc=example,dc=com
    bind_password: ${env:LDAP_PASSWORD}
    base_dn: ou=partners,dc=example,dc=com
    scope: one
    filter: "(&(objectClass=inetOrgPerson)(employeeType=partner))"
    attributes: [cn, mail, o, employeeType]
    anchor: entryUUID
    page_size: 200
    connect_timeout: 5s
    timeout: 30s
    groups:
      base_dn: ou=groups,dc=example,dc=com
      filter: (objectClass=groupOfUniqueNames)
      member_attribute: uniqueMember
    change_detection: sync
    map:
      name: "{{ cn }}"
      email: "{{ mail | lower }}"
"#,
    )
    .unwrap();
    assert_eq!(c.source, "dir");
    assert_eq!(c.url.to_string(), "ldaps://ldap.example.com:636");
    assert!(!c.starttls);
    assert_eq!(
        c.ca_file.as_deref(),
        Some(dir.path().join("ca.pem").as_path())
    );
    let bind = c.bind.as_ref().unwrap();
    assert_eq!(bind.dn, "cn=liaison,ou=services,dc=example,dc=com");
    assert_eq!(bind.password.expose(), "s3cr3t-bind");
    assert!(!format!("{c:?}").contains("s3cr3t"), "never printed");
    assert_eq!(c.base_dn, "ou=partners,dc=example,dc=com");
    assert_eq!(c.scope, Scope::One);
    assert_eq!(
        c.filter.as_str(),
        "(&(objectClass=inetOrgPerson)(employeeType=partner))"
    );
    assert_eq!(
        c.attributes.as_deref().unwrap(),
        ["cn", "mail", "o", "employeeType"]
    );
    assert_eq!(c.page_size, 200);
    assert_eq!(c.connect_timeout, Duration::from_secs(5));
    assert_eq!(c.timeout, Duration::from_secs(30));
    let g = c.groups.as_ref().unwrap();
    assert_eq!(g.base_dn, "ou=groups,dc=example,dc=com");
    assert_eq!(g.member_attribute, "uniqueMember");
    assert!(!g.member_of);
    assert_eq!(c.change_detection, ChangeDetection::Sync);
}

#[test]
fn defaults_fill_what_is_not_said() {
    let c = ldap(MINIMAL).unwrap();
    assert_eq!(c.url.port, 389);
    assert!(c.bind.is_none(), "anonymous");
    assert_eq!(c.scope, Scope::Sub);
    assert_eq!(c.filter.as_str(), "(objectClass=*)");
    assert_eq!(c.attributes, None);
    assert_eq!(c.anchor, "entryUUID");
    assert_eq!(c.page_size, 500);
    assert_eq!(c.connect_timeout, Duration::from_secs(10));
    assert_eq!(c.timeout, Duration::from_secs(120));
    assert_eq!(c.groups, None);
    assert_eq!(c.change_detection, ChangeDetection::Auto);
    let starttls = ldap(&format!(
        "{MINIMAL}    starttls: true\n    filter: objectClass=person\n"
    ))
    .unwrap();
    assert!(starttls.starttls);
    assert_eq!(starttls.filter.as_str(), "(objectClass=person)", "wrapped");
    let member_of = ldap(&format!(
        "{MINIMAL}    groups: {{base_dn: \"ou=groups,dc=example,dc=com\", member_of: true}}\n"
    ))
    .unwrap();
    assert!(member_of.groups.unwrap().member_of);
}

#[test]
fn a_bad_filter_is_reported_at_its_key_with_its_character() {
    let errors = ldap(&format!(
        "{MINIMAL}    filter: \"(&(objectClass=person)(mail=*)\"\n"
    ))
    .unwrap_err();
    assert_eq!(
        errors,
        [
            r#"7:13: sources[0].filter: invalid LDAP filter "(&(objectClass=person)(mail=*)": expected ")", but the filter ends at character 31"#
        ]
    );
    let errors = ldap(&format!(
        "{MINIMAL}    groups:\n      base_dn: ou=g,dc=x\n      filter: (cn>x)\n"
    ))
    .unwrap_err();
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(
        errors[0].starts_with("9:15: sources[0].groups.filter: invalid LDAP filter"),
        "{errors:?}"
    );
}

#[test]
fn every_mistake_is_found_at_its_key() {
    let errors = ldap(
        r#"    url: http://ldap.example.com
    starttls: yes
    bind_dn: not a dn
    base_dn: ""
    scope: subtree
    attributes: [cn, "mail address", cn]
    anchor: "1bad"
    page_size: 0
    timeout: 10
    change_detection: sometimes
    groups: {filter: "(cn=*)", colour: red}
    bind_pasword: x
"#,
    )
    .unwrap_err();
    let expect = [
        "5:10: sources[0].url: the scheme must be ldap:// or ldaps://, not http://, found \"http://ldap.example.com\"",
        "6:15: sources[0].starttls: expected true or false",
        "7:14: sources[0].bind_dn: not a DN",
        "7:14: sources[0].bind_dn: needs bind_password",
        "8:14: sources[0].base_dn: must not be empty",
        "9:12: sources[0].scope: expected sub, one or base, found \"subtree\"; did you mean \"sub\"?",
        "10:22: sources[0].attributes[1]: \"mail address\" is not an attribute name",
        "10:38: sources[0].attributes[2]: duplicate attribute \"cn\"",
        "11:13: sources[0].anchor: \"1bad\" is not an attribute name",
        "12:16: sources[0].page_size: expected a number of entries from 1 to 100000",
        "13:14: sources[0].timeout:",
        "14:23: sources[0].change_detection: expected auto, sync, modify_timestamp or none",
        "15:32: sources[0].groups.colour: unknown key in groups",
        "15:5: sources[0].groups: missing required key \"base_dn\"",
        "16:5: sources[0].bind_pasword: unknown key for an ldap source; did you mean \"bind_password\"?",
    ];
    for e in expect {
        assert!(
            errors.iter().any(|got| got.starts_with(e)),
            "missing {e:?} in:\n{}",
            errors.join("\n")
        );
    }
    assert_eq!(errors.len(), expect.len(), "{}", errors.join("\n"));
}

#[test]
fn tls_settings_must_fit_the_url() {
    let errors = ldap("    url: ldaps://x\n    starttls: true\n    base_dn: dc=x\n").unwrap_err();
    assert_eq!(
        errors,
        ["6:15: sources[0].starttls: only for ldap:// URLs (ldaps:// is TLS from the start)"]
    );
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("ca.pem"), CERT).unwrap();
    std::fs::write(dir.path().join("junk.pem"), "junk\n").unwrap();
    let errors = ldap_in(dir.path(), &format!("{MINIMAL}    ca_file: ca.pem\n")).unwrap_err();
    assert_eq!(
        errors,
        ["7:14: sources[0].ca_file: only used over TLS: an ldaps:// URL or starttls: true"]
    );
    let errors = ldap_in(
        dir.path(),
        "    url: ldaps://x\n    base_dn: dc=x\n    ca_file: junk.pem\n",
    )
    .unwrap_err();
    assert_eq!(errors.len(), 1);
    assert!(errors[0].contains("holds no PEM certificate"), "{errors:?}");
    assert!(ldap_in(
        dir.path(),
        &format!("{MINIMAL}    starttls: true\n    ca_file: ca.pem\n")
    )
    .is_ok());
}

#[test]
fn the_bind_password_is_a_secret_and_never_in_messages() {
    let errors = ldap(&format!(
        "{MINIMAL}    bind_dn: cn=x,dc=x\n    bind_password: ${{env:MISSING_PW}}\n"
    ))
    .unwrap_err();
    assert_eq!(
        errors,
        [r#"8:20: sources[0].bind_password: environment variable "MISSING_PW" is not set"#]
    );
    let errors = ldap(&format!(
        "{MINIMAL}    bind_password: ${{env:LDAP_PASSWORD}}\n"
    ))
    .unwrap_err();
    assert_eq!(
        errors,
        ["7:20: sources[0].bind_password: needs bind_dn (the DN to bind as)"]
    );
    assert!(!errors.concat().contains("s3cr3t"));
    // Elsewhere references are refused, naming where they resolve.
    let errors = ldap(&format!("{MINIMAL}    filter: ${{env:LDAP_PASSWORD}}\n")).unwrap_err();
    assert!(
        errors[0].contains("an ldap source's bind_password"),
        "{errors:?}"
    );
}

#[test]
fn sync_needs_entry_uuid_anchors_and_ldap_maps_are_keyed() {
    let errors = ldap(&format!(
        "{MINIMAL}    anchor: uid\n    change_detection: sync\n"
    ))
    .unwrap_err();
    assert_eq!(errors.len(), 1);
    assert!(errors[0].contains("needs anchor: entryUUID"), "{errors:?}");
    assert!(ldap(&format!(
        "{MINIMAL}    anchor: objectGUID\n    change_detection: modify_timestamp\n"
    ))
    .is_ok());
    let errors = ldap(&format!(
        "{MINIMAL}    map:\n      contact_id: \"{{{{ entryUUID }}}}\"\n      name: \"{{{{ cn }}}}\"\n      email: \"{{{{ mail }}}}\"\n"
    ))
    .unwrap_err();
    assert_eq!(errors.len(), 1);
    assert!(errors[0].contains("remove contact_id"), "{errors:?}");
    let errors = ldap(&format!("{MINIMAL}    watch: true\n")).unwrap_err();
    assert!(
        errors[0].contains("only sources that read files"),
        "{errors:?}"
    );
}
