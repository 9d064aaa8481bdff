//! `liaison run`: start-up, the main loop (signals, reloads, watchdog,
//! status) and shutdown. Start-up and reload share one path: load, validate,
//! build, swap — a config that fails any step is refused and the running one
//! stays.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{mpsc, watch, Notify};
use tracing::{error, info, warn};

use super::notify::Notifier;
use super::readiness::StoreReadiness;
use super::scheduler::{Board, Retiring, Shared, SourceTask};
use super::signals::{Signal, Signals};
use super::status::status_line;
use super::watch::{watch_files, FileWatch, WatchOptions};
use crate::cli::exit;
use crate::config::{self, Config, ConnectorConfig, SourceConfig, StoreLocation};
use crate::store::{DaemonLock, DaemonState, SqliteStore};
use crate::telemetry::Metrics;

/// How long shutdown waits for runs to reach a safe point (an apply that is
/// committing finishes first); `TimeoutStopSec=45` in the unit leaves room.
const DRAIN: Duration = Duration::from_secs(30);
/// The config file counts as changed once it has been quiet this long.
const CONFIG_QUIET: Duration = Duration::from_millis(500);
/// How often the config file is checked without an event.
const CONFIG_RESCAN: Duration = Duration::from_secs(30);

/// Runs the daemon on the config at `path` until SIGTERM or SIGINT; returns
/// the exit code (0 after a clean stop, 1 when start-up failed, 2 for an
/// invalid config).
pub fn run(path: &Path) -> u8 {
    let config = match config::load(path) {
        Ok(c) => c,
        Err(errors) => {
            crate::cli::print_config_errors(&errors);
            return exit::INVALID;
        }
    };
    crate::logging::init_daemon(&config.log);
    let (db, _lock) = match claim_store(&config) {
        Ok(claimed) => claimed,
        Err(e) => {
            error!("{e:#}");
            return exit::FAILURE;
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("liaison")
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            error!(error = %e, "cannot start the runtime");
            return exit::FAILURE;
        }
    };
    let code = runtime.block_on(serve(config, db));
    // A run stuck past the drain must not keep the process alive.
    runtime.shutdown_timeout(Duration::from_secs(1));
    code
}

/// Opens (creating or migrating) the store and takes its daemon lock: one
/// daemon per store; one-shot writers are not excluded by it.
fn claim_store(config: &Config) -> anyhow::Result<(PathBuf, DaemonLock)> {
    let StoreLocation::Sqlite(db) = &config.store else {
        anyhow::bail!("the PostgreSQL store is not part of this build yet; use sqlite://");
    };
    // The lock first: a second daemon must not migrate the store under the
    // first. Its file lies beside the database, so the folder comes before.
    crate::cli::create_state_folder(config, db)?;
    let lock = SqliteStore::lock_daemon(db)?;
    drop(crate::cli::open_store(config)?);
    Ok((db.clone(), lock))
}

/// The running daemon's parts.
struct Daemon {
    path: PathBuf,
    db: PathBuf,
    started_ms: i64,
    config: Arc<Config>,
    config_tx: watch::Sender<Arc<Config>>,
    stop_tx: watch::Sender<bool>,
    shared: Arc<Shared>,
    notifier: Notifier,
    sources: BTreeMap<String, Running>,
    /// Tasks of removed sources still finishing a run.
    retiring: BTreeMap<String, Retiring>,
    /// The mail dispatcher's task.
    mail: Option<tokio::task::JoinHandle<()>>,
    /// The sources taking webhooks, as the listener sees them.
    hooks: Arc<crate::api::hooks::Hooks>,
}

/// A source's task, its file watch and its webhook.
struct Running {
    task: SourceTask,
    watch: Option<FileWatch>,
    /// Its hook and debouncer, when it takes webhooks.
    #[cfg(feature = "crm")]
    hook: Option<(crate::api::hooks::Hook, super::webhooks::Debouncer)>,
}

async fn serve(config: Config, db: PathBuf) -> u8 {
    let mut signals = match Signals::install() {
        Ok(s) => s,
        Err(e) => {
            error!(error = %e, "cannot install signal handlers");
            return exit::FAILURE;
        }
    };
    let mut daemon = match Daemon::new(config, db) {
        Ok(d) => d,
        Err(e) => {
            error!("{e:#}");
            return exit::FAILURE;
        }
    };
    if let Err(e) = daemon.start_api().await {
        error!("{e:#}");
        return exit::FAILURE;
    }
    let (reload_tx, reload_rx) = mpsc::channel(1);
    let _config_watch = daemon.watch_config(reload_tx);
    let sources: Vec<SourceConfig> = daemon.config.sources.clone();
    daemon.start_sources(&sources);
    daemon.start_mail();
    daemon.announce_ready();
    daemon.serve_until_stopped(&mut signals, reload_rx).await;
    daemon.stop().await;
    exit::OK
}

async fn tick(interval: &mut Option<tokio::time::Interval>) {
    match interval {
        Some(i) => {
            i.tick().await;
        }
        None => std::future::pending().await,
    }
}

impl Daemon {
    /// The daemon's state before anything runs.
    fn new(config: Config, db: PathBuf) -> anyhow::Result<Daemon> {
        let notifier = Notifier::from_env().unwrap_or_else(|e| {
            warn!(error = %e, "NOTIFY_SOCKET is set but unusable; not notifying systemd");
            Notifier::disabled()
        });
        let shared = Arc::new(Shared {
            cancel: crate::sync::Cancel::new(),
            metrics: Arc::new(Metrics::new()),
            lock_wait: crate::cli::lock_wait()?,
            board: Mutex::new(Board::default()),
            board_changed: Notify::new(),
        });
        let path = config.file.clone();
        let config = Arc::new(config);
        Ok(Daemon {
            path,
            db,
            started_ms: crate::clock::now_ms(),
            config_tx: watch::channel(Arc::clone(&config)).0,
            config,
            stop_tx: watch::channel(false).0,
            shared,
            notifier,
            sources: BTreeMap::new(),
            retiring: BTreeMap::new(),
            mail: None,
            hooks: Arc::default(),
        })
    }

    /// Starts the mail dispatcher; it follows reloads by itself.
    fn start_mail(&mut self) {
        self.mail = Some(super::mail::spawn(
            self.db.clone(),
            self.config_tx.subscribe(),
            self.stop_tx.subscribe(),
            Arc::clone(&self.shared),
        ));
    }

    /// Watches the config file: a change reloads as SIGHUP does.
    fn watch_config(&self, reload: mpsc::Sender<()>) -> FileWatch {
        let options = WatchOptions {
            quiet: CONFIG_QUIET,
            rescan: CONFIG_RESCAN,
        };
        watch_files(self.path.clone(), options, reload)
    }

    /// Logs the start and sends `READY=1`.
    fn announce_ready(&self) {
        info!(
            config = %self.path.display(),
            sources = self.sources.len(),
            pid = std::process::id(),
            "daemon started"
        );
        let status = self.publish_status();
        self.tell("READY", self.notifier.ready(&status));
    }

    /// The main loop: signals, config changes, status and the watchdog,
    /// until SIGTERM or SIGINT.
    async fn serve_until_stopped(&mut self, signals: &mut Signals, mut reload: mpsc::Receiver<()>) {
        let mut watchdog = self.notifier.watchdog_interval().map(tokio::time::interval);
        loop {
            tokio::select! {
                signal = signals.next() => match signal {
                    Signal::Reload => self.reload("SIGHUP"),
                    Signal::Terminate | Signal::Interrupt => {
                        info!(signal = ?signal, "stopping");
                        return;
                    }
                },
                Some(()) = reload.recv() => self.reload("the config file changed"),
                () = self.shared.board_changed.notified() => {
                    self.publish_status();
                }
                _ = tick(&mut watchdog) => self.tell("WATCHDOG", self.notifier.watchdog()),
            }
        }
    }

    /// Starts the HTTP listener when `api.listen` is set. A port that cannot
    /// be bound fails start-up: a half-started daemon would look healthy.
    async fn start_api(&self) -> anyhow::Result<()> {
        let Some(api) = &self.config.api else {
            return Ok(());
        };
        let listener = crate::api::bind(api.listen)
            .await
            .map_err(|e| anyhow::anyhow!("cannot listen on {} (api.listen): {e}", api.listen))?;
        let state = crate::api::ApiState {
            metrics: Arc::clone(&self.shared.metrics),
            readiness: Arc::new(StoreReadiness {
                db: self.db.clone(),
                config: self.config_tx.subscribe(),
            }),
            hooks: Arc::clone(&self.hooks),
        };
        let mut stop = self.stop_tx.subscribe();
        let shutdown = async move {
            let _ = stop.wait_for(|stopped| *stopped).await;
        };
        tokio::spawn(async move {
            if let Err(e) = crate::api::serve(listener, state, shutdown).await {
                error!(error = %e, "the HTTP listener stopped");
            }
        });
        Ok(())
    }

    /// Starts a task (and a file watch) for each of `sources`, and queues
    /// the start-up run of those that want one.
    fn start_sources(&mut self, sources: &[SourceConfig]) {
        for source in sources {
            self.shared.metrics.source_configured(&source.name);
            let task = SourceTask::spawn(
                source.name.clone(),
                self.config_tx.subscribe(),
                self.stop_tx.subscribe(),
                Arc::clone(&self.shared),
                self.retiring.remove(&source.name),
            );
            let watch = file_watch(source, &task);
            #[cfg(feature = "crm")]
            let hook = super::webhooks::hook(source, task.trigger.clone());
            if source.run_on_start {
                let _ = task.trigger.try_send(());
            }
            self.sources.insert(
                source.name.clone(),
                Running {
                    task,
                    watch,
                    #[cfg(feature = "crm")]
                    hook,
                },
            );
        }
        self.publish_hooks();
    }

    /// Tells the listener which sources take webhooks now.
    fn publish_hooks(&self) {
        #[cfg(feature = "crm")]
        let hooks: std::collections::HashMap<String, crate::api::hooks::Hook> = self
            .sources
            .iter()
            .filter_map(|(name, r)| Some((name.clone(), r.hook.as_ref()?.0.clone())))
            .collect();
        #[cfg(not(feature = "crm"))]
        let hooks = std::collections::HashMap::new();
        let public_url = self.config.api.as_ref().and_then(|a| a.public_url.clone());
        self.hooks.set(hooks, public_url);
    }

    /// A source whose webhook settings changed gets a new hook.
    #[cfg(feature = "crm")]
    fn rehook_changed_sources(&mut self, old: &Config) {
        for source in &self.config.sources {
            let Some(running) = self.sources.get_mut(&source.name) else {
                continue;
            };
            let before = old.sources.iter().find(|s| s.name == source.name);
            let webhook = |s: &SourceConfig| match &s.connector {
                ConnectorConfig::Crm(c) => c.webhook.clone(),
                #[allow(unreachable_patterns)]
                _ => None,
            };
            if before.map(webhook) != Some(webhook(source)) {
                running.hook = super::webhooks::hook(source, running.task.trigger.clone());
            }
        }
    }

    /// Reload: the same load and validation as start-up; only a config that
    /// passes replaces the running one. Runs in progress finish on theirs.
    fn reload(&mut self, why: &str) {
        self.tell("RELOADING", self.notifier.reloading());
        info!(reason = why, "reloading the configuration");
        // A config on a hung network mount must not stall the signal loop.
        match tokio::task::block_in_place(|| config::load(&self.path)) {
            Err(errors) => {
                for e in errors.iter() {
                    error!("{e}");
                }
                error!(
                    errors = errors.iter().count(),
                    "the new configuration is invalid; still running the previous one"
                );
            }
            Ok(new) => self.swap(new),
        }
        let status = self.publish_status();
        self.tell("READY", self.notifier.ready(&status));
    }

    fn swap(&mut self, new: Config) {
        let diff = config::diff(&self.config, &new);
        if diff.is_empty() {
            info!("the configuration is unchanged");
            return;
        }
        for line in diff.lines() {
            info!(change = %line, "configuration changed");
        }
        let restart = diff.restart_needed();
        if restart.contains(&"store") {
            // Runs would write to a store this daemon holds no lock on.
            error!(
                "the new configuration names another store; refused, still running the previous one \
                 (restart the daemon to move to it)"
            );
            return;
        }
        for key in restart {
            warn!(key, "this change takes effect at the next restart");
        }
        let old = std::mem::replace(&mut self.config, Arc::new(new));
        self.config_tx.send_replace(Arc::clone(&self.config));
        self.retire_removed_sources();
        self.rewatch_changed_sources(&old);
        #[cfg(feature = "crm")]
        self.rehook_changed_sources(&old);
        let added: Vec<SourceConfig> = self
            .config
            .sources
            .iter()
            .filter(|s| !self.sources.contains_key(&s.name))
            .cloned()
            .collect();
        self.start_sources(&added);
    }

    /// Lets go of the tasks of sources the config no longer has: each ends
    /// after its run in progress, and is kept until then so that shutdown
    /// waits for it and a source added back does not run beside it.
    fn retire_removed_sources(&mut self) {
        let config = Arc::clone(&self.config);
        let removed: Vec<String> = self
            .sources
            .keys()
            .filter(|name| !config.sources.iter().any(|s| &s.name == *name))
            .cloned()
            .collect();
        for name in removed {
            if let Some(running) = self.sources.remove(&name) {
                self.shared.metrics.source_removed(&name);
                self.retiring.insert(name, running.task.retire());
            }
        }
        self.retiring.retain(|_, task| !task.is_finished());
    }

    /// A source whose path or watch settings changed gets a new watch; any
    /// other keeps its own, with what it has seen (a new watch takes the
    /// files as they are now as already synced).
    fn rewatch_changed_sources(&mut self, old: &Config) {
        for source in &self.config.sources {
            let Some(running) = self.sources.get_mut(&source.name) else {
                continue;
            };
            let before = old.sources.iter().find(|s| s.name == source.name);
            if before.map(watched) != Some(watched(source)) {
                running.watch = file_watch(source, &running.task);
            }
        }
    }

    /// `STATUS=` for systemd and the state file `liaison status` reads;
    /// returns the status line.
    fn publish_status(&self) -> String {
        let board = match self.shared.board.lock() {
            Ok(b) => b.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        };
        let line = status_line(&board);
        self.tell("STATUS", self.notifier.status(&line));
        let state = DaemonState {
            pid: std::process::id(),
            started_ms: self.started_ms,
            config: self.path.clone(),
            next_runs: board
                .sources
                .iter()
                .filter_map(|(name, s)| Some((name.clone(), s.next_run_ms?)))
                .collect(),
            updated_ms: crate::clock::now_ms(),
        };
        if let Err(e) = tokio::task::block_in_place(|| state.write(&self.db)) {
            warn!(error = %e, "the daemon state for `liaison status` was not written");
        }
        line
    }

    /// Logs a notification systemd did not get (it is not fatal: systemd
    /// times the unit out if READY never arrives).
    fn tell(&self, what: &str, sent: std::io::Result<()>) {
        if let Err(e) = sent {
            warn!(error = %e, what, "systemd was not notified");
        }
    }

    /// Stops scheduling, asks runs to stop at a safe point, waits for them
    /// within [`DRAIN`], and leaves.
    async fn stop(mut self) {
        self.tell("STOPPING", self.notifier.stopping());
        let _ = self.stop_tx.send(true);
        self.shared.cancel.cancel();
        let tasks: Vec<SourceTask> = std::mem::take(&mut self.sources)
            .into_values()
            .map(|r| r.task)
            .collect();
        let retiring: Vec<Retiring> = std::mem::take(&mut self.retiring).into_values().collect();
        let mail = self.mail.take();
        let drained = tokio::time::timeout(DRAIN, async {
            if let Some(mail) = mail {
                let _ = mail.await;
            }
            for task in tasks {
                task.join().await;
            }
            for task in retiring {
                task.join().await;
            }
        })
        .await;
        if drained.is_err() {
            warn!(
                drain_s = DRAIN.as_secs(),
                "runs did not reach a safe point in time; leaving (an uncommitted transaction rolls back)"
            );
        }
        if let Err(e) = DaemonState::remove(&self.db) {
            warn!(error = %e, "the daemon state file was not removed");
        }
        info!("stopped");
    }
}

/// What a source's file watch watches: its files and how; `None` unwatched.
pub(super) fn watched(source: &SourceConfig) -> Option<(PathBuf, WatchOptions)> {
    let options = source.watch.as_ref()?;
    let path = match &source.connector {
        #[cfg(feature = "csv")]
        ConnectorConfig::Csv(csv) => csv.path.clone(),
        #[allow(unreachable_patterns)]
        _ => return None,
    };
    let options = WatchOptions {
        quiet: options.quiet,
        rescan: options.rescan,
    };
    Some((path, options))
}

/// The file watch of a `watch:` source, feeding its task's trigger.
fn file_watch(source: &SourceConfig, task: &SourceTask) -> Option<FileWatch> {
    let (path, options) = watched(source)?;
    Some(watch_files(path, options, task.trigger.clone()))
}
