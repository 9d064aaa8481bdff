//! The signals the daemon answers: SIGHUP reloads, SIGTERM and SIGINT stop.

use std::io;

use tokio::signal::unix::{signal, Signal as UnixSignal, SignalKind};

/// What a signal asks the daemon to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    /// SIGHUP: reload the configuration.
    Reload,
    /// SIGTERM: stop cleanly.
    Terminate,
    /// SIGINT (Ctrl-C): stop cleanly.
    Interrupt,
}

/// The daemon's signal handlers, installed once at start-up (before
/// `READY=1`, so a reload sent right after it is not lost).
#[derive(Debug)]
pub struct Signals {
    hangup: UnixSignal,
    terminate: UnixSignal,
    interrupt: UnixSignal,
}

impl Signals {
    /// Installs the handlers; must run inside the tokio runtime.
    pub fn install() -> io::Result<Self> {
        Ok(Signals {
            hangup: signal(SignalKind::hangup())?,
            terminate: signal(SignalKind::terminate())?,
            interrupt: signal(SignalKind::interrupt())?,
        })
    }

    /// The next signal received.
    pub async fn next(&mut self) -> Signal {
        tokio::select! {
            Some(()) = self.hangup.recv() => Signal::Reload,
            Some(()) = self.terminate.recv() => Signal::Terminate,
            Some(()) = self.interrupt.recv() => Signal::Interrupt,
            else => Signal::Terminate,
        }
    }
}
