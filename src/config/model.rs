//! The validated configuration: real types, every value checked. Built by
//! [`super::load`] from the YAML file; nothing downstream sees raw YAML.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use super::{Ratio, Schedule, Secret, Span};
use crate::mapping::MapSpec;

/// The whole configuration of one Liaison instance.
#[derive(Debug, Clone)]
pub struct Config {
    /// The file it was loaded from (absolute).
    pub file: PathBuf,
    /// Where users, links, journal and outbox live.
    pub store: StoreLocation,
    /// The portal the users log in to.
    pub portal: Option<PortalConfig>,
    /// Locale of users whose source gives none.
    pub default_locale: String,
    /// `schedule_timezone`: the zone source schedules are read in unless a
    /// source names its own (default UTC); already resolved into each
    /// [`SourceConfig::timezone`].
    pub schedule_timezone: chrono_tz::Tz,
    /// `run_on_start`: whether sources run once when the daemon starts
    /// (default true); already resolved into each [`SourceConfig::run_on_start`].
    pub run_on_start: bool,
    /// Source instances in config order (which is also attribute precedence).
    pub sources: Vec<SourceConfig>,
    /// `accounts:`: accounts the config declares, in file order.
    pub accounts: Vec<AccountConfig>,
    /// Mass-deprovision and bad-row limits.
    pub safety: SafetyConfig,
    /// What happens to users whose contacts left.
    pub deprovision: DeprovisionConfig,
    /// Outgoing e-mail; `None` sends nothing.
    pub mail: Option<MailConfig>,
    /// When `/readyz` says the daemon is not ready.
    pub readiness: ReadinessConfig,
    /// Backoff of failed runs.
    pub retry: RetryConfig,
    /// Optional HTTP listener.
    pub api: Option<ApiConfig>,
    /// Logging.
    pub log: LogConfig,
    /// `password_policy:`: what a new password must meet.
    pub password_policy: super::PasswordPolicy,
    /// `registration:`: how registrations are handled.
    pub registration: RegistrationConfig,
}

/// One entry of `accounts:`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountConfig {
    /// The account's id (unique in the list): the key sources' `account_id` matches.
    pub id: crate::model::AccountId,
    /// Its name; wins over any name a source gives.
    pub name: String,
    /// Its e-mail domains, lower-cased; they join those its sources give.
    pub domains: Vec<crate::model::Domain>,
    /// Where in the config file it is defined.
    pub span: Span,
}

impl Config {
    /// The config's accounts as the store declares them
    /// ([`crate::store::Store::declare_accounts`]).
    pub fn declared_accounts(&self) -> Vec<crate::model::Account> {
        self.accounts
            .iter()
            .map(|a| crate::model::Account {
                id: a.id.clone(),
                name: Some(a.name.clone()),
                domains: a.domains.clone(),
            })
            .collect()
    }
}

/// The store URL, parsed.
#[derive(Clone, PartialEq, Eq)]
pub enum StoreLocation {
    /// `sqlite://PATH`: an SQLite file, path resolved against the config folder.
    Sqlite(PathBuf),
    /// `postgres://…` or `postgresql://…`: kept whole (secrets resolved),
    /// password redacted in Debug.
    Postgres(Secret),
}

impl std::fmt::Debug for StoreLocation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StoreLocation::Sqlite(path) => f.debug_tuple("Sqlite").field(path).finish(),
            StoreLocation::Postgres(url) => f
                .debug_tuple("Postgres")
                .field(&super::redact_url(url.expose()))
                .finish(),
        }
    }
}

/// `portal:` section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortalConfig {
    /// Login page linked from welcome e-mails.
    pub url: url::Url,
}

/// One entry of `sources:`.
#[derive(Debug, Clone)]
pub struct SourceConfig {
    /// Unique name, used in anchors and logs.
    pub name: String,
    /// Where in the config file this source is defined.
    pub span: Span,
    /// Plugin-specific settings.
    pub connector: ConnectorConfig,
    /// Optional cron schedule.
    pub schedule: Option<Schedule>,
    /// The zone `schedule` is read in: the source's `schedule_timezone`, else
    /// the top-level one, else UTC.
    pub timezone: chrono_tz::Tz,
    /// Run once when the daemon starts: the source's `run_on_start`, else the
    /// top-level one, else true.
    pub run_on_start: bool,
    /// Sync when the source's files change (`watch:`); `None` = no watch.
    pub watch: Option<WatchConfig>,
    /// `map:` and `when:`; `None` means the standard layout. A `when:` without
    /// `map:` gives empty `fields`: the standard layout, filtered by `when`.
    pub map: Option<MapSpec>,
    /// Per-source override of `safety.max_bad_row_ratio`.
    pub max_bad_row_ratio: Option<Ratio>,
    /// `full_every`: how often a read is full even when the connector could
    /// read changes (default 1 day); `None` for `never`.
    pub full_every: Option<std::time::Duration>,
}

/// `watch: true` or `watch: {quiet: 2s, rescan: 60s}` on a source that reads files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WatchConfig {
    /// A file must have had no events for this long before it is read, so a
    /// file still being written is not read half-written (default 2s).
    pub quiet: Duration,
    /// Files are also checked this often, for file systems that send no
    /// events (default 60s).
    pub rescan: Duration,
}

impl Default for WatchConfig {
    fn default() -> Self {
        WatchConfig {
            quiet: Duration::from_secs(2),
            rescan: Duration::from_secs(60),
        }
    }
}

/// Settings per connector type. Only plugins compiled into this build appear.
#[derive(Debug, Clone, PartialEq)]
pub enum ConnectorConfig {
    /// `type: csv`.
    #[cfg(feature = "csv")]
    Csv(liaison_plugin_csv::CsvConfig),
    /// `type: exec`.
    #[cfg(feature = "exec")]
    Exec(liaison_plugin_exec::ExecConfig),
    /// `type: ldap`.
    #[cfg(feature = "ldap")]
    Ldap(liaison_plugin_ldap::LdapConfig),
    /// `type: crm`.
    #[cfg(feature = "crm")]
    Crm(liaison_plugin_crm::CrmConfig),
}

/// `safety:` section.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SafetyConfig {
    /// At most this many disables/deletes per run (default 50).
    pub max_deprovision: u32,
    /// At most this share of the source's active users per run (default 0.10).
    pub max_deprovision_ratio: Ratio,
    /// More bad rows than this share and the read failed (default 0.05).
    pub max_bad_row_ratio: Ratio,
}

impl Default for SafetyConfig {
    fn default() -> Self {
        SafetyConfig {
            max_deprovision: 50,
            max_deprovision_ratio: Ratio::percent(10),
            max_bad_row_ratio: Ratio::percent(5),
        }
    }
}

/// `readiness:` section.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadinessConfig {
    /// `/readyz` fails while a source has failed more runs in a row than
    /// this (default 3; 0 = any failed run).
    pub max_failed_runs: u32,
}

impl Default for ReadinessConfig {
    fn default() -> Self {
        ReadinessConfig { max_failed_runs: 3 }
    }
}

/// `retry:` section: capped exponential backoff of a failed run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryConfig {
    /// Wait before the first retry (default 30s; > 0).
    pub initial: Duration,
    /// Longest wait between retries (default 15m; at least `initial`).
    pub max: Duration,
}

impl Default for RetryConfig {
    fn default() -> Self {
        RetryConfig {
            initial: Duration::from_secs(30),
            max: Duration::from_secs(15 * 60),
        }
    }
}

/// `deprovision:` section.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DeprovisionConfig {
    /// Delete sync-disabled users after this long; `None` = never.
    pub delete_after: Option<Duration>,
}

/// `mail:` section.
#[derive(Debug, Clone)]
pub struct MailConfig {
    /// How mail leaves.
    pub transport: MailTransport,
    /// The From mailbox, e.g. `Support <support@example.com>`.
    pub from: String,
    /// When the dispatcher runs (default every minute).
    pub schedule: Schedule,
    /// Optional send window, e.g. weekdays 08–18.
    pub window: Option<SendWindow>,
    /// Time zone of `schedule` and `window`: an IANA name known to chrono-tz
    /// (default: the top-level `schedule_timezone`, else `UTC`).
    pub timezone: String,
    /// A folder whose templates override the built-in ones.
    pub templates: Option<PathBuf>,
    /// At most this many messages per minute (`None` = unlimited).
    pub rate_per_minute: Option<u32>,
    /// Also send `registration_confirmation` to users created by sync.
    pub confirm_sync_created: bool,
    /// A run creating more users than this holds their welcomes in one batch
    /// for `mail release RUN` (default 500).
    pub max_welcome_per_run: usize,
    /// Sends tried before a message ends `failed` (default 10).
    pub max_attempts: u32,
    /// `mail.ca_file`: PEM certificates trusted for SMTP TLS besides the
    /// system roots (a private CA).
    pub ca_file: Option<PathBuf>,
    /// `mail.timeout`: how long one send (connect, dialogue, data) may take
    /// before it counts as a connection error (default 30 s).
    pub timeout: Duration,
    /// `mail.welcome`: the set-password link of welcome mails.
    pub welcome: WelcomeConfig,
}

/// `mail.timeout` when not given.
pub const DEFAULT_MAIL_TIMEOUT: Duration = Duration::from_secs(30);

/// `mail.welcome.token_ttl` when not given: 7 days (SPEC §4).
pub const DEFAULT_TOKEN_TTL: Duration = Duration::from_secs(7 * 24 * 3600);

/// `mail.welcome:`: how a welcome mail's set-password link is made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WelcomeConfig {
    /// How long the link's token stays good (default 7 days).
    pub token_ttl: Duration,
    /// The set-password page, the token going into its `token` query
    /// parameter: `mail.welcome.set_password_url`, else `api.public_url` +
    /// `/password`. `None` (neither given): welcomes carry no link and no
    /// token is made.
    pub set_password_url: Option<url::Url>,
}

impl WelcomeConfig {
    /// The link for `token`: [`WelcomeConfig::set_password_url`] with
    /// `token=TOKEN` added to its query.
    pub fn link(&self, token: &str) -> Option<String> {
        let mut url = self.set_password_url.clone()?;
        url.query_pairs_mut().append_pair("token", token);
        Some(url.into())
    }
}

/// `registration:` section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistrationConfig {
    /// A second registration of a known address within this time queues no
    /// second confirmation (default 1 h).
    pub cooldown: Duration,
}

/// `registration.cooldown` when not given.
pub const DEFAULT_REGISTRATION_COOLDOWN: Duration = Duration::from_secs(3600);

impl Default for RegistrationConfig {
    fn default() -> Self {
        RegistrationConfig {
            cooldown: DEFAULT_REGISTRATION_COOLDOWN,
        }
    }
}

/// A send window: days of week and an hour range, in the mail time zone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendWindow {
    /// ISO weekdays 1 (Monday) … 7 (Sunday) allowed.
    pub days: Vec<u8>,
    /// First hour allowed (0–23).
    pub from_hour: u8,
    /// Hour at which sending stops (1–24).
    pub to_hour: u8,
}

/// Mail transport, from the `mail.transport` URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MailTransport {
    /// `file://PATH`: one `.eml` per message in a folder.
    File(PathBuf),
    /// `smtp://`, `smtps://` (implicit TLS), `smtp+starttls://`.
    Smtp {
        /// TLS mode.
        tls: SmtpTls,
        /// Host name.
        host: String,
        /// Port (defaults 25, 465, 587).
        port: u16,
        /// User name, if any.
        user: Option<String>,
        /// Password, if any.
        password: Option<Secret>,
    },
}

/// How an SMTP connection is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmtpTls {
    /// Plain text (`smtp://`, default port 25): loopback or trusted relays only.
    None,
    /// Implicit TLS (`smtps://`, default port 465).
    Implicit,
    /// STARTTLS, never downgraded (`smtp+starttls://`, default port 587).
    StartTls,
}

/// `api:` section.
#[derive(Debug, Clone)]
pub struct ApiConfig {
    /// Address to listen on.
    pub listen: SocketAddr,
    /// Bearer token for the admin API and SCIM; while `None` those are off
    /// (`/healthz`, `/readyz` and `/metrics` never need it).
    pub token: Option<Secret>,
    /// `api.public_url`: where people reach the listener (behind a proxy,
    /// usually not `listen`); links in mail are made from it.
    pub public_url: Option<url::Url>,
}

/// `log:` section.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LogConfig {
    /// Output format.
    pub format: LogFormat,
    /// An `EnvFilter` directive such as `info` or `liaison=debug`.
    pub level: Option<String>,
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Human,
    /// One JSON object per line.
    Json,
}
