//! `users register`, `approve`, `reject`, `resend-welcome` and
//! `resend-confirmation`: registration without HTTP, and the admin lifecycle
//! of a registered user. Each takes the store's writer lock for its one
//! transaction (a sync run plans against what it loaded under that lock).

use serde_json::json;
use tracing::info;

use super::args::{Format, LifecycleArgs, RegisterArgs};
use super::exit;
use super::output;
use super::status::rfc3339;
use super::text::quoted;
use crate::config::Config;
use crate::model::{is_language_tag, AccountId, Email};
use crate::store::{
    AdminError, Approval, MailKind, OutboxPolicy, Queued, Reconfirmation, Registered, Registration,
    RegistrationPolicy, Store,
};

/// The longest name a registration takes (a title, not a document).
const MAX_NAME: usize = 256;

/// Which lifecycle command to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Lifecycle {
    /// `users approve`.
    Approve,
    /// `users reject`.
    Reject,
    /// `users resend-welcome` / `users resend-confirmation`.
    Resend(MailKind),
}

/// `users register`: exit 0 for a registration and for an address already
/// known (nothing changes), 2 for bad arguments or an unknown `--account`.
pub(super) fn register(
    config: &Config,
    store: &mut dyn Store,
    args: &RegisterArgs,
) -> anyhow::Result<u8> {
    let registration = match registration_of(config, args) {
        Ok(r) => r,
        Err(message) => {
            output::error_line(&format!("error: {message}"));
            return Ok(exit::INVALID);
        }
    };
    let policy = RegistrationPolicy {
        cooldown: config.registration.cooldown,
        outbox: OutboxPolicy::of(config.mail.as_ref()),
    };
    lock(store)?;
    super::declare_accounts(config, store)?;
    let done = store.register(&registration, &policy, crate::clock::now_ms());
    store.unlock_writer()?;
    let done = match done {
        Ok(done) => done,
        Err(e) => return refused(e),
    };
    if policy.outbox.is_none() {
        output::error_line("note: mail: is not configured, so no mail was queued");
    }
    match args.format {
        Format::Json => output::json_out(&registered_json(&done))?,
        Format::Human => output::line(&registered_line(&registration, &done, config)),
    }
    Ok(exit::OK)
}

/// The checked arguments of `users register`, or what is wrong with them.
fn registration_of(config: &Config, args: &RegisterArgs) -> Result<Registration, String> {
    let name = args.name.trim();
    if name.is_empty() || name.chars().count() > MAX_NAME {
        return Err(format!("--name must be 1 to {MAX_NAME} characters"));
    }
    if name.chars().any(char::is_control) {
        return Err("--name must not hold control characters (line breaks, tabs)".to_owned());
    }
    let email = Email::parse(&args.email).map_err(|e| format!("--email: {e}"))?;
    let locale = args
        .locale
        .clone()
        .unwrap_or_else(|| config.default_locale.clone());
    if !is_language_tag(&locale) {
        return Err(format!(
            "--locale: expected a language tag such as en, cs or pt-BR, found {}",
            quoted(&locale)
        ));
    }
    let account = match args.account.as_deref().map(str::trim) {
        Some("") => return Err("--account must not be empty".to_owned()),
        other => other.map(|id| AccountId(id.to_owned())),
    };
    Ok(Registration {
        name: name.to_owned(),
        email,
        account,
        locale,
        actor: actor(args.actor.as_deref())?,
    })
}

/// `--actor`, else the OS user; an empty one is refused.
fn actor(given: Option<&str>) -> Result<String, String> {
    match given.map(str::trim) {
        Some("") => Err("--actor must not be empty".to_owned()),
        Some(a) => Ok(a.to_owned()),
        None => Ok(super::password::os_user()),
    }
}

/// Takes the store's writer lock, waiting as long as a sync would.
fn lock(store: &mut dyn Store) -> anyhow::Result<()> {
    store.lock_writer(super::lock_wait()?, &mut |holder| {
        info!(%holder, "waiting for the store's writer lock");
    })?;
    Ok(())
}

/// A refused admin write: exit 2 when the command was wrong (an unknown
/// account), 1 when the directory is not in the state it needs; a store
/// failure is the caller's error.
fn refused(e: AdminError) -> anyhow::Result<u8> {
    match e {
        AdminError::Store(e) => Err(e.into()),
        e => {
            output::error_line(&format!("error: {e}"));
            Ok(if e.is_usage() {
                exit::INVALID
            } else {
                exit::FAILURE
            })
        }
    }
}

/// `users register` for people: what happened, in one line.
fn registered_line(r: &Registration, done: &Registered, config: &Config) -> String {
    match done {
        Registered::Created {
            login,
            approval,
            queued,
            ..
        } => {
            let mail = queued_words(queued);
            match approval {
                Approval::ByDomain { account, domain } => format!(
                    "registered {login} (active): approved at once, {domain} is a domain of account {account}{mail}"
                ),
                other => format!(
                    "registered {login} (pending{}){mail}; approve with: liaison users approve {login}",
                    pending_reason(other)
                ),
            }
        }
        Registered::Known {
            login,
            status,
            confirmation,
        } => format!(
            "{} is already registered as {login} ({status}); nothing changed{}",
            quoted(r.email.as_str()),
            reconfirmation_words(*confirmation, config)
        ),
    }
}

fn queued_words(queued: &[MailKind]) -> String {
    match queued {
        [] => String::new(),
        [MailKind::RegistrationConfirmation] => "; confirmation queued".to_owned(),
        [_, _] => "; confirmation and welcome queued".to_owned(),
        [MailKind::Welcome] => "; welcome queued".to_owned(),
        _ => format!("; {} messages queued", queued.len()),
    }
}

/// Why a registration waits for approval, after its status.
fn pending_reason(approval: &Approval) -> String {
    match approval {
        Approval::AmbiguousDomain(ids) => format!(
            ": its domain is claimed by several accounts ({}), so none approves it",
            ids.iter()
                .map(AccountId::as_str)
                .collect::<Vec<_>>()
                .join(", ")
        ),
        Approval::DomainOfAnotherAccount(id) => {
            format!(": its domain belongs to account {id}, not the one named")
        }
        _ => String::new(),
    }
}

fn reconfirmation_words(c: Reconfirmation, config: &Config) -> String {
    match c {
        Reconfirmation::Queued => "; confirmation queued again".to_owned(),
        Reconfirmation::Cooldown { until_ms } => format!(
            "; no confirmation queued: one was queued within registration.cooldown ({} s), \
             a registration after {} queues one again",
            config.registration.cooldown.as_secs(),
            rfc3339(until_ms).unwrap_or_else(|| until_ms.to_string())
        ),
        Reconfirmation::NotPending => "; no confirmation queued: it is not pending".to_owned(),
        Reconfirmation::NoMail => String::new(),
    }
}

/// `users register --format json`.
fn registered_json(done: &Registered) -> serde_json::Value {
    match done {
        Registered::Created {
            user,
            login,
            account,
            approval,
            queued,
        } => json!({
            "result": "created",
            "id": user.0,
            "login": login,
            "status": approval.status().as_str(),
            "account": account.as_ref().map(AccountId::as_str),
            "approved_by_domain": match approval {
                Approval::ByDomain { account, domain } => json!({"account": account, "domain": domain}),
                _ => serde_json::Value::Null,
            },
            "queued": queued.iter().map(|k| k.as_str()).collect::<Vec<_>>(),
        }),
        Registered::Known {
            login,
            status,
            confirmation,
        } => json!({
            "result": "known",
            "login": login,
            "status": status.as_str(),
            "confirmation": match confirmation {
                Reconfirmation::Queued => "queued",
                Reconfirmation::Cooldown { .. } => "cooldown",
                Reconfirmation::NotPending => "not_pending",
                Reconfirmation::NoMail => "no_mail",
            },
            "cooldown_until": match confirmation {
                Reconfirmation::Cooldown { until_ms } => rfc3339(*until_ms),
                _ => None,
            },
            "queued": match confirmation {
                Reconfirmation::Queued => vec!["registration_confirmation"],
                _ => vec![],
            },
        }),
    }
}

/// `users approve|reject|resend-welcome|resend-confirmation LOGIN`: exit 1
/// for an unknown login or a user in another status than the command needs;
/// a resend needs `mail:` (exit 2 without it).
pub(super) fn lifecycle(
    config: &Config,
    store: &mut dyn Store,
    command: Lifecycle,
    args: &LifecycleArgs,
) -> anyhow::Result<u8> {
    let actor = match actor(args.actor.as_deref()) {
        Ok(a) => a,
        Err(message) => {
            output::error_line(&format!("error: {message}"));
            return Ok(exit::INVALID);
        }
    };
    let outbox = OutboxPolicy::of(config.mail.as_ref());
    if let (Lifecycle::Resend(kind), None) = (command, &outbox) {
        output::error_line(&format!(
            "error: mail: is not configured, so a {kind} would never be sent; configure mail: first"
        ));
        return Ok(exit::INVALID);
    }
    lock(store)?;
    let now = crate::clock::now_ms();
    let login = args.login.as_str();
    let done = match (command, &outbox) {
        (Lifecycle::Approve, _) => store.approve(login, outbox.as_ref(), &actor, now),
        (Lifecycle::Reject, _) => store.reject(login, &actor, now),
        (Lifecycle::Resend(kind), Some(policy)) => store.resend(login, kind, policy, &actor, now),
        // Refused above.
        (Lifecycle::Resend(_), None) => Ok(Queued {
            messages: 0,
            cancelled: 0,
        }),
    };
    store.unlock_writer()?;
    match done {
        Ok(q) => {
            output::line(&lifecycle_line(command, login, q, outbox.is_some()));
            Ok(exit::OK)
        }
        Err(e) => refused(e),
    }
}

fn lifecycle_line(command: Lifecycle, login: &str, q: Queued, mail: bool) -> String {
    match command {
        Lifecycle::Approve if !mail => {
            format!("approved {login} (active); mail: is not configured, so no welcome was queued")
        }
        Lifecycle::Approve if q.messages == 0 => {
            format!("approved {login} (active); it was welcomed before, so no welcome was queued (resend with: liaison users resend-welcome {login})")
        }
        Lifecycle::Approve => format!("approved {login} (active); welcome queued"),
        Lifecycle::Reject => format!(
            "rejected {login}; {} queued message{} cancelled",
            q.cancelled,
            if q.cancelled == 1 { "" } else { "s" }
        ),
        Lifecycle::Resend(kind) => format!("{kind} queued again for {login}"),
    }
}
