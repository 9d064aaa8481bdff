//! The dispatcher (SPEC §4): sends the outbox's due mail through one
//! [`Deliver`] (the config generation's pooled transport), a few messages at
//! a time, inside the send window and under the rate limit.
//!
//! Each message is claimed (`queued` → `sending`), rendered — a welcome gets a
//! fresh set-password token whose hash is committed before the message goes
//! out — delivered, and then marked `sent`, or queued again with exponential
//! backoff after a connection error or a 4xx reply, or `failed` after a 5xx
//! reply or its last attempt. When marking a message sent fails the
//! dispatcher stops: sending on would risk sending it twice.
//!
//! The caller holds the store's dispatcher lock ([`SqliteStore::lock_dispatcher`])
//! so that messages another process left `sending` can be requeued safely.
//!
//! [`SqliteStore::lock_dispatcher`]: crate::store::SqliteStore::lock_dispatcher

use std::collections::VecDeque;
use std::fmt;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use chrono_tz::Tz;
use tracing::{debug, warn};

use super::window::{is_open, next_open};
use super::{build_message, Deliver, MailKind, MailVars, MessageMeta, SendError, Templates};
use crate::config::{Config, SendWindow, WelcomeConfig};
use crate::model::Status;
use crate::store::{OutboxEntry, Store, StoreError};
use crate::sync::Cancel;

/// Messages delivered at once: as many as the SMTP pool keeps connections
/// (`transport::POOL_SIZE`).
pub const CONCURRENCY: usize = 4;

/// Due messages read from the store at a time.
const BATCH: usize = 256;

/// The wait before the first retry; each further one doubles it.
const RETRY_FIRST: Duration = Duration::from_secs(60);

/// The longest wait between two attempts.
const RETRY_MAX: Duration = Duration::from_secs(4 * 3600);

/// How often marking a message sent is tried before the dispatcher stops.
const MARK_SENT_TRIES: u32 = 5;

/// The pause between those tries (the store may be busy with a big apply).
const MARK_SENT_PAUSE: Duration = Duration::from_millis(500);

/// What the dispatcher needs of `mail:` and the rest of the config.
#[derive(Debug, Clone)]
pub struct DispatchSettings {
    /// `mail.from`.
    pub from: String,
    /// `mail.window`, if any.
    pub window: Option<SendWindow>,
    /// `mail.timezone`: the window's zone, and the zone of the token expiry
    /// the welcome prints.
    pub zone: Tz,
    /// `mail.rate_per_minute`, if any.
    pub rate_per_minute: Option<u32>,
    /// `mail.max_attempts`.
    pub max_attempts: u32,
    /// `mail.welcome`: token lifetime and link.
    pub welcome: WelcomeConfig,
    /// `portal.url`, if configured.
    pub portal_url: Option<String>,
    /// Messages in flight at once.
    pub concurrency: usize,
}

impl DispatchSettings {
    /// The settings of `config`; `None` when mail is not configured.
    pub fn of(config: &Config) -> Option<DispatchSettings> {
        let mail = config.mail.as_ref()?;
        Some(DispatchSettings {
            from: mail.from.clone(),
            window: mail.window.clone(),
            zone: mail.timezone.parse().unwrap_or(chrono_tz::UTC),
            rate_per_minute: mail.rate_per_minute,
            max_attempts: mail.max_attempts,
            welcome: mail.welcome.clone(),
            portal_url: config.portal.as_ref().map(|p| p.url.to_string()),
            concurrency: CONCURRENCY,
        })
    }
}

/// Messages counted by kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ByKind {
    /// `welcome`.
    pub welcome: u64,
    /// `registration_confirmation`.
    pub registration_confirmation: u64,
}

impl ByKind {
    fn add(&mut self, kind: MailKind) {
        match kind {
            MailKind::Welcome => self.welcome += 1,
            MailKind::RegistrationConfirmation => self.registration_confirmation += 1,
        }
    }

    /// Both kinds together.
    pub fn total(&self) -> u64 {
        self.welcome + self.registration_confirmation
    }

    /// The count of `kind`.
    pub fn of(&self, kind: MailKind) -> u64 {
        match kind {
            MailKind::Welcome => self.welcome,
            MailKind::RegistrationConfirmation => self.registration_confirmation,
        }
    }
}

/// What one flush did.
#[derive(Debug, Default)]
pub struct Flush {
    /// Messages a dead sender had left `sending`, queued again at the start.
    pub requeued: u64,
    /// Accepted by the server (or written to the folder).
    pub sent: ByKind,
    /// Refused for good, or out of attempts.
    pub failed: ByKind,
    /// Queued again for a later attempt.
    pub retried: u64,
    /// Not sent because their user lost access (or is gone).
    pub cancelled: u64,
    /// Why the flush ended before the due mail did, if it did.
    pub stopped: Option<Stopped>,
}

impl Flush {
    /// Whether the flush ended on an error rather than running out of mail,
    /// the window or the rate.
    pub fn is_error(&self) -> bool {
        matches!(
            self.stopped,
            Some(Stopped::Store(_)) | Some(Stopped::MarkSent { .. })
        )
    }
}

/// Why a flush left due mail queued.
#[derive(Debug)]
pub enum Stopped {
    /// The send window is closed; it opens then (`None`: it has no days).
    Window {
        /// The next opening.
        opens: Option<DateTime<Utc>>,
    },
    /// `mail.rate_per_minute` messages went out in the last minute.
    RateLimit {
        /// The limit.
        per_minute: u32,
    },
    /// The process is stopping: the rest waits for the next dispatcher.
    Cancelled,
    /// The store failed while reading or claiming mail: nothing was lost
    /// (claimed messages are requeued by the next dispatcher).
    Store(StoreError),
    /// A message the server accepted could not be marked sent: it stays
    /// `sending`, and the next dispatcher sends it again (the duplicate window).
    MarkSent {
        /// The message.
        id: i64,
        /// Why.
        error: StoreError,
    },
}

impl fmt::Display for Stopped {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Stopped::Window { opens: Some(at) } => {
                write!(
                    f,
                    "the send window is closed; it opens at {}",
                    at.to_rfc3339()
                )
            }
            Stopped::Window { opens: None } => {
                f.write_str("the send window has no days, so it never opens")
            }
            Stopped::RateLimit { per_minute } => write!(
                f,
                "mail.rate_per_minute ({per_minute}) reached; the rest waits for the next run"
            ),
            Stopped::Cancelled => f.write_str("stopped: the process is stopping"),
            Stopped::Store(e) => write!(f, "stopped: the store failed: {e}"),
            Stopped::MarkSent { id, error } => write!(
                f,
                "stopped: message {id} was accepted but could not be marked sent ({error}); \
                 it will be sent again when a dispatcher next starts"
            ),
        }
    }
}

/// Sends due mail through `D` with one config generation's templates and settings.
pub struct Dispatcher<D> {
    deliver: D,
    templates: Templates,
    settings: DispatchSettings,
    cancel: Cancel,
}

/// One claimed message, built and ready to go.
struct Job {
    entry: OutboxEntry,
    message: lettre::Message,
}

/// What preparing a claimed message came to.
enum Prepared {
    Ready(lettre::Message),
    /// Its user is gone or lost access.
    Cancel(&'static str),
    /// It can never be built: failed at once, with why.
    Broken(String),
}

/// What the workers share: the store, the due messages read but not yet
/// claimed, the rate budget left, and the report.
struct Shared<S> {
    store: S,
    due: VecDeque<OutboxEntry>,
    budget: Option<u64>,
    flush: Flush,
}

impl<D: Deliver + Sync> Dispatcher<D> {
    /// A dispatcher over `deliver`.
    pub fn new(deliver: D, templates: Templates, settings: DispatchSettings) -> Self {
        Dispatcher {
            deliver,
            templates,
            settings,
            cancel: Cancel::new(),
        }
    }

    /// Stops its flushes when `cancel` is set (the daemon's shutdown): no
    /// message is claimed after that; those in flight are settled.
    pub fn with_cancel(mut self, cancel: Cancel) -> Self {
        self.cancel = cancel;
        self
    }

    /// The transport it sends through.
    pub fn transport(&self) -> &D {
        &self.deliver
    }

    /// Sends the due mail of `store` until none is due, the window closes,
    /// the rate limit is reached or the store fails. Blocking: it drives the
    /// sends on `runtime` from [`DispatchSettings::concurrency`] threads of
    /// its own. `now` is the clock (ms since the Unix epoch), read for every
    /// decision. The caller holds the dispatcher lock.
    pub fn flush<S: Store>(
        &self,
        mut store: S,
        now: &(dyn Fn() -> i64 + Sync),
        runtime: &tokio::runtime::Handle,
    ) -> Flush {
        let mut flush = Flush::default();
        let budget = match self.start(&mut store, now(), &mut flush) {
            Ok(Some(budget)) => budget,
            Ok(None) => return flush,
            Err(e) => {
                flush.stopped = Some(Stopped::Store(e));
                return flush;
            }
        };
        let shared = Mutex::new(Shared {
            store,
            due: VecDeque::new(),
            budget,
            flush,
        });
        std::thread::scope(|scope| {
            for _ in 0..self.settings.concurrency.max(1) {
                scope.spawn(|| self.work(&shared, now, runtime));
            }
        });
        shared
            .into_inner()
            .unwrap_or_else(PoisonError::into_inner)
            .flush
    }

    /// Requeues what a dead sender left, then checks the window and the
    /// rate: `Some(budget)` (`None` inside: no limit) when sending may start.
    fn start<S: Store>(
        &self,
        store: &mut S,
        now_ms: i64,
        flush: &mut Flush,
    ) -> Result<Option<Option<u64>>, StoreError> {
        flush.requeued = store.outbox_requeue_sending(now_ms)?;
        if flush.requeued > 0 {
            warn!(
                messages = flush.requeued,
                "queued again mail a stopped dispatcher left sending; some may be delivered twice"
            );
        }
        if let Some(stop) = self.window_closed(now_ms) {
            flush.stopped = Some(stop);
            return Ok(None);
        }
        let Some(per_minute) = self.settings.rate_per_minute else {
            return Ok(Some(None));
        };
        let recent = store.outbox_sent_since(now_ms - 60_000)?;
        let budget = u64::from(per_minute).saturating_sub(recent);
        if budget == 0 {
            flush.stopped = Some(Stopped::RateLimit { per_minute });
            return Ok(None);
        }
        Ok(Some(Some(budget)))
    }

    /// [`Stopped::Window`] when the window is closed at `now_ms`.
    fn window_closed(&self, now_ms: i64) -> Option<Stopped> {
        let window = self.settings.window.as_ref()?;
        let now = utc(now_ms);
        (!is_open(window, self.settings.zone, now)).then(|| Stopped::Window {
            opens: next_open(window, self.settings.zone, now),
        })
    }

    /// One worker: claim and build under the lock, deliver without it,
    /// record under it again.
    fn work<S: Store>(
        &self,
        shared: &Mutex<Shared<S>>,
        now: &(dyn Fn() -> i64 + Sync),
        runtime: &tokio::runtime::Handle,
    ) {
        loop {
            let job = {
                let mut s = lock(shared);
                if s.flush.stopped.is_some() {
                    return;
                }
                match self.next_job(&mut s, now()) {
                    Ok(Some(job)) => job,
                    Ok(None) => return,
                    Err(e) => {
                        s.flush.stopped = Some(Stopped::Store(e));
                        return;
                    }
                }
            };
            let outcome = runtime.block_on(self.deliver.deliver(&job.message));
            let mut s = lock(shared);
            if let Err(stop) = self.record(&mut s, &job.entry, outcome, now) {
                s.flush.stopped.get_or_insert(stop);
                return;
            }
        }
    }

    /// The next message to deliver: claimed and built. Messages that cannot
    /// be built are settled here; `None` when nothing more may go now.
    fn next_job<S: Store>(
        &self,
        s: &mut Shared<S>,
        now_ms: i64,
    ) -> Result<Option<Job>, StoreError> {
        loop {
            if self.cancel.is_cancelled() {
                s.flush.stopped = Some(Stopped::Cancelled);
                return Ok(None);
            }
            if s.budget == Some(0) {
                if let Some(per_minute) = self.settings.rate_per_minute {
                    s.flush.stopped = Some(Stopped::RateLimit { per_minute });
                }
                return Ok(None);
            }
            if s.due.is_empty() {
                if let Some(stop) = self.window_closed(now_ms) {
                    s.flush.stopped = Some(stop);
                    return Ok(None);
                }
                s.due = s.store.outbox_due(now_ms, BATCH)?.into();
            }
            let Some(entry) = s.due.pop_front() else {
                return Ok(None);
            };
            if !s.store.outbox_claim(entry.id, now_ms)? {
                continue; // cancelled, or claimed by another dispatcher
            }
            match self.prepare(&mut s.store, &entry, now_ms)? {
                Prepared::Ready(message) => {
                    if let Some(budget) = &mut s.budget {
                        *budget -= 1;
                    }
                    return Ok(Some(Job { entry, message }));
                }
                Prepared::Cancel(why) => {
                    debug!(id = entry.id, why, "mail cancelled before sending");
                    s.store.outbox_cancel_claimed(entry.id, now_ms)?;
                    s.flush.cancelled += 1;
                }
                Prepared::Broken(why) => {
                    warn!(id = entry.id, kind = %entry.kind, error = %why, "mail cannot be built");
                    s.store.outbox_failed(entry.id, &why, now_ms)?;
                    s.flush.failed.add(entry.kind);
                }
            }
        }
    }

    /// Builds `entry`'s message for its user as the store has it now; a
    /// welcome's token is made and its hash committed here, before sending.
    fn prepare<S: Store>(
        &self,
        store: &mut S,
        entry: &OutboxEntry,
        now_ms: i64,
    ) -> Result<Prepared, StoreError> {
        let Some(addressee) = store.outbox_addressee(entry.user)? else {
            return Ok(Prepared::Cancel("the user was deleted"));
        };
        match (addressee.status, entry.kind) {
            (Status::Disabled | Status::Rejected, _) => {
                return Ok(Prepared::Cancel("the user lost access"))
            }
            (Status::Pending, MailKind::Welcome) => {
                return Ok(Prepared::Cancel("the user is not active"))
            }
            _ => {}
        }
        let mut vars = MailVars {
            login: addressee.login,
            title: addressee.title,
            email: entry.recipient.clone(),
            locale: entry.locale.clone(),
            portal_url: self.settings.portal_url.clone(),
            accounts: addressee.accounts,
            set_password_url: None,
            expires: None,
        };
        if entry.kind == MailKind::Welcome {
            match self.welcome_link(store, entry, now_ms)? {
                Ok((link, expires)) => {
                    vars.set_password_url = Some(link);
                    vars.expires = Some(expires);
                }
                Err(why) => return Ok(Prepared::Broken(why)),
            }
        }
        let meta = MessageMeta {
            from: &self.settings.from,
            message_id: &entry.message_id,
            date: utc(now_ms),
        };
        Ok(
            match build_message(&self.templates, entry.kind, &vars, &meta) {
                Ok(message) => Prepared::Ready(message),
                Err(e) => Prepared::Broken(e.to_string()),
            },
        )
    }

    /// A new set-password token for the welcome `entry`, its hash stored:
    /// the link and when it expires (in the mail zone), or why there can be
    /// no link.
    #[allow(clippy::type_complexity)]
    fn welcome_link<S: Store>(
        &self,
        store: &mut S,
        entry: &OutboxEntry,
        now_ms: i64,
    ) -> Result<Result<(String, DateTime<Tz>), String>, StoreError> {
        let welcome = &self.settings.welcome;
        let (token, hash) = match crate::password::new_token() {
            Ok(made) => made,
            Err(e) => return Ok(Err(format!("no set-password token could be made: {e}"))),
        };
        let Some(link) = welcome.link(&token) else {
            return Ok(Err("the welcome has no set-password link: set \
                 mail.welcome.set_password_url or api.public_url"
                .to_owned()));
        };
        let ttl_ms = i64::try_from(welcome.token_ttl.as_millis()).unwrap_or(i64::MAX);
        let expires_ms = now_ms.saturating_add(ttl_ms);
        store.create_password_token(entry.user, &hash, expires_ms, now_ms)?;
        Ok(Ok((
            link,
            utc(expires_ms).with_timezone(&self.settings.zone),
        )))
    }

    /// Settles a delivered (or refused) message in the store. Marking a sent
    /// message is tried a few times; an `Err` stops the flush.
    fn record<S: Store>(
        &self,
        s: &mut Shared<S>,
        entry: &OutboxEntry,
        outcome: Result<super::Accepted, SendError>,
        now: &(dyn Fn() -> i64 + Sync),
    ) -> Result<(), Stopped> {
        match outcome {
            Ok(accepted) => {
                mark_sent(&mut s.store, entry.id, now)?;
                debug!(id = entry.id, kind = %entry.kind, reply = %accepted.reply, "mail sent");
                s.flush.sent.add(entry.kind);
            }
            Err(e) => {
                let attempts = entry.attempts + 1;
                let now_ms = now();
                let settled = if e.is_permanent() || attempts >= self.settings.max_attempts {
                    let why = if e.is_permanent() {
                        e.to_string()
                    } else {
                        format!("gave up after {attempts} attempts; the last: {e}")
                    };
                    warn!(id = entry.id, kind = %entry.kind, error = %why, "mail failed");
                    s.flush.failed.add(entry.kind);
                    s.store.outbox_failed(entry.id, &why, now_ms)
                } else {
                    let wait = retry_after(attempts);
                    debug!(id = entry.id, error = %e, wait_s = wait.as_secs(), "mail will be retried");
                    s.flush.retried += 1;
                    let at = now_ms.saturating_add(wait.as_millis() as i64);
                    s.store.outbox_retry(entry.id, &e.to_string(), at, now_ms)
                };
                settled.map_err(Stopped::Store)?;
            }
        }
        Ok(())
    }
}

/// Marks `id` sent, trying [`MARK_SENT_TRIES`] times: the message went out,
/// so giving up here means it will be sent again.
fn mark_sent<S: Store>(
    store: &mut S,
    id: i64,
    now: &(dyn Fn() -> i64 + Sync),
) -> Result<(), Stopped> {
    let mut tries = 0;
    loop {
        tries += 1;
        match store.outbox_sent(id, now()) {
            Ok(()) => return Ok(()),
            Err(error) if tries >= MARK_SENT_TRIES || !error.is_busy() => {
                return Err(Stopped::MarkSent { id, error })
            }
            Err(_) => std::thread::sleep(MARK_SENT_PAUSE),
        }
    }
}

/// The wait before attempt `attempts + 1`: 60 s after the first attempt,
/// doubling, at most 4 h.
pub fn retry_after(attempts: u32) -> Duration {
    let doublings = attempts.saturating_sub(1).min(16);
    RETRY_FIRST.saturating_mul(1 << doublings).min(RETRY_MAX)
}

fn utc(ms: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(ms).single().unwrap_or_default()
}

fn lock<S>(shared: &Mutex<Shared<S>>) -> MutexGuard<'_, Shared<S>> {
    shared.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests;
