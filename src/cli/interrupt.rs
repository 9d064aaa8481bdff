//! SIGINT and SIGTERM for one-shot commands (`sync --once`, `plan`): the first
//! asks the run to stop at its next safe point, so it applies nothing and the
//! process exits 130 or 143 (SPEC §5); a second ends the process at once
//! (an uncommitted SQLite transaction rolls back when the process dies).

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;

use crate::sync::Cancel;

/// The one-shot process's signal handling; the cancel flag is handed to runs.
#[derive(Debug, Clone)]
pub struct Interrupts {
    cancel: Cancel,
    code: Arc<AtomicU8>,
}

/// 128 + SIGINT.
const SIGINT_EXIT: u8 = 130;
/// 128 + SIGTERM.
const SIGTERM_EXIT: u8 = 143;

impl Interrupts {
    /// Installs the handlers on a small thread of their own. If they cannot
    /// be installed the defaults stay (the signal ends the process), which
    /// loses nothing either: an uncommitted transaction rolls back.
    pub fn install() -> Self {
        let interrupts = Interrupts {
            cancel: Cancel::new(),
            code: Arc::new(AtomicU8::new(0)),
        };
        let handler = interrupts.clone();
        let started = std::thread::Builder::new()
            .name("signals".to_owned())
            .spawn(move || handler.listen());
        if let Err(e) = started {
            tracing::warn!(error = %e, "signal handling not installed");
        }
        interrupts
    }

    /// The flag runs watch.
    pub fn cancel(&self) -> Cancel {
        self.cancel.clone()
    }

    /// 130 or 143 when a signal stopped the command, else `None`.
    pub fn exit_code(&self) -> Option<u8> {
        match self.code.load(Ordering::SeqCst) {
            0 => None,
            code => Some(code),
        }
    }

    fn listen(self) {
        use tokio::signal::unix::{signal, SignalKind};
        let runtime = match tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .build()
        {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(error = %e, "signal handling not installed");
                return;
            }
        };
        runtime.block_on(async move {
            let (Ok(mut int), Ok(mut term)) = (
                signal(SignalKind::interrupt()),
                signal(SignalKind::terminate()),
            ) else {
                tracing::warn!("signal handling not installed");
                return;
            };
            loop {
                let code = tokio::select! {
                    _ = int.recv() => SIGINT_EXIT,
                    _ = term.recv() => SIGTERM_EXIT,
                };
                if self.code.swap(code, Ordering::SeqCst) != 0 {
                    // The second signal: the user means it.
                    std::process::exit(i32::from(code));
                }
                tracing::warn!(
                    "stopping at the next safe point, applying nothing not yet committing \
                     (signal again to stop at once)"
                );
                self.cancel.cancel();
            }
        });
    }
}
