//! One session with the server: connect (TLS, StartTLS), bind, and what a
//! failure of either means for people (SPEC §2: the source and the server
//! named, never the password).

use std::error::Error as _;
use std::future::Future;
use std::path::Path;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use ldap3::{Ldap, LdapConnAsync, LdapConnSettings, LdapError};
use liaison_plugin_api::SourceError;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;

use crate::LdapConfig;

/// A connected (and bound) session; its connection's driver task is
/// aborted when the session is dropped.
pub(crate) struct Session {
    /// The handle operations go through.
    pub ldap: Ldap,
    /// The task reading and writing the connection (`None` once awaited).
    driver: Option<tokio::task::JoinHandle<Result<(), LdapError>>>,
    /// When that task may run (see [`Pace`]).
    gate: Arc<Gate>,
}

/// A gate on the connection's driver task, for one unpaged search read at
/// the reader's pace ([`Pace`]).
///
/// ldap3 hands a search's entries over through an unbounded channel that its
/// driver fills as fast as the server sends; one poll of the driver reads for
/// as long as the socket has data (measured: the whole 40 MB answer of a
/// 100,000-entry changes search in one poll, ~230 MB once decoded). A paged
/// search holds at most a page there; the RFC 4533 changes search is one
/// unpaged search (the sync control does not combine with paging), so while
/// the host is slower than the server the whole change set would pile up.
/// While a [`Pace`] lives the driver is polled only while the gate is open
/// (the reader has taken every decoded entry and waits for more), and each
/// such poll may read at most [`PACED_READS`] times from the socket; what the
/// server sends meanwhile waits in the TCP buffers, then in the server.
#[derive(Debug, Default)]
pub(crate) struct Gate {
    state: Mutex<GateState>,
}

#[derive(Debug, Default)]
struct GateState {
    /// A [`Pace`] is in force.
    paced: bool,
    /// The driver may not run (only while paced).
    shut: bool,
    /// The driver task, waiting for the gate to open.
    waiting: Option<Waker>,
}

/// Socket reads per paced poll of the driver. Each read takes what the
/// connection's buffer has room for (it grows to the largest message seen,
/// e.g. a group with thousands of members), so this bounds the entries
/// decoded ahead of the reader to a few buffers' worth.
const PACED_READS: u32 = 4;

/// tokio's budget of a task poll (`tokio::task::coop`: 128 operations on
/// its resources, socket reads among them); see [`Gated`].
const TASK_BUDGET: u32 = 128;

impl Gate {
    fn set(&self, paced: bool, shut: bool) {
        let waiting = {
            let mut state = self.lock();
            state.paced = paced;
            state.shut = shut;
            if shut {
                None
            } else {
                state.waiting.take()
            }
        };
        if let Some(waker) = waiting {
            waker.wake();
        }
    }

    /// Lets the driver run freely again.
    fn open(&self) {
        self.set(false, false);
    }

    fn lock(&self) -> MutexGuard<'_, GateState> {
        // Two flags and a waker: a panic elsewhere leaves them usable.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The connection's driver future behind its [`Gate`].
struct Gated<F> {
    inner: Pin<Box<F>>,
    gate: Arc<Gate>,
}

impl<F: Future> Future for Gated<F> {
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let paced = {
            let mut state = self.gate.lock();
            if state.shut {
                state.waiting = Some(cx.waker().clone());
                return Poll::Pending;
            }
            state.paced
        };
        if paced {
            // The driver reads from its socket until the socket has nothing
            // or this task's coop budget runs out: spend all of the budget
            // but a few reads first. (A budget already lower than tokio's
            // initial one runs out here; tokio then polls the task again
            // with a fresh one. An unconstrained one is left as it is.)
            for _ in 0..TASK_BUDGET - PACED_READS {
                match tokio::task::coop::poll_proceed(cx) {
                    Poll::Ready(spent) => spent.made_progress(),
                    Poll::Pending => break,
                }
            }
        }
        self.inner.as_mut().poll(cx)
    }
}

/// One search read at its reader's pace: entries are decoded only when the
/// reader has taken all that were, a few socket reads at a time
/// ([`PACED_READS`]); while the reader handles an entry or waits for the
/// host to take a batch the connection is not read at all. So however many
/// entries the search returns, only a few buffers' worth sit decoded ahead
/// of the reader. Dropping it lets the connection run freely again.
pub(crate) struct Pace(Arc<Gate>);

impl Pace {
    /// The search's next message: one already decoded if there is one; else
    /// the driver may read until one is.
    pub async fn next(
        &self,
        stream: &mut ldap3::SearchStream<'static, String, Vec<String>>,
    ) -> ldap3::result::Result<Option<ldap3::ResultEntry>> {
        // Unconstrained: a pending poll then means that nothing is decoded,
        // not that this task's coop budget ran out.
        let mut next = std::pin::pin!(tokio::task::coop::unconstrained(stream.next()));
        let got = std::future::poll_fn(|cx| {
            let polled = next.as_mut().poll(cx);
            if polled.is_pending() {
                self.0.set(true, false);
            }
            polled
        })
        .await;
        self.0.set(true, true);
        got
    }
}

impl Drop for Pace {
    fn drop(&mut self) {
        self.0.open();
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        if let Some(driver) = &self.driver {
            driver.abort();
        }
    }
}

impl Session {
    /// The error of an operation that failed while `doing` something: when
    /// the connection's task died decoding a reply (the LDAP library panics
    /// on malformed messages), that is what is said; else [`lost`].
    pub async fn failed(&mut self, config: &LdapConfig, doing: &str, e: &LdapError) -> SourceError {
        // Whatever the driver has left to say (a panic) it says running.
        self.gate.open();
        // A timeout leaves the connection's task running; any other failure
        // may be its death, which is a moment behind the closed channel.
        let waiting = !matches!(e, LdapError::Timeout { .. });
        if let (true, Some(mut driver)) = (waiting, self.driver.take()) {
            match tokio::time::timeout(Duration::from_millis(200), &mut driver).await {
                Ok(Err(join)) if join.is_panic() => {
                    let why = crate::read::panic_text(join.into_panic());
                    return SourceError::Invalid(format!(
                        "{}: a reply of the server could not be decoded while {doing} (the \
                         LDAP library gave up: {why}); the read failed and nothing is applied",
                        config.describe()
                    ));
                }
                Ok(_) => {}
                // Still running: keep it, to be aborted with the session.
                Err(_) => self.driver = Some(driver),
            }
        }
        lost(config, doing, e)
    }

    /// The handle with the operation timeout set for its next operation.
    pub fn op(&mut self, timeout: Duration) -> &mut Ldap {
        self.ldap.with_timeout(timeout)
    }

    /// Paces the connection by its reader until the [`Pace`] is dropped.
    pub fn pace(&self) -> Pace {
        self.gate.set(true, false);
        Pace(self.gate.clone())
    }

    /// Closes the connection politely (an unbind), waiting at most a moment.
    pub async fn close(mut self) {
        self.gate.open();
        let _ = tokio::time::timeout(Duration::from_secs(2), self.ldap.unbind()).await;
    }
}

/// PEM certificates from `path`, or why there are none.
pub(crate) fn ca_certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let mut certs = Vec::new();
    for cert in CertificateDer::pem_slice_iter(&bytes) {
        match cert {
            Ok(cert) => certs.push(cert),
            Err(e) => return Err(format!("{} is not PEM certificates: {e}", path.display())),
        }
    }
    if certs.is_empty() {
        return Err(format!("{} holds no PEM certificate", path.display()));
    }
    Ok(certs)
}

/// The TLS settings: the system's roots plus `ca_file`, verification always on.
fn tls_config(config: &LdapConfig) -> Result<Arc<rustls::ClientConfig>, SourceError> {
    let name = config.describe();
    let mut roots = rustls::RootCertStore::empty();
    let native = rustls_native_certs::load_native_certs();
    for cert in native.certs {
        // A system certificate rustls cannot use is skipped, as curl does.
        let _ = roots.add(cert);
    }
    if let Some(path) = &config.ca_file {
        let certs = ca_certificates(path)
            .map_err(|why| SourceError::Invalid(format!("{name}: ca_file: {why}")))?;
        for cert in certs {
            roots.add(cert).map_err(|e| {
                SourceError::Invalid(format!(
                    "{name}: ca_file {}: a certificate cannot be used: {e}",
                    path.display()
                ))
            })?;
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| SourceError::Invalid(format!("{name}: TLS settings: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(tls))
}

/// Connects and binds as the config says.
pub(crate) async fn open(config: &LdapConfig) -> Result<Session, SourceError> {
    let name = config.describe();
    let mut settings = LdapConnSettings::new().set_conn_timeout(config.connect_timeout);
    if config.url.tls || config.starttls {
        settings = settings
            .set_config(tls_config(config)?)
            .set_starttls(config.starttls && !config.url.tls);
    }
    let url = config.url.to_string();
    // The library's timeout covers the TCP connect; this one TLS and StartTLS too.
    let connecting = LdapConnAsync::with_settings(settings, &url);
    let (conn, ldap) = match tokio::time::timeout(config.connect_timeout, connecting).await {
        Ok(Ok(pair)) => pair,
        Ok(Err(e)) => return Err(connect_error(config, &e)),
        Err(_) => {
            return Err(SourceError::Unreachable(format!(
                "{name}: no connection within connect_timeout ({})",
                seconds(config.connect_timeout)
            )))
        }
    };
    let gate = Arc::new(Gate::default());
    let driver = Gated {
        inner: Box::pin(conn.drive()),
        gate: gate.clone(),
    };
    let mut session = Session {
        ldap,
        driver: Some(tokio::spawn(driver)),
        gate,
    };
    if let Some(bind) = &config.bind {
        let bound = session
            .op(config.timeout)
            .simple_bind(&bind.dn, bind.password.expose())
            .await;
        let result = match bound {
            Ok(result) => result,
            Err(e) => return Err(session.failed(config, "binding", &e).await),
        };
        if result.rc != 0 {
            let said = server_said(&result.text);
            let why = match result.rc {
                49 => format!(
                    "the server refused the credentials of bind_dn {:?} (invalidCredentials){said}",
                    bind.dn
                ),
                13 => format!(
                    "the server will not accept a bind without TLS (confidentialityRequired){said}: \
                     use ldaps:// or starttls: true"
                ),
                50 => format!("bind_dn {:?} may not bind (insufficientAccessRights){said}", bind.dn),
                53 => format!("the server is unwilling to let {:?} bind{said}", bind.dn),
                rc => format!("binding as {:?} failed: {}{said}", bind.dn, result_name(rc)),
            };
            return Err(SourceError::Auth(format!("{name}: {why}")));
        }
    }
    Ok(session)
}

/// A failed connect, told with what went wrong: refused, no route, TLS.
fn connect_error(config: &LdapConfig, e: &LdapError) -> SourceError {
    let name = config.describe();
    if let Some(tls) = rustls_error(e) {
        let hint = match tls {
            rustls::Error::InvalidCertificate(_) => match &config.ca_file {
                Some(path) => format!(
                    " (the server's certificate is not signed by a CA in ca_file {} or the \
                     system's roots, or does not name {:?})",
                    path.display(),
                    config.url.host
                ),
                None => format!(
                    " (the server's certificate is not signed by a CA the system trusts, or \
                     does not name {:?}; a private CA goes in ca_file)",
                    config.url.host
                ),
            },
            _ => String::new(),
        };
        return SourceError::Unreachable(format!("{name}: the TLS handshake failed: {tls}{hint}"));
    }
    match e {
        LdapError::Io { source } => {
            let why = match source.kind() {
                std::io::ErrorKind::ConnectionRefused => "connection refused".to_owned(),
                std::io::ErrorKind::TimedOut => format!(
                    "no connection within connect_timeout ({})",
                    seconds(config.connect_timeout)
                ),
                _ => source.to_string(),
            };
            SourceError::Unreachable(format!("{name}: {why}"))
        }
        LdapError::Timeout { .. } => SourceError::Unreachable(format!(
            "{name}: no connection within connect_timeout ({})",
            seconds(config.connect_timeout)
        )),
        LdapError::LdapResult { result } if config.starttls => SourceError::Unreachable(format!(
            "{name}: StartTLS was refused: {}{}",
            result_name(result.rc),
            server_said(&result.text)
        )),
        other => SourceError::Unreachable(format!("{name}: {other}")),
    }
}

/// The rustls error inside `e`, if the failure was TLS's.
fn rustls_error(e: &LdapError) -> Option<&rustls::Error> {
    match e {
        LdapError::Rustls { source } => Some(source),
        LdapError::Io { source } => source
            .get_ref()
            .and_then(|inner| inner.downcast_ref::<rustls::Error>())
            .or_else(|| {
                source
                    .source()
                    .and_then(|inner| inner.downcast_ref::<rustls::Error>())
            }),
        _ => None,
    }
}

/// The error of an operation whose connection failed or went quiet while
/// `doing` something: a timeout or a lost connection, both retryable.
pub(crate) fn lost(config: &LdapConfig, doing: &str, e: &LdapError) -> SourceError {
    let name = config.describe();
    match e {
        LdapError::Timeout { .. } => SourceError::Unreachable(format!(
            "{name}: no answer within timeout ({}) while {doing}",
            seconds(config.timeout)
        )),
        LdapError::Io { source } => SourceError::Incomplete(format!(
            "{name}: the connection failed while {doing}: {source}"
        )),
        LdapError::EndOfStream
        | LdapError::OpSend { .. }
        | LdapError::ResultRecv { .. }
        | LdapError::IdScrubSend { .. }
        | LdapError::MiscSend { .. } => SourceError::Incomplete(format!(
            "{name}: the server closed the connection while {doing}"
        )),
        LdapError::FilterParsing => SourceError::Invalid(format!(
            "{name}: the filter cannot be encoded while {doing}"
        )),
        other => SourceError::Incomplete(format!("{name}: {other} while {doing}")),
    }
}

/// `: TEXT` when the server gave a diagnostic text, else nothing.
pub(crate) fn server_said(text: &str) -> String {
    let text = text.trim();
    if text.is_empty() {
        String::new()
    } else {
        format!(": the server says {text:?}")
    }
}

/// A result code's name (RFC 4511 appendix A), with its number.
pub(crate) fn result_name(rc: u32) -> String {
    let name = match rc {
        1 => "operationsError",
        2 => "protocolError",
        3 => "timeLimitExceeded",
        4 => "sizeLimitExceeded",
        7 => "authMethodNotSupported",
        8 => "strongerAuthRequired",
        10 => "referral",
        11 => "adminLimitExceeded",
        12 => "unavailableCriticalExtension",
        13 => "confidentialityRequired",
        32 => "noSuchObject",
        34 => "invalidDNSyntax",
        48 => "inappropriateAuthentication",
        49 => "invalidCredentials",
        50 => "insufficientAccessRights",
        51 => "busy",
        52 => "unavailable",
        53 => "unwillingToPerform",
        80 => "other",
        4096 => "e-syncRefreshRequired",
        _ => return format!("result code {rc}"),
    };
    format!("{name} ({rc})")
}

/// `d` as people read it: `10s`, `2m`.
pub(crate) fn seconds(d: Duration) -> String {
    let s = d.as_secs();
    if d.subsec_millis() != 0 || s == 0 {
        format!("{}ms", d.as_millis())
    } else if s.is_multiple_of(3600) {
        format!("{}h", s / 3600)
    } else if s.is_multiple_of(60) {
        format!("{}m", s / 60)
    } else {
        format!("{s}s")
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn ca_files_must_hold_pem_certificates() {
        let dir = tempfile::tempdir().unwrap();
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "just text\n").unwrap();
        assert!(ca_certificates(&empty)
            .unwrap_err()
            .contains("no PEM certificate"));
        let missing = dir.path().join("missing.pem");
        assert!(ca_certificates(&missing)
            .unwrap_err()
            .contains("cannot read"));
    }

    #[test]
    fn durations_and_codes_read_well() {
        assert_eq!(seconds(Duration::from_secs(10)), "10s");
        assert_eq!(seconds(Duration::from_secs(120)), "2m");
        assert_eq!(seconds(Duration::from_millis(1500)), "1500ms");
        assert_eq!(result_name(49), "invalidCredentials (49)");
        assert_eq!(result_name(999), "result code 999");
        assert_eq!(server_said(" "), "");
        assert_eq!(server_said("no"), ": the server says \"no\"");
    }

    /// A driver that sends one message per "socket read" (a unit of coop
    /// budget, as tokio's sockets spend it), as fast as it is polled.
    async fn driver(
        tx: tokio::sync::mpsc::UnboundedSender<u32>,
        sent: Arc<std::sync::atomic::AtomicU32>,
    ) {
        for i in 0..10_000 {
            tokio::task::coop::consume_budget().await;
            sent.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            if tx.send(i).is_err() {
                return;
            }
        }
    }

    #[tokio::test]
    async fn a_paced_driver_runs_only_while_its_reader_waits_and_then_briefly() {
        use std::sync::atomic::{AtomicU32, Ordering};
        let gate = Arc::new(Gate::default());
        gate.set(true, false);
        let pace = Pace(gate.clone());
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let sent = Arc::new(AtomicU32::new(0));
        let task = tokio::spawn(Gated {
            inner: Box::pin(driver(tx, sent.clone())),
            gate: gate.clone(),
        });
        let mut taken = 0;
        let mut ahead = 0;
        while taken < 2_000 {
            // What `Pace::next` does, on a channel instead of a search.
            let got = {
                let mut next = std::pin::pin!(tokio::task::coop::unconstrained(rx.recv()));
                std::future::poll_fn(|cx| {
                    let polled = next.as_mut().poll(cx);
                    if polled.is_pending() {
                        gate.set(true, false);
                    }
                    polled
                })
                .await
            };
            gate.set(true, true);
            assert!(got.is_some());
            taken += 1;
            ahead = ahead.max(sent.load(Ordering::SeqCst) - taken);
            // The reader is slow (waits for the host): the driver must not run.
            let before = sent.load(Ordering::SeqCst);
            for _ in 0..3 {
                tokio::task::yield_now().await;
            }
            assert_eq!(sent.load(Ordering::SeqCst), before, "it ran while shut");
        }
        assert!(ahead <= PACED_READS, "{ahead} messages ahead of the reader");
        // Unpaced, it runs to the end.
        drop(pace);
        task.await.unwrap();
        assert_eq!(sent.load(Ordering::SeqCst), 10_000);
    }
}
