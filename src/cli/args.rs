//! Arguments, as clap parses them.

use std::path::PathBuf;

use clap::builder::{PossibleValuesParser, TypedValueParser};
use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::mail::MailKind;
use crate::model::{Origin, Status};

/// Liaison: keeps external portal users in step with CRM, LDAP and CSV sources.
#[derive(Debug, Parser)]
#[command(name = "liaison", version, about)]
pub struct Cli {
    /// The config file.
    #[arg(
        long,
        global = true,
        env = "LIAISON_CONFIG",
        default_value = "/etc/liaison/liaison.yaml"
    )]
    pub config: PathBuf,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Output format of commands that print data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum Format {
    /// For people.
    #[default]
    Human,
    /// Machine-readable JSON (SPEC §5 shapes).
    Json,
}

/// Output format of `users list`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum ListFormat {
    /// A table for people.
    #[default]
    Human,
    /// A JSON array of users.
    Json,
    /// CSV with a header row.
    Csv,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// The daemon: sources on their schedules and file watches, reloads on
    /// SIGHUP or a config change, health and metrics on `api.listen`.
    Run,
    /// What the store and a running daemon know: each source's last run,
    /// failures in a row, last success, next run; whether a daemon runs.
    Status {
        /// Output format.
        #[arg(long, value_enum, default_value_t)]
        format: Format,
    },
    /// Check the config; errors as FILE:LINE:COLUMN: message, exit 2.
    Validate {
        /// Also connect to each source and read its first page (bind, a
        /// first LDAP page, a first CSV row, an exec plugin's first line);
        /// exit 1 when a source fails.
        #[arg(long)]
        online: bool,
    },
    /// Show what a sync would change, without changing it.
    Plan {
        /// Only this source.
        #[arg(long)]
        source: Option<String>,
        /// Output format.
        #[arg(long, value_enum, default_value_t)]
        format: Format,
    },
    /// Synchronise sources into the directory.
    Sync(SyncArgs),
    /// The directory of external users.
    Users {
        /// What to do with users.
        #[command(subcommand)]
        command: UsersCommand,
    },
    /// A source seen through its connector and mapping.
    Source {
        /// What to do with the source.
        #[command(subcommand)]
        command: SourceCommand,
    },
    /// E-mail: the outbox, templates and transport.
    Mail {
        /// What to do with mail.
        #[command(subcommand)]
        command: MailCommand,
    },
    /// Exec plugins (external connector programs).
    Plugin {
        /// What to do with a plugin.
        #[command(subcommand)]
        command: PluginCommand,
    },
}

/// `plugin` subcommands.
#[derive(Debug, Subcommand)]
pub enum PluginCommand {
    /// Run an exec plugin once and report what it sent (records, errors,
    /// deletions, log lines, its end, its exit) and every line that breaks
    /// the protocol, with its line number; writes nothing. Exit 0 when the
    /// plugin is clean, 1 when not.
    Check(PluginCheckArgs),
}

/// `plugin check` arguments.
#[derive(Debug, Args)]
#[command(
    after_help = "Without --source no config file is read: give the plugin after --, \
e.g. `liaison plugin check --settings '{\"file\": \"export.json\"}' -- python3 plugin.py`. \
It runs in the current folder with the environment cleared but for PATH, LANG, HOME, TZ and --env."
)]
pub struct PluginCheckArgs {
    /// Check this exec source of the config as a sync would run it (its
    /// command, settings, env, working_dir and limits) instead of a command.
    #[arg(long, value_name = "NAME", conflicts_with = "command")]
    pub source: Option<String>,
    /// The `settings` object to pass in the start line, as JSON.
    #[arg(long, value_name = "JSON")]
    pub settings: Option<String>,
    /// The read to ask for (default: changes with --cursor, else full).
    #[arg(long, value_enum)]
    pub mode: Option<CheckMode>,
    /// The cursor to pass in the start line of a changes read, as JSON.
    #[arg(long, value_name = "JSON")]
    pub cursor: Option<String>,
    /// A variable for the plugin's environment: NAME=VALUE, or NAME to pass
    /// this process's own value (keeps secrets out of the command line).
    #[arg(long = "env", value_name = "NAME[=VALUE]")]
    pub env: Vec<String>,
    /// The whole run's limit (default 10m, or the source's).
    #[arg(long, value_name = "DURATION")]
    pub timeout: Option<String>,
    /// The longest wait for one line (default 2m, or the source's).
    #[arg(long, value_name = "DURATION")]
    pub idle_timeout: Option<String>,
    /// The longest line, in bytes (default 1048576, or the source's).
    #[arg(long, value_name = "BYTES")]
    pub max_line_length: Option<usize>,
    /// How many records to show with their attributes (the rest are counted).
    #[arg(long, value_name = "N", default_value_t = 5)]
    pub limit: usize,
    /// Output format.
    #[arg(long, value_enum, default_value_t)]
    pub format: Format,
    /// The plugin and its arguments, after `--`.
    #[arg(
        last = true,
        value_name = "CMD ARGS",
        required_unless_present = "source"
    )]
    pub command: Vec<String>,
}

/// The read `plugin check` asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum CheckMode {
    /// A full read.
    Full,
    /// A changes read since --cursor.
    Changes,
}

/// `source` subcommands.
#[derive(Debug, Subcommand)]
pub enum SourceCommand {
    /// Read the first records of a source and show each one's attributes as
    /// read beside the fields its mapping made (or its row error, or that
    /// `when:` left it out); writes nothing and moves no cursor.
    Preview {
        /// The source, by name.
        source: String,
        /// How many records to show.
        #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=100_000))]
        limit: u64,
        /// Output format.
        #[arg(long, value_enum, default_value_t)]
        format: Format,
    },
}

/// `mail` subcommands.
#[derive(Debug, Subcommand)]
pub enum MailCommand {
    /// Print the message KIND would be, headers and both parts, for a stored
    /// user or a sample one; sends nothing and makes no token.
    Preview {
        /// The kind of mail.
        #[arg(value_parser = kind_parser())]
        kind: MailKind,
        /// The user to render it for (default: a sample user).
        #[arg(long)]
        login: Option<String>,
        /// Render in this locale instead of the user's (or `default_locale`).
        #[arg(long)]
        locale: Option<String>,
    },
    /// The outbox by state, the held welcome batches, failed mail with its
    /// reason, and what is queued next; read-only.
    Status {
        /// Output format.
        #[arg(long, value_enum, default_value_t)]
        format: Format,
    },
    /// Queue the welcomes a run held because it created more users than
    /// `mail.max_welcome_per_run` (once).
    Release {
        /// The run, as `mail status` shows it.
        run: i64,
    },
    /// Send the due mail now (inside the send window and rate limit), as the
    /// daemon's dispatcher does on `mail.schedule`.
    Flush {
        /// Output format.
        #[arg(long, value_enum, default_value_t)]
        format: Format,
    },
    /// Send one short test message through the configured transport and
    /// report what the server said; writes nothing to the store.
    Test {
        /// The address to send it to.
        #[arg(long, value_name = "ADDR")]
        to: String,
        /// Output format.
        #[arg(long, value_enum, default_value_t)]
        format: Format,
    },
}

/// `sync` arguments.
#[derive(Debug, Args)]
pub struct SyncArgs {
    /// Run once and exit (the daemon is `liaison run`).
    #[arg(long)]
    pub once: bool,
    /// Only this source.
    #[arg(long)]
    pub source: Option<String>,
    /// Unlink every contact of a source that is no longer in the config
    /// (through the safety guard), instead of running the configured sources.
    #[arg(long, value_name = "NAME", conflicts_with = "source")]
    pub retire_source: Option<String>,
    /// Plan and report, write nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Apply deprovisions the safety guard would hold.
    #[arg(long)]
    pub allow_mass_deprovision: bool,
    /// Read every source in full, whatever its stored cursor (a changes
    /// read's deletions may have been missed).
    #[arg(long, conflicts_with = "retire_source")]
    pub full: bool,
    /// Output format.
    #[arg(long, value_enum, default_value_t)]
    pub format: Format,
}

/// `users` subcommands.
#[derive(Debug, Subcommand)]
pub enum UsersCommand {
    /// List users, with filters.
    List(ListArgs),
    /// One user with contacts, accounts, flags and history.
    Show {
        /// The user's login.
        login: String,
        /// Output format.
        #[arg(long, value_enum, default_value_t)]
        format: Format,
    },
    /// Set a password (one line on standard input) under the password policy.
    SetPassword(SetPasswordArgs),
    /// Register someone as a self-registration would: a pending user with
    /// its confirmation queued, approved at once when its e-mail's domain
    /// is a known account's.
    Register(RegisterArgs),
    /// Approve a pending user: it becomes active and its welcome is queued.
    Approve(LifecycleArgs),
    /// Reject a pending user: it becomes rejected and its queued mail is cancelled.
    Reject(LifecycleArgs),
    /// Queue an active user's welcome again.
    ResendWelcome(LifecycleArgs),
    /// Queue a user's registration confirmation again.
    ResendConfirmation(LifecycleArgs),
    /// Create a manual user (origin `manual`, active, its welcome queued),
    /// from a name and an address or from a contact a source knows.
    Add(super::admin::AddArgs),
    /// Enable a disabled user (not a `sync` user whose contacts all left).
    Enable(LifecycleArgs),
    /// Disable a user; sync never enables it again (its queued mail is cancelled).
    Disable(LifecycleArgs),
    /// Delete a user for good: the journal keeps it, its login is never
    /// given again, sync does not make a user of its contacts again.
    Delete(super::admin::DeleteArgs),
    /// Unlink a user from a company: its contacts of that account and a
    /// direct link; sync does not link them again until an admin does.
    Unlink(super::admin::UnlinkArgs),
    /// Edit the fields an admin owns; a field a source gives is refused.
    Edit(super::admin::EditArgs),
    /// The whole journal of one user (also of a deleted one).
    History {
        /// The user's login.
        login: String,
        /// Output format.
        #[arg(long, value_enum, default_value_t)]
        format: Format,
    },
    /// Write the directory (with the filters of `list`) to a spreadsheet file.
    Export(super::export::ExportArgs),
}

/// `users register` arguments.
#[derive(Debug, Args)]
pub struct RegisterArgs {
    /// The person's name: the user's title, and where its login comes from.
    #[arg(long)]
    pub name: String,
    /// The person's e-mail address.
    #[arg(long)]
    pub email: String,
    /// Link this account (its id) directly; it must be known to the store.
    #[arg(long, value_name = "ID")]
    pub account: Option<String>,
    /// The language of the user's mail (default: `default_locale`).
    #[arg(long)]
    pub locale: Option<String>,
    /// Who is making the change, for the journal (default: the OS user).
    #[arg(long)]
    pub actor: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value_t)]
    pub format: Format,
}

/// The arguments of `users approve|reject|resend-welcome|resend-confirmation`.
#[derive(Debug, Args)]
pub struct LifecycleArgs {
    /// The user's login.
    pub login: String,
    /// Who is making the change, for the journal (default: the OS user).
    #[arg(long)]
    pub actor: Option<String>,
}

/// `users set-password LOGIN` or `users set-password --token TOKEN`.
#[derive(Debug, Args)]
pub struct SetPasswordArgs {
    /// The user whose password to set.
    #[arg(required_unless_present = "token", conflicts_with = "token")]
    pub login: Option<String>,
    /// A set-password token from a welcome mail, instead of a login.
    #[arg(long)]
    pub token: Option<String>,
    /// Who is making the change, for the journal (default: the OS user).
    #[arg(long)]
    pub actor: Option<String>,
}

/// `users list` arguments.
#[derive(Debug, Args)]
pub struct ListArgs {
    /// Which users.
    #[command(flatten)]
    pub filter: FilterArgs,
    /// Output format.
    #[arg(long, value_enum, default_value_t)]
    pub format: ListFormat,
    /// List at most this many users.
    #[arg(long, value_name = "N")]
    pub limit: Option<usize>,
    /// Skip this many users first (in login order).
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub offset: usize,
}

/// The filters of `users list` and `users export` (SPEC §5).
#[derive(Debug, Clone, Args)]
pub struct FilterArgs {
    /// Only users in this status.
    #[arg(long, value_parser = status_parser())]
    pub status: Option<Status>,
    /// Only users linked to this account (by id, else by name).
    #[arg(long, value_name = "ID|NAME")]
    pub account: Option<String>,
    /// Only users of this origin.
    #[arg(long, value_parser = origin_parser())]
    pub origin: Option<Origin>,
    /// Only users with this attribute value, as KEY=VALUE; repeatable.
    #[arg(long = "attribute", value_name = "KEY=VALUE", value_parser = parse_key_value)]
    pub attributes: Vec<(String, String)>,
    /// Text in login, title, e-mail, description or an attribute value.
    #[arg(long)]
    pub search: Option<String>,
}

/// `--status`: clap checks the value against the statuses (naming the bad
/// value once and listing the possible ones, also in `--help`).
pub(super) fn status_parser() -> impl TypedValueParser<Value = Status> {
    PossibleValuesParser::new(Status::ALL.iter().map(|s| s.as_str())).try_map(|s| s.parse())
}

/// A mail kind; an unknown one is a usage error listing the known kinds.
fn kind_parser() -> impl TypedValueParser<Value = MailKind> {
    PossibleValuesParser::new(MailKind::ALL.map(MailKind::as_str)).try_map(|k| k.parse())
}

/// `--origin`, as [`status_parser`].
pub(super) fn origin_parser() -> impl TypedValueParser<Value = Origin> {
    PossibleValuesParser::new(Origin::ALL.iter().map(|o| o.as_str())).try_map(|o| o.parse())
}

/// `KEY=VALUE`; clap's message already quotes the value, so this one does not.
pub(super) fn parse_key_value(s: &str) -> Result<(String, String), &'static str> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_owned(), v.to_owned())),
        _ => Err("expected KEY=VALUE with a non-empty KEY"),
    }
}
