use std::sync::Arc;

use liaison_plugin_api::{Location, Record, Schema, Value};

use super::{contact, invalid, record, spec, Mapped, Mapping};

const FULL: &[(&str, &str)] = &[
    ("contact_id", " c-1 "),
    ("name", "Jiří Dvořák"),
    ("email", "Jiri.Dvorak@Example.com"),
    ("phone", "+420 123"),
    ("account_id", "acme"),
    ("account_name", "Acme s.r.o."),
    ("login", "jiri"),
    ("description", "Partner"),
    ("locale", "cs"),
    ("account_contacts", "yes"),
    ("account_tickets", "FALSE"),
    ("external_comments", " 1 "),
    ("grants", "sales| support ||calls "),
    ("portal_access", "true"),
    ("attributes.licence_key", "LK-42"),
    ("attributes.empty", "  "),
    ("unrelated", "ignored"),
];

#[test]
fn full_row() {
    let c = contact(Mapping::standard().apply(&record(FULL)));
    assert_eq!(c.contact_id, "c-1");
    assert_eq!(c.name, "Jiří Dvořák");
    assert_eq!(c.email.as_str(), "Jiri.Dvorak@Example.com");
    assert_eq!(c.phone.as_deref(), Some("+420 123"));
    assert_eq!(c.account_id.as_deref(), Some("acme"));
    assert_eq!(c.account_name.as_deref(), Some("Acme s.r.o."));
    assert_eq!(c.login.as_ref().map(|l| l.as_str()), Some("jiri"));
    assert_eq!(c.description.as_deref(), Some("Partner"));
    assert_eq!(c.locale.as_deref(), Some("cs"));
    assert_eq!(c.account_contacts, Some(true));
    assert_eq!(c.account_tickets, Some(false));
    assert_eq!(c.external_comments, Some(true));
    assert_eq!(c.grants, ["sales", "support", "calls"]);
    assert_eq!(
        c.attributes,
        [("licence_key", "LK-42")]
            .into_iter()
            .collect::<crate::model::Attributes>()
    );
}

#[test]
fn minimal_row_leaves_optional_fields_unsaid() {
    let c = contact(Mapping::standard().apply(&record(&[
        ("email", "ann@example.com"),
        ("name", "Ann"),
        ("contact_id", "7"),
        ("phone", ""),
        ("account_tickets", " "),
        ("grants", ""),
    ])));
    assert_eq!(c.contact_id, "7");
    assert_eq!(c.phone, None);
    assert_eq!(c.account_tickets, None);
    assert!(c.grants.is_empty());
    assert!(c.attributes.is_empty());
}

#[test]
fn flags_accept_true_false_yes_no_one_zero_in_any_case() {
    let mapping = Mapping::standard();
    for (text, expected) in [
        ("true", true),
        ("True", true),
        ("YES", true),
        ("1", true),
        (" false ", false),
        ("No", false),
        ("0", false),
    ] {
        let c = contact(mapping.apply(&record(&[
            ("contact_id", "1"),
            ("name", "Ann"),
            ("email", "ann@example.com"),
            ("account_contacts", text),
        ])));
        assert_eq!(c.account_contacts, Some(expected), "{text:?}");
    }
    let (id, message) = invalid(mapping.apply(&record(&[
        ("contact_id", "1"),
        ("name", "Ann"),
        ("email", "ann@example.com"),
        ("external_comments", "maybe"),
    ])));
    assert_eq!(id.as_deref(), Some("1"));
    assert!(message.contains("external_comments"), "{message}");
    assert!(message.contains("\"maybe\""), "{message}");
}

#[test]
fn portal_access_no_skips_the_row() {
    let mapping = Mapping::standard();
    for no in ["false", "no", "0", "NO"] {
        let mut row = FULL.to_vec();
        row.push(("portal_access", no));
        // `portal_access` is already in FULL; the first column of a name wins,
        // so build the row with only this one.
        row.retain(|(n, v)| *n != "portal_access" || *v == no);
        assert_eq!(mapping.apply(&record(&row)), Mapped::Skipped, "{no:?}");
    }
    let (_, message) = invalid(mapping.apply(&record(&[
        ("contact_id", "1"),
        ("name", "Ann"),
        ("email", "ann@example.com"),
        ("portal_access", "later"),
    ])));
    assert!(message.contains("portal_access"), "{message}");
}

#[test]
fn missing_required_fields_are_named() {
    let mapping = Mapping::standard();
    let (id, message) = invalid(mapping.apply(&record(&[
        ("contact_id", "c-9"),
        ("name", " "),
        ("email", ""),
    ])));
    assert_eq!(id.as_deref(), Some("c-9"));
    assert_eq!(message, "required fields name, email are empty");

    let (id, message) = invalid(mapping.apply(&record(&[
        ("contact_id", ""),
        ("name", "Ann"),
        ("email", "ann@example.com"),
    ])));
    assert_eq!(id, None);
    assert_eq!(message, "required field contact_id is empty");

    let (_, message) = invalid(mapping.apply(&record(&[("contact_id", "1"), ("name", "Ann")])));
    assert_eq!(message, "required column email is missing");
}

#[test]
fn bad_email_and_login_are_named() {
    let mapping = Mapping::standard();
    let (id, message) = invalid(mapping.apply(&record(&[
        ("contact_id", "1"),
        ("name", "Ann"),
        ("email", "ann at example.com"),
        ("login", "Ann Smith"),
    ])));
    assert_eq!(id.as_deref(), Some("1"));
    assert!(
        message.contains("email: invalid e-mail \"ann at example.com\""),
        "{message}"
    );
    assert!(message.contains("login"), "{message}");
    assert!(message.contains("Ann Smith"), "{message}");
}

#[test]
fn contact_id_of_reads_the_column() {
    let mapping = Mapping::standard();
    assert_eq!(
        mapping
            .contact_id_of(&record(&[("email", "x"), ("contact_id", " 42 ")]))
            .as_deref(),
        Some("42")
    );
    assert_eq!(mapping.contact_id_of(&record(&[("contact_id", " ")])), None);
    assert_eq!(mapping.contact_id_of(&record(&[("email", "x")])), None);
    // A short bad row whose contact_id column is past its end.
    let schema = Arc::new(Schema::new(vec!["name".into(), "contact_id".into()]));
    let short = Record::new(Location::line("f", 3), schema, vec![Value::from("Ann")]);
    assert_eq!(mapping.contact_id_of(&short), None);
}

#[test]
fn positions_follow_each_schema() {
    let mapping = Mapping::standard();
    let a = record(&[
        ("contact_id", "1"),
        ("name", "Ann"),
        ("email", "ann@example.com"),
    ]);
    let b = record(&[
        ("email", "bob@example.com"),
        ("contact_id", "2"),
        ("name", "Bob"),
    ]);
    for _ in 0..2 {
        assert_eq!(contact(mapping.apply(&a)).name, "Ann");
        assert_eq!(contact(mapping.apply(&b)).name, "Bob");
    }
}

#[test]
fn many_valued_grants_take_every_value() {
    let schema = Arc::new(Schema::new(
        ["contact_id", "name", "email", "grants"]
            .map(String::from)
            .to_vec(),
    ));
    let rec = Record::new(
        Location::line("f", 2),
        schema,
        vec![
            Value::from("1"),
            Value::Many(vec!["Ann".into(), "Anna".into()]),
            Value::from("ann@example.com"),
            Value::Many(vec!["a|b".into(), "c".into()]),
        ],
    );
    let c = contact(Mapping::standard().apply(&rec));
    assert_eq!(c.name, "Ann");
    assert_eq!(c.grants, ["a", "b", "c"]);
}

#[test]
fn when_applies_to_the_standard_layout() {
    let mapping = super::compile(&[], Some("kind == 'partner'"));
    assert!(mapping.is_standard());
    let row = |kind| {
        record(&[
            ("contact_id", "1"),
            ("name", "Ann"),
            ("email", "ann@example.com"),
            ("kind", kind),
        ])
    };
    assert!(matches!(mapping.apply(&row("partner")), Mapped::Contact(_)));
    assert_eq!(mapping.apply(&row("staff")), Mapped::Skipped);
}

#[test]
fn fingerprints_follow_the_row_and_the_mapping() {
    let standard = Mapping::standard();
    let row = [("contact_id", "c-1"), ("name", "Ann"), ("email", "a@x.cz")];
    let fp = |m: &Mapping, attrs: &[(&str, &str)]| m.fingerprint(&record(attrs));
    assert_eq!(
        fp(&standard, &row),
        fp(&Mapping::standard(), &row),
        "stable"
    );
    // Any value, any name, any boundary between values counts.
    let renamed = [("contact_id", "c-1"), ("name", "Anna"), ("email", "a@x.cz")];
    assert_ne!(fp(&standard, &row), fp(&standard, &renamed));
    let shifted = [("contact_id", "c-1"), ("name", "Ann"), ("email2", "a@x.cz")];
    assert_ne!(fp(&standard, &row), fp(&standard, &shifted));
    let moved = [("contact_id", "c-1"), ("name", "An"), ("email", "na@x.cz")];
    assert_ne!(fp(&standard, &row), fp(&standard, &moved));
    // The same row under another mapping is another digest.
    let filtered = Mapping::compile(&spec(&[], Some("name == 'Ann'"))).unwrap();
    assert_ne!(fp(&standard, &row), fp(&filtered, &row));

    // A missing trailing value is not an empty one; one value of a
    // multi-valued attribute is not a single value.
    let schema = Arc::new(Schema::new(vec!["contact_id".into(), "grants".into()]));
    let with = |values: Vec<Value>| {
        standard.fingerprint(&Record::new(
            Location::line("f", 2),
            Arc::clone(&schema),
            values,
        ))
    };
    let one = with(vec!["c-1".into()]);
    let empty = with(vec!["c-1".into(), "".into()]);
    let single = with(vec!["c-1".into(), "a".into()]);
    let many = with(vec!["c-1".into(), Value::Many(vec!["a".into()])]);
    let many2 = with(vec![
        "c-1".into(),
        Value::Many(vec!["a".into(), "b".into()]),
    ]);
    let joined = with(vec!["c-1".into(), Value::Many(vec!["ab".into()])]);
    let all = [one, empty, single, many, many2, joined];
    for (i, a) in all.iter().enumerate() {
        for b in &all[i + 1..] {
            assert_ne!(a, b, "{all:?}");
        }
    }
}

#[test]
fn account_domains_are_split_checked_and_lower_cased() {
    let row = |domains: &str| {
        record(&[
            ("contact_id", "c-1"),
            ("name", "Ann"),
            ("email", "ann@acme.example"),
            ("account_domains", domains),
        ])
    };
    let domains = |mapped: Mapped| -> Vec<String> {
        contact(mapped)
            .account_domains
            .iter()
            .map(|d| d.as_str().to_owned())
            .collect()
    };
    let standard = Mapping::standard();
    assert_eq!(
        domains(standard.apply(&row(" ACME.example | acme.cz ||acme.example"))),
        ["acme.example", "acme.cz"]
    );
    assert!(domains(standard.apply(&row(" | "))).is_empty());
    let (id, message) = invalid(standard.apply(&row("acme.example|acme")));
    assert_eq!(
        id.as_deref(),
        Some("c-1"),
        "the contact still counts as present"
    );
    assert_eq!(
        message,
        "account_domains: \"acme\" is not an e-mail domain (expected a dotted name such as example.com)"
    );

    // From a template, and from a multi-valued attribute: every value.
    let mapping = Mapping::compile(&spec(
        &[
            ("contact_id", "{{ id }}"),
            ("name", "{{ cn }}"),
            ("email", "{{ mail }}"),
            ("account_domains", "{{ domains }}"),
        ],
        None,
    ))
    .unwrap();
    let schema = Arc::new(Schema::new(
        ["id", "cn", "mail", "domains"].map(String::from).to_vec(),
    ));
    let values = || -> Vec<Value> {
        vec![
            "c-1".into(),
            "Ann".into(),
            "ann@acme.example".into(),
            Value::Many(vec!["A.example".into(), "b.example".into()]),
        ]
    };
    let many = Record::new(Location::line("f", 2), schema, values());
    assert_eq!(domains(mapping.apply(&many)), ["a.example", "b.example"]);
    let standard_schema = Arc::new(Schema::new(
        ["contact_id", "name", "email", "account_domains"]
            .map(String::from)
            .to_vec(),
    ));
    let many = Record::new(Location::line("f", 2), standard_schema, values());
    assert_eq!(domains(standard.apply(&many)), ["a.example", "b.example"]);
}

#[test]
fn only_files_with_an_added_column_get_new_fingerprints() {
    let standard = Mapping::standard();
    let without = [("contact_id", "c-1"), ("name", "Ann"), ("email", "a@x.cz")];
    let with = [
        ("contact_id", "c-1"),
        ("name", "Ann"),
        ("email", "a@x.cz"),
        ("account_domains", "x.cz"),
    ];
    // Both as the build before `account_domains` was a field digested them.
    assert_eq!(
        standard.fingerprint(&record(&without)),
        0x1f17_6037_7d5b_a5c0,
        "a file without the column keeps its stored fingerprints"
    );
    assert_ne!(
        standard.fingerprint(&record(&with)),
        0xa84c_10f1_df5b_c525,
        "a file that had the column is mapped afresh once"
    );
}
