//! Templates and `when:` that would take the process down, or that compare
//! text with numbers: each is a `validate` error with its location, or a row
//! error of the record it hits, and the process never crashes or runs away.

use std::fs::File;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::{Run, Sandbox};

/// Address space allowed to a bounded run, in KiB: far above what a sync of a
/// few rows needs (about 30 MB resident), far below what the hostile
/// templates below would take without limits (gigabytes to terabytes).
const MEMORY_KIB: u64 = 2 * 1024 * 1024;

/// How long a bounded run may take before the test calls it a runaway.
const DEADLINE: Duration = Duration::from_secs(60);

/// Runs `liaison --config CONFIG ARGS` under `ulimit -v` [`MEMORY_KIB`], killing
/// it (and failing the test) when it outlives [`DEADLINE`].
fn run_bounded(s: &Sandbox, args: &[&str]) -> Run {
    let out = s.path().join("bounded.out");
    let err = s.path().join("bounded.err");
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(format!("ulimit -v {MEMORY_KIB} && exec \"$0\" \"$@\""))
        .arg(env!("CARGO_BIN_EXE_liaison"))
        .arg("--config")
        .arg(s.config())
        .args(args)
        .env_remove("LIAISON_CONFIG")
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(File::create(&out).unwrap())
        .stderr(File::create(&err).unwrap())
        .spawn()
        .unwrap();
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if start.elapsed() > DEADLINE {
            child.kill().unwrap();
            child.wait().unwrap();
            panic!("liaison {args:?} still ran after {DEADLINE:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let run = Run {
        code: status.code().unwrap_or(-1),
        stdout: std::fs::read_to_string(out).unwrap(),
        stderr: std::fs::read_to_string(err).unwrap(),
    };
    assert!(
        status.code().is_some(),
        "killed by a signal ({status}):\n{}",
        run.stderr
    );
    run
}

/// A config whose `name` template is `name_template` (a YAML single-quoted
/// scalar is written for it) and with `when`, if given.
fn config(name_template: &str, when: Option<&str>) -> String {
    let quote = |s: &str| format!("'{}'", s.replace('\'', "''"));
    let mut c = format!(
        "store: sqlite://liaison.db\n\
         sources:\n\
         \x20 - name: partners\n\
         \x20   type: csv\n\
         \x20   path: partners.csv\n\
         \x20   map:\n\
         \x20     contact_id: \"{{{{ contact_id }}}}\"\n\
         \x20     email: \"{{{{ email }}}}\"\n\
         \x20     name: {}\n",
        quote(name_template)
    );
    if let Some(when) = when {
        c.push_str(&format!("    when: {}\n", quote(when)));
    }
    c
}

/// `rows` contacts `c1`… on lines 2…, each with `age` from `ages` in turn.
fn partners(rows: usize, ages: &[&str]) -> String {
    let mut csv = String::from("contact_id,name,email,age\n");
    for i in 1..=rows {
        let age = ages[(i - 1) % ages.len()];
        csv.push_str(&format!("c{i},Person {i},p{i}@example.com,{age}\n"));
    }
    csv
}

/// The row errors of a `sync --format json` run, as (location, message).
fn row_errors(run: &Run) -> Vec<(String, String)> {
    let json = run.json();
    let errors = json["errors"].as_array().expect("errors").clone();
    errors
        .iter()
        .map(|e| {
            (
                e["location"].as_str().unwrap_or_default().to_owned(),
                e["message"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

/// Runs `template` as the `name` of contact `c13` only (every other row gets
/// its plain name) over 30 rows: the run applies (1 bad row of 30 is within
/// the 5 % allowed), and `c13`'s row (line 14) carries the error.
#[track_caller]
fn hostile_row(template: &str) -> String {
    let name =
        format!("{{% if contact_id == 'c13' %}}{template}{{% else %}}{{{{ name }}}}{{% endif %}}");
    let s = Sandbox::new(&config(&name, None));
    s.write("partners.csv", &partners(30, &["30"]));
    let run = run_bounded(&s, &["sync", "--once", "--format", "json"]).expect(0);
    let errors = row_errors(&run);
    assert_eq!(errors.len(), 1, "{errors:?}");
    let (location, message) = &errors[0];
    assert!(location.ends_with("partners.csv:14"), "{location}");
    assert!(message.starts_with("name: "), "{message}");
    assert_eq!(run.json()["created"], 29, "{}", run.stdout);
    message.clone()
}

#[test]
fn a_doubling_string_is_a_row_error_not_gigabytes() {
    let message = hostile_row(
        "{% set ns = namespace(x=name) %}{% for i in range(40) %}{% set ns.x = ns.x ~ ns.x %}{% endfor %}{{ ns.x }}",
    );
    assert!(message.contains("too much work"), "{message}");
}

#[test]
fn a_growing_replace_chain_is_a_row_error() {
    let chain = " | replace('P', 'PPPPPPPPPPPPPPPP')".repeat(12);
    let message = hostile_row(&format!("{{{{ name{chain} }}}}"));
    assert!(message.contains("too much work"), "{message}");
}

#[test]
fn nested_unbounded_loops_are_a_row_error() {
    let message = hostile_row(
        "{% for a in range(100000) %}{% for b in range(100000) %}{% endfor %}{% endfor %}{{ name }}",
    );
    assert!(message.contains("too much work"), "{message}");
}

#[test]
fn a_deeply_nested_value_is_a_row_error_not_a_stack_overflow() {
    let message = hostile_row(
        "{% set ns = namespace(x=[]) %}{% for i in range(100000) %}{% set ns.x = [ns.x] %}{% endfor %}{{ ns.x }}",
    );
    assert!(message.contains("too much work"), "{message}");
}

#[test]
fn values_nested_statement_by_statement_are_a_row_error_not_a_crash() {
    // Each statement nests `x` 70 lists deeper for about as many steps: the
    // cheapest way to build a deep value, which minijinja drops and prints
    // recursively.
    let nest = format!("{{% set x = {}x{} %}}", "[".repeat(70), "]".repeat(70));
    for tail in ["{{ x ~ '' }}", "{{ x | length }}"] {
        let message = hostile_row(&format!("{{% set x = [] %}}{}{tail}", nest.repeat(150)));
        assert!(message.contains("too much work"), "{tail}: {message}");
    }
}

#[test]
fn a_rendered_field_past_the_size_limit_is_a_row_error() {
    let message = hostile_row("{{ name * 10000 }}");
    assert!(message.contains("bytes"), "{message}");
    assert!(message.contains("65536"), "{message}");
}

#[test]
fn a_when_that_works_too_hard_is_a_row_error() {
    let s = Sandbox::new(&config(
        "{{ name }}",
        Some("contact_id != 'c13' or (('x' * 99999999) | length) > 0"),
    ));
    s.write("partners.csv", &partners(30, &["30"]));
    let run = run_bounded(&s, &["sync", "--once", "--format", "json"]).expect(0);
    let errors = row_errors(&run);
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(errors[0].0.ends_with("partners.csv:14"), "{errors:?}");
    assert!(errors[0].1.starts_with("when: "), "{errors:?}");
    assert!(errors[0].1.contains("too much work"), "{errors:?}");
}

/// Chains and nestings that minijinja builds into trees as deep as they are
/// long, each 20,000 links: in a `map:` value and in `when:`.
fn deep_templates() -> Vec<(&'static str, String)> {
    let n = 20_000;
    vec![
        ("filters", format!("{{{{ name{} }}}}", " | lower".repeat(n))),
        (
            "concatenation",
            format!("{{{{ name{} }}}}", " ~ name".repeat(n)),
        ),
        ("not", format!("{{{{ {}name }}}}", "not ".repeat(n))),
        ("minus", format!("{{{{ {}1 }}}}", "- ".repeat(n))),
        ("attributes", format!("{{{{ name{} }}}}", ".a".repeat(n))),
        (
            "parentheses",
            format!("{{{{ {}name{} }}}}", "(".repeat(n), ")".repeat(n)),
        ),
        (
            "lists",
            format!("{{{{ {}1{} }}}}", "[".repeat(n), "]".repeat(n)),
        ),
    ]
}

#[test]
fn deeply_nested_templates_are_validate_errors_not_crashes() {
    for (what, template) in deep_templates() {
        let s = Sandbox::new(&config(&template, None));
        let run = run_bounded(&s, &["validate"]);
        assert_eq!(run.code, 2, "{what}: {}", run.stderr);
        let file = s.config().display().to_string();
        assert!(
            run.stderr
                .starts_with(&format!("{file}:9:13: sources[0].map.name: ")),
            "{what}: {}",
            run.stderr
        );
        assert!(run.stderr.contains("deep"), "{what}: {}", run.stderr);
        assert!(
            run.stderr.contains("line 1, column"),
            "{what}: {}",
            run.stderr
        );
    }
}

#[test]
fn deeply_nested_when_is_a_validate_error_not_a_crash() {
    for (what, template) in deep_templates() {
        let s = Sandbox::new(&config("{{ name }}", Some(&template)));
        let run = run_bounded(&s, &["validate"]);
        assert_eq!(run.code, 2, "{what}: {}", run.stderr);
        let file = s.config().display().to_string();
        assert!(
            run.stderr
                .starts_with(&format!("{file}:10:11: sources[0].when: ")),
            "{what}: {}",
            run.stderr
        );
        assert!(run.stderr.contains("deep"), "{what}: {}", run.stderr);
    }
}

#[test]
fn sync_refuses_a_deeply_nested_template_without_crashing() {
    let (_, template) = deep_templates().swap_remove(0);
    let s = Sandbox::new(&config(&template, None));
    s.write("partners.csv", &partners(3, &["30"]));
    let run = run_bounded(&s, &["sync", "--once"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr.contains(":9:13: sources[0].map.name"),
        "{}",
        run.stderr
    );
}

#[test]
fn unknown_filters_functions_tests_and_methods_are_validate_errors() {
    let s = Sandbox::new(
        "store: sqlite://liaison.db\n\
         sources:\n\
         \x20 - name: partners\n\
         \x20   type: csv\n\
         \x20   path: partners.csv\n\
         \x20   map:\n\
         \x20     contact_id: \"{{ contact_id }}\"\n\
         \x20     email: \"{{ email | lowercase }}\"\n\
         \x20     name: \"{% if false %}{{ frobnicate(name) }}{% endif %}{{ name }}\"\n\
         \x20     description: \"{{ name.upper() }}\"\n\
         \x20   when: \"kind is partnr\"\n",
    );
    let run = s.run(&["validate"]).expect(2);
    let file = s.config().display().to_string();
    let lines: Vec<&str> = run.stderr.lines().collect();
    assert_eq!(lines.len(), 4, "{}", run.stderr);
    // In file order, each at its value, with the place inside the template.
    assert!(
        lines[0].starts_with(&format!("{file}:8:14: sources[0].map.email: ")),
        "{}",
        lines[0]
    );
    assert!(
        lines[0]
            .ends_with("unknown filter \"lowercase\"; did you mean \"lower\"? (line 1, column 12)"),
        "{}",
        lines[0]
    );
    assert!(
        lines[1].starts_with(&format!("{file}:9:13: sources[0].map.name: ")),
        "{}",
        lines[1]
    );
    assert!(
        lines[1].ends_with("unknown function \"frobnicate\" (line 1, column 18)"),
        "{}",
        lines[1]
    );
    assert!(
        lines[2].starts_with(&format!("{file}:10:20: sources[0].map.description: ")),
        "{}",
        lines[2]
    );
    assert!(lines[2].contains("name | upper"), "{}", lines[2]);
    assert!(lines[2].ends_with("(line 1, column 4)"), "{}", lines[2]);
    assert!(
        lines[3].starts_with(&format!("{file}:11:11: sources[0].when: ")),
        "{}",
        lines[3]
    );
    assert!(
        lines[3].ends_with("unknown test \"partnr\" (line 1, column 9)"),
        "{}",
        lines[3]
    );
}

#[test]
fn invalid_literal_filter_arguments_are_validate_errors() {
    let s = Sandbox::new(
        "store: sqlite://liaison.db\n\
         sources:\n\
         \x20 - name: partners\n\
         \x20   type: csv\n\
         \x20   path: partners.csv\n\
         \x20   map:\n\
         \x20     contact_id: \"{{ contact_id }}\"\n\
         \x20     email: \"{{ email }}\"\n\
         \x20     name: \"{{ name | regex_replace('[A-', '') }}\"\n\
         \x20     phone: \"{{ phone | regex_replace('(', phone) }}\"\n\
         \x20     description: \"{{ name | replace('a') }}\"\n",
    );
    let run = s.run(&["validate"]).expect(2);
    let file = s.config().display().to_string();
    let lines: Vec<&str> = run.stderr.lines().collect();
    assert_eq!(lines.len(), 3, "{}", run.stderr);
    assert!(lines[0].starts_with(&format!("{file}:9:")), "{}", lines[0]);
    assert!(lines[0].contains("invalid pattern \"[A-\""), "{}", lines[0]);
    assert!(lines[1].starts_with(&format!("{file}:10:")), "{}", lines[1]);
    assert!(lines[1].contains("invalid pattern \"(\""), "{}", lines[1]);
    assert!(lines[2].starts_with(&format!("{file}:11:")), "{}", lines[2]);
    assert!(lines[2].contains("replace"), "{}", lines[2]);
}

#[test]
fn when_compares_numeric_text_as_numbers() {
    let s = Sandbox::new(&config("{{ name }}", Some("age >= 18 and age < 65.5")));
    s.write(
        "partners.csv",
        &partners(8, &["9", "17", "18", "100", "65", "65.5", "020", "7"]),
    );
    let json = s.sync(0);
    assert_eq!(json["errors"], serde_json::json!([]), "{json}");
    let mut kept: Vec<String> = s
        .users()
        .iter()
        .map(|u| u["email"].as_str().unwrap().to_owned())
        .collect();
    kept.sort();
    // 18, 65 and 020 (twenty) are kept; 9, 17, 100, 65.5 and 7 are not.
    assert_eq!(
        kept,
        ["p3@example.com", "p5@example.com", "p7@example.com"],
        "{json}"
    );
}

#[test]
fn when_comparing_other_text_with_a_number_is_a_row_error() {
    let s = Sandbox::new(&config("{{ name }}", Some("age > 18")));
    let mut csv = partners(30, &["30"]);
    csv.push_str("c31,Person 31,p31@example.com,unknown\n");
    s.write("partners.csv", &csv);
    let run = s.run(&["sync", "--once", "--format", "json"]).expect(0);
    let errors = row_errors(&run);
    assert_eq!(errors.len(), 1, "{errors:?}");
    let (location, message) = &errors[0];
    assert!(location.ends_with("partners.csv:32"), "{location}");
    assert!(message.starts_with("when: age > 18: "), "{message}");
    assert!(message.contains("\"unknown\""), "{message}");
    assert_eq!(run.json()["created"], 30, "{}", run.stdout);
}

#[test]
fn template_comparisons_use_the_same_rule() {
    let s = Sandbox::new(&config(
        "{{ name }}{% if age > 18 %} (adult){% endif %}",
        None,
    ));
    s.write("partners.csv", &partners(2, &["9", "30"]));
    s.sync(0);
    let titles: Vec<String> = s
        .users()
        .iter()
        .map(|u| u["title"].as_str().unwrap().to_owned())
        .collect();
    assert!(titles.contains(&"Person 1".to_owned()), "{titles:?}");
    assert!(
        titles.contains(&"Person 2 (adult)".to_owned()),
        "{titles:?}"
    );
}
