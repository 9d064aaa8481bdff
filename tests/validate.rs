//! `liaison validate`: every error, located, exit 2.

use crate::common::Sandbox;

#[test]
fn valid_config_exits_zero() {
    let s = Sandbox::new(crate::common::CONFIG);
    let r = s.run(&["validate"]).expect(0);
    assert!(r.stdout.contains("OK"), "{}", r.stdout);
}

#[test]
fn reports_every_error_with_file_line_column() {
    let s = Sandbox::new(
        "store: sqlite://liaison.db\n\
         sources:\n\
         \x20 - name: partners\n\
         \x20   type: csv\n\
         \x20   path: partners.csv\n\
         \x20   schedule: \"61 * * * *\"\n\
         \x20   delimeter: \";\"\n\
         \x20 - name: crm\n\
         \x20   type: ftp\n\
         safety:\n\
         \x20 max_deprovision: fifty\n",
    );
    let r = s.run(&["validate"]).expect(2);
    let file = s.config().display().to_string();
    let lines: Vec<&str> = r.stderr.lines().collect();
    assert_eq!(lines.len(), 4, "{}", r.stderr);
    assert!(lines[0].starts_with(&format!("{file}:6:")), "{}", lines[0]);
    assert!(lines[0].contains("61 * * * *"), "{}", lines[0]);
    assert!(
        lines[1].starts_with(&format!("{file}:7:5: ")),
        "{}",
        lines[1]
    );
    assert!(lines[1].contains("delimeter"), "{}", lines[1]);
    assert!(lines[2].starts_with(&format!("{file}:9:")), "{}", lines[2]);
    assert!(
        lines[2].contains("unknown connector type \"ftp\""),
        "{}",
        lines[2]
    );
    assert!(lines[3].starts_with(&format!("{file}:11:")), "{}", lines[3]);
    assert!(lines[3].contains("fifty"), "{}", lines[3]);
}

#[test]
fn template_errors_are_located_and_source_data_is_not_read() {
    let s = Sandbox::new(
        "store: sqlite://liaison.db\n\
         sources:\n\
         \x20 - name: partners\n\
         \x20   type: csv\n\
         \x20   path: does-not-exist.csv\n\
         \x20   map:\n\
         \x20     contact_id: \"{{ id }\"\n\
         \x20     name: \"{{ cn }}\"\n\
         \x20     email: \"{{ mail | lower }}\"\n",
    );
    let r = s.run(&["validate"]).expect(2);
    assert_eq!(r.stderr.lines().count(), 1, "{}", r.stderr);
    assert!(r.stderr.contains(":7:"), "{}", r.stderr);
    assert!(r.stderr.contains("contact_id"), "{}", r.stderr);
}

#[test]
fn other_commands_refuse_an_invalid_config() {
    let s = Sandbox::new("store: sqlite://liaison.db\nsources: []\nsafety:\n  max_deprovison: 5\n");
    let r = s.run(&["sync", "--once"]).expect(2);
    assert!(r.stderr.contains(":4:3:"), "{}", r.stderr);
    assert!(!s.path().join("liaison.db").exists(), "nothing is touched");
}

#[test]
fn usage_errors_exit_two() {
    let s = Sandbox::new(crate::common::CONFIG);
    s.run(&["sync"]).expect(2);
    s.run(&["sync", "--once", "--source", "nope"]).expect(2);
    s.run(&["users", "list", "--status", "enabled"]).expect(2);
}

#[test]
fn a_delimiter_equal_to_the_quote_is_an_error_at_its_key() {
    for (keys, line, key) in [
        // The default quote `"` given as the delimiter: the delimiter's line.
        ("    delimiter: '\"'\n", 6, "delimiter"),
        // The default delimiter `,` given as the quote: the quote's line.
        ("    quote: ','\n", 6, "quote"),
        // Both given: the second of them.
        ("    delimiter: ';'\n    quote: ';'\n", 7, "quote"),
        ("    quote: ';'\n    delimiter: ';'\n", 7, "delimiter"),
    ] {
        let s = Sandbox::new(&format!("{}{keys}", crate::common::CONFIG));
        let r = s.run(&["validate"]).expect(2);
        let file = s.config().display().to_string();
        let lines: Vec<&str> = r.stderr.lines().collect();
        assert_eq!(lines.len(), 1, "{keys}: {}", r.stderr);
        assert!(
            lines[0].starts_with(&format!("{file}:{line}:")),
            "{keys}: {}",
            lines[0]
        );
        assert!(
            lines[0].contains(&format!("sources[0].{key}: ")),
            "{keys}: {}",
            lines[0]
        );
        assert!(lines[0].contains("must differ"), "{keys}: {}", lines[0]);
    }
}

#[test]
fn an_unknown_mail_timezone_fails_validate() {
    let s = Sandbox::new(&format!(
        "{}mail:\n  transport: file://mail\n  from: portal@example.com\n  timezone: Europe/Prag\n",
        crate::common::CONFIG
    ));
    let r = s.run(&["validate"]).expect(2);
    let file = s.config().display().to_string();
    assert!(
        r.stderr.starts_with(&format!(
            "{file}:9:13: mail.timezone: unknown time zone \"Europe/Prag\""
        )),
        "{}",
        r.stderr
    );
}

#[test]
fn validate_warns_when_welcomes_can_have_no_set_password_link() {
    let base = "store: sqlite://liaison.db\n\
                sources:\n\
                \x20 - name: partners\n\
                \x20   type: csv\n\
                \x20   path: partners.csv\n\
                mail:\n\
                \x20 transport: file://mail\n\
                \x20 from: support@example.com\n";
    let s = Sandbox::new(base);
    let r = s.run(&["validate"]).expect(0);
    assert!(
        r.stderr
            .contains("warning: mail.welcome: welcomes have no set-password link")
            && r.stderr.contains("api.public_url"),
        "{}",
        r.stderr
    );
    let s = Sandbox::new(&format!(
        "{base}api:\n  listen: 127.0.0.1:0\n  public_url: https://liaison.example.com\n"
    ));
    let r = s.run(&["validate"]).expect(0);
    assert!(!r.stderr.contains("warning"), "{}", r.stderr);
}
