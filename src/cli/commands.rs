//! The commands: load config, open the store, call into the library, print.

use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{bail, Context};
use tracing::error;

use super::args::{Cli, Command, Format, ListArgs, SyncArgs, UsersCommand};
use super::exit;
use super::output;
use crate::config::{self, Config, SourceConfig, StoreLocation};
use crate::store::{SqliteStore, Store, UserFilter};
use crate::sync::{run_source, RunOptions, RunReport, RunStatus};

/// Runs the parsed command line and returns the process exit code.
pub fn run(cli: Cli) -> ExitCode {
    let code = match &cli.command {
        Command::Validate => validate(&cli),
        Command::Plan { source, format } => {
            with_config(&cli, |c| plan(c, source.as_deref(), *format))
        }
        Command::Sync(args) => with_config(&cli, |c| sync(c, args)),
        Command::Users { command } => with_config(&cli, |c| users(c, command)),
    };
    ExitCode::from(code)
}

fn validate(cli: &Cli) -> u8 {
    match config::load(&cli.config) {
        Ok(c) => {
            output::line(&format!(
                "{}: OK ({} source{})",
                cli.config.display(),
                c.sources.len(),
                if c.sources.len() == 1 { "" } else { "s" }
            ));
            exit::OK
        }
        Err(errors) => {
            print_config_errors(&errors);
            exit::INVALID
        }
    }
}

fn print_config_errors(errors: &config::ConfigErrors) {
    for e in errors.iter() {
        output::error_line(&e.to_string());
    }
}

/// Loads the config (exit 2 on errors) and runs `f`; an error from `f` is exit 1.
fn with_config(cli: &Cli, f: impl FnOnce(&Config) -> anyhow::Result<u8>) -> u8 {
    let config = match config::load(&cli.config) {
        Ok(c) => c,
        Err(errors) => {
            print_config_errors(&errors);
            return exit::INVALID;
        }
    };
    crate::logging::init(&config.log);
    match f(&config) {
        Ok(code) => code,
        Err(e) => {
            error!("{e:#}");
            output::error_line(&format!("error: {e:#}"));
            exit::FAILURE
        }
    }
}

fn open_store(config: &Config) -> anyhow::Result<Box<dyn Store>> {
    match &config.store {
        StoreLocation::Sqlite(path) => {
            create_state_folder(config, path)?;
            let mut store = SqliteStore::open(path)
                .with_context(|| format!("opening the store {}", path.display()))?;
            if let Some(users) = knob(BULK_THRESHOLD_KNOB)? {
                store.set_bulk_threshold(users);
            }
            if let Some(keys) = knob(SCAN_THRESHOLD_KNOB)? {
                store.set_scan_threshold(keys);
            }
            Ok(Box::new(store))
        }
        StoreLocation::Postgres(_) => {
            bail!("the PostgreSQL store is not part of this build yet; use sqlite://")
        }
    }
}

/// Creates the store's folder when it is missing and lies in the config's
/// folder (a relative `sqlite://state/liaison.db`, as in the quickstart), and
/// says so. Anywhere else a missing folder is more likely a typo than a wish:
/// the store refuses to open, naming it.
fn create_state_folder(config: &Config, db: &Path) -> anyhow::Result<()> {
    let (Some(dir), Some(config_dir)) = (db.parent(), config.file.parent()) else {
        return Ok(());
    };
    if dir.as_os_str().is_empty() || dir.exists() || !dir.starts_with(config_dir) {
        return Ok(());
    }
    std::fs::create_dir_all(dir)
        .with_context(|| format!("creating the store's folder {}", dir.display()))?;
    output::error_line(&format!(
        "note: created the store's folder {}",
        dir.display()
    ));
    Ok(())
}

/// Test knob: runs creating more users than this are bulk loads (default
/// [`crate::store::BULK_THRESHOLD`]).
const BULK_THRESHOLD_KNOB: &str = "LIAISON_TEST_BULK_THRESHOLD";
/// Test knob: state loads of more keys than this scan (default
/// [`crate::store::SCAN_THRESHOLD`]).
const SCAN_THRESHOLD_KNOB: &str = "LIAISON_TEST_SCAN_THRESHOLD";
/// How long an applying run waits for another's writer lock, in seconds.
const LOCK_WAIT_VAR: &str = "LIAISON_STORE_LOCK_WAIT";
/// The wait when [`LOCK_WAIT_VAR`] is not set: longer than a full sync of a
/// million rows takes (15 s measured), short enough that a stuck holder is
/// reported within minutes.
const LOCK_WAIT_DEFAULT: Duration = Duration::from_secs(300);

/// A numeric setting from the environment, if set.
fn knob(name: &str) -> anyhow::Result<Option<usize>> {
    match std::env::var(name) {
        Err(std::env::VarError::NotPresent) => Ok(None),
        Err(std::env::VarError::NotUnicode(_)) => bail!("{name} is not a number"),
        Ok(text) => text
            .trim()
            .parse()
            .map(Some)
            .map_err(|_| anyhow::anyhow!("{name}={text:?} is not a whole number")),
    }
}

/// Takes the store's writer lock for a run that applies, waiting (and saying
/// who holds it) for as long as [`LOCK_WAIT_VAR`] allows.
fn lock_for_run(store: &mut dyn Store) -> anyhow::Result<()> {
    let wait = knob(LOCK_WAIT_VAR)?.map_or(LOCK_WAIT_DEFAULT, |s| Duration::from_secs(s as u64));
    store.lock_writer(wait, &mut |holder| {
        output::error_line(&format!(
            "waiting for the store's writer lock, held by {holder} (up to {} s, {LOCK_WAIT_VAR})",
            wait.as_secs()
        ));
    })?;
    Ok(())
}

/// The sources a command runs on: one by name, or all in config order.
fn select<'c>(config: &'c Config, name: Option<&str>) -> Result<Vec<&'c SourceConfig>, u8> {
    match name {
        None => Ok(config.sources.iter().collect()),
        Some(n) => match config.sources.iter().find(|s| s.name == n) {
            Some(s) => Ok(vec![s]),
            None => {
                let known: Vec<&str> = config.sources.iter().map(|s| s.name.as_str()).collect();
                output::error_line(&format!(
                    "unknown source {n:?} (configured: {})",
                    if known.is_empty() {
                        "none".to_owned()
                    } else {
                        known.join(", ")
                    }
                ));
                Err(exit::INVALID)
            }
        },
    }
}

fn run_all(
    config: &Config,
    sources: &[&SourceConfig],
    opts: RunOptions,
) -> anyhow::Result<Vec<RunReport>> {
    let mut store = open_store(config)?;
    // One applying run per store: the lock is taken before the first run
    // reads what it plans against and held until the last has applied. A
    // dry run writes nothing and takes none.
    if !opts.dry_run {
        lock_for_run(store.as_mut())?;
    }
    let mut reports = Vec::with_capacity(sources.len());
    for s in sources {
        let report = run_source(config, s, store.as_mut(), opts)
            .with_context(|| format!("source {}", s.name))?;
        reports.push(report);
    }
    store.unlock_writer()?;
    Ok(reports)
}

/// 1 if any run failed, else 3 if any was held, else 0.
fn exit_code(reports: &[RunReport]) -> u8 {
    if reports.iter().any(|r| r.status == RunStatus::Failed) {
        exit::FAILURE
    } else if reports
        .iter()
        .any(|r| r.status == RunStatus::Held || !r.plan.held.is_empty())
    {
        exit::HELD
    } else {
        exit::OK
    }
}

fn plan(config: &Config, source: Option<&str>, format: Format) -> anyhow::Result<u8> {
    let sources = match select(config, source) {
        Ok(s) => s,
        Err(code) => return Ok(code),
    };
    let opts = RunOptions {
        dry_run: true,
        allow_mass_deprovision: false,
        now_ms: crate::clock::now_ms(),
    };
    let reports = run_all(config, &sources, opts)?;
    output::plans(&reports, format)?;
    Ok(if reports.iter().any(|r| r.status == RunStatus::Failed) {
        exit::FAILURE
    } else {
        exit::OK
    })
}

fn sync(config: &Config, args: &SyncArgs) -> anyhow::Result<u8> {
    if !args.once {
        output::error_line("sync needs --once (the daemon is `liaison run`)");
        return Ok(exit::INVALID);
    }
    let sources = match select(config, args.source.as_deref()) {
        Ok(s) => s,
        Err(code) => return Ok(code),
    };
    let opts = RunOptions {
        dry_run: args.dry_run,
        allow_mass_deprovision: args.allow_mass_deprovision,
        now_ms: crate::clock::now_ms(),
    };
    let reports = run_all(config, &sources, opts)?;
    output::reports(&reports, args.format)?;
    let code = exit_code(&reports);
    // A one-shot process: the OS reclaims a million-user plan faster than
    // dropping it piece by piece would.
    std::mem::forget(reports);
    Ok(code)
}

fn users(config: &Config, command: &UsersCommand) -> anyhow::Result<u8> {
    let mut store = open_store(config)?;
    match command {
        UsersCommand::List(args) => list(store.as_mut(), args),
        UsersCommand::Show { login, format } => match store.user_detail(login)? {
            Some(detail) => {
                output::user_detail(&detail, *format)?;
                Ok(exit::OK)
            }
            None => {
                output::error_line(&format!("no user with login {login:?}"));
                Ok(exit::FAILURE)
            }
        },
    }
}

fn list(store: &mut dyn Store, args: &ListArgs) -> anyhow::Result<u8> {
    let filter = UserFilter {
        status: args.status,
        account: args.account.clone(),
        origin: args.origin,
        attributes: args.attributes.clone(),
        search: args.search.clone(),
    };
    output::user_list(
        &mut |visit| store.for_each_user(&filter, visit).map_err(Into::into),
        args.format,
    )?;
    Ok(exit::OK)
}
