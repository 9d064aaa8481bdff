//! Sources whose records carry keys (exec, LDAP, the CRM): the key is the
//! contact id (SPEC §2 "Keys and anchors").

use super::*;

fn keyed(fields: &[(&str, &str)]) -> Result<Mapping, Vec<MapError>> {
    let mut spec = spec(fields, None);
    spec.keyed = true;
    Mapping::compile(&spec)
}

#[test]
fn a_keyed_record_is_its_key_in_the_standard_layout() {
    let mapping = Mapping::standard();
    let r = record(&[("name", "Ann"), ("email", "ann@x.example")]).with_key("uuid-1");
    assert_eq!(mapping.contact_id_of(&r).as_deref(), Some("uuid-1"));
    assert_eq!(contact(mapping.apply(&r)).contact_id, "uuid-1");
    // The key wins over a column of the same name.
    let r = record(&[
        ("contact_id", "c-9"),
        ("name", "Ann"),
        ("email", "ann@x.example"),
    ])
    .with_key("uuid-1");
    assert_eq!(contact(mapping.apply(&r)).contact_id, "uuid-1");
}

#[test]
fn a_keyed_map_needs_no_contact_id_and_refuses_one() {
    let mapping = keyed(&[("name", "{{ cn }}"), ("email", "{{ mail }}")]).unwrap();
    let r = record(&[("cn", "Ann"), ("mail", "ann@x.example")]).with_key("uuid-1");
    assert_eq!(contact(mapping.apply(&r)).contact_id, "uuid-1");

    let errors = keyed(&[
        ("contact_id", "{{ uid }}"),
        ("name", "{{ cn }}"),
        ("email", "{{ mail }}"),
    ])
    .unwrap_err();
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(errors[0].key, "contact_id");
    assert!(
        errors[0].message.contains("remove contact_id"),
        "{}",
        errors[0].message
    );

    let missing = keyed(&[("name", "{{ cn }}")]).unwrap_err();
    assert_eq!(missing[0].key, "email");
    assert_eq!(
        missing[0].message,
        "missing: a map must give name and email"
    );
}

#[test]
fn an_unkeyed_map_still_needs_contact_id() {
    let errors = compile_err(&[("name", "{{ cn }}"), ("email", "{{ mail }}")], None);
    assert_eq!(errors[0].key, "contact_id");
}

#[test]
fn keyed_changes_the_mapping_digest_and_the_key_the_fingerprint() {
    let fields = [
        ("name", "{{ cn }}"),
        ("email", "{{ mail }}"),
        ("contact_id", "{{ id }}"),
    ];
    let plain = compile(&fields, None);
    let keyed = keyed(&fields[..2]).unwrap();
    assert_ne!(plain.digest(), keyed.digest());
    let r = record(&[("cn", "Ann"), ("mail", "ann@x.example")]);
    assert_ne!(
        keyed.fingerprint(&r.clone().with_key("a")),
        keyed.fingerprint(&r.with_key("b"))
    );
}

#[test]
fn dotted_names_are_paths_with_lists_in_templates_and_when() {
    let schema = Arc::new(Schema::new(
        [
            "title",
            "account.title",
            "customFields.email",
            "customFields.portal_access",
        ]
        .map(String::from)
        .to_vec(),
    ));
    let values = vec![
        Value::from("Jiří Dvořák"),
        Value::from("Acme s.r.o."),
        Value::Many(vec!["jiri@acme.cz".into(), "jd@acme.cz".into()]),
        Value::Many(vec!["1".into()]),
    ];
    let r = Record::new(
        Location::Remote {
            kind: "contact",
            id: "c_1".into(),
        },
        schema,
        values,
    )
    .with_key("c_1");
    let mut spec = spec(
        &[
            ("name", "{{ title }}"),
            ("email", "{{ customFields.email[0] }}"),
            ("account_name", "{{ account.title }}"),
            ("description", "{{ customFields.email | join(', ') }}"),
        ],
        Some("customFields.portal_access[0] == '1'"),
    );
    spec.keyed = true;
    let mapping = Mapping::compile(&spec).unwrap();
    let c = contact(mapping.apply(&r));
    assert_eq!(c.email.as_str(), "jiri@acme.cz");
    assert_eq!(c.account_name.as_deref(), Some("Acme s.r.o."));
    assert_eq!(c.description.as_deref(), Some("jiri@acme.cz, jd@acme.cz"));
    // The exact name wins, and record[...] still reads every attribute.
    let mut spec = spec_of(&mapping_fields(), Some("'1' in customFields.portal_access"));
    spec.keyed = true;
    let kept = Mapping::compile(&spec).unwrap();
    assert_eq!(kept.when_keeps(&r), Ok(true));
}

fn mapping_fields() -> Vec<(String, String)> {
    vec![
        ("name".into(), "{{ record['title'] }}".into()),
        (
            "email".into(),
            "{{ record['customFields.email'] | first }}".into(),
        ),
    ]
}

fn spec_of(fields: &[(String, String)], when: Option<&str>) -> MapSpec {
    MapSpec {
        fields: fields.to_vec(),
        when: when.map(str::to_owned),
        keyed: false,
    }
}
