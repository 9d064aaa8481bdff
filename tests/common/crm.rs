//! The emulated CRM APIs (`tests/crm_server.py`): Daktela v6 or HubSpot v3 on
//! 127.0.0.1, serving what a test writes to its data file, with faults a test
//! scripts, and a log of every request.

use std::io::{BufRead, BufReader};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::Value;

const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/crm_server.py");

/// The token the emulated CRMs accept.
pub const TOKEN: &str = "crm-test-token-7f3a";

/// A running emulated CRM, stopped when dropped.
pub struct CrmServer {
    child: Child,
    _stdin: ChildStdin,
    port: u16,
    dir: tempfile::TempDir,
}

impl CrmServer {
    /// Starts the `preset` API (`daktela` or `hubspot`) serving `data`.
    pub fn start(preset: &str, data: &Value) -> CrmServer {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::write(dir.path().join("data.json"), data.to_string()).expect("data");
        let stderr = std::fs::File::create(dir.path().join("server.stderr")).expect("stderr");
        let mut child = Command::new("python3")
            .arg(SCRIPT)
            .args(["--preset", preset, "--token", TOKEN, "--dir"])
            .arg(dir.path())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .expect("start python3 tests/crm_server.py");
        let stdin = child.stdin.take().expect("stdin");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let line = rx.recv_timeout(Duration::from_secs(30)).unwrap_or_default();
        let Some(port) = line
            .strip_prefix("READY ")
            .and_then(|p| p.trim().parse().ok())
        else {
            let _ = child.kill();
            let err = std::fs::read_to_string(dir.path().join("server.stderr")).unwrap_or_default();
            panic!("the emulated CRM did not start (said {line:?}):\n{err}");
        };
        CrmServer {
            child,
            _stdin: stdin,
            port,
            dir,
        }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Replaces what the CRM holds.
    pub fn set_data(&self, data: &Value) {
        let tmp = self.dir.path().join("data.json.tmp");
        std::fs::write(&tmp, data.to_string()).expect("data");
        std::fs::rename(&tmp, self.dir.path().join("data.json")).expect("data");
    }

    /// Replaces the scripted faults (see the script's docs).
    pub fn set_faults(&self, faults: &Value) {
        let tmp = self.dir.path().join("faults.json.tmp");
        std::fs::write(&tmp, faults.to_string()).expect("faults");
        std::fs::rename(&tmp, self.dir.path().join("faults.json")).expect("faults");
    }

    /// Every request so far, oldest first.
    pub fn requests(&self) -> Vec<Value> {
        let text =
            std::fs::read_to_string(self.dir.path().join("requests.log")).unwrap_or_default();
        text.lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }

    /// Forgets the requests so far.
    pub fn clear_requests(&self) {
        let _ = std::fs::remove_file(self.dir.path().join("requests.log"));
    }
}

impl Drop for CrmServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
