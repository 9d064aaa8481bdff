//! Cancelling a run from another thread: a shutdown or a signal sets it, the
//! run looks at it at safe points and stops there, applying nothing.

/// The cancellation flag a run and its connector's read share.
pub use liaison_plugin_api::Cancel;

/// Takes the store's writer lock like [`crate::store::Store::lock_writer`],
/// waiting up to `wait` in one-second slices so that `cancel` is seen within
/// a second: `Ok(false)` when cancelled before the lock was had. `on_wait`
/// hears the holder once.
pub fn lock_writer_cancellable(
    store: &mut dyn crate::store::Store,
    wait: std::time::Duration,
    cancel: &Cancel,
    on_wait: &mut dyn FnMut(&crate::store::LockHolder),
) -> Result<bool, crate::store::StoreError> {
    use crate::store::StoreError;
    use std::time::{Duration, Instant};
    const SLICE: Duration = Duration::from_secs(1);
    let started = Instant::now();
    let mut told = false;
    loop {
        if cancel.is_cancelled() {
            return Ok(false);
        }
        let left = wait.saturating_sub(started.elapsed());
        let mut hear = |holder: &crate::store::LockHolder| {
            if !told {
                told = true;
                on_wait(holder);
            }
        };
        match store.lock_writer(left.min(SLICE), &mut hear) {
            Ok(()) => return Ok(true),
            Err(StoreError::Locked { .. }) if left > SLICE => {}
            Err(StoreError::Locked { path, holder, .. }) => {
                return Err(StoreError::Locked {
                    path,
                    holder,
                    waited_s: started.elapsed().as_secs(),
                })
            }
            Err(other) => return Err(other),
        }
    }
}
