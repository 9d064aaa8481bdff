//! A `liaison run` daemon (or any long-running `liaison` command) started on
//! a sandbox, its stderr captured in a file, stopped by signal.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use super::Sandbox;

/// How long a test waits for something the daemon should do within seconds:
/// generous, because CI's 2 cores also run other tests.
pub const PATIENCE: Duration = Duration::from_secs(60);

/// A running `liaison` process.
pub struct Daemon {
    child: Child,
    log: PathBuf,
}

impl Daemon {
    /// `liaison --config <sandbox config> run`, with `env` set.
    pub fn start(sandbox: &Sandbox, env: &[(&str, &str)]) -> Daemon {
        Daemon::command(sandbox, &["run"], env)
    }

    /// Any `liaison` command, running in the background.
    pub fn command(sandbox: &Sandbox, args: &[&str], env: &[(&str, &str)]) -> Daemon {
        let log = sandbox.path().join(format!("daemon-{}.log", unique()));
        let stderr = File::create(&log).expect("log file");
        let stdout = File::create(log.with_extension("out")).expect("stdout file");
        let mut command = Command::new(env!("CARGO_BIN_EXE_liaison"));
        command
            .arg("--config")
            .arg(sandbox.config())
            .args(args)
            .current_dir(std::env::temp_dir())
            .env_remove("LIAISON_CONFIG")
            .env_remove("RUST_LOG")
            .env_remove("NOTIFY_SOCKET")
            .env_remove("WATCHDOG_USEC")
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(stderr);
        for (k, v) in env {
            command.env(k, v);
        }
        let child = command.spawn().expect("start liaison");
        Daemon { child, log }
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Everything it wrote to stderr so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Everything it wrote to stdout so far.
    pub fn stdout(&self) -> String {
        std::fs::read_to_string(self.log.with_extension("out")).unwrap_or_default()
    }

    /// Sends a signal by name (`HUP`, `TERM`, `INT`).
    pub fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .arg(format!("-{name}"))
            .arg(self.pid().to_string())
            .status()
            .expect("kill");
        assert!(status.success(), "kill -{name} failed");
    }

    /// Waits up to `within` for the process to exit.
    pub fn wait_exit(&mut self, within: Duration) -> ExitStatus {
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return status;
            }
            if start.elapsed() > within {
                let _ = self.child.kill();
                panic!(
                    "liaison did not exit within {within:?}; its log:\n{}",
                    self.log()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits until the log holds `count` lines containing every one of `parts`.
    #[track_caller]
    pub fn wait_for_log(&self, parts: &[&str], count: usize) -> String {
        let found = eventually(|| {
            let log = self.log();
            let n = log
                .lines()
                .filter(|l| parts.iter().all(|p| l.contains(p)))
                .count();
            (n >= count).then_some(log)
        });
        found.unwrap_or_else(|| {
            panic!(
                "no {count} log line(s) with {parts:?} within {PATIENCE:?}; the log:\n{}",
                self.log()
            )
        })
    }

    /// How many log lines contain every one of `parts`.
    pub fn count_log(&self, parts: &[&str]) -> usize {
        self.log()
            .lines()
            .filter(|l| parts.iter().all(|p| l.contains(p)))
            .count()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Polls `check` every 100 ms until it gives a value or [`PATIENCE`] passes.
pub fn eventually<T>(mut check: impl FnMut() -> Option<T>) -> Option<T> {
    let start = Instant::now();
    loop {
        if let Some(v) = check() {
            return Some(v);
        }
        if start.elapsed() > PATIENCE {
            return None;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A loopback port nobody listens on right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// Writes `text` to `path` the way careful producers do: a temp file in the
/// same folder, renamed into place.
pub fn write_atomically(path: &Path, text: &str) {
    let temp = path.with_extension(format!("tmp{}", unique()));
    std::fs::write(&temp, text).expect("write temp");
    std::fs::rename(&temp, path).expect("rename into place");
}

fn unique() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    NEXT.fetch_add(1, Ordering::Relaxed)
}
