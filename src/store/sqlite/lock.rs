//! The SQLite store's locks: advisory locks (`flock`) on files beside the
//! database — the writer lock (`liaison.db.lock`) and the daemon lock
//! (`liaison.db.daemon`, one daemon per store). The operating system drops it when its
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
    /// The writer lock of the database at `db` (nothing is created yet).
    pub fn new(db: &Path) -> Self {
        Self::with_suffix(db, WRITER_SUFFIX)
    }

    /// The lock in the file named as `db` plus `suffix` (nothing is created yet).
    pub fn with_suffix(db: &Path, suffix: &str) -> Self {
        let mut name = db.as_os_str().to_owned();
        name.push(suffix);
        FileLock {
            path: PathBuf::from(name),
            held: None,
        }
    }

    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Who holds the lock now, without taking it for longer than the look
    /// (a shared lock, dropped at once); `None` when nobody does or the file
    /// does not exist. Creates nothing. A process trying to take the lock in
    /// the same microseconds finds it busy, so takers try more than once
    /// ([`TAKE_TRIES`]).
    pub fn holder(&self) -> Result<Option<LockHolder>, StoreError> {
        if self.held.is_some() {
            return Ok(Some(LockHolder::this_process()));
        }
        let mut file = match File::open(&self.path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(self.error(e)),
        };
        match file.try_lock_shared() {
            Ok(()) => Ok(None),
            Err(TryLockError::WouldBlock) => Ok(Some(read_holder(&mut file))),
            Err(TryLockError::Error(e)) => Err(self.error(e)),
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
            Err(TryLockError::WouldBlock) => Ok(Some(read_holder(&mut file))),
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

/// The writer lock's file: the database's name plus this.
pub const WRITER_SUFFIX: &str = ".lock";

/// The daemon lock's file: the database's name plus this.
pub const DAEMON_SUFFIX: &str = ".daemon";

/// The dispatcher lock's file, beside the database: whoever sends its mail.
pub const DISPATCH_SUFFIX: &str = ".mail";

/// How many times a taker tries a lock that a [`FileLock::holder`] look may
/// hold for an instant, [`TAKE_PAUSE`] apart.
pub const TAKE_TRIES: u32 = 5;

/// The pause between two of [`TAKE_TRIES`].
pub const TAKE_PAUSE: std::time::Duration = std::time::Duration::from_millis(20);

/// The holder's text in a busy lock file (only for messages: an unreadable
/// text is an unknown holder).
fn read_holder(file: &mut File) -> LockHolder {
    let mut text = String::new();
    let _ = file.read_to_string(&mut text);
    LockHolder::from_text(&text)
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

    #[test]
    fn a_look_at_the_holder_takes_nothing_and_creates_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("x.db");
        let look = FileLock::with_suffix(&db, DAEMON_SUFFIX);
        assert!(look.holder().unwrap().is_none());
        assert!(!look.path().exists());
        let mut daemon = FileLock::with_suffix(&db, DAEMON_SUFFIX);
        assert!(daemon.try_acquire().unwrap().is_none());
        let holder = look.holder().unwrap().expect("held");
        assert_eq!(holder.pid, Some(std::process::id()));
        assert!(
            FileLock::new(&db).try_acquire().unwrap().is_none(),
            "the writer lock is another file"
        );
        daemon.release().unwrap();
        assert!(look.holder().unwrap().is_none());
        assert!(
            daemon.try_acquire().unwrap().is_none(),
            "a look leaves it free"
        );
    }
}
