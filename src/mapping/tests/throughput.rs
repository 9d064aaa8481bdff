//! Measurements, not checks: run with
//! `cargo test --release --lib mapping::tests::throughput -- --ignored --nocapture`.

use std::sync::Arc;
use std::time::Instant;

use liaison_plugin_api::{Location, Record, Schema, Value};

use super::{compile, Mapped, Mapping};

/// `n` distinct standard-layout rows sharing one schema, as the CSV connector gives them.
fn rows(n: u32) -> Vec<Record> {
    let names = [
        "contact_id",
        "name",
        "email",
        "phone",
        "account_id",
        "account_name",
        "grants",
        "account_tickets",
        "attributes.licence_key",
    ];
    let schema = Arc::new(Schema::new(names.map(String::from).to_vec()));
    let file: Arc<str> = "big.csv".into();
    (0..n)
        .map(|i| {
            let values = [
                format!("c-{i:07}"),
                format!("Jiří Dvořák {i}"),
                format!("jiri.dvorak{i}@example.com"),
                format!("+420 777 {i:06}"),
                format!("acme-{}", i % 1000),
                format!("Acme, s.r.o. {}", i % 1000),
                "sales|support".to_owned(),
                "yes".to_owned(),
                format!("LK-{i}"),
            ];
            Record::new(
                Location::Line {
                    file: Arc::clone(&file),
                    line: u64::from(i) + 2,
                },
                Arc::clone(&schema),
                values.into_iter().map(Value::One).collect(),
            )
        })
        .collect()
}

fn measure(label: &str, mapping: &Mapping, records: &[Record], passes: u32) {
    let start = Instant::now();
    let mut contacts = 0u64;
    for _ in 0..passes {
        for record in records {
            if let Mapped::Contact(c) = mapping.apply(record) {
                contacts += 1;
                std::hint::black_box(c);
            }
        }
    }
    let elapsed = start.elapsed();
    assert_eq!(contacts, records.len() as u64 * u64::from(passes));
    eprintln!("{label}: {contacts} records mapped in {elapsed:?}");
}

#[test]
#[ignore = "a measurement, not a check: run in release"]
fn standard_layout_one_million_rows() {
    measure("standard layout", &Mapping::standard(), &rows(10_000), 100);
}

#[test]
#[ignore = "a measurement, not a check: run in release"]
fn templates_one_hundred_thousand_rows() {
    let mapping = compile(
        &[
            ("contact_id", "{{ contact_id }}"),
            ("name", "{{ name }}"),
            ("email", "{{ email | lower }}"),
            ("account_id", "{{ account_name | slug }}"),
            ("grants", "{{ grants }}"),
            (
                "attributes.licence_key",
                "{{ record['attributes.licence_key'] }}",
            ),
        ],
        Some("account_tickets == 'yes'"),
    );
    measure("templates", &mapping, &rows(10_000), 10);
}

#[test]
#[ignore = "a measurement, not a check: run in release"]
fn baseline_clone_one_million_rows() {
    let records = rows(10_000);
    let start = Instant::now();
    for _ in 0..100 {
        for record in &records {
            std::hint::black_box(record.clone());
        }
    }
    eprintln!("baseline: 1000000 record clones in {:?}", start.elapsed());
}

/// The floor: the same contact built by hand, without any mapping logic.
#[test]
#[ignore = "a measurement, not a check: run in release"]
fn baseline_hand_built_contacts() {
    use crate::model::{ContactFields, ContactRecord, Email};
    let records = rows(10_000);
    let start = Instant::now();
    for _ in 0..100 {
        for r in &records {
            let s = |i: usize| {
                r.value_at(i)
                    .and_then(|v| v.first())
                    .unwrap_or_default()
                    .to_owned()
            };
            let c = ContactRecord::new(ContactFields {
                contact_id: s(0),
                name: s(1),
                email: Email::parse(r.value_at(2).and_then(|v| v.first()).unwrap_or_default())
                    .unwrap(),
                phone: Some(s(3)),
                account_id: Some(s(4)),
                account_name: Some(s(5)),
                account_domains: Vec::new(),
                login: None,
                description: None,
                locale: None,
                account_contacts: None,
                account_tickets: Some(true),
                external_comments: None,
                grants: vec!["sales".to_owned(), "support".to_owned()],
                attributes: [("licence_key".to_owned(), s(8))].into_iter().collect(),
                fingerprint: 0,
            });
            std::hint::black_box(c);
        }
    }
    eprintln!(
        "baseline: 1000000 hand-built contacts in {:?}",
        start.elapsed()
    );
}
