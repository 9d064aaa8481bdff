//! `POST /hooks/SOURCE` on the real daemon's listener, against the emulated
//! CRMs: a valid call brings the change within seconds, debounced; forged,
//! stale and oversized calls are refused and counted.

use std::net::SocketAddr;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::common::crm::{CrmServer, TOKEN};
use crate::common::daemon::{eventually, free_port, Daemon};
use crate::common::http;
use crate::common::Sandbox;

const SECRET: &str = "hubspot-client-secret-31c4";
/// Where HubSpot is told to call: a reverse proxy in front of the listener.
const PUBLIC: &str = "https://liaison.example.com/sync";

fn contact(id: &str, first: &str, email: &str, modified: &str) -> Value {
    json!({
        "id": id,
        "properties": {"email": email, "firstname": first, "lastname": "Test",
                        "portal_access": "true", "lastmodifieddate": modified},
        "companies": ["9001"],
        "primary": "9001",
    })
}

fn data(contacts: Vec<Value>) -> Value {
    json!({"contacts": contacts, "companies": [{"id": "9001", "properties": {"name": "Acme", "domain": "acme.com"}}]})
}

fn config(url: &str, port: u16) -> String {
    format!(
        "store: sqlite://liaison.db
api:
  listen: 127.0.0.1:{port}
  public_url: {PUBLIC}
sources:
  - name: hubspot
    type: crm
    preset: hubspot
    url: {url}
    token: ${{file:hubspot.token}}
    retry_backoff: 50ms
    properties: [portal_access]
    webhook:
      secret: ${{file:hubspot.secret}}
    map:
      name: \"{{{{ properties.firstname }}}} {{{{ properties.lastname }}}}\"
      email: \"{{{{ properties.email }}}}\"
      account_id: \"{{{{ companies.id[0] }}}}\"
    when: \"properties.portal_access == 'true'\"
  - name: daktela
    type: crm
    preset: daktela
    url: {url}
    token: ${{file:hubspot.token}}
    run_on_start: false
    webhook:
      secret: daktela-shared-secret
      header: X-Webhook-Secret
    map:
      name: \"{{{{ title }}}}\"
      email: \"{{{{ customFields.email[0] }}}}\"
"
    )
}

/// HubSpot's v3 signature, made independently of the daemon (Python's hmac).
fn sign(method: &str, uri: &str, body: &str, timestamp: &str) -> String {
    use std::io::Write;
    let script = "import base64,hashlib,hmac,sys\n\
        s,m,u,t=sys.argv[1:5]\n\
        b=sys.stdin.read()\n\
        print(base64.b64encode(hmac.new(s.encode(),(m+u+b+t).encode(),hashlib.sha256).digest()).decode())";
    let mut child = Command::new("python3")
        .args(["-c", script, SECRET, method, uri, timestamp])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("python3");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(body.as_bytes())
        .unwrap();
    let out = child.wait_with_output().expect("python3");
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

fn post(addr: SocketAddr, path: &str, headers: &[(&str, &str)], body: &str) -> http::Response {
    let mut all = vec![("Content-Type", "application/json")];
    all.extend_from_slice(headers);
    http::request(addr, "POST", path, &all, body)
}

fn signed_post(addr: SocketAddr, body: &str, at_ms: i64) -> http::Response {
    let ts = at_ms.to_string();
    let signature = sign("POST", &format!("{PUBLIC}/hooks/hubspot"), body, &ts);
    post(
        addr,
        "/hooks/hubspot",
        &[
            ("X-HubSpot-Signature-v3", &signature),
            ("X-HubSpot-Request-Timestamp", &ts),
        ],
        body,
    )
}

fn metric(addr: SocketAddr, outcome: &str) -> String {
    let body = http::get(addr, "/metrics").body;
    body.lines()
        .find(|l| {
            l.starts_with("liaison_webhook_requests_total")
                && l.contains("source=\"hubspot\"")
                && l.contains(&format!("outcome=\"{outcome}\""))
        })
        .map(|l| l.rsplit(' ').next().unwrap_or("").to_owned())
        .unwrap_or_default()
}

fn runs(daemon: &Daemon) -> usize {
    daemon.count_log(&["run finished", "source=\"hubspot\""])
}

#[test]
fn a_signed_hubspot_webhook_brings_the_change_within_seconds_and_forged_ones_are_refused() {
    let crm = CrmServer::start(
        "hubspot",
        &data(vec![contact(
            "101",
            "Ann",
            "ann@acme.com",
            "2024-04-01T09:00:00.000Z",
        )]),
    );
    let port = free_port();
    let s = Sandbox::new(&config(&crm.url(), port));
    s.write("hubspot.token", TOKEN);
    s.write("hubspot.secret", SECRET);
    let daemon = Daemon::start(&s, &[]);
    daemon.wait_for_log(&["run finished", "source=\"hubspot\"", "created=1"], 1);
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();

    // The CRM changes; HubSpot calls the webhook.
    let now = now_ms();
    crm.set_data(&data(vec![contact(
        "101",
        "Ann",
        "ann.lee@acme.com",
        &iso_now(),
    )]));
    crm.clear_requests();
    let body =
        r#"[{"objectId":101,"subscriptionType":"contact.propertyChange","propertyName":"email"}]"#;
    let started = Instant::now();
    assert_eq!(signed_post(addr, body, now).status, 204);
    daemon.wait_for_log(&["run finished", "source=\"hubspot\"", "updated=1"], 1);
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "{:?}",
        started.elapsed()
    );
    let users = s.users();
    assert_eq!(users[0]["email"], "ann.lee@acme.com");
    let paths: Vec<String> = crm
        .requests()
        .iter()
        .map(|r| r["path"].as_str().unwrap().to_owned())
        .collect();
    assert!(
        paths.iter().any(|p| p == "/crm/v3/objects/contacts/search"),
        "a changes read: {paths:?}"
    );
    let after_valid = runs(&daemon);

    // Forged (another body than signed), stale, unsigned, oversized: refused.
    let ts = now_ms().to_string();
    let signature = sign("POST", &format!("{PUBLIC}/hooks/hubspot"), body, &ts);
    let forged = post(
        addr,
        "/hooks/hubspot",
        &[
            ("X-HubSpot-Signature-v3", &signature),
            ("X-HubSpot-Request-Timestamp", &ts),
        ],
        r#"[{"objectId":999}]"#,
    );
    assert_eq!(forged.status, 401);
    // Signed over the listener's own address instead of the public URL.
    let wrong_uri = sign("POST", &format!("http://{addr}/hooks/hubspot"), body, &ts);
    let proxied = post(
        addr,
        "/hooks/hubspot",
        &[
            ("X-HubSpot-Signature-v3", &wrong_uri),
            ("X-HubSpot-Request-Timestamp", &ts),
        ],
        body,
    );
    assert_eq!(proxied.status, 401);
    assert_eq!(
        signed_post(addr, body, now_ms() - 6 * 60 * 1000).status,
        401
    );
    assert_eq!(post(addr, "/hooks/hubspot", &[], body).status, 401);
    let huge = "x".repeat(300 * 1024);
    assert_eq!(signed_post(addr, &huge, now_ms()).status, 413);
    assert_eq!(post(addr, "/hooks/nosuch", &[], body).status, 404);
    assert_eq!(metric(addr, "accepted"), "1");
    assert_eq!(metric(addr, "forged"), "2");
    assert_eq!(metric(addr, "stale"), "1");
    assert_eq!(metric(addr, "missing"), "1");
    assert_eq!(metric(addr, "oversized"), "1");
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(runs(&daemon), after_valid, "refused calls trigger no run");

    // A burst of 500 calls: one or two runs.
    let before = runs(&daemon);
    let ts = now_ms().to_string();
    let signature = sign("POST", &format!("{PUBLIC}/hooks/hubspot"), body, &ts);
    let headers = [
        ("X-HubSpot-Signature-v3", signature.as_str()),
        ("X-HubSpot-Request-Timestamp", ts.as_str()),
    ];
    for _ in 0..500 {
        assert_eq!(post(addr, "/hooks/hubspot", &headers, body).status, 204);
    }
    eventually(|| (runs(&daemon) > before).then_some(())).expect("a run after the burst");
    std::thread::sleep(Duration::from_secs(4));
    let burst_runs = runs(&daemon) - before;
    assert!(
        (1..=2).contains(&burst_runs),
        "{burst_runs} runs for 500 calls"
    );

    // Daktela's automation: a shared-secret header.
    let good = post(
        addr,
        "/hooks/daktela",
        &[("X-Webhook-Secret", "daktela-shared-secret")],
        "{}",
    );
    assert_eq!(good.status, 204);
    let bad = post(
        addr,
        "/hooks/daktela",
        &[("X-Webhook-Secret", "guess")],
        "{}",
    );
    assert_eq!(bad.status, 401);
    // (It points at the HubSpot emulation, so its run fails: it ran.)
    daemon.wait_for_log(&["source=\"daktela\"", "run failed"], 1);
    assert!(
        !daemon.log().contains(SECRET) && !daemon.log().contains(TOKEN),
        "no secret in the log"
    );
}

fn iso_now() -> String {
    let out = Command::new("python3")
        .args([
            "-c",
            "from datetime import datetime,timezone;print(datetime.now(timezone.utc).strftime('%Y-%m-%dT%H:%M:%S.%f')[:-3]+'Z')",
        ])
        .output()
        .expect("python3");
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}
