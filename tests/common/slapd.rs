//! A real OpenLDAP `slapd` per test: its own `slapd.conf` in a temp dir
//! (mdb; core, cosine, inetorgperson and nis schemas; syncprov with a session
//! log and the reload hint; memberof), LDIF loaded with `slapadd` before it
//! starts, on free 127.0.0.1 ports for `ldap://` and (with TLS) `ldaps://`,
//! with a test CA made by the `openssl` command. It runs in the foreground
//! as a child, logging to `slapd.log` in its dir, and is killed on drop.
//!
//! The suffix is [`SUFFIX`]; [`READER`] (password [`READER_PASSWORD`]) may
//! read everything and is subject to the size limits a test sets (the
//! rootdn, [`ADMIN`], is not); [`ADMIN`] writes through `ldapmodify`.

use std::io::Write;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::smtp::TestCa;

/// The directory's suffix.
pub const SUFFIX: &str = "dc=example,dc=com";
/// Where people are.
pub const PEOPLE: &str = "ou=people,dc=example,dc=com";
/// Where groups are.
pub const GROUPS: &str = "ou=groups,dc=example,dc=com";
/// The DN the tests' configs bind as.
pub const READER: &str = "cn=reader,dc=example,dc=com";
/// Its password.
pub const READER_PASSWORD: &str = "reader-secret";
/// The rootdn, for writes.
pub const ADMIN: &str = "cn=admin,dc=example,dc=com";
/// Its password.
pub const ADMIN_PASSWORD: &str = "admin-secret";

const SLAPD: &str = "/usr/sbin/slapd";

/// How long slapd may take to answer after it starts.
const PATIENCE: Duration = Duration::from_secs(20);

/// What server to start.
#[derive(Debug, Clone)]
pub struct SlapdOptions {
    /// The syncprov overlay (RFC 4533); without it changes reads use modifyTimestamp.
    pub syncprov: bool,
    /// syncprov's session log (delete phases for recent cookies).
    pub sessionlog: bool,
    /// How many operations the session log keeps (a cookie older than
    /// that many changes gets a present phase).
    pub sessionlog_size: u32,
    /// The memberof overlay.
    pub memberof: bool,
    /// Listen on ldaps:// too and offer StartTLS, with a fresh test CA.
    pub tls: bool,
    /// The reader's size limit (soft and hard); `None`: unlimited.
    pub size_limit: Option<u32>,
    /// Paged searches may return more than the size limit in all
    /// (`size.prtotal=unlimited`); otherwise they stop at it.
    pub paged_past_limit: bool,
}

impl Default for SlapdOptions {
    fn default() -> Self {
        SlapdOptions {
            syncprov: true,
            sessionlog: true,
            sessionlog_size: 1000,
            memberof: true,
            tls: false,
            size_limit: None,
            paged_past_limit: true,
        }
    }
}

/// A running slapd, killed when dropped.
pub struct Slapd {
    dir: tempfile::TempDir,
    child: Option<Child>,
    port: u16,
    tls_port: Option<u16>,
    ca: Option<TestCa>,
    options: SlapdOptions,
    data: String,
}

/// Fails the test, clearly, when slapd is not installed.
fn require_slapd() {
    if !Path::new(SLAPD).exists() || which("ldapmodify").is_none() {
        panic!(
            "slapd and ldap-utils are needed for the LDAP tests and are not installed: \
             scripts/test installs them when run as root \
             (apt-get install slapd ldap-utils)"
        );
    }
}

fn which(program: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .map(|d| Path::new(d).join(program))
        .find(|p| p.exists())
}

/// A free port on 127.0.0.1 (free when asked; slapd takes it a moment later).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

impl Slapd {
    /// Starts a server as `options` say, with `ldif` (entries under the
    /// suffix; the suffix, the reader, `ou=people` and `ou=groups` are made
    /// here) loaded before it starts.
    pub fn start(options: SlapdOptions, ldif: &str) -> Slapd {
        require_slapd();
        let dir = tempfile::tempdir().expect("temp dir");
        let ca = options.tls.then(|| TestCa::new(&dir.path().join("ca")));
        let mut slapd = Slapd {
            port: free_port(),
            tls_port: options.tls.then(free_port),
            dir,
            child: None,
            ca,
            options,
            data: format!("{}{ldif}", base_ldif()),
        };
        slapd.write_conf();
        slapd.load();
        // A port found free may be taken by another test before slapd binds
        // it: then try new ones.
        for _ in 0..3 {
            if slapd.try_run() {
                return slapd;
            }
            slapd.port = free_port();
            slapd.tls_port = slapd.tls_port.map(|_| free_port());
        }
        panic!("slapd found no free port:\n{}", slapd.log());
    }

    /// A default server (syncprov, session log, memberof; no TLS) with `ldif`.
    pub fn with(ldif: &str) -> Slapd {
        Slapd::start(SlapdOptions::default(), ldif)
    }

    /// `ldap://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("ldap://127.0.0.1:{}", self.port)
    }

    /// `ldaps://127.0.0.1:PORT` (a TLS server only).
    pub fn ldaps_url(&self) -> String {
        format!("ldaps://127.0.0.1:{}", self.tls_port.expect("a TLS server"))
    }

    /// The test CA's certificate (a TLS server only).
    pub fn ca_file(&self) -> PathBuf {
        self.ca.as_ref().expect("a TLS server").ca_file()
    }

    /// The server's folder.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The server's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir().join("slapd.log")).unwrap_or_default()
    }

    fn write_conf(&self) {
        let d = self.dir().display().to_string();
        let mut conf = String::new();
        for schema in ["core", "cosine", "inetorgperson", "nis"] {
            conf.push_str(&format!("include /etc/ldap/schema/{schema}.schema\n"));
        }
        conf.push_str("modulepath /usr/lib/ldap\nmoduleload back_mdb\n");
        if self.options.syncprov {
            conf.push_str("moduleload syncprov\n");
        }
        if self.options.memberof {
            conf.push_str("moduleload memberof\n");
        }
        conf.push_str(&format!("pidfile {d}/slapd.pid\nargsfile {d}/slapd.args\n"));
        if let Some(ca) = &self.ca {
            conf.push_str(&format!(
                "TLSCACertificateFile {}\nTLSCertificateFile {}\nTLSCertificateKeyFile {}\n",
                ca.ca_file().display(),
                ca.server_cert().display(),
                ca.server_key().display()
            ));
        }
        conf.push_str(&format!(
            "database mdb\nmaxsize 1073741824\nsuffix \"{SUFFIX}\"\nrootdn \"{ADMIN}\"\n\
             rootpw {ADMIN_PASSWORD}\ndirectory {d}/db\n\
             index objectClass,entryUUID,entryCSN eq\nindex uid,mail eq\n\
             access to attrs=userPassword by self write by anonymous auth by * none\n\
             access to * by dn.exact=\"{READER}\" read by * none\n"
        ));
        let size = match self.options.size_limit {
            Some(n) => format!("size.soft={n} size.hard={n}"),
            None => "size=unlimited".to_owned(),
        };
        let prtotal = if self.options.paged_past_limit {
            " size.prtotal=unlimited"
        } else {
            ""
        };
        conf.push_str(&format!("limits dn.exact=\"{READER}\" {size}{prtotal}\n"));
        if self.options.syncprov {
            conf.push_str(
                "overlay syncprov\nsyncprov-checkpoint 100 10\nsyncprov-reloadhint TRUE\n",
            );
            if self.options.sessionlog {
                conf.push_str(&format!(
                    "syncprov-sessionlog {}\n",
                    self.options.sessionlog_size
                ));
            }
        }
        if self.options.memberof {
            conf.push_str("overlay memberof\n");
        }
        std::fs::write(self.dir().join("slapd.conf"), conf).expect("write slapd.conf");
    }

    /// A fresh database with the data: `slapadd` before the server runs.
    fn load(&self) {
        let db = self.dir().join("db");
        let _ = std::fs::remove_dir_all(&db);
        std::fs::create_dir_all(&db).expect("mkdir db");
        let file = self.dir().join("data.ldif");
        std::fs::write(&file, &self.data).expect("write data.ldif");
        let out = Command::new("slapadd")
            .arg("-q")
            .arg("-f")
            .arg(self.dir().join("slapd.conf"))
            .arg("-l")
            .arg(&file)
            .output()
            .expect("run slapadd");
        assert!(
            out.status.success(),
            "slapadd failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn run(&mut self) {
        if !self.try_run() {
            panic!("slapd could not bind its ports again:\n{}", self.log());
        }
    }

    /// Starts slapd and waits for it to answer; `false` when its port was taken.
    fn try_run(&mut self) -> bool {
        let mut urls = format!("ldap://127.0.0.1:{}/", self.port);
        if let Some(p) = self.tls_port {
            urls.push_str(&format!(" ldaps://127.0.0.1:{p}/"));
        }
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir().join("slapd.log"))
            .expect("slapd.log");
        // `-d` keeps it in the foreground, a child of the test; `stats`
        // logs each operation, which is what a failing test wants to see.
        let child = Command::new(SLAPD)
            .arg("-f")
            .arg(self.dir().join("slapd.conf"))
            .arg("-h")
            .arg(&urls)
            .args(["-d", "stats"])
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("start slapd");
        self.child = Some(child);
        let started = Instant::now();
        loop {
            let answer = Command::new("ldapsearch")
                .args([
                    "-x",
                    "-H",
                    &self.url(),
                    "-b",
                    "",
                    "-s",
                    "base",
                    "-LLL",
                    "1.1",
                ])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
            if answer.is_ok_and(|s| s.success()) {
                return true;
            }
            if let Some(Ok(Some(status))) = self.child.as_mut().map(Child::try_wait) {
                self.child = None;
                if self.log().contains("Address already in use") {
                    return false;
                }
                panic!("slapd exited ({status}) on start:\n{}", self.log());
            }
            if started.elapsed() > PATIENCE {
                panic!("slapd did not answer within {PATIENCE:?}:\n{}", self.log());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Kills the server and waits for it (its data stays).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the stopped server again on the same ports and data.
    pub fn restart(&mut self) {
        self.stop();
        self.run();
    }

    /// Restarts the server on a fresh database holding the same entries as
    /// at the start (`slapadd` again): every entry gets a new CSN, and the
    /// session log is gone, so an old cookie is stale.
    pub fn reload(&mut self) {
        self.stop();
        self.load();
        self.run();
    }

    /// [`Slapd::reload`] with `ldif` as the entries instead.
    pub fn reload_with(&mut self, ldif: &str) {
        self.data = format!("{}{ldif}", base_ldif());
        self.reload();
    }

    /// The port of `ldap://`.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The server process's id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Applies `ldif` (change records) as the rootdn, with `ldapmodify`.
    pub fn modify(&self, ldif: &str) {
        let mut child = Command::new("ldapmodify")
            .args(["-x", "-H", &self.url(), "-D", ADMIN, "-w", ADMIN_PASSWORD])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run ldapmodify");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(ldif.as_bytes())
            .expect("write ldif");
        let out = child.wait_with_output().expect("ldapmodify");
        assert!(
            out.status.success(),
            "ldapmodify failed:\n{}\n{ldif}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Adds entries (LDIF without change types).
    pub fn add(&self, entries: &str) {
        let ldif: String = entries
            .split("\n\n")
            .filter(|e| !e.trim().is_empty())
            .map(|e| {
                let mut lines = e.trim().lines();
                let dn = lines.next().unwrap_or_default();
                let rest: Vec<&str> = lines.collect();
                format!("{dn}\nchangetype: add\n{}\n\n", rest.join("\n"))
            })
            .collect();
        self.modify(&ldif);
    }

    /// Replaces `attr` of `dn` with `values`.
    pub fn replace(&self, dn: &str, attr: &str, values: &[&str]) {
        let mut ldif = format!("dn: {dn}\nchangetype: modify\nreplace: {attr}\n");
        for v in values {
            ldif.push_str(&format!("{attr}: {v}\n"));
        }
        self.modify(&ldif);
    }

    /// Deletes `dn`.
    pub fn delete(&self, dn: &str) {
        self.modify(&format!("dn: {dn}\nchangetype: delete\n"));
    }

    /// Renames `dn` to `new_rdn`, moved under `new_superior` if given.
    pub fn rename(&self, dn: &str, new_rdn: &str, new_superior: Option<&str>) {
        let mut ldif =
            format!("dn: {dn}\nchangetype: modrdn\nnewrdn: {new_rdn}\ndeleteoldrdn: 1\n");
        if let Some(sup) = new_superior {
            ldif.push_str(&format!("newsuperior: {sup}\n"));
        }
        self.modify(&ldif);
    }

    /// The entryUUID of `dn`.
    pub fn entry_uuid(&self, dn: &str) -> String {
        let out = Command::new("ldapsearch")
            .args([
                "-x",
                "-H",
                &self.url(),
                "-D",
                ADMIN,
                "-w",
                ADMIN_PASSWORD,
                "-b",
                dn,
                "-s",
                "base",
                "-LLL",
                "entryUUID",
            ])
            .output()
            .expect("ldapsearch");
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .find_map(|l| l.strip_prefix("entryUUID: "))
            .unwrap_or_else(|| panic!("no entryUUID for {dn}"))
            .to_owned()
    }
}

impl Drop for Slapd {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The suffix, the reader, `ou=people` and `ou=groups`.
fn base_ldif() -> String {
    format!(
        "dn: {SUFFIX}\nobjectClass: dcObject\nobjectClass: organization\no: Example\ndc: example\n\n\
         dn: {READER}\nobjectClass: simpleSecurityObject\nobjectClass: organizationalRole\n\
         cn: reader\nuserPassword: {READER_PASSWORD}\n\n\
         dn: {PEOPLE}\nobjectClass: organizationalUnit\nou: people\n\n\
         dn: {GROUPS}\nobjectClass: organizationalUnit\nou: groups\n\n"
    )
}

/// One LDIF line: a value outside printable ASCII in base64 (RFC 2849).
pub fn attr(name: &str, value: &str) -> String {
    let safe =
        value.bytes().all(|b| (0x20..0x7f).contains(&b)) && !value.starts_with([' ', ':', '<']);
    if safe {
        format!("{name}: {value}\n")
    } else {
        use base64::Engine as _;
        let b64 = base64::engine::general_purpose::STANDARD.encode(value);
        format!("{name}:: {b64}\n")
    }
}

/// An inetOrgPerson under [`PEOPLE`] (LDIF, ending with a blank line).
pub fn person(uid: &str, cn: &str, mail: &str, o: &str) -> String {
    let sn = cn.rsplit(' ').next().unwrap_or(cn);
    format!(
        "dn: uid={uid},{PEOPLE}\nobjectClass: inetOrgPerson\nuid: {uid}\n{}{}mail: {mail}\n{}\n",
        attr("cn", cn),
        attr("sn", sn),
        attr("o", o)
    )
}

/// A groupOfNames under [`GROUPS`] with `members` (uids under [`PEOPLE`]).
pub fn group(cn: &str, members: &[&str]) -> String {
    let mut ldif = format!("dn: cn={cn},{GROUPS}\nobjectClass: groupOfNames\ncn: {cn}\n");
    for m in members {
        ldif.push_str(&format!("member: uid={m},{PEOPLE}\n"));
    }
    ldif.push('\n');
    ldif
}

/// `n` people from `benches/gen_ldif.py` (no suffix: the harness makes it).
pub fn generated(n: usize) -> String {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("gen.ldif");
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/benches/gen_ldif.py");
    let out = Command::new("python3")
        .arg(script)
        .arg(n.to_string())
        .arg(&file)
        .arg("--no-suffix")
        .output()
        .expect("run benches/gen_ldif.py");
    assert!(
        out.status.success(),
        "gen_ldif.py failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::read_to_string(file).expect("read generated ldif")
}

/// `ldif` with a fixed entryUUID after each `dn: uid=…` line (for slapadd,
/// which keeps it): the same person keeps its UUID across reloads.
pub fn fixed_uuids(ldif: &str) -> String {
    let mut out = String::with_capacity(ldif.len() * 2);
    for line in ldif.lines() {
        out.push_str(line);
        out.push('\n');
        if let Some(uid) = line
            .strip_prefix("dn: uid=")
            .and_then(|r| r.split(',').next())
        {
            out.push_str(&format!("entryUUID: {}\n", uuid_of(uid)));
        }
    }
    out
}

/// A UUID made from `uid` (FNV-1a, twice), version 4 shaped.
pub fn uuid_of(uid: &str) -> String {
    let fnv = |seed: u64| {
        uid.bytes()
            .fold(seed, |h, b| (h ^ u64::from(b)).wrapping_mul(0x100000001b3))
    };
    let (a, b) = (fnv(0xcbf29ce484222325), fnv(0x84222325cbf29ce4));
    let hex = format!("{a:016x}{b:016x}");
    format!(
        "{}-{}-4{}-8{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[13..16],
        &hex[17..20],
        &hex[20..32]
    )
}

/// A TCP proxy to a server on 127.0.0.1 that cuts each connection once
/// `limit` bytes have come from the server, running `on_cut` first (e.g.
/// killing the server): a connection dropped in the middle of a search.
pub struct CutProxy {
    port: u16,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl CutProxy {
    /// Listens on a free port, forwarding to `target`.
    pub fn start(target: u16, limit: usize, on_cut: impl Fn() + Send + Sync + 'static) -> CutProxy {
        use std::sync::atomic::{AtomicBool, Ordering};
        use std::sync::Arc;
        let listener = TcpListener::bind("127.0.0.1:0").expect("proxy listen");
        let port = listener.local_addr().expect("addr").port();
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = stop.clone();
        let on_cut = Arc::new(on_cut);
        std::thread::spawn(move || {
            for client in listener.incoming() {
                if stopping.load(Ordering::SeqCst) {
                    return;
                }
                let Ok(client) = client else { continue };
                let Ok(server) = std::net::TcpStream::connect(("127.0.0.1", target)) else {
                    continue;
                };
                let on_cut = on_cut.clone();
                let (mut c_read, mut s_write) = (
                    client.try_clone().expect("clone"),
                    server.try_clone().expect("clone"),
                );
                std::thread::spawn(move || {
                    let _ = std::io::copy(&mut c_read, &mut s_write);
                });
                let (mut s_read, mut c_write) = (server, client);
                std::thread::spawn(move || {
                    use std::io::Read;
                    let mut sent = 0usize;
                    let mut buf = [0u8; 4096];
                    loop {
                        let n = match s_read.read(&mut buf) {
                            Ok(0) | Err(_) => break,
                            Ok(n) => n,
                        };
                        let room = limit - sent;
                        if n >= room {
                            let _ = c_write.write_all(&buf[..room]);
                            on_cut();
                            break;
                        }
                        if c_write.write_all(&buf[..n]).is_err() {
                            break;
                        }
                        sent += n;
                    }
                    let _ = c_write.shutdown(std::net::Shutdown::Both);
                    let _ = s_read.shutdown(std::net::Shutdown::Both);
                });
            }
        });
        CutProxy { port, stop }
    }

    /// `ldap://127.0.0.1:PORT` of the proxy.
    pub fn url(&self) -> String {
        format!("ldap://127.0.0.1:{}", self.port)
    }
}

impl Drop for CutProxy {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        // Wakes the accept loop so that it sees the flag.
        let _ = std::net::TcpStream::connect(("127.0.0.1", self.port));
    }
}
