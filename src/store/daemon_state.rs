//! What a running daemon tells `liaison status` that the store does not hold:
//! its pid, when it started, its config and each source's next scheduled run.
//! A small JSON file beside the database (`liaison.db.daemon.json`), written
//! whole by the daemon at start-up and after every run (a temp file renamed
//! into place, so a reader sees the old text or the new, never half), and
//! removed when it stops. It is only believed while the daemon lock is held
//! (a daemon that died leaves it behind).

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::StoreError;

/// A daemon's state, as its state file holds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DaemonState {
    /// The daemon's process id.
    pub pid: u32,
    /// When it started (ms since the Unix epoch).
    pub started_ms: i64,
    /// The config file it runs.
    pub config: PathBuf,
    /// Each scheduled source's next run (ms since the Unix epoch).
    pub next_runs: BTreeMap<String, i64>,
    /// When the daemon last wrote this.
    pub updated_ms: i64,
}

/// The state file's name: the database's plus this.
const SUFFIX: &str = ".daemon.json";

impl DaemonState {
    /// The state file of the store at `db` (`liaison.db.daemon.json`).
    pub fn path_of(db: &Path) -> PathBuf {
        let mut name = db.as_os_str().to_owned();
        name.push(SUFFIX);
        PathBuf::from(name)
    }

    /// Writes the state file of the store at `db` atomically: a temp file
    /// beside it, synced, then renamed over it.
    pub fn write(&self, db: &Path) -> Result<(), StoreError> {
        let path = Self::path_of(db);
        let mut temp = path.as_os_str().to_owned();
        temp.push(".tmp");
        let temp = PathBuf::from(temp);
        let text = serde_json::to_vec_pretty(self).map_err(|e| StoreError::Corrupt {
            what: "daemon state",
            detail: e.to_string(),
        })?;
        let written = std::fs::File::create(&temp)
            .and_then(|mut f| f.write_all(&text).and_then(|()| f.sync_all()))
            .and_then(|()| std::fs::rename(&temp, &path));
        if written.is_err() {
            let _ = std::fs::remove_file(&temp);
        }
        written.map_err(|source| file_error(&path, source))
    }

    /// Reads the state file of the store at `db`; `None` when there is none.
    /// A file that is not a daemon state is [`StoreError::Corrupt`] (writes
    /// are atomic, so that is never a half-written one): the caller says so
    /// and goes on without it.
    pub fn read(db: &Path) -> Result<Option<DaemonState>, StoreError> {
        let path = Self::path_of(db);
        let text = match std::fs::read(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(file_error(&path, e)),
        };
        serde_json::from_slice(&text)
            .map(Some)
            .map_err(|e| StoreError::Corrupt {
                what: "daemon state",
                detail: format!("{}: {e}", path.display()),
            })
    }

    /// Removes the state file of the store at `db`; none is fine.
    pub fn remove(db: &Path) -> Result<(), StoreError> {
        let path = Self::path_of(db);
        match std::fs::remove_file(&path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(file_error(&path, e)),
            _ => Ok(()),
        }
    }
}

fn file_error(path: &Path, source: std::io::Error) -> StoreError {
    StoreError::StateFile {
        path: path.display().to_string(),
        source,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn written_state_reads_back_and_removing_twice_is_fine() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("liaison.db");
        assert_eq!(
            DaemonState::path_of(&db),
            dir.path().join("liaison.db.daemon.json")
        );
        assert_eq!(DaemonState::read(&db).unwrap(), None);
        let state = DaemonState {
            pid: 42,
            started_ms: 1_000,
            config: dir.path().join("liaison.yaml"),
            next_runs: BTreeMap::from([("crm".to_owned(), 61_000), ("hr".to_owned(), 3_600_000)]),
            updated_ms: 2_000,
        };
        state.write(&db).unwrap();
        assert_eq!(DaemonState::read(&db).unwrap(), Some(state.clone()));
        let newer = DaemonState {
            updated_ms: 3_000,
            ..state
        };
        newer.write(&db).unwrap();
        assert_eq!(DaemonState::read(&db).unwrap(), Some(newer));
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 1, "no temp file left: {names:?}");
        DaemonState::remove(&db).unwrap();
        DaemonState::remove(&db).unwrap();
        assert_eq!(DaemonState::read(&db).unwrap(), None);
    }

    #[test]
    fn a_corrupt_state_file_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("liaison.db");
        std::fs::write(DaemonState::path_of(&db), "{\"pid\": ").unwrap();
        let said = DaemonState::read(&db).unwrap_err().to_string();
        assert!(
            said.contains("corrupt daemon state") && said.contains("liaison.db.daemon.json"),
            "{said}"
        );
    }
}
