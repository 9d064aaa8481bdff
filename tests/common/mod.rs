//! A sandbox per test: a temp dir holding a config, source files and the store,
//! and a runner for the real binary.

pub mod crm;
pub mod http;
pub mod prometheus;
pub mod slapd;
pub mod smtp;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

pub mod daemon;

/// A temp dir with a config file and helpers to run `liaison` against it.
pub struct Sandbox {
    dir: tempfile::TempDir,
}

/// What one `liaison` invocation did.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    fn from(out: Output) -> Run {
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// stdout parsed as JSON.
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| {
            panic!(
                "stdout is not JSON ({e}):\n{}\nstderr:\n{}",
                self.stdout, self.stderr
            )
        })
    }

    /// Asserts the exit code, showing the output when it differs.
    #[track_caller]
    pub fn expect(self, code: i32) -> Run {
        assert_eq!(
            self.code, code,
            "unexpected exit code\nstdout:\n{}\nstderr:\n{}",
            self.stdout, self.stderr
        );
        self
    }
}

/// A minimal standard-layout config around one CSV source called `partners`.
pub const CONFIG: &str = "\
store: sqlite://liaison.db
sources:
  - name: partners
    type: csv
    path: partners.csv
";

/// A config with one CSV source `partners` reading `path`; `source_keys` are
/// more keys of that source and `sections` more top-level sections, each line
/// already indented as YAML wants it.
pub fn csv_config(path: &str, source_keys: &[&str], sections: &[&str]) -> String {
    let mut c = format!(
        "store: sqlite://liaison.db\nsources:\n  - name: partners\n    type: csv\n    path: {path}\n"
    );
    for k in source_keys {
        c.push_str(&format!("    {k}\n"));
    }
    for line in sections {
        c.push_str(line);
        c.push('\n');
    }
    c
}

impl Sandbox {
    /// A sandbox with `config` written as `liaison.yaml`.
    pub fn new(config: &str) -> Sandbox {
        let dir = tempfile::tempdir().expect("temp dir");
        let s = Sandbox { dir };
        s.write("liaison.yaml", config);
        s
    }

    /// The sandbox folder.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// The config file.
    pub fn config(&self) -> PathBuf {
        self.path().join("liaison.yaml")
    }

    /// Writes a text file in the sandbox.
    pub fn write(&self, name: &str, text: &str) {
        self.write_bytes(name, text.as_bytes());
    }

    /// Writes a file of raw bytes in the sandbox.
    pub fn write_bytes(&self, name: &str, bytes: &[u8]) {
        let path = self.path().join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("mkdir");
        }
        std::fs::write(path, bytes).expect("write file");
    }

    /// Runs `liaison --config <sandbox config> ARGS` from a different working
    /// directory, so relative paths must resolve against the config's folder.
    pub fn run(&self, args: &[&str]) -> Run {
        self.run_with_env(args, &[])
    }

    /// [`Sandbox::run`] with `env` set (secrets the config names as
    /// `${env:NAME}`, test knobs such as `LIAISON_TEST_NOW`).
    pub fn run_with_env(&self, args: &[&str], env: &[(&str, &str)]) -> Run {
        let mut command = Command::new(env!("CARGO_BIN_EXE_liaison"));
        command
            .arg("--config")
            .arg(self.config())
            .args(args)
            .current_dir(std::env::temp_dir())
            .env_remove("LIAISON_CONFIG")
            .env_remove("RUST_LOG");
        for (k, v) in env {
            command.env(k, v);
        }
        Run::from(command.output().expect("run liaison"))
    }

    /// `sync --once --format json`, expecting `code`; returns the JSON.
    #[track_caller]
    pub fn sync(&self, code: i32) -> Value {
        self.run(&["sync", "--once", "--format", "json"])
            .expect(code)
            .json()
    }

    /// `users list --format json`.
    #[track_caller]
    pub fn users(&self) -> Vec<Value> {
        match self
            .run(&["users", "list", "--format", "json"])
            .expect(0)
            .json()
        {
            Value::Array(v) => v,
            other => panic!("users list is not an array: {other}"),
        }
    }

    /// The user with `login`, from `users list`.
    #[track_caller]
    pub fn user(&self, login: &str) -> Value {
        self.users()
            .into_iter()
            .find(|u| u["login"] == login)
            .unwrap_or_else(|| panic!("no user {login}"))
    }
}

/// The header of the standard layout used by most tests.
pub const HEADER: &str = "contact_id,name,email,account_id,account_name,grants\n";
