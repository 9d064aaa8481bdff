use std::sync::Arc;

use liaison_plugin_api::{Location, Record, Schema, Value};

use super::{compile, compile_err, contact, invalid, record, Mapped};

/// Renders `template` as the `name` field against `attributes`.
fn render(template: &str, attributes: &[(&str, &str)]) -> Option<String> {
    let mapping = compile(
        &[
            ("contact_id", "x"),
            ("name", "n"),
            ("email", "a@example.com"),
            ("description", template),
        ],
        None,
    );
    contact(mapping.apply(&record(attributes))).description
}

#[test]
fn variables_and_record_lookup() {
    let attrs = [("mail", "ann@example.com"), ("First Name", "Ann")];
    assert_eq!(
        render("{{ mail }}", &attrs).as_deref(),
        Some("ann@example.com")
    );
    assert_eq!(
        render("{{ record['First Name'] }}!", &attrs).as_deref(),
        Some("Ann!")
    );
    assert_eq!(
        render("{{ record[\"mail\"] }}", &attrs).as_deref(),
        Some("ann@example.com")
    );
}

#[test]
fn missing_attributes_render_empty() {
    assert_eq!(render("{{ nope }}", &[]), None, "empty means not said");
    assert_eq!(render("[{{ nope }}]", &[]).as_deref(), Some("[]"));
    assert_eq!(
        render("[{{ record['No Such'] }}]", &[]).as_deref(),
        Some("[]")
    );
    assert_eq!(render("[{{ nope.deeper }}]", &[]).as_deref(), Some("[]"));
    assert_eq!(
        render("[{{ nope | lower | trim }}]", &[]).as_deref(),
        Some("[]")
    );
    assert_eq!(render("[{{ nope | slug }}]", &[]).as_deref(), Some("[]"));
}

#[test]
fn builtin_filters_lower_trim_split() {
    let attrs = [("v", "  Mixed Case  "), ("teams", "a,b , c")];
    assert_eq!(
        render("[{{ v | lower }}]", &attrs).as_deref(),
        Some("[  mixed case  ]")
    );
    assert_eq!(
        render("[{{ v | trim }}]", &attrs).as_deref(),
        Some("[Mixed Case]")
    );
    assert_eq!(
        render("[{{ v | trim | upper }}]", &attrs).as_deref(),
        Some("[MIXED CASE]")
    );
    assert_eq!(
        render("{{ (teams | split(','))[1] | trim }}", &attrs).as_deref(),
        Some("b")
    );
    assert_eq!(
        render("{{ teams | split(',') | map('trim') | join('+') }}", &attrs).as_deref(),
        Some("a+b+c")
    );
}

#[test]
fn default_replaces_undefined_and_with_true_also_empty() {
    let attrs = [("empty", "")];
    assert_eq!(
        render("{{ nope | default('n/a') }}", &attrs).as_deref(),
        Some("n/a")
    );
    // minijinja 3, like Jinja2: an empty string is defined, so plain default keeps it.
    assert_eq!(
        render("[{{ empty | default('n/a') }}]", &attrs).as_deref(),
        Some("[]")
    );
    assert_eq!(
        render("{{ empty | default('n/a', true) }}", &attrs).as_deref(),
        Some("n/a")
    );
}

#[test]
fn slug_filter() {
    let attrs = [
        ("a", "Acme s.r.o. Praha"),
        ("b", "Dvořák & Syn"),
        ("c", " --Ünïcode!! 42-- "),
    ];
    assert_eq!(
        render("{{ a | slug }}", &attrs).as_deref(),
        Some("acme-s-r-o-praha")
    );
    assert_eq!(
        render("{{ b | slug }}", &attrs).as_deref(),
        Some("dvorak-syn")
    );
    assert_eq!(
        render("{{ c | slug }}", &attrs).as_deref(),
        Some("unicode-42")
    );
    assert_eq!(
        render("{{ 'Иван Петров' | slug }}", &attrs).as_deref(),
        Some("ivan-petrov")
    );
}

#[test]
fn regex_replace_filter() {
    let attrs = [
        ("phone", "+420 (123) 456-789"),
        ("dn", "cn=Ann,ou=Sales,o=Acme"),
    ];
    assert_eq!(
        render(r#"{{ phone | regex_replace("[^0-9+]", "") }}"#, &attrs).as_deref(),
        Some("+420123456789")
    );
    assert_eq!(
        render(
            r#"{{ dn | regex_replace("^cn=([^,]+),.*$", "$1") }}"#,
            &attrs
        )
        .as_deref(),
        Some("Ann")
    );
    assert_eq!(
        render(
            r#"{{ dn | regex_replace("ou=(?P<unit>\\w+)", "unit:${unit}") }}"#,
            &attrs
        )
        .as_deref(),
        Some("cn=Ann,unit:Sales,o=Acme")
    );
    let mapping = compile(
        &[
            ("contact_id", "{{ id }}"),
            ("name", r#"{{ n | regex_replace(pattern, "") }}"#),
            ("email", "a@example.com"),
        ],
        None,
    );
    let row = [("id", "7"), ("n", "x"), ("pattern", "[a-")];
    let (id, message) = invalid(mapping.apply(&record(&row)));
    assert_eq!(id.as_deref(), Some("7"));
    assert!(message.starts_with("name: "), "{message}");
    assert!(message.contains("invalid pattern"), "{message}");
    assert!(!message.contains('\n'), "one line: {message}");
}

#[test]
fn full_template_mapping() {
    let mapping = compile(
        &[
            ("contact_id", "{{ entryUUID }}"),
            ("name", "{{ cn }}"),
            ("email", "{{ mail | lower }}"),
            ("account_id", "{{ o | slug }}"),
            ("account_name", "{{ o }}"),
            ("login", "{{ uid | lower }}"),
            (
                "account_tickets",
                "{{ 'yes' if title == 'Manager' else 'no' }}",
            ),
            ("grants", "{{ teams }}"),
            ("attributes.licence_key", "{{ record['Licence Key'] }}"),
            ("attributes.missing", "{{ nope }}"),
        ],
        None,
    );
    let c = contact(mapping.apply(&record(&[
        ("entryUUID", "u-1"),
        ("cn", "Jiří Dvořák"),
        ("mail", "Jiri@Example.COM"),
        ("o", "Dvořák & Syn"),
        ("uid", "JDVORAK"),
        ("title", "Manager"),
        ("teams", "sales|support"),
        ("Licence Key", "LK-1"),
    ])));
    assert_eq!(c.contact_id, "u-1");
    assert_eq!(c.email.as_str(), "jiri@example.com");
    assert_eq!(c.account_id.as_deref(), Some("dvorak-syn"));
    assert_eq!(c.account_name.as_deref(), Some("Dvořák & Syn"));
    assert_eq!(c.login.as_ref().map(|l| l.as_str()), Some("jdvorak"));
    assert_eq!(c.account_tickets, Some(true));
    assert_eq!(c.grants, ["sales", "support"]);
    assert_eq!(c.attributes.get("licence_key"), Some("LK-1"));
    assert!(!c.attributes.contains_key("missing"));
}

#[test]
fn grants_from_lists_and_text() {
    let with = |template: &str, rec: &Record| {
        let mapping = compile(
            &[
                ("contact_id", "1"),
                ("name", "n"),
                ("email", "a@example.com"),
                ("grants", template),
            ],
            None,
        );
        contact(mapping.apply(rec)).grants
    };
    let rec = record(&[("teams", " a , b ,, c ")]);
    assert_eq!(with("{{ teams | split(',') }}", &rec), ["a", "b", "c"]);
    assert_eq!(
        with("{{ teams | replace(',', '|') }}", &rec),
        ["a", "b", "c"]
    );
    assert_eq!(with("x | {{ 'y' }}", &rec), ["x", "y"]);
    assert_eq!(with("sales|support", &rec), ["sales", "support"]);
    assert!(with("{{ nope }}", &rec).is_empty());

    let schema = Arc::new(Schema::new(vec!["memberOf".into()]));
    let ldap = Record::new(
        Location::Entry { dn: "cn=x".into() },
        schema,
        vec![Value::Many(vec!["admins".into(), "sales".into()])],
    );
    assert_eq!(with("{{ memberOf }}", &ldap), ["admins", "sales"]);
    assert_eq!(with("{{ memberOf | first }}", &ldap), ["admins"]);
    // Inside text a list prints as its first value (SPEC §2); every value
    // takes a loop or a filter.
    assert_eq!(with("x-{{ memberOf }}", &ldap), ["x-admins"]);
    assert_eq!(
        with("{% for g in memberOf %}x-{{ g }}|{% endfor %}", &ldap),
        ["x-admins", "x-sales"]
    );
}

#[test]
fn multi_valued_attributes_are_lists() {
    let schema = Arc::new(Schema::new(vec!["memberOf".into(), "mail".into()]));
    let rec = Record::new(
        Location::Entry { dn: "cn=x".into() },
        schema,
        vec![
            Value::Many(vec!["admins".into(), "sales".into()]),
            Value::Many(vec!["Ann@Example.com".into()]),
        ],
    );
    let mapping = compile(
        &[
            ("contact_id", "{{ memberOf | first }}"),
            (
                "name",
                "{{ memberOf | join(', ') }} ({{ memberOf | length }})",
            ),
            ("email", "{{ mail | lower }}"),
            (
                "description",
                "{{ 'yes' if 'sales' in memberOf else 'no' }}",
            ),
        ],
        None,
    );
    let c = contact(mapping.apply(&rec));
    assert_eq!(c.contact_id, "admins");
    assert_eq!(c.name, "admins, sales (2)");
    assert_eq!(
        c.email.as_str(),
        "ann@example.com",
        "a one-value list prints its value"
    );
    assert_eq!(c.description.as_deref(), Some("yes"));
}

#[test]
fn a_multi_valued_attribute_prints_its_first_value_and_lists_see_them_all() {
    let schema = Arc::new(Schema::new(vec!["mail".into()]));
    let rec = Record::new(
        Location::Entry { dn: "cn=x".into() },
        schema,
        vec![Value::Many(vec![
            "ann@a.example".into(),
            "ann@b.example".into(),
        ])],
    );
    let mapping = compile(
        &[
            ("contact_id", "c1"),
            ("name", "{{ mail | list | length }} {{ mail[1] }}"),
            ("email", "{{ mail }}"),
            ("description", "{% for m in mail %}<{{ m }}>{% endfor %}"),
        ],
        None,
    );
    let c = contact(mapping.apply(&rec));
    assert_eq!(c.email.as_str(), "ann@a.example");
    assert_eq!(c.name, "2 ann@b.example");
    assert_eq!(
        c.description.as_deref(),
        Some("<ann@a.example><ann@b.example>")
    );
}

#[test]
fn required_fields_rendering_empty_are_row_errors() {
    let mapping = compile(
        &[
            ("contact_id", "{{ id }}"),
            ("name", "{{ cn }}"),
            ("email", "{{ mail }}"),
        ],
        None,
    );
    let (id, message) = invalid(mapping.apply(&record(&[("id", "9"), ("cn", "Ann")])));
    assert_eq!(id.as_deref(), Some("9"));
    assert_eq!(message, "required field email is empty");
    let (id, message) = invalid(mapping.apply(&record(&[("cn", "Ann"), ("mail", "bad")])));
    assert_eq!(id, None);
    assert!(message.contains("contact_id"), "{message}");
    assert!(message.contains("invalid e-mail \"bad\""), "{message}");
    assert_eq!(
        mapping.contact_id_of(&record(&[("id", " 9 ")])).as_deref(),
        Some("9")
    );
    assert_eq!(mapping.contact_id_of(&record(&[])), None);
}

#[test]
fn render_errors_are_row_errors() {
    let mapping = compile(
        &[
            ("contact_id", "{{ id }}"),
            ("name", "{{ cn | regex_replace(cn, '') }}"),
            ("email", "{{ mail }}"),
        ],
        None,
    );
    let (id, message) = invalid(mapping.apply(&record(&[
        ("id", "3"),
        ("cn", "Ann("),
        ("mail", "ann@example.com"),
    ])));
    assert_eq!(id.as_deref(), Some("3"));
    assert!(message.starts_with("name: "), "{message}");
    assert!(message.contains("invalid pattern \"Ann(\""), "{message}");
}

#[test]
fn output_is_not_html_escaped() {
    assert_eq!(
        render("{{ v }}", &[("v", "Tom & <Jerry>")]).as_deref(),
        Some("Tom & <Jerry>")
    );
}

#[test]
fn portal_access_template_can_skip() {
    let mapping = compile(
        &[
            ("contact_id", "1"),
            ("name", "n"),
            ("email", "a@example.com"),
            ("portal_access", "{{ portal }}"),
        ],
        None,
    );
    assert_eq!(mapping.apply(&record(&[("portal", "No")])), Mapped::Skipped);
    assert!(matches!(
        mapping.apply(&record(&[("portal", "yes")])),
        Mapped::Contact(_)
    ));
    assert!(matches!(mapping.apply(&record(&[])), Mapped::Contact(_)));
}

#[test]
fn bad_template_is_a_map_error_with_position() {
    let errors = compile_err(
        &[
            ("contact_id", "{{ id }}"),
            ("name", "{{ cn }}"),
            ("email", "{{ mail | lower }"),
            ("description", "line one\n{% if x %}unclosed"),
        ],
        None,
    );
    assert_eq!(errors.len(), 2, "{errors:?}");
    assert_eq!(errors[0].key, "email");
    assert!(
        errors[0].message.starts_with("syntax error"),
        "{}",
        errors[0]
    );
    assert!(
        errors[0].message.contains("line 1, column"),
        "{}",
        errors[0]
    );
    assert_eq!(errors[1].key, "description");
    assert!(errors[1].message.contains("line 2"), "{}", errors[1]);
}

#[test]
fn bad_map_keys_are_named_with_the_valid_ones() {
    let errors = compile_err(
        &[
            ("contact_id", "{{ id }}"),
            ("name", "{{ cn }}"),
            ("email", "{{ mail }}"),
            ("mail", "{{ mail }}"),
            ("attributes.", "x"),
            ("name", "{{ sn }}"),
        ],
        None,
    );
    let keys: Vec<&str> = errors.iter().map(|e| e.key.as_str()).collect();
    assert_eq!(keys, ["mail", "attributes.", "name"], "{errors:?}");
    assert!(
        errors[0].message.contains("unknown key \"mail\""),
        "{}",
        errors[0]
    );
    assert!(
        errors[0].message.contains("contact_id, name, email"),
        "{}",
        errors[0]
    );
    assert!(
        errors[0].message.contains("attributes.KEY"),
        "{}",
        errors[0]
    );
    assert!(
        errors[2].message.contains("more than once"),
        "{}",
        errors[2]
    );
}

#[test]
fn required_keys_must_be_mapped() {
    let errors = compile_err(&[("name", "{{ cn }}")], None);
    let keys: Vec<&str> = errors.iter().map(|e| e.key.as_str()).collect();
    assert_eq!(keys, ["contact_id", "email"]);
}

#[test]
fn every_error_is_collected() {
    let errors = compile_err(
        &[
            ("contact_id", "{{ id "),
            ("name", "{{ cn }}"),
            ("email", "{{ mail }}"),
            ("bogus", "x"),
        ],
        Some("a =="),
    );
    let keys: Vec<&str> = errors.iter().map(|e| e.key.as_str()).collect();
    assert_eq!(keys, ["when", "contact_id", "bogus"], "{errors:?}");
}

/// The errors of a map whose `description` is `template`.
fn description_errors(template: &str) -> Vec<String> {
    compile_err(
        &[
            ("contact_id", "x"),
            ("name", "n"),
            ("email", "a@example.com"),
            ("description", template),
        ],
        None,
    )
    .into_iter()
    .map(|e| {
        assert_eq!(e.key, "description");
        e.message
    })
    .collect()
}

#[test]
fn unknown_names_are_compile_errors_even_in_branches_never_taken() {
    for (template, what) in [
        (
            "{{ cn | lowr }}",
            "unknown filter \"lowr\"; did you mean \"lower\"?",
        ),
        (
            "{% if false %}{{ cn | nope }}{% endif %}",
            "unknown filter \"nope\"",
        ),
        (
            "{% for x in [] %}{{ x | nope }}{% endfor %}",
            "unknown filter \"nope\"",
        ),
        ("{% set y = cn | nope %}{{ y }}", "unknown filter \"nope\""),
        (
            "{% filter nope %}x{% endfilter %}",
            "unknown filter \"nope\"",
        ),
        ("{{ cn if cn is nope else '' }}", "unknown test \"nope\""),
        ("{{ frob(cn) }}", "unknown function \"frob\""),
        ("{{ cn.upper() }}", "no methods"),
        ("{{ record.get('cn') }}", "no methods"),
        ("{{ cn | regex_replace('(', '') }}", "invalid pattern \"(\""),
        ("{{ cn | regex_replace('(', cn) }}", "invalid pattern \"(\""),
        ("{{ cn | replace('a') }}", "replace"),
        ("{{ cn | slug(1) }}", "slug"),
    ] {
        let errors = description_errors(template);
        assert_eq!(errors.len(), 1, "{template}: {errors:?}");
        assert!(errors[0].contains(what), "{template}: {}", errors[0]);
        assert!(
            errors[0].contains("(line 1, column "),
            "{template}: {}",
            errors[0]
        );
    }
    let errors = description_errors("line one\n{{ cn | nope }} {{ frob() }}");
    assert_eq!(errors.len(), 2, "{errors:?}");
    assert!(errors[0].ends_with("(line 2, column 9)"), "{}", errors[0]);
    assert!(errors[1].ends_with("(line 2, column 20)"), "{}", errors[1]);
}

#[test]
fn known_names_and_local_callables_compile() {
    for template in [
        "{{ range(3) | join(',') }}",
        "{% set ns = namespace(x=1) %}{{ ns.x }}",
        "{% for t in teams | split(',') %}{{ loop.cycle('a', 'b') }}{{ loop.index }}{% endfor %}",
        "{% set f = range %}{{ f(2) | list | length }}",
        "{{ cn | regex_replace(pattern, '') }}",
        "{{ cn is defined and cn is string }}",
        "{{ dict(a=1).a }}",
        "{{ cn | default('x', true) | trim | title }}",
        "{{ cn | d('x') }}",
    ] {
        compile(
            &[
                ("contact_id", "x"),
                ("name", "n"),
                ("email", "a@example.com"),
                ("description", template),
            ],
            None,
        );
    }
}

#[test]
fn nesting_too_deep_is_a_compile_error_with_its_position() {
    let deep = [
        format!("{{{{ cn{} }}}}", " | lower".repeat(300)),
        format!("{{{{ cn{} }}}}", " ~ cn".repeat(300)),
        format!("{{{{ {}cn }}}}", "not ".repeat(300)),
        format!("{{{{ {}1 }}}}", "-".repeat(300)),
        format!("{{{{ cn{} }}}}", ".a".repeat(300)),
        format!("x\n{{{{ {}cn{} }}}}", "(".repeat(300), ")".repeat(300)),
        format!("{{% set x = cn{} %}}", " ~ cn".repeat(300)),
    ];
    for template in &deep {
        let errors = description_errors(template);
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(errors[0].contains("deep"), "{}", errors[0]);
        assert!(errors[0].contains("(line "), "{}", errors[0]);
    }
    // Long but flat is fine: siblings do not nest.
    let flat = format!("{{{{ [{}] | length }}}}", vec!["cn ~ cn"; 500].join(", "));
    assert_eq!(render(&flat, &[("cn", "a")]).as_deref(), Some("500"));
    let long = "{{ cn | lower }}".repeat(1_000);
    assert_eq!(render(&long, &[("cn", "a")]).map(|s| s.len()), Some(1_000));
}

#[test]
fn runaway_work_is_a_row_error() {
    for template in [
        "{% set ns = namespace(x=cn) %}{% for i in range(40) %}{% set ns.x = ns.x ~ ns.x %}{% endfor %}{{ ns.x }}",
        "{% for a in range(100000) %}{% for b in range(100000) %}{% endfor %}{% endfor %}",
        &format!("{{{{ cn{} }}}}", " | replace('a', 'aaaaaaaaaaaaaaaa')".repeat(12)),
        "{{ (cn * 99999999) | length }}",
        "{% set ns = namespace(x=[]) %}{% for i in range(100000) %}{% set ns.x = [ns.x] %}{% endfor %}{{ ns.x }}",
    ] {
        let mapping = compile(
            &[
                ("contact_id", "x"),
                ("name", "n"),
                ("email", "a@example.com"),
                ("description", template),
            ],
            None,
        );
        let (id, message) = invalid(mapping.apply(&record(&[("cn", "a")])));
        assert_eq!(id.as_deref(), Some("x"));
        assert!(message.starts_with("description: "), "{message}");
        assert!(message.contains("too much work"), "{template}: {message}");
    }
}

#[test]
fn a_rendered_field_longer_than_the_limit_is_a_row_error() {
    let at_limit = render("{{ cn * 65536 }}", &[("cn", "a")]);
    assert_eq!(at_limit.map(|s| s.len()), Some(65_536));
    let mapping = compile(
        &[
            ("contact_id", "x"),
            ("name", "n"),
            ("email", "a@example.com"),
            ("description", "{{ cn * 65537 }}"),
        ],
        None,
    );
    let (_, message) = invalid(mapping.apply(&record(&[("cn", "a")])));
    assert_eq!(
        message,
        "description: the rendered text is 65537 bytes, more than the 65536 a field may hold"
    );
}

#[test]
fn template_comparisons_of_numeric_text_are_numeric() {
    let adult = "{% if age >= 18 %}adult{% else %}minor{% endif %}";
    assert_eq!(render(adult, &[("age", "9")]).as_deref(), Some("minor"));
    assert_eq!(render(adult, &[("age", "18")]).as_deref(), Some("adult"));
    assert_eq!(render(adult, &[("age", "100")]).as_deref(), Some("adult"));
    let mapping = compile(
        &[
            ("contact_id", "x"),
            ("name", "n"),
            ("email", "a@example.com"),
            ("description", adult),
        ],
        None,
    );
    let (_, message) = invalid(mapping.apply(&record(&[("age", "old")])));
    assert!(message.starts_with("description: "), "{message}");
    assert!(
        message.contains("cannot compare \"old\" with 18"),
        "{message}"
    );
}

#[test]
fn large_fields_fit_the_work_budget() {
    let big = "Ab ".repeat(20_000);
    let rendered = render("{{ cn | lower | trim }}", &[("cn", &big)]);
    assert_eq!(rendered.map(|s| s.len()), Some(big.trim().len()));
}
