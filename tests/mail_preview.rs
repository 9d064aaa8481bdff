//! `liaison mail preview`: the message for a stored or sample user, both
//! locales, the locale fallback, an override folder, and broken overrides
//! refused by `validate` naming the file.

use mailparse::{addrparse_header, parse_mail, MailAddr, MailHeaderMap};

use crate::common::{csv_config, Run, Sandbox};

const MAIL: &str = "mail:\n  transport: file://mail\n  from: \"Support <support@example.com>\"\n  timezone: Europe/Prague";
const PORTAL: &str = "portal:\n  url: https://support.example.com/clients/login";

/// A sandbox with `sections` beside `portal:` and `mail:`, and two users:
/// `anna` (cs), `bob` (en) and `eve` (de, a name that tries to add a Bcc).
fn sandbox(sections: &[&str]) -> Sandbox {
    let mut all = vec![PORTAL, MAIL];
    all.extend_from_slice(sections);
    let s = Sandbox::new(&csv_config("partners.csv", &[], &all));
    s.write(
        "partners.csv",
        "contact_id,name,email,login,account_id,account_name,locale\r\n\
         c1,Anna Nováková,anna@acme.example,anna,acme,Acme & Co,cs\r\n\
         c2,Bob Smith,bob@vendor.example,bob,vendor,Vendor Ltd,en\r\n\
         c3,\"Eve\r\nBcc: x@evil.test\",eve@acme.example,eve,acme,Acme & Co,de\r\n",
    );
    s
}

/// What a test checks of a previewed message.
struct Mail {
    headers: Vec<(String, String)>,
    subject: String,
    /// The To header, decoded.
    to: String,
    /// The To header's one mailbox: display name and address.
    to_mailbox: (Option<String>, String),
    text: String,
    html: String,
}

impl Mail {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// The previewed message, parsed by an independent MIME parser.
#[track_caller]
fn parsed(run: Run) -> Mail {
    let run = run.expect(0);
    let mail = parse_mail(run.stdout.as_bytes()).expect("an RFC 5322 message");
    assert_eq!(mail.ctype.mimetype, "multipart/alternative");
    assert_eq!(mail.subparts.len(), 2, "{}", run.stdout);
    assert_eq!(mail.subparts[0].ctype.mimetype, "text/plain");
    assert_eq!(mail.subparts[1].ctype.mimetype, "text/html");
    Mail {
        headers: mail
            .headers
            .iter()
            .map(|h| (h.get_key(), h.get_value()))
            .collect(),
        subject: mail.headers.get_first_value("Subject").expect("a subject"),
        to: mail.headers.get_first_value("To").expect("a To"),
        to_mailbox: {
            let header = mail.headers.get_first_header("To").expect("a To");
            let list = addrparse_header(header).expect("a To mailbox");
            assert_eq!(list.len(), 1, "{list:?}");
            match &list[0] {
                MailAddr::Single(info) => (info.display_name.clone(), info.addr.clone()),
                MailAddr::Group(group) => panic!("To is a group: {group:?}"),
            }
        },
        text: mail.subparts[0].get_body().expect("text"),
        html: mail.subparts[1].get_body().expect("html"),
    }
}

fn preview(s: &Sandbox, args: &[&str]) -> Mail {
    let mut all = vec!["mail", "preview"];
    all.extend_from_slice(args);
    parsed(s.run(&all))
}

#[test]
fn welcome_for_stored_users_in_both_locales() {
    let s = sandbox(&[]);
    s.sync(0);

    let cs = preview(&s, &["welcome", "--login", "anna"]);
    assert_eq!(cs.subject, "Váš účet na portálu je připraven: anna");
    assert_eq!(cs.to, "Anna Nováková <anna@acme.example>");
    assert_eq!(cs.to_mailbox.0.as_deref(), Some("Anna Nováková"));
    assert!(cs.text.contains("Přihlašovací jméno: anna"), "{}", cs.text);
    assert!(cs.text.contains("Společnost: Acme & Co"), "{}", cs.text);
    assert!(
        cs.html.contains("Společnost:</td><td>Acme &amp; Co"),
        "{}",
        cs.html
    );
    assert!(cs
        .text
        .contains("Portál: https://support.example.com/clients/login"));
    // The placeholder link says it is a preview.
    assert!(
        cs.text
            .lines()
            .any(|l| l == "https://liaison.invalid/password?token=PREVIEW-no-token-was-made"),
        "{}",
        cs.text
    );
    assert!(cs.html.contains("PREVIEW-no-token-was-made"));
    assert_eq!(cs.header("Auto-Submitted"), Some("auto-generated"));
    assert_eq!(cs.header("From"), Some("Support <support@example.com>"));
    assert_eq!(
        cs.header("Message-ID"),
        Some("<preview.welcome@example.com>")
    );
    assert!(cs.header("Date").is_some());

    let en = preview(&s, &["welcome", "--login", "bob"]);
    assert_eq!(en.subject, "Your portal account is ready: bob");
    assert!(en.text.starts_with("Hello Bob Smith,"), "{}", en.text);
    assert!(en.text.contains("Company: Vendor Ltd"));

    let confirmation = preview(&s, &["registration_confirmation", "--login", "bob"]);
    assert_eq!(confirmation.subject, "We have received your registration");
    assert!(confirmation.text.contains("E-mail: bob@vendor.example"));
    assert!(!confirmation.text.contains("PREVIEW"));
}

#[test]
fn a_name_with_cr_lf_adds_no_header() {
    let s = sandbox(&[]);
    s.sync(0);
    let run = s.run(&["mail", "preview", "welcome", "--login", "eve"]);
    let head = run
        .stdout
        .split("\r\n\r\n")
        .next()
        .unwrap_or_default()
        .to_owned();
    assert!(
        !head
            .lines()
            .any(|l| l.to_ascii_lowercase().starts_with("bcc")),
        "{head}"
    );
    let mail = parsed(run);
    assert!(mail.header("Bcc").is_none());
    let (name, address) = &mail.to_mailbox;
    assert_eq!(name.as_deref(), Some("Eve Bcc: x@evil.test"));
    assert_eq!(address, "eve@acme.example");
}

#[test]
fn locale_falls_back_to_default_locale_then_en() {
    // eve's `de` has no templates: default_locale `cs` has.
    let s = sandbox(&["default_locale: cs"]);
    s.sync(0);
    let mail = preview(&s, &["welcome", "--login", "eve"]);
    assert_eq!(mail.subject, "Váš účet na portálu je připraven: eve");

    // Neither `de` nor default_locale `fr` has templates: English.
    let s = sandbox(&["default_locale: fr"]);
    s.sync(0);
    let mail = preview(&s, &["welcome", "--login", "eve"]);
    assert_eq!(mail.subject, "Your portal account is ready: eve");
    // --locale overrides the user's; a region falls back to its language.
    let mail = preview(&s, &["welcome", "--login", "bob", "--locale", "cs-CZ"]);
    assert!(mail.subject.starts_with("Váš účet"), "{}", mail.subject);
}

#[test]
fn a_sample_user_without_login_and_no_store_is_made() {
    let s = sandbox(&["default_locale: cs"]);
    let mail = preview(&s, &["registration_confirmation"]);
    assert_eq!(mail.subject, "Potvrzení registrace na zákaznický portál");
    assert!(mail.text.contains("jan.novak"));
    assert!(!s.path().join("liaison.db").exists());
    let mail = preview(&s, &["registration_confirmation", "--locale", "en"]);
    assert_eq!(mail.subject, "We have received your registration");
}

#[test]
fn an_override_folder_replaces_file_by_file_and_adds_locales() {
    let s = sandbox(&["  templates: tpl"]);
    s.write("tpl/README.md", "Not a template {{ broken");
    s.write("tpl/welcome/notes.txt", "not a template either {{");
    s.write("tpl/welcome/cs.subject", "Vítejte, {{ title }}!\n");
    s.write("tpl/welcome/de.subject", "Willkommen, {{ login }}\n");
    s.write(
        "tpl/welcome/de.txt",
        "Hallo {{ title }}\n{{ set_password_url }}\n",
    );
    s.write("tpl/welcome/de.html", "<p>Hallo {{ title }}</p>\n");
    s.run(&["validate"]).expect(0);
    s.sync(0);

    let cs = preview(&s, &["welcome", "--login", "anna"]);
    assert_eq!(cs.subject, "Vítejte, Anna Nováková!");
    assert!(cs.text.contains("Přihlašovací jméno: anna"), "built in");

    let de = preview(&s, &["welcome", "--login", "eve"]);
    assert_eq!(de.subject, "Willkommen, eve");
    assert!(
        de.text.starts_with("Hallo Eve Bcc: x@evil.test\r\n"),
        "{:?}",
        de.text
    );
    assert!(de.html.contains("<p>Hallo Eve Bcc: x@evil.test</p>"));

    // registration_confirmation has no `de`: default_locale (en).
    let rc = preview(&s, &["registration_confirmation", "--login", "eve"]);
    assert_eq!(rc.subject, "We have received your registration");
}

/// `validate` with `file` of the override folder holding `text`: its stderr.
fn validate_with(file: &str, text: &str) -> String {
    let s = sandbox(&["  templates: tpl"]);
    s.write(&format!("tpl/{file}"), text);
    let run = s.run(&["validate"]).expect(2);
    let folder = s.path().join("tpl");
    run.stderr.replace(&folder.display().to_string(), "TPL")
}

#[test]
fn broken_overrides_are_validate_errors_naming_file_and_line() {
    let stderr = validate_with("welcome/en.html", "<p>\n{{ login }}\n{{ title | }}\n</p>\n");
    assert!(
        stderr.contains("mail.templates: TPL/welcome/en.html:3:"),
        "{stderr}"
    );
    assert!(stderr.contains("syntax error"), "{stderr}");
    assert!(stderr.contains("liaison.yaml:"), "{stderr}");

    let stderr = validate_with("welcome/en.txt", "Hello\n{% if login %}\nno end\n");
    assert!(stderr.contains("TPL/welcome/en.txt"), "{stderr}");

    let stderr = validate_with(
        "registration_confirmation/cs.txt",
        "Dobrý den,\n{{ set_password_url }}\n",
    );
    assert!(
        stderr.contains(
            "TPL/registration_confirmation/cs.txt:2:4: unknown variable \"set_password_url\""
        ),
        "{stderr}"
    );

    let stderr = validate_with(
        "welcome/en.subject",
        "Hello {{ title }}\nsecond line {{ login }}\n",
    );
    assert!(
        stderr.contains("TPL/welcome/en.subject: the subject must be one line"),
        "{stderr}"
    );

    let stderr = validate_with("welcome/en.txt", "{{ login | no_such_filter }}\n");
    assert!(
        stderr.contains("TPL/welcome/en.txt:1: unknown filter"),
        "{stderr}"
    );

    // A new locale needs all three files.
    let stderr = validate_with("welcome/de.txt", "Hallo\n");
    assert!(stderr.contains("missing de.subject, de.html"), "{stderr}");
}

#[test]
fn a_missing_override_folder_is_a_validate_error() {
    let s = sandbox(&["  templates: nowhere"]);
    let run = s.run(&["validate"]).expect(2);
    assert!(run.stderr.contains("mail.templates:"), "{}", run.stderr);
    assert!(
        run.stderr.contains("nowhere: cannot read"),
        "{}",
        run.stderr
    );
}

#[test]
fn an_unknown_kind_is_a_usage_error_listing_the_kinds() {
    let s = sandbox(&[]);
    let run = s.run(&["mail", "preview", "welcom"]).expect(2);
    assert!(run.stderr.contains("welcome"), "{}", run.stderr);
    assert!(
        run.stderr.contains("registration_confirmation"),
        "{}",
        run.stderr
    );
}

#[test]
fn an_unknown_login_fails_and_says_so() {
    let s = sandbox(&[]);
    s.sync(0);
    let run = s
        .run(&["mail", "preview", "welcome", "--login", "nobody"])
        .expect(1);
    assert!(
        run.stderr.contains("no user with login \"nobody\""),
        "{}",
        run.stderr
    );
}
