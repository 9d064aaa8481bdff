//! The SQLite store's writer lock: an advisory lock (`flock`) on a file beside
//! the database (`liaison.db.lock`). The operating system drops it when its
//! holder exits or dies, so a crashed run never leaves a store locked. The
//! file's text says who holds it (pid, since, command line) for the message of
//! whoever waits; it is not the lock itself, so stale text is harmless.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use crate::store::{LockHolder, StoreError};

/// The lock file of one store, and the lock when this process holds it.
#[derive(Debug)]
pub struct FileLock {
    path: PathBuf,
    held: Option<File>,
}

impl FileLock {
    /// The lock of the database at `db` (nothing is created yet).
    pub fn new(db: &Path) -> Self {
        let mut name = db.as_os_str().to_owned();
        name.push(".lock");
        FileLock {
            path: PathBuf::from(name),
            held: None,
        }
    }

    /// Whether this process holds it.
    pub fn is_held(&self) -> bool {
        self.held.is_some()
    }

    /// Tries once: `Ok(None)` when this process holds the lock now (or already
    /// did), `Ok(Some(holder))` when another process (or another open store in
    /// this one) does.
    pub fn try_acquire(&mut self) -> Result<Option<LockHolder>, StoreError> {
        if self.held.is_some() {
            return Ok(None);
        }
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&self.path)
            .map_err(|e| self.error(e))?;
        match file.try_lock() {
            Ok(()) => {
                let text = LockHolder::this_process().to_text();
                file.set_len(0)
                    .and_then(|()| file.seek(SeekFrom::Start(0)))
                    .and_then(|_| file.write_all(text.as_bytes()))
                    .map_err(|e| self.error(e))?;
                self.held = Some(file);
                Ok(None)
            }
            Err(TryLockError::WouldBlock) => {
                let mut text = String::new();
                // Only for the message: an unreadable text is an unknown holder.
                let _ = file.read_to_string(&mut text);
                Ok(Some(LockHolder::from_text(&text)))
            }
            Err(TryLockError::Error(e)) => Err(self.error(e)),
        }
    }

    /// Releases the lock if this process holds it; the file stays (removing it
    /// would race with a process that has just opened it to wait).
    pub fn release(&mut self) -> Result<(), StoreError> {
        let Some(file) = self.held.take() else {
            return Ok(());
        };
        // Say nobody holds it before letting go; the lock goes with the file
        // handle either way.
        let cleared = file.set_len(0);
        let unlocked = file.unlock();
        cleared.and(unlocked).map_err(|e| self.error(e))
    }

    fn error(&self, source: std::io::Error) -> StoreError {
        StoreError::Lock {
            path: self.path.display().to_string(),
            source,
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn one_holder_at_a_time_and_the_other_learns_who() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("x.db");
        let (mut a, mut b) = (FileLock::new(&db), FileLock::new(&db));
        assert!(a.try_acquire().unwrap().is_none());
        assert!(a.try_acquire().unwrap().is_none(), "held already");
        let holder = b.try_acquire().unwrap().expect("busy");
        assert_eq!(holder.pid, Some(std::process::id()));
        a.release().unwrap();
        assert!(!a.is_held());
        assert!(b.try_acquire().unwrap().is_none());
        drop(b);
        assert!(a.try_acquire().unwrap().is_none(), "dropping releases");
    }
}
