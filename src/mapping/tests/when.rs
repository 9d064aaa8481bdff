use super::{compile, compile_err, record, Mapped};

const FIELDS: &[(&str, &str)] = &[
    ("contact_id", "{{ id }}"),
    ("name", "{{ cn }}"),
    ("email", "{{ mail }}"),
];

fn kept(when: &str, attributes: &[(&str, &str)]) -> bool {
    let mut row = vec![("id", "1"), ("cn", "Ann"), ("mail", "ann@example.com")];
    row.extend_from_slice(attributes);
    match compile(FIELDS, Some(when)).apply(&record(&row)) {
        Mapped::Contact(_) => true,
        Mapped::Skipped => false,
        Mapped::Invalid { message, .. } => panic!("{when}: {message}"),
    }
}

#[test]
fn with_and_without_braces() {
    for when in [
        "employeeType == 'partner'",
        "{{ employeeType == 'partner' }}",
        "  {{- employeeType == 'partner' -}}  ",
    ] {
        assert!(kept(when, &[("employeeType", "partner")]), "{when}");
        assert!(!kept(when, &[("employeeType", "staff")]), "{when}");
        assert!(!kept(when, &[]), "{when}: missing attribute");
    }
    for when in ["portal == 'yes'", "{{ portal == 'yes' }}"] {
        assert!(kept(when, &[("portal", "yes")]), "{when}");
        assert!(!kept(when, &[("portal", "no")]), "{when}");
    }
}

#[test]
fn truthiness_is_the_value_not_rendered_text() {
    // The text "false" is a non-empty string, hence true: nothing compares
    // rendered output with "true".
    assert!(kept("portal", &[("portal", "false")]));
    assert!(!kept("portal", &[("portal", "")]));
    assert!(!kept("portal", &[]));
    assert!(kept(
        "portal | lower in ['yes', 'true', '1']",
        &[("portal", "TRUE")]
    ));
    assert!(!kept(
        "portal | lower in ['yes', 'true', '1']",
        &[("portal", "no")]
    ));
    assert!(kept(
        "record['Portal Access'] == 'Y'",
        &[("Portal Access", "Y")]
    ));
    assert!(kept("not blocked", &[]));
}

#[test]
fn bad_when_is_a_map_error_keyed_when() {
    for bad in ["{{ a == }}", "a ==", "{{ }}", "", "{{ a }} and {{ b }}"] {
        let errors = compile_err(FIELDS, Some(bad));
        assert_eq!(errors.len(), 1, "{bad:?}: {errors:?}");
        assert_eq!(errors[0].key, "when", "{bad:?}");
    }
    let errors = compile_err(FIELDS, Some("{{ a == }}"));
    assert!(
        errors[0].message.contains("line 1, column"),
        "{}",
        errors[0]
    );
}

#[test]
fn when_errors_at_run_time_are_row_errors() {
    let mapping = compile(FIELDS, Some("id | regex_replace(id, '')"));
    match mapping.apply(&record(&[("id", "5(")])) {
        Mapped::Invalid {
            contact_id,
            message,
        } => {
            assert_eq!(contact_id.as_deref(), Some("5("));
            assert!(message.starts_with("when: "), "{message}");
            assert!(message.contains("invalid pattern"), "{message}");
        }
        other => panic!("{other:?}"),
    }
}

/// `kept`, for a row with `age`.
fn kept_age(when: &str, age: &str) -> bool {
    kept(when, &[("age", age)])
}

#[test]
fn numeric_text_compares_as_a_number() {
    assert!(kept_age("age > 18", "19"));
    assert!(
        !kept_age("age > 18", "9"),
        "9 < 18, though \"9\" > \"18\" as text"
    );
    assert!(kept_age("age >= 18", "18"));
    assert!(
        kept_age("age >= 18", " 18 "),
        "surrounding spaces are ignored"
    );
    assert!(!kept_age("age < 18", "100"));
    assert!(kept_age("age < 18.5", "18.25"));
    assert!(kept_age("age > -1", "0"));
    assert!(kept_age("age > 1e2", "101"));
    assert!(kept_age("{{ 10 < age <= 20 }}", "20"));
    assert!(!kept_age("10 < age <= 20", "21"));
    assert!(
        kept_age("age == 18", "18"),
        "== with a number compares numbers"
    );
    assert!(kept_age("age == 18", "18.0"));
    assert!(kept_age("age != 18", "19"));
    assert!(kept_age("age | int > 18", "19"));
    assert!(kept_age("age is gt(18)", "19"));
    assert!(!kept_age("age is gt 18", "9"));
    assert!(kept_age("not age < 18", "30"));
    assert!(kept_age("(age > 18) == true", "30"));
}

#[test]
fn text_with_text_compares_as_before() {
    // Equality of text with text is text equality: leading zeros matter.
    assert!(!kept(
        "zip == other",
        &[("zip", "01234"), ("other", "1234")]
    ));
    assert!(kept("zip == '01234'", &[("zip", "01234")]));
    assert!(!kept("zip == '1234'", &[("zip", "01234")]));
    // Ordering of text that is not a number is text ordering.
    assert!(kept("name < 'M'", &[("name", "Adam")]));
    assert!(!kept("name < 'M'", &[("name", "Zoe")]));
    // Both sides read as numbers: numeric ordering.
    assert!(kept("a < b", &[("a", "9"), ("b", "10")]));
    // `in` is unchanged.
    assert!(kept("'da' in name", &[("name", "Adam")]));
    assert!(kept("age not in ['1', '2']", &[("age", "3")]));
}

#[test]
fn comparing_other_text_with_a_number_is_a_row_error() {
    let mut row = vec![("id", "7"), ("cn", "Ann"), ("mail", "ann@example.com")];
    for (when, age) in [
        ("age > 18", Some("unknown")),
        ("age > 18", Some("")),
        ("age > 18", None),
        ("age is gt(18)", Some("n/a")),
        ("age == 18 or age > 18", Some("x")),
    ] {
        row.truncate(3);
        if let Some(age) = age {
            row.push(("age", age));
        }
        let mapping = compile(FIELDS, Some(when));
        match mapping.apply(&record(&row)) {
            Mapped::Invalid {
                contact_id,
                message,
            } => {
                assert_eq!(contact_id.as_deref(), Some("7"));
                assert!(message.starts_with(&format!("when: {when}: ")), "{message}");
                assert!(message.contains("cannot compare"), "{message}");
                if let Some(age) = age {
                    assert!(message.contains(&format!("{age:?}")), "{message}");
                }
            }
            other => panic!("{when} with {age:?}: {other:?}"),
        }
    }
    // Equality with a number is simply false for other text.
    assert!(!kept_age("age == 18", "eighteen"));
    assert!(kept_age("age != 18", "eighteen"));
}

#[test]
fn unknown_names_in_when_are_compile_errors() {
    for (when, what) in [
        ("kind | lowr == 'x'", "unknown filter \"lowr\""),
        ("kind is partnr", "unknown test \"partnr\""),
        ("frob(kind)", "unknown function \"frob\""),
        ("kind.lower() == 'x'", "lower"),
    ] {
        let errors = compile_err(FIELDS, Some(when));
        assert_eq!(errors.len(), 1, "{when}: {errors:?}");
        assert_eq!(errors[0].key, "when");
        assert!(errors[0].message.contains(what), "{when}: {}", errors[0]);
        assert!(
            errors[0].message.contains("(line 1, column"),
            "{}",
            errors[0]
        );
    }
    // Positions are in the text as written, braces included.
    let errors = compile_err(FIELDS, Some("{{ kind | lowr }}"));
    assert!(errors[0].message.contains("column 11"), "{}", errors[0]);
}

#[test]
fn a_when_nested_too_deeply_is_a_compile_error() {
    let when = format!("kind{}", " | lower".repeat(5_000));
    let errors = compile_err(FIELDS, Some(&when));
    assert_eq!(errors[0].key, "when");
    assert!(errors[0].message.contains("deep"), "{}", errors[0]);
    // Deep enough for real use.
    let when = format!("kind{} == 'x'", " | lower".repeat(100));
    compile(FIELDS, Some(&when));
}
