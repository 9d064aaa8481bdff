//! The commands: load config, open the store, call into the library, print.

use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{bail, Context};

use super::args::{Cli, Command, Format, MailCommand, SourceCommand, SyncArgs, UsersCommand};
use super::exit;
use super::interrupt::Interrupts;
use super::output;
use super::register::{lifecycle, Lifecycle};
use super::text::{quoted, visible};
use crate::config::{self, Config, SourceConfig, StoreLocation};
use crate::mail::{self, MailKind, MessageMeta, Templates};
use crate::store::{SqliteStore, Store};
use crate::sync::{
    lock_writer_cancellable, retire_source, run_sources, Cancel, FailureKind, RunOptions,
    RunReport, RunStatus,
};

/// Runs the parsed command line and returns the process exit code.
pub fn run(cli: Cli) -> ExitCode {
    // The test clock is for one-shot commands; the daemon keeps the real one.
    if !matches!(cli.command, Command::Run) {
        if let Err(why) = crate::clock::set_from_env() {
            output::error_line(&format!("error: {why}"));
            return ExitCode::from(exit::INVALID);
        }
    }
    let code = match &cli.command {
        Command::Run => crate::daemon::run(&cli.config),
        Command::Status { format } => with_config(&cli, |c| status(c, *format)),
        Command::Validate { online } => validate(&cli, *online),
        Command::Plan { source, format } => {
            with_config(&cli, |c| plan(c, source.as_deref(), *format))
        }
        Command::Sync(args) => with_config(&cli, |c| sync(c, args)),
        Command::Users { command } => with_config(&cli, |c| users(c, command)),
        Command::Mail { command } => with_config(&cli, |c| mail(c, command)),
        Command::Source {
            command:
                SourceCommand::Preview {
                    source,
                    limit,
                    format,
                },
        } => with_config(&cli, |c| {
            super::preview::preview(c, source, *limit as usize, *format)
        }),
        Command::Plugin { command } => plugin(&cli, command),
    };
    ExitCode::from(code)
}

/// `plugin …`: needs a config only for `plugin check --source`.
fn plugin(cli: &Cli, command: &super::args::PluginCommand) -> u8 {
    let super::args::PluginCommand::Check(args) = command;
    check_plugin(cli, args)
}

#[cfg(feature = "exec")]
fn check_plugin(cli: &Cli, args: &super::args::PluginCheckArgs) -> u8 {
    super::plugin_check::check(cli, args)
}

#[cfg(not(feature = "exec"))]
fn check_plugin(_: &Cli, _: &super::args::PluginCheckArgs) -> u8 {
    output::error_line("error: the exec connector is not in this build");
    exit::INVALID
}

/// `status`: reads the store read-only (creating nothing, taking no lock),
/// so it works while a daemon runs and applies.
fn status(config: &Config, format: Format) -> anyhow::Result<u8> {
    let StoreLocation::Sqlite(path) = &config.store else {
        bail!("the PostgreSQL store is not part of this build yet; use sqlite://");
    };
    let view = super::status::gather(config, path, crate::clock::now())
        .map_err(|e| naming_the_store(e.into(), &path.display().to_string()))?;
    output::status(&view, format)?;
    Ok(exit::OK)
}

fn validate(cli: &Cli, online: bool) -> u8 {
    match config::load(&cli.config) {
        Ok(c) => {
            output::line(&format!(
                "{}: OK ({} source{})",
                visible(&cli.config.display().to_string()),
                c.sources.len(),
                if c.sources.len() == 1 { "" } else { "s" }
            ));
            note_removed_sources(&c);
            warn_welcome_without_link(&c);
            warn_clear_text_binds(&c);
            if online {
                return check_sources_online(&c);
            }
            exit::OK
        }
        Err(errors) => {
            print_config_errors(&errors);
            exit::INVALID
        }
    }
}

/// `validate --online` (SPEC §6): each source connected to and its first
/// page read the way a run begins ([`liaison_plugin_api::Connector::check`]),
/// writing nothing. One line per source; exit 1 when any failed.
fn check_sources_online(config: &Config) -> u8 {
    crate::logging::init(&config.log, crate::logging::ONE_SHOT_DEFAULT);
    let runtime = match crate::sync::ReadRuntime::get() {
        Ok(runtime) => runtime,
        Err(e) => {
            output::error_line(&format!(
                "error: cannot start the runtime sources are read on: {e}"
            ));
            return exit::FAILURE;
        }
    };
    let mut failed = 0;
    for source in &config.sources {
        let connector = crate::plugins::build(&source.connector);
        let ctx = crate::sync::read_context(Cancel::new(), crate::clock::now_ms(), &runtime);
        let name = visible(&source.name);
        match connector.check(&ctx) {
            Ok(()) => output::line(&format!(
                "source {name} ({}): OK, reachable and its first page read",
                connector.kind()
            )),
            Err(e) => {
                failed += 1;
                output::error_line(&format!(
                    "source {name} ({}): FAILED [{}]: {}",
                    connector.kind(),
                    FailureKind::of_source(&e).as_str(),
                    visible(&e.to_string())
                ));
            }
        }
    }
    if failed == 0 {
        exit::OK
    } else {
        output::error_line(&format!(
            "{failed} of {} source{} failed the online check",
            config.sources.len(),
            if config.sources.len() == 1 { "" } else { "s" }
        ));
        exit::FAILURE
    }
}

/// `validate` warns about an LDAP bind password that would cross the network
/// in clear text: `ldap://` without StartTLS to a host that is not loopback.
fn warn_clear_text_binds(config: &Config) {
    #[cfg(feature = "ldap")]
    for source in &config.sources {
        let crate::config::ConnectorConfig::Ldap(ldap) = &source.connector else {
            continue;
        };
        let loopback = matches!(ldap.url.host.as_str(), "localhost" | "::1" | "[::1]")
            || ldap.url.host.starts_with("127.");
        if ldap.bind.is_some() && !ldap.url.tls && !ldap.starttls && !loopback {
            output::error_line(&format!(
                "warning: sources: {}: the bind password goes to {} in clear text; \
                 use ldaps:// or starttls: true",
                visible(&source.name),
                ldap.url
            ));
        }
    }
    #[cfg(not(feature = "ldap"))]
    let _ = config;
}

/// `validate` warns when mail is configured but welcomes can have no
/// set-password link: the dispatcher fails each welcome then (with this reason).
fn warn_welcome_without_link(config: &Config) {
    if config
        .mail
        .as_ref()
        .is_some_and(|m| m.welcome.set_password_url.is_none())
    {
        output::error_line(
            "warning: mail.welcome: welcomes have no set-password link and will fail when sent; \
             set mail.welcome.set_password_url or api.public_url",
        );
    }
}

/// `validate` looks into an existing SQLite store, read-only, for sources
/// removed from the config whose contacts are still linked.
fn note_removed_sources(config: &Config) {
    let StoreLocation::Sqlite(path) = &config.store else {
        return;
    };
    if !path.exists() {
        return;
    }
    let found = SqliteStore::open_read_only(path)
        .map_err(anyhow::Error::from)
        .and_then(|mut store| removed_sources(config, &mut store));
    match found {
        Ok(removed) => {
            for (name, linked) in removed {
                output::error_line(&removed_source_warning(&name, linked));
            }
        }
        Err(e) => output::error_line(&format!(
            "note: the store {} was not checked for removed sources: {e:#}",
            path.display()
        )),
    }
}

pub(crate) fn print_config_errors(errors: &config::ConfigErrors) {
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
    crate::logging::init(&config.log, crate::logging::ONE_SHOT_DEFAULT);
    match f(&config) {
        Ok(code) => code,
        Err(e) => {
            // Said once, here: a log line of the same error would repeat it.
            output::error(&e);
            exit::FAILURE
        }
    }
}

pub(crate) fn open_store(config: &Config) -> anyhow::Result<Box<dyn Store>> {
    match &config.store {
        StoreLocation::Sqlite(path) => {
            create_state_folder(config, path)?;
            let mut store = SqliteStore::open(path)
                .map_err(|e| naming_the_store(e.into(), &path.display().to_string()))?;
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

/// `error` said while opening the store at `path`, naming the path unless the
/// error already does (a failed open names it; a failed migration does not).
pub(super) fn naming_the_store(error: anyhow::Error, path: &str) -> anyhow::Error {
    if error.to_string().contains(path) {
        error
    } else {
        error.context(format!("opening the store {path}"))
    }
}

/// Creates the store's folder when it is missing and lies in the config's
/// folder (a relative `sqlite://state/liaison.db`, as in the quickstart), and
/// says so. Anywhere else a missing folder is more likely a typo than a wish:
/// the store refuses to open, naming it.
pub(crate) fn create_state_folder(config: &Config, db: &Path) -> anyhow::Result<()> {
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
/// who holds it) for as long as [`LOCK_WAIT_VAR`] allows; `false` when a
/// signal stopped the wait.
fn lock_for_run(store: &mut dyn Store, cancel: &Cancel) -> anyhow::Result<bool> {
    let wait = lock_wait()?;
    Ok(lock_writer_cancellable(
        store,
        wait,
        cancel,
        &mut |holder| {
            output::error_line(&format!(
            "waiting for the store's writer lock, held by {holder} (up to {} s, {LOCK_WAIT_VAR})",
            wait.as_secs()
        ));
        },
    )?)
}

/// Writes the config's `accounts:` into the store (only what differs), as
/// every command that writes does first, under the writer lock it holds.
pub(crate) fn declare_accounts(config: &Config, store: &mut dyn Store) -> anyhow::Result<()> {
    let written = store
        .declare_accounts(&config.declared_accounts(), crate::clock::now_ms())
        .context("writing the config's accounts")?;
    if written > 0 {
        tracing::info!(accounts = written, "the config's accounts written");
    }
    Ok(())
}

/// How long a writer waits for the store's writer lock ([`LOCK_WAIT_VAR`]).
pub(crate) fn lock_wait() -> anyhow::Result<Duration> {
    Ok(knob(LOCK_WAIT_VAR)?.map_or(LOCK_WAIT_DEFAULT, |s| Duration::from_secs(s as u64)))
}

/// The exit code a signal asks for, if one stopped the command.
fn interrupted(interrupts: &Interrupts) -> Option<u8> {
    interrupts.exit_code()
}

fn was_cancelled(report: &RunReport) -> bool {
    report
        .failure
        .as_ref()
        .is_some_and(|f| f.kind == FailureKind::Cancelled)
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
                    "unknown source {} (configured: {})",
                    quoted(n),
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

/// 1 if any run failed, else 3 if any was (or, planned, would be) held, else 0.
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
        ..RunOptions::default()
    };
    let reports = run_sources(config, &sources, open_store(config)?.as_mut(), opts)?;
    output::plans(&reports, format)?;
    // The same code `sync --dry-run` gives: 3 says the guard would hold.
    Ok(exit_code(&reports))
}

fn sync(config: &Config, args: &SyncArgs) -> anyhow::Result<u8> {
    if !args.once {
        output::error_line("sync needs --once (the daemon is `liaison run`)");
        return Ok(exit::INVALID);
    }
    let interrupts = Interrupts::install();
    let opts = RunOptions {
        dry_run: args.dry_run,
        allow_mass_deprovision: args.allow_mass_deprovision,
        now_ms: crate::clock::now_ms(),
        cancel: interrupts.cancel(),
        full: args.full,
        ..RunOptions::default()
    };
    if let Some(name) = &args.retire_source {
        return retire(config, name, opts, args.format, &interrupts);
    }
    let sources = match select(config, args.source.as_deref()) {
        Ok(s) => s,
        Err(code) => return Ok(code),
    };
    let mut store = open_store(config)?;
    // One applying run per store: the lock is taken before the first run
    // reads what it plans against and held until the last has applied. A
    // dry run writes nothing and takes none.
    if !opts.dry_run && !lock_for_run(store.as_mut(), &opts.cancel)? {
        return Ok(interrupted(&interrupts).unwrap_or(exit::FAILURE));
    }
    if !opts.dry_run {
        declare_accounts(config, store.as_mut())?;
    }
    let reports = run_sources(config, &sources, store.as_mut(), opts)?;
    store.unlock_writer()?;
    log_failures(&reports);
    output::reports(&reports, args.format)?;
    if let Err(e) = warn_about_removed_sources(config, store.as_mut()) {
        output::error_line(&format!("note: removed sources were not checked: {e:#}"));
    }
    let code = if reports.iter().any(was_cancelled) {
        interrupted(&interrupts).unwrap_or(exit::FAILURE)
    } else {
        exit_code(&reports)
    };
    // A one-shot process: the OS reclaims a million-user plan faster than
    // dropping it piece by piece would.
    std::mem::forget(reports);
    Ok(code)
}

/// The log line of each failed run, for an admin who set a log level (the
/// report on stdout says it too).
fn log_failures(reports: &[RunReport]) {
    for r in reports {
        if let Some(f) = &r.failure {
            tracing::warn!(source = %r.source, kind = %f.kind, error = %f, "source run failed; nothing applied");
        }
    }
}

/// `sync --once --retire-source NAME`: one retiring run of a source that is
/// no longer configured.
fn retire(
    config: &Config,
    name: &str,
    opts: RunOptions,
    format: Format,
    interrupts: &Interrupts,
) -> anyhow::Result<u8> {
    if config.sources.iter().any(|s| s.name == name) {
        output::error_line(&format!(
            "source {name:?} is still in the config; remove it there before retiring it"
        ));
        return Ok(exit::INVALID);
    }
    let mut store = open_store(config)?;
    // A typo must not pass for a retirement: the store must know the source
    // (an already retired one may still have users past `delete_after`).
    let mut anchors = 0usize;
    store.for_each_anchor(name, &mut |_, _| anchors += 1)?;
    if anchors == 0 {
        output::error_line(&format!(
            "the store has no contacts of source {}; nothing to retire",
            quoted(name)
        ));
        return Ok(exit::INVALID);
    }
    if !opts.dry_run && !lock_for_run(store.as_mut(), &opts.cancel)? {
        return Ok(interrupted(interrupts).unwrap_or(exit::FAILURE));
    }
    if !opts.dry_run {
        declare_accounts(config, store.as_mut())?;
    }
    let report = retire_source(config, name, store.as_mut(), opts)
        .with_context(|| format!("retiring source {name}"))?;
    store.unlock_writer()?;
    let reports = [report];
    output::reports(&reports, format)?;
    if reports.iter().any(was_cancelled) {
        return Ok(interrupted(interrupts).unwrap_or(exit::FAILURE));
    }
    Ok(exit_code(&reports))
}

/// Sources the store still links contacts to but the config no longer has:
/// their contacts stay linked until an admin retires them, so say so.
fn removed_sources(config: &Config, store: &mut dyn Store) -> anyhow::Result<Vec<(String, usize)>> {
    let configured: Vec<&str> = config.sources.iter().map(|s| s.name.as_str()).collect();
    Ok(store.linked_sources(&configured)?)
}

fn warn_about_removed_sources(config: &Config, store: &mut dyn Store) -> anyhow::Result<()> {
    for (name, linked) in removed_sources(config, store)? {
        output::error_line(&removed_source_warning(&name, linked));
    }
    Ok(())
}

fn removed_source_warning(name: &str, linked: usize) -> String {
    format!(
        "warning: source {name:?} is not in the config, but {linked} of its contacts are still \
         linked; `liaison sync --once --retire-source {name}` unlinks them (through the safety guard)"
    )
}

fn users(config: &Config, command: &UsersCommand) -> anyhow::Result<u8> {
    let mut store = open_store(config)?;
    match command {
        UsersCommand::List(args) => super::find::list(store.as_mut(), args),
        UsersCommand::Show { login, format } => match store.user_detail(login)? {
            Some(detail) => {
                output::user_detail(&detail, *format)?;
                Ok(exit::OK)
            }
            None => {
                output::error_line(&format!("no user with login {}", quoted(login)));
                Ok(exit::FAILURE)
            }
        },
        UsersCommand::SetPassword(args) => {
            super::password::set_password(config, store.as_mut(), args)
        }
        UsersCommand::Register(args) => super::register::register(config, store.as_mut(), args),
        UsersCommand::Approve(args) => lifecycle(config, store.as_mut(), Lifecycle::Approve, args),
        UsersCommand::Reject(args) => lifecycle(config, store.as_mut(), Lifecycle::Reject, args),
        UsersCommand::ResendWelcome(args) => {
            let resend = Lifecycle::Resend(MailKind::Welcome);
            lifecycle(config, store.as_mut(), resend, args)
        }
        UsersCommand::ResendConfirmation(args) => {
            let resend = Lifecycle::Resend(MailKind::RegistrationConfirmation);
            lifecycle(config, store.as_mut(), resend, args)
        }
        UsersCommand::Add(args) => super::admin::add(config, store.as_mut(), args),
        UsersCommand::Enable(args) => super::admin::set_enabled(store.as_mut(), true, args),
        UsersCommand::Disable(args) => super::admin::set_enabled(store.as_mut(), false, args),
        UsersCommand::Delete(args) => super::admin::delete(store.as_mut(), args),
        UsersCommand::Unlink(args) => super::admin::unlink(config, store.as_mut(), args),
        UsersCommand::Edit(args) => super::admin::edit(config, store.as_mut(), args),
        UsersCommand::History { login, format } => {
            super::find::history(store.as_mut(), login, *format)
        }
        UsersCommand::Export(args) => super::export::export(store.as_mut(), args),
    }
}

fn mail(config: &Config, command: &MailCommand) -> anyhow::Result<u8> {
    match command {
        MailCommand::Preview {
            kind,
            login,
            locale,
        } => mail_preview(config, *kind, login.as_deref(), locale.as_deref()),
        MailCommand::Status { format } => super::mail::status(config, *format),
        MailCommand::Release { run } => super::mail::release(config, *run),
        MailCommand::Test { to, format } => super::mail_test::test(config, to, *format),
        MailCommand::Flush { format } => super::mail_flush::flush(config, *format),
    }
}

/// `mail preview`: the message as it would be sent, for a stored user (the
/// store opened read-only) or a sample one; the link carries no real token.
fn mail_preview(
    config: &Config,
    kind: MailKind,
    login: Option<&str>,
    locale: Option<&str>,
) -> anyhow::Result<u8> {
    let Some(from) = config.mail.as_ref().map(|m| m.from.as_str()) else {
        output::error_line("error: the config has no mail: section; a preview needs mail.from");
        return Ok(exit::INVALID);
    };
    let detail = match login {
        Some(login) => match read_only_store(config)?.user_detail(login)? {
            Some(detail) if detail.user.email.is_some() => Some(detail),
            Some(_) => bail!("user {} has no e-mail address", quoted(login)),
            None => {
                output::error_line(&format!("no user with login {}", quoted(login)));
                return Ok(exit::FAILURE);
            }
        },
        None => None,
    };
    let templates = Templates::for_config(config)?;
    let now = crate::clock::now();
    // The link the dispatcher would make, with a placeholder token.
    let link_base = config
        .mail
        .as_ref()
        .and_then(|m| m.welcome.set_password_url.as_ref())
        .map(url::Url::as_str);
    let vars = mail::preview_vars(config, detail.as_ref(), locale, link_base, now);
    let id = mail::message_id(&format!("preview.{kind}"), from)?;
    let meta = MessageMeta {
        from,
        message_id: &id,
        date: now,
    };
    let message = mail::build_message(&templates, kind, &vars, &meta)?;
    output::raw(&message.formatted())?;
    Ok(exit::OK)
}

/// The SQLite store opened read-only: creates nothing, takes no lock.
fn read_only_store(config: &Config) -> anyhow::Result<SqliteStore> {
    let StoreLocation::Sqlite(path) = &config.store else {
        bail!("the PostgreSQL store is not part of this build yet; use sqlite://");
    };
    SqliteStore::open_read_only(path)
        .map_err(|e| naming_the_store(e.into(), &path.display().to_string()))
}
