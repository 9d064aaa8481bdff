//! What a send through a transport comes to, for the dispatcher to decide:
//! accepted (with the server's words), worth another try later, or refused
//! for good. The transports (`transport.rs`) map their own errors here.

use std::fmt;
use std::future::Future;

/// The server took the message (SMTP `250`), or the file transport wrote it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accepted {
    /// What the server replied, e.g. `250 2.0.0 Ok: queued as 4F2A`; for the
    /// file transport, where the message was written.
    pub reply: String,
}

/// Why a send did not succeed, and whether trying again can help (SPEC §4).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendError {
    /// A connection error, a timeout or a 4xx reply: retry with backoff.
    Transient {
        /// The SMTP reply code, when the server gave one.
        code: Option<u16>,
        /// What went wrong, for `mail status` and the log (never a password).
        reason: String,
    },
    /// A 5xx reply, or a message no server would take: `failed` at once.
    Permanent {
        /// The SMTP reply code, when the server gave one.
        code: Option<u16>,
        /// What went wrong.
        reason: String,
    },
}

impl SendError {
    /// True when another attempt cannot help.
    pub fn is_permanent(&self) -> bool {
        matches!(self, SendError::Permanent { .. })
    }

    /// The SMTP reply code, when there was one.
    pub fn code(&self) -> Option<u16> {
        match self {
            SendError::Transient { code, .. } | SendError::Permanent { code, .. } => *code,
        }
    }

    /// What went wrong, without the code.
    pub fn reason(&self) -> &str {
        match self {
            SendError::Transient { reason, .. } | SendError::Permanent { reason, .. } => reason,
        }
    }
}

impl fmt::Display for SendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.code() {
            Some(code) => write!(f, "{code} {}", self.reason()),
            None => f.write_str(self.reason()),
        }
    }
}

impl std::error::Error for SendError {}

/// Something that sends one built message: the configured transport, or a
/// test's. Called from the daemon's runtime; each call is bounded in time by
/// the implementation (`mail.timeout`).
pub trait Deliver: Send + Sync {
    /// Sends `message` to its envelope's recipients.
    fn deliver(
        &self,
        message: &lettre::Message,
    ) -> impl Future<Output = Result<Accepted, SendError>> + Send;
}
