//! One daemon per store: the daemon lock, a second advisory lock beside the
//! database (`liaison.db.daemon`). Only `liaison run` takes it, for as long as
//! it runs; writers (`sync --once`, the daemon's own runs) take the writer lock
//! per transaction and never touch this one, so they are never refused
//! because a daemon runs.

use std::path::Path;

use super::lock::{FileLock, DAEMON_SUFFIX, DISPATCH_SUFFIX, TAKE_PAUSE, TAKE_TRIES};
use crate::store::{LockHolder, StoreError};

/// The daemon lock while this process holds it; released when dropped (and by
/// the operating system when the process dies).
#[derive(Debug)]
pub struct DaemonLock {
    lock: FileLock,
}

impl DaemonLock {
    /// The lock file.
    pub fn path(&self) -> &Path {
        self.lock.path()
    }
}

impl Drop for DaemonLock {
    fn drop(&mut self) {
        // The OS drops the lock with the handle whatever this returns; the
        // text only tells who held it.
        let _ = self.lock.release();
    }
}

/// Takes the daemon lock of the database at `db`, or says who holds it
/// ([`StoreError::DaemonRunning`]). Tries [`TAKE_TRIES`] times: a `status`
/// looking at the holder holds the lock for an instant.
pub fn lock_daemon(db: &Path) -> Result<DaemonLock, StoreError> {
    let mut lock = FileLock::with_suffix(db, DAEMON_SUFFIX);
    let mut tries = 0;
    loop {
        tries += 1;
        match lock.try_acquire()? {
            None => return Ok(DaemonLock { lock }),
            Some(holder) if tries >= TAKE_TRIES => {
                return Err(StoreError::DaemonRunning {
                    path: db.display().to_string(),
                    holder,
                })
            }
            // Maybe a look, whose file may still hold a dead holder's text.
            Some(_) => std::thread::sleep(TAKE_PAUSE),
        }
    }
}

/// Who holds the daemon lock of the database at `db` now; `None` when nobody
/// does. Takes nothing and creates nothing.
pub fn daemon_holder(db: &Path) -> Result<Option<LockHolder>, StoreError> {
    FileLock::with_suffix(db, DAEMON_SUFFIX).holder()
}

/// The dispatcher lock while this process holds it: one process sends a
/// store's mail at a time (the daemon's dispatcher or `mail flush`), so the
/// holder may requeue what a dead sender left `sending`. Released when dropped.
#[derive(Debug)]
pub struct DispatchLock {
    lock: FileLock,
}

impl Drop for DispatchLock {
    fn drop(&mut self) {
        let _ = self.lock.release();
    }
}

/// Takes the dispatcher lock of the database at `db` (`liaison.db.mail`),
/// waiting up to `wait` for another dispatcher; `on_wait` hears who holds it.
pub fn lock_dispatcher(
    db: &Path,
    wait: std::time::Duration,
    on_wait: &mut dyn FnMut(&LockHolder),
) -> Result<DispatchLock, StoreError> {
    let mut lock = FileLock::with_suffix(db, DISPATCH_SUFFIX);
    crate::store::lock::wait_for(
        &db.display().to_string(),
        wait,
        &mut || lock.try_acquire(),
        on_wait,
    )?;
    Ok(DispatchLock { lock })
}
