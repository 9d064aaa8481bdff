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
    let mapping = compile(FIELDS, Some("id | no_such_filter"));
    match mapping.apply(&record(&[("id", "5")])) {
        Mapped::Invalid {
            contact_id,
            message,
        } => {
            assert_eq!(contact_id.as_deref(), Some("5"));
            assert!(message.starts_with("when: "), "{message}");
        }
        other => panic!("{other:?}"),
    }
}
