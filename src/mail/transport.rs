//! How built messages leave (SPEC §4, `mail.transport`): a pooled lettre SMTP
//! client (`smtp://`, `smtp+starttls://`, `smtps://`) or a folder of `.eml`
//! files (`file://DIR`). One [`Transport`] is built per config generation and
//! shared by every send; each send is bounded by `mail.timeout` and comes back
//! as [`Accepted`] or a classified [`SendError`] (decision 0023).

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, CertificateStore, Tls, TlsParameters};
use lettre::transport::smtp::PoolConfig;
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};

use super::{Accepted, Deliver, SendError};
use crate::config::{MailConfig, MailTransport, SmtpTls};

/// The longest reason a [`SendError`] carries: a server's reply can be long,
/// and the reason is stored with every failed attempt.
const MAX_REASON: usize = 500;

/// Connections the SMTP pool keeps at most (lettre's default is 10; a relay
/// rarely wants more from one client).
const POOL_SIZE: u32 = 4;

/// How long an idle pooled connection stays open.
const POOL_IDLE: Duration = Duration::from_secs(60);

/// The configured way out, built once per config generation.
pub struct Transport {
    inner: Inner,
    described: String,
}

enum Inner {
    Smtp {
        client: AsyncSmtpTransport<Tokio1Executor>,
        timeout: Duration,
        server: String,
    },
    File {
        dir: PathBuf,
    },
}

/// Why a transport could not be built from the config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TransportError {
    /// Built outside a tokio runtime: lettre's pool spawns its reaper task
    /// when the transport is built.
    NoRuntime,
    /// `mail.ca_file` could not be read or holds no usable certificate.
    CaFile {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// The TLS settings could not be built (no usable root certificates).
    Tls(String),
}

impl fmt::Display for TransportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TransportError::NoRuntime => {
                f.write_str("the mail transport must be built inside the async runtime")
            }
            TransportError::CaFile { path, reason } => {
                write!(f, "mail.ca_file {}: {reason}", path.display())
            }
            TransportError::Tls(reason) => write!(f, "mail TLS settings: {reason}"),
        }
    }
}

impl std::error::Error for TransportError {}

impl Transport {
    /// The transport `mail` names. Must run inside a tokio runtime (the SMTP
    /// pool starts a task); outside one it is [`TransportError::NoRuntime`].
    pub fn from_config(mail: &MailConfig) -> Result<Transport, TransportError> {
        match &mail.transport {
            MailTransport::File(dir) => Ok(Transport {
                described: format!("file://{}", dir.display()),
                inner: Inner::File { dir: dir.clone() },
            }),
            MailTransport::Smtp {
                tls,
                host,
                port,
                user,
                password,
            } => {
                if tokio::runtime::Handle::try_current().is_err() {
                    return Err(TransportError::NoRuntime);
                }
                let scheme = match tls {
                    SmtpTls::None => "smtp",
                    SmtpTls::Implicit => "smtps",
                    SmtpTls::StartTls => "smtp+starttls",
                };
                let server = format!("{host}:{port}");
                let described = match user {
                    Some(user) => format!("{scheme}://{user}@{server}"),
                    None => format!("{scheme}://{server}"),
                };
                let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host)
                    .port(*port)
                    .timeout(Some(mail.timeout))
                    .pool_config(
                        PoolConfig::new()
                            .max_size(POOL_SIZE)
                            .idle_timeout(POOL_IDLE),
                    );
                if *tls != SmtpTls::None {
                    let parameters = tls_parameters(host, mail.ca_file.as_deref())?;
                    builder = builder.tls(match tls {
                        SmtpTls::Implicit => Tls::Wrapper(parameters),
                        _ => Tls::Required(parameters),
                    });
                }
                if let Some(user) = user {
                    let password = password.as_ref().map(|p| p.expose().to_owned());
                    builder = builder
                        .credentials(Credentials::new(user.clone(), password.unwrap_or_default()));
                }
                Ok(Transport {
                    inner: Inner::Smtp {
                        client: builder.build(),
                        timeout: mail.timeout,
                        server,
                    },
                    described,
                })
            }
        }
    }

    /// The transport for logs and reports: scheme, user and server, or the
    /// folder; never a password.
    pub fn describe(&self) -> &str {
        &self.described
    }
}

impl Deliver for Transport {
    async fn deliver(&self, message: &lettre::Message) -> Result<Accepted, SendError> {
        match &self.inner {
            Inner::Smtp {
                client,
                timeout,
                server,
            } => send_smtp(client, *timeout, server, message).await,
            Inner::File { dir } => write_file(dir, message).await,
        }
    }
}

/// TLS for `host`: the system roots, plus `ca_file`'s certificates.
fn tls_parameters(host: &str, ca_file: Option<&Path>) -> Result<TlsParameters, TransportError> {
    let mut builder = TlsParameters::builder(host.to_owned());
    if let Some(path) = ca_file {
        let ca_error = |reason: String| TransportError::CaFile {
            path: path.to_path_buf(),
            reason,
        };
        let pem = std::fs::read(path).map_err(|e| ca_error(e.to_string()))?;
        let certificate = Certificate::from_pem(&pem).map_err(|e| ca_error(e.to_string()))?;
        builder = builder.add_root_certificate(certificate);
    }
    builder
        .build()
        .map_err(|e| TransportError::Tls(one_line(&e.to_string())))
}

/// Whether `pem` (the contents of `mail.ca_file`) holds certificates the
/// TLS client can trust: each is decoded and parsed as the transport will
/// parse it, so `validate` refuses what would make every send fail. Without
/// the system roots, so it costs only the file's own certificates.
pub fn check_ca_pem(pem: &[u8]) -> Result<(), String> {
    // lettre's errors read "tls error: <cause>"; the cause is what helps.
    let why = |e: lettre::transport::smtp::Error| {
        let cause = std::error::Error::source(&e).map_or_else(|| e.to_string(), |s| s.to_string());
        one_line(&cause)
    };
    let certificate = Certificate::from_pem(pem).map_err(why)?;
    TlsParameters::builder("localhost".to_owned())
        .certificate_store(CertificateStore::None)
        .add_root_certificate(certificate)
        .build()
        .map(|_| ())
        .map_err(why)
}

async fn send_smtp(
    client: &AsyncSmtpTransport<Tokio1Executor>,
    timeout: Duration,
    server: &str,
    message: &lettre::Message,
) -> Result<Accepted, SendError> {
    let bytes = message.formatted();
    let sent = tokio::time::timeout(timeout, client.send_raw(message.envelope(), &bytes)).await;
    match sent {
        Ok(Ok(response)) => {
            let text: Vec<&str> = response.message().collect();
            let reply = format!("{} {}", response.code(), text.join(" "));
            Ok(Accepted {
                reply: one_line(reply.trim_end()),
            })
        }
        Ok(Err(e)) => Err(classify(&e, server)),
        Err(_) => Err(SendError::Transient {
            code: None,
            reason: format!(
                "{server}: no answer within {}s (mail.timeout)",
                timeout.as_secs_f64()
            ),
        }),
    }
}

/// A lettre error as the dispatcher needs it: a 5xx reply is permanent,
/// everything else (4xx, connection, TLS, timeout) can succeed later.
fn classify(e: &lettre::transport::smtp::Error, server: &str) -> SendError {
    let code = e.status().map(u16::from);
    // The source holds the server's words or the I/O cause; the top error
    // only names its kind.
    let cause = std::error::Error::source(e)
        .map(|s| s.to_string())
        .unwrap_or_default();
    let reason = if e.is_permanent() || e.is_transient() {
        format!("{server} replied: {cause}")
    } else if e.is_tls() {
        format!("TLS with {server} failed (certificate verification or handshake): {cause}")
    } else if e.is_timeout() {
        format!("{server}: timed out: {cause}")
    } else {
        // lettre nests its errors ("Connection error: Connection error: …",
        // a failed STARTTLS handshake): say the kind once, then the root cause.
        let what = lettre_kind(e);
        match root_cause(e) {
            Some(root) => format!("{server}: {what}: {root}"),
            None => format!("{server}: {what}"),
        }
    };
    let reason = one_line(&reason);
    if e.is_permanent() {
        SendError::Permanent { code, reason }
    } else {
        SendError::Transient { code, reason }
    }
}

/// What went wrong, in lettre's words for its kind of error, without its causes.
fn lettre_kind(e: &lettre::transport::smtp::Error) -> String {
    let full = e.to_string();
    match std::error::Error::source(e).map(|s| s.to_string()) {
        Some(cause) => full
            .strip_suffix(&cause)
            .and_then(|k| k.strip_suffix(": "))
            .map_or_else(|| full.clone(), str::to_owned),
        None => full,
    }
}

/// The innermost error of `e`'s source chain, if it has one.
fn root_cause(e: &dyn std::error::Error) -> Option<String> {
    let mut cause = e.source()?;
    while let Some(next) = cause.source() {
        cause = next;
    }
    Some(cause.to_string())
}

/// `text` on one line, at most [`MAX_REASON`] bytes (cut at a character).
fn one_line(text: &str) -> String {
    let mut line = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if line.len() > MAX_REASON {
        let mut end = MAX_REASON;
        while !line.is_char_boundary(end) {
            end -= 1;
        }
        line.truncate(end);
        line.push('…');
    }
    line
}

/// Writes `message` as `DIR/<Message-ID>.eml`, atomically (a temp file
/// renamed into place): a resend of the same message overwrites its file.
async fn write_file(dir: &Path, message: &lettre::Message) -> Result<Accepted, SendError> {
    let name = eml_name(message);
    let bytes = message.formatted();
    let dir = dir.to_path_buf();
    let written = tokio::task::spawn_blocking(move || write_atomically(&dir, &name, &bytes)).await;
    match written {
        Ok(Ok(path)) => Ok(Accepted {
            reply: format!("written to {}", path.display()),
        }),
        Ok(Err(reason)) => Err(SendError::Transient { code: None, reason }),
        Err(e) => Err(SendError::Transient {
            code: None,
            reason: format!("the file writer stopped: {e}"),
        }),
    }
}

/// The file name for `message`: its Message-ID without angle brackets, every
/// character outside `[A-Za-z0-9._@+-]` as `_`, never starting with `.`.
fn eml_name(message: &lettre::Message) -> String {
    let id = message
        .headers()
        .get_raw("Message-ID")
        .unwrap_or("no-message-id")
        .trim()
        .trim_start_matches('<')
        .trim_end_matches('>');
    let mut name: String = id
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '@' | '+' | '-') {
                c
            } else {
                '_'
            }
        })
        .take(200)
        .collect();
    if name.is_empty() || name.starts_with('.') {
        name.insert(0, '_');
    }
    name.push_str(".eml");
    name
}

fn write_atomically(dir: &Path, name: &str, bytes: &[u8]) -> Result<PathBuf, String> {
    use std::io::Write;
    let shown = dir.display();
    create_private_dir(dir).map_err(|e| format!("cannot create {shown}: {e}"))?;
    let path = dir.join(name);
    let temp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let write = || -> std::io::Result<()> {
        let mut file = std::fs::File::create(&temp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        std::fs::rename(&temp, &path)
    };
    write().map_err(|e| {
        let _ = std::fs::remove_file(&temp);
        format!("cannot write {}: {e}", path.display())
    })?;
    Ok(path)
}

/// Creates `dir` (and its parents) readable by its owner only: mail holds
/// set-password links.
fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    if dir.is_dir() {
        return Ok(());
    }
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn message(id: &str) -> lettre::Message {
        lettre::Message::builder()
            .from("Support <support@example.com>".parse().unwrap())
            .to("a@example.com".parse().unwrap())
            .subject("hi")
            .message_id(Some(id.to_owned()))
            .body("body".to_owned())
            .unwrap()
    }

    #[test]
    fn eml_names_stay_inside_the_folder() {
        assert_eq!(
            eml_name(&message("<17.ab@example.com>")),
            "17.ab@example.com.eml"
        );
        assert_eq!(
            eml_name(&message("<../../etc/passwd>")),
            "_.._.._etc_passwd.eml"
        );
        assert_eq!(eml_name(&message("<.hidden>")), "_.hidden.eml");
        assert!(!eml_name(&message("<a/b\\c d>")).contains(['/', '\\', ' ']));
    }

    #[test]
    fn reasons_are_one_bounded_line() {
        assert_eq!(one_line("451 try\r\n later"), "451 try later");
        let long = "x".repeat(2000);
        assert!(one_line(&long).len() <= MAX_REASON + '…'.len_utf8());
        let wide = "é".repeat(400);
        assert!(one_line(&wide).ends_with('…'));
    }

    #[tokio::test]
    async fn the_file_transport_writes_one_file_per_message_id() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("mail");
        let transport = Transport {
            inner: Inner::File {
                dir: target.clone(),
            },
            described: String::new(),
        };
        let first = transport
            .deliver(&message("<1.x@example.com>"))
            .await
            .unwrap();
        assert!(first.reply.starts_with("written to "), "{first:?}");
        transport
            .deliver(&message("<1.x@example.com>"))
            .await
            .unwrap();
        transport
            .deliver(&message("<2.x@example.com>"))
            .await
            .unwrap();
        let mut names: Vec<String> = std::fs::read_dir(&target)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(names, ["1.x@example.com.eml", "2.x@example.com.eml"]);
        let text = std::fs::read_to_string(target.join("1.x@example.com.eml")).unwrap();
        assert!(text.contains("Message-ID: <1.x@example.com>"), "{text}");
    }

    #[tokio::test]
    async fn an_unwritable_folder_is_a_transient_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("not-a-dir");
        std::fs::write(&file, "x").unwrap();
        let transport = Transport {
            inner: Inner::File { dir: file.clone() },
            described: String::new(),
        };
        let err = transport.deliver(&message("<1@x>")).await.unwrap_err();
        assert!(!err.is_permanent());
        assert!(err.reason().contains("not-a-dir"), "{err}");
    }

    #[test]
    fn a_ca_pem_is_checked_certificate_by_certificate() {
        let armour = |body: &str| {
            format!("-----BEGIN CERTIFICATE-----\n{body}\n-----END CERTIFICATE-----\n")
        };
        let not_der = check_ca_pem(armour("bm90IGEgY2VydGlmaWNhdGU=").as_bytes()).unwrap_err();
        assert!(not_der.contains("BadEncoding"), "{not_der}");
        let not_base64 = check_ca_pem(armour("!!!").as_bytes()).unwrap_err();
        assert!(!not_base64.is_empty());
    }

    #[test]
    fn smtp_needs_a_runtime() {
        let mail = crate::config::load_str(
            "store: sqlite://x.db\nsources: []\nmail:\n  transport: smtp://127.0.0.1:1\n  from: a@example.com\n",
            Path::new("/tmp/liaison.yaml"),
        )
        .unwrap()
        .mail
        .unwrap();
        assert_eq!(
            Transport::from_config(&mail).err(),
            Some(TransportError::NoRuntime)
        );
    }
}
