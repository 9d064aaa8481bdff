//! A real SMTP server for tests: `tests/smtp_capture.py` (aiosmtpd) on
//! 127.0.0.1 in a temp dir, capturing every message it accepts, and a test CA
//! made with the `openssl` command for its TLS modes.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use mailparse::MailHeaderMap;
use serde_json::Value;

/// How long the server may take to start, or a test to wait for mail.
const PATIENCE: Duration = Duration::from_secs(30);

/// The capture server's script.
const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/smtp_capture.py");

/// How the server speaks TLS.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Tls {
    /// Plain SMTP (`smtp://`).
    #[default]
    None,
    /// Plain first, STARTTLS required before mail (`smtp+starttls://`).
    Starttls,
    /// TLS from the first byte (`smtps://`).
    Implicit,
}

/// What server to start.
#[derive(Debug, Clone, Default)]
pub struct SmtpOptions {
    /// TLS mode; with TLS the server gets a certificate from a fresh [`TestCa`].
    pub tls: Tls,
    /// AUTH required with this user and password.
    pub auth: Option<(String, String)>,
    /// Waits this long in each DATA before answering.
    pub delay_ms: u64,
    /// Listens on this port instead of a free one (a server coming back).
    pub port: Option<u16>,
}

/// A running capture server, killed when dropped.
pub struct SmtpServer {
    child: Child,
    _stdin: ChildStdin,
    port: u16,
    dir: tempfile::TempDir,
    ca: Option<TestCa>,
    tls: Tls,
}

impl SmtpServer {
    /// Starts a server as `options` say and waits until it accepts connections.
    pub fn start(options: SmtpOptions) -> SmtpServer {
        let dir = tempfile::tempdir().expect("temp dir");
        let ca = (options.tls != Tls::None).then(|| TestCa::new(&dir.path().join("ca")));
        let mut command = Command::new("python3");
        command.arg(SCRIPT).arg("--dir").arg(dir.path());
        if let Some(ca) = &ca {
            command
                .arg("--tls-cert")
                .arg(ca.server_cert())
                .arg("--tls-key")
                .arg(ca.server_key());
        }
        if options.tls == Tls::Implicit {
            command.arg("--implicit-tls");
        }
        if let Some((user, pass)) = &options.auth {
            command.args(["--auth-user", user, "--auth-pass", pass]);
        }
        if options.delay_ms > 0 {
            command.args(["--delay-ms", &options.delay_ms.to_string()]);
        }
        if let Some(port) = options.port {
            command.args(["--port", &port.to_string()]);
        }
        let stderr = std::fs::File::create(dir.path().join("server.stderr")).expect("stderr file");
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .expect("start python3 tests/smtp_capture.py");
        let stdin = child.stdin.take().expect("stdin");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let line = rx.recv_timeout(PATIENCE).unwrap_or_default();
        let Some(port) = line
            .strip_prefix("READY ")
            .and_then(|p| p.trim().parse().ok())
        else {
            let _ = child.kill();
            let _ = child.wait();
            let err = std::fs::read_to_string(dir.path().join("server.stderr")).unwrap_or_default();
            panic!("the SMTP capture server did not start (said {line:?}):\n{err}");
        };
        SmtpServer {
            child,
            _stdin: stdin,
            port,
            dir,
            ca,
            tls: options.tls,
        }
    }

    /// A plain server without auth.
    pub fn plain() -> SmtpServer {
        SmtpServer::start(SmtpOptions::default())
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `mail.transport` for it: the scheme its TLS mode needs, `localhost`
    /// when it has a certificate (which names `localhost` and 127.0.0.1), and
    /// the user and password when it requires AUTH and `credentials` is given.
    pub fn url(&self) -> String {
        self.url_with(None)
    }

    /// [`SmtpServer::url`] with `user:password@` in it.
    pub fn url_with(&self, credentials: Option<(&str, &str)>) -> String {
        let scheme = match self.tls {
            Tls::None => "smtp",
            Tls::Starttls => "smtp+starttls",
            Tls::Implicit => "smtps",
        };
        let auth = credentials
            .map(|(u, p)| format!("{u}:{p}@"))
            .unwrap_or_default();
        format!("{scheme}://{auth}127.0.0.1:{}", self.port)
    }

    /// The CA that signed its certificate, when it speaks TLS.
    pub fn ca(&self) -> &TestCa {
        self.ca.as_ref().expect("a TLS server")
    }

    /// The folder it captures into.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Every captured message, in the order accepted.
    pub fn messages(&self) -> Vec<Captured> {
        self.envelopes()
            .into_iter()
            .map(|e| {
                let raw = std::fs::read(self.dir().join(&e.file)).expect("captured .eml");
                Captured { file: e.file, raw }
            })
            .collect()
    }

    /// Every accepted message's envelope, in the order accepted. Written after
    /// the message's file, so a listed file is complete.
    pub fn envelopes(&self) -> Vec<Envelope> {
        let text = std::fs::read_to_string(self.dir().join("envelopes.jsonl")).unwrap_or_default();
        text.lines()
            .map(|line| {
                let v: Value = serde_json::from_str(line).expect("envelope JSON");
                Envelope {
                    file: v["file"].as_str().expect("file").to_owned(),
                    mail_from: v["mail_from"].as_str().unwrap_or_default().to_owned(),
                    rcpt_tos: v["rcpt_tos"]
                        .as_array()
                        .expect("rcpt_tos")
                        .iter()
                        .map(|r| r.as_str().expect("rcpt").to_owned())
                        .collect(),
                }
            })
            .collect()
    }

    /// How many messages it accepted so far.
    pub fn count(&self) -> usize {
        self.envelopes().len()
    }

    /// Waits until it accepted at least `n` messages; the count reached.
    #[track_caller]
    pub fn wait_for(&self, n: usize) -> usize {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let count = self.count();
            if count >= n {
                return count;
            }
            assert!(
                Instant::now() < deadline,
                "{count} of {n} messages arrived within {PATIENCE:?}; the server said:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The next DATA replies, one per message (`451 4.3.0 try later`,
    /// `550 5.1.1 no such user`, `250 OK`); after them every message gets `250`.
    pub fn script_replies(&self, replies: &[&str]) {
        let mut text = String::new();
        for r in replies {
            text.push_str(r);
            text.push('\n');
        }
        let temp = self.dir().join("replies.txt.new");
        std::fs::write(&temp, text).expect("write replies");
        std::fs::rename(temp, self.dir().join("replies.txt")).expect("rename replies");
    }

    /// How many connections clients opened so far.
    pub fn connections(&self) -> usize {
        std::fs::read_to_string(self.dir().join("connections.log"))
            .unwrap_or_default()
            .lines()
            .count()
    }

    /// What the server wrote to stderr (aiosmtpd's warnings and errors).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir().join("server.stderr")).unwrap_or_default()
    }
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One accepted message's envelope.
#[derive(Debug, Clone)]
pub struct Envelope {
    /// Its file in the capture folder.
    pub file: String,
    /// MAIL FROM.
    pub mail_from: String,
    /// RCPT TO, each.
    pub rcpt_tos: Vec<String>,
}

/// One captured message: the bytes as received.
pub struct Captured {
    /// Its file in the capture folder.
    pub file: String,
    /// The message as received.
    pub raw: Vec<u8>,
}

impl Captured {
    fn parsed(&self) -> mailparse::ParsedMail<'_> {
        mailparse::parse_mail(&self.raw).expect("a parseable message")
    }

    /// The raw header block (up to the first empty line), as sent.
    pub fn header_block(&self) -> String {
        let text = String::from_utf8_lossy(&self.raw);
        let end = text.find("\r\n\r\n").unwrap_or(text.len());
        text[..end].to_owned()
    }

    /// The names of the top-level headers, in order.
    pub fn header_names(&self) -> Vec<String> {
        self.parsed().headers.iter().map(|h| h.get_key()).collect()
    }

    /// Every value of header `name` (decoded), in order.
    pub fn headers(&self, name: &str) -> Vec<String> {
        self.parsed().headers.get_all_values(name)
    }

    /// The first value of header `name` (decoded).
    #[track_caller]
    pub fn header(&self, name: &str) -> String {
        self.parsed()
            .headers
            .get_first_value(name)
            .unwrap_or_else(|| panic!("no {name} header in\n{}", self.header_block()))
    }

    /// `Message-ID`.
    pub fn message_id(&self) -> String {
        self.header("Message-ID")
    }

    /// The top-level MIME type (`multipart/alternative`).
    pub fn mime_type(&self) -> String {
        self.parsed().ctype.mimetype.clone()
    }

    /// Each leaf part's MIME type and decoded body (line ends as `\n`), in order.
    pub fn parts(&self) -> Vec<(String, String)> {
        fn leaves(p: &mailparse::ParsedMail<'_>, out: &mut Vec<(String, String)>) {
            if p.subparts.is_empty() {
                let body = p.get_body().expect("a decodable body");
                out.push((p.ctype.mimetype.clone(), body.replace("\r\n", "\n")));
            }
            for s in &p.subparts {
                leaves(s, out);
            }
        }
        let mut out = Vec::new();
        leaves(&self.parsed(), &mut out);
        out
    }

    /// The body of the leaf part of type `mime` (`text/plain`, `text/html`).
    #[track_caller]
    pub fn part(&self, mime: &str) -> String {
        self.parts()
            .into_iter()
            .find(|(t, _)| t == mime)
            .map(|(_, body)| body)
            .unwrap_or_else(|| {
                let raw = String::from_utf8_lossy(&self.raw);
                panic!("no {mime} part in {}:\n{raw}", self.file)
            })
    }
}

/// A throwaway CA and a server certificate it signed for `localhost` and
/// 127.0.0.1, made with the `openssl` command (EC P-256: fast to make).
pub struct TestCa {
    dir: PathBuf,
}

impl TestCa {
    /// Makes the CA and the server certificate in `dir` (created).
    pub fn new(dir: &Path) -> TestCa {
        std::fs::create_dir_all(dir).expect("mkdir ca");
        let ext = "subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\n\
                   keyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n";
        std::fs::write(dir.join("server.ext"), ext).expect("write ext");
        let ec = [
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
        ];
        openssl(
            dir,
            &[
                &["req", "-x509"],
                &ec[..],
                &[
                    "-keyout",
                    "ca.key",
                    "-out",
                    "ca.pem",
                    "-days",
                    "2",
                    "-subj",
                    "/CN=Liaison Test CA",
                    "-addext",
                    "basicConstraints=critical,CA:TRUE",
                    "-addext",
                    "keyUsage=critical,keyCertSign,cRLSign",
                ],
            ],
        );
        openssl(
            dir,
            &[
                &["req"],
                &ec[..],
                &[
                    "-keyout",
                    "server.key",
                    "-out",
                    "server.csr",
                    "-subj",
                    "/CN=localhost",
                ],
            ],
        );
        openssl(
            dir,
            &[&[
                "x509",
                "-req",
                "-in",
                "server.csr",
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-out",
                "server.pem",
                "-days",
                "2",
                "-extfile",
                "server.ext",
            ]],
        );
        TestCa {
            dir: dir.to_path_buf(),
        }
    }

    /// The CA certificate (PEM): what `mail.ca_file` names.
    pub fn ca_file(&self) -> PathBuf {
        self.dir.join("ca.pem")
    }

    /// The server's certificate (PEM).
    pub fn server_cert(&self) -> PathBuf {
        self.dir.join("server.pem")
    }

    /// The server's private key (PEM).
    pub fn server_key(&self) -> PathBuf {
        self.dir.join("server.key")
    }
}

fn openssl(dir: &Path, args: &[&[&str]]) {
    let args: Vec<&str> = args.concat();
    let out = Command::new("openssl")
        .args(&args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .output()
        .expect("run openssl");
    assert!(
        out.status.success(),
        "openssl {args:?} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
