//! The HTTP listener in-process on a loopback port: `/healthz`, `/readyz`,
//! `/metrics` (parsed by Python's prometheus_client), 404s, limits and shutdown.

use std::io::Write;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use liaison::api::{self, ApiState, Limits, Readiness};
use liaison::reconcile::PlanCounts;
use liaison::sync::FailureKind;
use liaison::telemetry::{Metrics, RunOutcome};
use tokio::runtime::Runtime;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::common::http::{self, PATIENCE};
use crate::common::prometheus::Scrape;

/// A readiness check with a fixed answer.
struct Fixed(Result<(), String>);

impl Readiness for Fixed {
    fn check(&self) -> Result<(), String> {
        self.0.clone()
    }
}

/// `api::serve_with` running on its own runtime, on a free loopback port.
struct Listener {
    addr: SocketAddr,
    runtime: Runtime,
    stop: oneshot::Sender<()>,
    served: JoinHandle<std::io::Result<()>>,
}

impl Listener {
    fn start(metrics: Arc<Metrics>, readiness: Result<(), String>) -> Listener {
        Listener::start_with(metrics, readiness, Limits::default())
    }

    fn start_with(
        metrics: Arc<Metrics>,
        readiness: Result<(), String>,
        limits: Limits,
    ) -> Listener {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        let listener = runtime
            .block_on(api::bind(SocketAddr::from(([127, 0, 0, 1], 0))))
            .expect("bind a loopback port");
        let addr = listener.local_addr().expect("local addr");
        let state = ApiState {
            metrics,
            readiness: Arc::new(Fixed(readiness)),
            hooks: Arc::default(),
        };
        let (stop, stopped) = oneshot::channel::<()>();
        let shutdown = async move {
            let _ = stopped.await;
        };
        let served = runtime.spawn(api::serve_with(listener, state, shutdown, limits));
        Listener {
            addr,
            runtime,
            stop,
            served,
        }
    }

    /// Signals shutdown and waits for `serve` to return.
    fn shut_down(self) {
        let _ = self.stop.send(());
        let served = self
            .runtime
            .block_on(async { tokio::time::timeout(PATIENCE, self.served).await });
        let result = served.expect("serve returned after shutdown");
        result
            .expect("serve task")
            .expect("serve ended without error");
    }
}

const FINISHED_AT: u64 = 1_764_000_000;

fn finished() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(FINISHED_AT)
}

fn created(n: usize) -> PlanCounts {
    PlanCounts {
        created: n,
        updated: 1,
        ..PlanCounts::default()
    }
}

/// Two sources with a few runs behind them and a queued message.
fn metrics_after_some_runs() -> Arc<Metrics> {
    let m = Arc::new(Metrics::new());
    m.source_configured("crm");
    m.source_configured("hr");
    let quick = Duration::from_millis(30);
    let slow = Duration::from_secs(4);
    m.run_finished(
        "crm",
        RunOutcome::Applied,
        &created(3),
        2,
        0,
        quick,
        finished(),
    );
    m.run_finished(
        "crm",
        RunOutcome::Applied,
        &created(0),
        0,
        0,
        slow,
        finished(),
    );
    let unreachable = RunOutcome::Failed(FailureKind::SourceUnreachable);
    let none = PlanCounts::default();
    m.run_finished("crm", unreachable, &none, 0, 0, quick, SystemTime::now());
    m.run_finished("hr", RunOutcome::Held, &created(1), 0, 4, slow, finished());
    m.set_outbox("queued", 2);
    m
}

fn scrape(addr: SocketAddr) -> Scrape {
    let response = http::get(addr, "/metrics");
    assert_eq!(response.status, 200, "{}", response.body);
    assert_eq!(
        response.header("content-type"),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    Scrape::parse(&response.body)
}

#[test]
fn metrics_parse_as_prometheus_text_with_the_runs_fed() {
    let metrics = metrics_after_some_runs();
    let listener = Listener::start(metrics.clone(), Ok(()));
    let s = scrape(listener.addr);

    let crm = |extra: (&'static str, &'static str)| [("source", "crm"), extra];
    assert_eq!(
        s.value("liaison_runs_total", &crm(("outcome", "applied"))),
        2.0
    );
    assert_eq!(
        s.value("liaison_runs_total", &crm(("outcome", "failed"))),
        1.0
    );
    assert_eq!(
        s.value("liaison_runs_total", &crm(("outcome", "held"))),
        0.0
    );
    let unreachable = crm(("kind", "source_unreachable"));
    assert_eq!(s.value("liaison_run_failures_total", &unreachable), 1.0);
    assert_eq!(
        s.value("liaison_changes_total", &crm(("kind", "created"))),
        3.0
    );
    assert_eq!(
        s.value("liaison_changes_total", &crm(("kind", "updated"))),
        2.0
    );
    assert_eq!(
        s.value("liaison_row_errors_total", &[("source", "crm")]),
        2.0
    );
    let hr = [("source", "hr")];
    assert_eq!(s.value("liaison_deprovisions_held_total", &hr), 4.0);
    assert_eq!(
        s.value("liaison_last_success_timestamp_seconds", &hr),
        FINISHED_AT as f64
    );
    assert_eq!(
        s.value("liaison_outbox_messages", &[("state", "queued")]),
        2.0
    );
    let version = env!("CARGO_PKG_VERSION");
    assert_eq!(s.value("liaison_build_info", &[("version", version)]), 1.0);

    // The histogram: 3 crm runs, 2 of 30 ms and one of 4 s.
    let duration = s.family("liaison_run_duration_seconds");
    assert_eq!(duration.kind, "histogram");
    let count = s.value("liaison_run_duration_seconds_count", &[("source", "crm")]);
    assert_eq!(count, 3.0);
    let sum = s.value("liaison_run_duration_seconds_sum", &[("source", "crm")]);
    assert!((sum - 4.06).abs() < 1e-9, "sum {sum}");
    let bucket = |le| {
        s.value(
            "liaison_run_duration_seconds_bucket",
            &[("source", "crm"), ("le", le)],
        )
    };
    assert_eq!(bucket("0.025"), 0.0);
    assert_eq!(bucket("0.05"), 2.0);
    assert_eq!(bucket("2.5"), 2.0);
    assert_eq!(bucket("5"), 3.0);
    assert_eq!(bucket("+Inf"), count);
    assert_eq!(s.family("liaison_runs").kind, "counter");
    assert_eq!(s.family("liaison_outbox_messages").kind, "gauge");
    for family in &s.families {
        assert!(!family.help.is_empty(), "{} has no help", family.name);
    }

    // A run after the first scrape shows in the next one.
    metrics.run_finished(
        "crm",
        RunOutcome::Applied,
        &created(5),
        0,
        0,
        Duration::ZERO,
        finished(),
    );
    let s = scrape(listener.addr);
    assert_eq!(
        s.value("liaison_runs_total", &crm(("outcome", "applied"))),
        3.0
    );
    assert_eq!(
        s.value("liaison_changes_total", &crm(("kind", "created"))),
        8.0
    );
    listener.shut_down();
}

#[test]
fn a_configured_source_that_never_ran_shows_zeroed_series() {
    let metrics = Arc::new(Metrics::new());
    metrics.source_configured("ldap");
    let listener = Listener::start(metrics, Ok(()));
    let s = scrape(listener.addr);
    let ldap: Vec<_> = s
        .samples()
        .filter(|x| x.labels.get("source").map(String::as_str) == Some("ldap"))
        .collect();
    for sample in &ldap {
        assert_eq!(sample.value, 0.0, "{sample:?}");
    }
    let named = |name: &str| ldap.iter().filter(|x| x.name == name).count();
    assert_eq!(named("liaison_runs_total"), 4, "one per outcome");
    assert_eq!(named("liaison_run_failures_total"), FailureKind::ALL.len());
    assert_eq!(named("liaison_changes_total"), 5);
    for name in [
        "liaison_row_errors_total",
        "liaison_deprovisions_held_total",
        "liaison_last_success_timestamp_seconds",
        "liaison_run_duration_seconds_count",
    ] {
        assert_eq!(named(name), 1, "{name}");
    }
    listener.shut_down();
}

#[test]
fn healthz_and_readyz_answer_when_ready() {
    let listener = Listener::start(Arc::new(Metrics::new()), Ok(()));
    let health = http::get(listener.addr, "/healthz");
    assert_eq!((health.status, health.body.as_str()), (200, "ok"));
    let ready = http::get(listener.addr, "/readyz");
    assert_eq!((ready.status, ready.body.as_str()), (200, "ready"));
    listener.shut_down();
}

#[test]
fn readyz_is_503_with_the_reason_while_healthz_stays_200() {
    let reason = "source crm failed 3 runs in a row (readiness.max_failed_runs: 2)";
    let listener = Listener::start(Arc::new(Metrics::new()), Err(reason.into()));
    let ready = http::get(listener.addr, "/readyz");
    assert_eq!((ready.status, ready.body.as_str()), (503, reason));
    assert_eq!(http::get(listener.addr, "/healthz").status, 200);
    listener.shut_down();
}

#[test]
fn unknown_paths_are_404_and_other_methods_are_refused() {
    let listener = Listener::start(Arc::new(Metrics::new()), Ok(()));
    for path in ["/", "/nope", "/metrics/extra", "/healthz/"] {
        assert_eq!(http::get(listener.addr, path).status, 404, "{path}");
    }
    let post = http::request(listener.addr, "POST", "/metrics", &[], "x");
    assert_eq!(post.status, 405);
    listener.shut_down();
}

#[test]
fn a_body_announced_over_the_limit_is_refused_before_the_route() {
    let limits = Limits {
        max_body_bytes: 64,
        ..Limits::default()
    };
    let listener = Listener::start_with(Arc::new(Metrics::new()), Ok(()), limits);
    let big = "x".repeat(65);
    let refused = http::request(listener.addr, "GET", "/healthz", &[], &big);
    assert_eq!(refused.status, 413);
    let small = http::request(listener.addr, "GET", "/healthz", &[], "x");
    assert_eq!(small.status, 200);
    listener.shut_down();
}

#[test]
fn a_client_that_never_finishes_its_headers_is_cut_off() {
    let limits = Limits {
        header_read_timeout: Duration::from_millis(300),
        ..Limits::default()
    };
    let listener = Listener::start_with(Arc::new(Metrics::new()), Ok(()), limits);
    let mut slow = http::connect(listener.addr);
    // Well under hyper's own default of 30 s, so only our limit can pass this.
    slow.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("set read timeout");
    slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        .expect("send half a head");
    // Fails (instead of returning) if the server keeps the connection open.
    http::read_to_close(&mut slow);
    assert_eq!(http::get(listener.addr, "/healthz").status, 200);
    listener.shut_down();
}

#[test]
fn shutdown_closes_idle_connections_and_serve_returns() {
    let listener = Listener::start(Arc::new(Metrics::new()), Ok(()));
    let mut idle = http::connect(listener.addr);
    // Make sure the server has accepted it before shutting down.
    assert_eq!(http::get(listener.addr, "/healthz").status, 200);
    let addr = listener.addr;
    listener.shut_down();
    assert_eq!(http::read_to_close(&mut idle), b"");
    assert!(
        std::net::TcpStream::connect(addr).is_err(),
        "still accepting"
    );
}

#[test]
fn binding_a_taken_address_names_it() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = taken.local_addr().expect("addr");
    let err = runtime
        .block_on(api::bind(addr))
        .expect_err("the address is taken");
    assert_eq!(err.kind(), std::io::ErrorKind::AddrInUse);
    assert!(err.to_string().contains(&addr.to_string()), "{err}");
}
