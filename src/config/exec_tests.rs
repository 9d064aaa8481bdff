//! `type: exec` sources: typed values, defaults, and every error at its position.

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use liaison_plugin_exec::ExecConfig;

use super::*;

const FILE: &str = "/etc/liaison/liaison.yaml";

fn env(name: &str) -> Option<String> {
    (name == "CRM_TOKEN").then(|| "crm-secret-42".to_owned())
}

fn load(text: &str) -> Result<Config, ConfigErrors> {
    load::load_with(text, Path::new("liaison.yaml"), Path::new(FILE), &env)
}

/// The exec settings of the one source `a` with `keys` (indented lines).
fn exec(keys: &str) -> Result<ExecConfig, Vec<String>> {
    let text = format!("store: sqlite://x\nsources:\n  - name: a\n    type: exec\n{keys}");
    match load(&text) {
        Ok(config) => match &config.sources[0].connector {
            ConnectorConfig::Exec(exec) => Ok(exec.clone()),
            #[allow(unreachable_patterns)]
            other => panic!("not an exec source: {other:?}"),
        },
        Err(errors) => Err(errors
            .iter()
            .map(|e| format!("{}:{}: {}", e.span.line, e.span.column, e.message))
            .collect()),
    }
}

#[test]
fn an_exec_source_loads_into_typed_values() {
    let config = exec(
        r#"    command: [./plugins/crm.py, --limit, 500, "--verbose"]
    settings:
      table: contacts
      page: 100
      ratio: 0.5
      flags: [a, true, ~]
      nested: {deep: {x: "y"}}
    env:
      CRM_TOKEN: ${env:CRM_TOKEN}
      CRM_URL: https://crm.example.com
      RETRIES: 3
    working_dir: data
    timeout: 30m
    idle_timeout: 45s
    max_line_length: 65536
"#,
    )
    .unwrap();
    assert_eq!(config.source, "a");
    assert_eq!(
        config.command,
        ["/etc/liaison/plugins/crm.py", "--limit", "500", "--verbose"]
    );
    assert_eq!(
        serde_json::Value::Object(config.settings.clone()),
        serde_json::json!({
            "table": "contacts", "page": 100, "ratio": 0.5,
            "flags": ["a", true, null], "nested": {"deep": {"x": "y"}},
        })
    );
    let keys: Vec<&str> = config.settings.keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        ["table", "page", "ratio", "flags", "nested"],
        "in file order"
    );
    let env: Vec<(&str, &str)> = config
        .env
        .iter()
        .map(|(k, v)| (k.as_str(), v.expose()))
        .collect();
    assert_eq!(
        env,
        [
            ("CRM_TOKEN", "crm-secret-42"),
            ("CRM_URL", "https://crm.example.com"),
            ("RETRIES", "3"),
        ]
    );
    assert!(
        !format!("{config:?}").contains("crm-secret-42"),
        "env values never print"
    );
    assert_eq!(config.working_dir, PathBuf::from("/etc/liaison/data"));
    assert_eq!(config.timeout, Duration::from_secs(30 * 60));
    assert_eq!(config.idle_timeout, Duration::from_secs(45));
    assert_eq!(config.max_line_length, 65536);
}

#[test]
fn an_exec_source_has_defaults_and_a_bare_program_stays_for_path() {
    let config = exec("    command: [python3, plugin.py]\n").unwrap();
    assert_eq!(config.command, ["python3", "plugin.py"]);
    assert!(config.settings.is_empty() && config.env.is_empty());
    assert_eq!(config.working_dir, PathBuf::from("/etc/liaison"));
    assert_eq!(config.timeout, liaison_plugin_exec::DEFAULT_TIMEOUT);
    assert_eq!(config.idle_timeout, Duration::from_secs(120));
    assert_eq!(config.max_line_length, 1024 * 1024);
}

#[test]
fn exec_errors_are_located_and_name_the_key() {
    assert_eq!(
        exec("    comand: [x]\n").unwrap_err(),
        [
            r#"3:5: sources[0]: missing required key "command""#,
            r#"5:5: sources[0].comand: unknown key for an exec source; did you mean "command"?"#,
        ]
    );
    assert_eq!(
        exec("    command: python3 plugin.py\n").unwrap_err(),
        [
            r#"5:14: sources[0].command: expected a list such as [python3, plugin.py] (the program and its arguments, run without a shell), found "python3 plugin.py""#
        ]
    );
    assert_eq!(
        exec("    command: []\n").unwrap_err(),
        ["5:14: sources[0].command: the list is empty: its first item is the program"]
    );
    assert_eq!(
        exec(
            "    command: [\"\", \"--token=${env:CRM_TOKEN}\", [x]]\n    settings: [a]\n    watch: true\n"
        )
        .unwrap_err(),
        [
            "5:15: sources[0].command[0]: the program must not be empty",
            "5:19: sources[0].command[1]: a plugin never gets secrets in its command line (other processes can read it): pass them in env:",
            "5:47: sources[0].command[2]: expected a string, found a list",
            "6:15: sources[0].settings: expected a mapping, found a list",
            r#"7:12: sources[0].watch: only sources that read files can be watched (csv), not type "exec""#,
        ]
    );
    assert_eq!(
        exec(
            "    command: [p]\n    settings:\n      password: ${env:CRM_TOKEN}\n      list: [1, {a: b}]\n    env:\n      1BAD: x\n      GOOD: ${env:MISSING}\n      LIST: [a]\n"
        )
        .unwrap_err(),
        [
            "7:17: sources[0].settings.password: ${env:…} and ${file:…} are not resolved in settings (the plugin gets them as written): pass secrets in env:",
            r#"10:7: sources[0].env.1BAD: "1BAD" is not a variable name (letters, digits and _, not starting with a digit)"#,
            r#"11:13: sources[0].env.GOOD: environment variable "MISSING" is not set"#,
            "12:13: sources[0].env.LIST: expected a string, found a list",
        ]
    );
    assert_eq!(
        exec(
            "    command: [p]\n    timeout: 10\n    idle_timeout: 0s\n    max_line_length: 100\n    working_dir: \"\"\n"
        )
        .unwrap_err(),
        [
            "6:14: sources[0].timeout: missing unit: add ms, s, m, h or d (e.g. 30d), found \"10\"",
            "7:19: sources[0].idle_timeout: must be longer than zero",
            "8:22: sources[0].max_line_length: expected a number of bytes from 1024 to 1073741824 (default 1048576), found 100",
            "9:18: sources[0].working_dir: must not be empty",
        ]
    );
}

#[test]
fn a_secret_that_cannot_be_resolved_is_named_without_its_value() {
    let errors =
        exec("    command: [p]\n    env:\n      TOKEN: ${file:/nonexistent/token}\n").unwrap_err();
    assert_eq!(errors.len(), 1);
    assert!(
        errors[0].starts_with(
            "7:14: sources[0].env.TOKEN: cannot read secret file \"/nonexistent/token\""
        ),
        "{errors:?}"
    );
}
