//! `users add`, `enable`, `disable`, `delete`, `unlink` and `edit`: the
//! administration of users from the command line (SPEC §5). Each checks its
//! arguments, takes the store's writer lock (waiting for a running sync or
//! daemon run, as `sync` does, never failing it) and makes its change in
//! one transaction with the journal (by `--actor`, default the OS user) and
//! the outbox; a refusal is one `error:` line and writes nothing.
//!
//! Exit codes: 0 done (also when nothing needed changing), 1 refused by the
//! directory's state or a value it cannot take (an unknown login, a taken
//! login, a duplicate or invalid e-mail, a field a source owns), 2 a command
//! line that cannot work (no change asked for, no terminal to confirm a
//! delete, an unknown account id).

use std::io::{BufRead, IsTerminal, Write};

use clap::{Args, ValueEnum};
use liaison_plugin_api::{Item, ReadRequest};
use serde_json::json;

use super::args::{parse_key_value, Format, LifecycleArgs};
use super::text::{quoted, visible};
use super::{exit, output};
use crate::config::{Config, SourceConfig};
use crate::mapping::Mapped;
use crate::model::{is_language_tag, AccountId, ContactRecord, Email, Login};
use crate::store::{
    AdminChange, AdminError, ContactRef, Edit, FoundContact, MergeRules, NewManualUser,
    OutboxPolicy, StatusChanged, Store,
};
use crate::sync::{compile_mapping, read_context, Cancel, ReadRuntime};

/// The longest title an admin gives (a name, not a document).
const MAX_TITLE: usize = 256;

/// `users add` arguments.
#[derive(Debug, Args)]
#[command(group = clap::ArgGroup::new("who").required(true).multiple(true).args(["name", "from_contact"]))]
pub struct AddArgs {
    /// The person's name: the user's title, and where its login comes from.
    #[arg(long, requires = "email", conflicts_with = "from_contact")]
    pub name: Option<String>,
    /// The person's e-mail address.
    #[arg(long, conflicts_with = "from_contact")]
    pub email: Option<String>,
    /// Take name, e-mail and account from this contact a source knows
    /// (`SOURCE:ID`, or an id one source has) and link it.
    #[arg(long, value_name = "[SOURCE:]ID")]
    pub from_contact: Option<String>,
    /// Link this account (its id) directly; it must be known to the store.
    #[arg(long, value_name = "ID", conflicts_with = "from_contact")]
    pub account: Option<String>,
    /// The login (default: derived from the name); refused when taken or
    /// once a deleted user's.
    #[arg(long)]
    pub login: Option<String>,
    /// The language of the user's mail (default: the contact's, else `default_locale`).
    #[arg(long)]
    pub locale: Option<String>,
    /// A free note: who this user represents.
    #[arg(long)]
    pub description: Option<String>,
    /// A grant (a queue, a team); repeatable.
    #[arg(long = "grant", value_name = "GRANT")]
    pub grants: Vec<String>,
    /// Who is making the change, for the journal (default: the OS user).
    #[arg(long)]
    pub actor: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value_t)]
    pub format: Format,
}

/// `users delete` arguments.
#[derive(Debug, Args)]
pub struct DeleteArgs {
    /// The user's login.
    pub login: String,
    /// Delete without asking (needed when no terminal can ask).
    #[arg(long)]
    pub yes: bool,
    /// Who is making the change, for the journal (default: the OS user).
    #[arg(long)]
    pub actor: Option<String>,
}

/// `users unlink` arguments.
#[derive(Debug, Args)]
pub struct UnlinkArgs {
    /// The user's login.
    pub login: String,
    /// The account (company) to unlink the user from, by id (or name).
    #[arg(long, value_name = "ID")]
    pub account: String,
    /// Who is making the change, for the journal (default: the OS user).
    #[arg(long)]
    pub actor: Option<String>,
}

/// A flag's new value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Switch {
    /// True.
    On,
    /// False.
    Off,
}

impl Switch {
    fn get(self) -> bool {
        self == Switch::On
    }
}

/// `users edit` arguments.
#[derive(Debug, Args)]
#[command(
    after_help = "A field one of the user's linked contacts gives belongs to that \
contact's source: changing it is refused, naming the source (the next sync would undo it). \
On a user no source feeds (a manual user without contacts) everything is editable. \
The login never changes."
)]
pub struct EditArgs {
    /// The user's login.
    pub login: String,
    /// A new title (display name).
    #[arg(long)]
    pub title: Option<String>,
    /// A new description (an empty one clears it).
    #[arg(long)]
    pub description: Option<String>,
    /// A new e-mail address.
    #[arg(long)]
    pub email: Option<String>,
    /// A new language for the user's mail.
    #[arg(long)]
    pub locale: Option<String>,
    /// May see other external users of the same account.
    #[arg(long, value_enum, value_name = "on|off")]
    pub account_contacts: Option<Switch>,
    /// May see all tickets of the account.
    #[arg(long, value_enum, value_name = "on|off")]
    pub account_tickets: Option<Switch>,
    /// May write external comments.
    #[arg(long, value_enum, value_name = "on|off")]
    pub external_comments: Option<Switch>,
    /// Add a grant; repeatable.
    #[arg(long = "grant", value_name = "GRANT")]
    pub grant: Vec<String>,
    /// Remove a grant; repeatable.
    #[arg(long = "revoke", value_name = "GRANT")]
    pub revoke: Vec<String>,
    /// Set an attribute, or remove it with `KEY=`; repeatable.
    #[arg(long = "attribute", value_name = "KEY=VALUE", value_parser = parse_key_value)]
    pub attributes: Vec<(String, String)>,
    /// Link a contact a source knows (lifts an admin's unlink of it); repeatable.
    #[arg(long = "link-contact", value_name = "[SOURCE:]ID")]
    pub link_contacts: Vec<String>,
    /// Unlink a linked contact: sync does not link it again until an
    /// admin does; repeatable.
    #[arg(long = "unlink-contact", value_name = "[SOURCE:]ID")]
    pub unlink_contacts: Vec<String>,
    /// Link an account directly (lifts an admin's unlink of it); repeatable.
    #[arg(long = "link-account", value_name = "ID")]
    pub link_accounts: Vec<String>,
    /// Refused: a login never changes.
    #[arg(long = "login", hide = true, value_name = "LOGIN")]
    pub new_login: Option<String>,
    /// Who is making the change, for the journal (default: the OS user).
    #[arg(long)]
    pub actor: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value_t)]
    pub format: Format,
}

/// One line of a command's result on stdout, made safe for a terminal (it
/// quotes ids and values from sources and the command line).
fn shown_line(text: &str) {
    output::line(&visible(text));
}

/// A refusal already said: the exit code to end with.
struct Said(u8);

/// Says `message` as one `error:` line; the exit code is `code`.
fn say(code: u8, message: impl AsRef<str>) -> Said {
    output::error_line(&format!("error: {}", message.as_ref()));
    Said(code)
}

/// `--actor`, else the OS user; an empty one is refused.
fn actor(given: Option<&str>) -> Result<String, Said> {
    match given.map(str::trim) {
        Some("") => Err(say(exit::INVALID, "--actor must not be empty")),
        Some(a) => Ok(a.to_owned()),
        None => Ok(super::password::os_user()),
    }
}

/// Takes the store's writer lock, waiting (and saying for whom) as long as
/// a sync would: an admin write next to a running sync or daemon run waits
/// for it to apply, then plans nothing stale (it reads in its own transaction).
fn lock(store: &mut dyn Store) -> anyhow::Result<()> {
    let wait = super::lock_wait()?;
    store.lock_writer(wait, &mut |holder| {
        output::error_line(&format!(
            "waiting for the store's writer lock, held by {holder} (up to {} s, LIAISON_STORE_LOCK_WAIT)",
            wait.as_secs()
        ));
    })?;
    Ok(())
}

/// Runs `write` under the writer lock, released however it ends.
fn locked<T>(
    store: &mut dyn Store,
    write: impl FnOnce(&mut dyn Store) -> Result<T, AdminError>,
) -> anyhow::Result<Result<T, AdminError>> {
    lock(store)?;
    let done = write(store);
    store.unlock_writer()?;
    Ok(done)
}

/// A refused admin write: exit 2 when the command line named something
/// unknown (an account), else 1; a store failure is the caller's error.
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

/// The merge rules of the config: its sources' order and default locale.
fn rules(config: &Config) -> MergeRules {
    MergeRules {
        source_order: config.sources.iter().map(|s| s.name.clone()).collect(),
        default_locale: config.default_locale.clone(),
    }
}

fn check_title(option: &str, text: &str) -> Result<String, Said> {
    let title = text.trim();
    if title.is_empty() || title.chars().count() > MAX_TITLE {
        return Err(say(
            exit::FAILURE,
            format!("{option} must be 1 to {MAX_TITLE} characters"),
        ));
    }
    if title.chars().any(char::is_control) {
        return Err(say(
            exit::FAILURE,
            format!("{option} must not hold control characters (line breaks, tabs)"),
        ));
    }
    Ok(title.to_owned())
}

fn check_email(text: &str) -> Result<Email, Said> {
    Email::parse(text.trim()).map_err(|e| say(exit::FAILURE, format!("--email: {e}")))
}

fn check_locale(text: &str) -> Result<String, Said> {
    let locale = text.trim();
    if !is_language_tag(locale) {
        return Err(say(
            exit::FAILURE,
            format!(
                "--locale: expected a language tag such as en, cs or pt-BR, found {}",
                quoted(locale)
            ),
        ));
    }
    Ok(locale.to_owned())
}

/// A login an admin gives: matched without case (stored in lower case), of
/// `[a-z0-9._@-]`, 1 to 64 characters (SPEC §1).
fn check_login(text: &str) -> Result<Login, Said> {
    let login = text.trim().to_lowercase();
    let ok_char = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || "._@-".contains(c);
    if login.is_empty() || login.len() > 64 || !login.chars().all(ok_char) {
        return Err(say(
            exit::FAILURE,
            format!(
                "--login {}: a login is 1 to 64 characters of a-z, 0-9, '.', '_', '@' and '-'",
                quoted(text)
            ),
        ));
    }
    Ok(Login::from_trusted(login))
}

fn check_grants(grants: &[String]) -> Result<Vec<String>, Said> {
    let mut out = Vec::new();
    for g in grants {
        let g = g.trim();
        if g.is_empty() || g.chars().any(char::is_control) {
            return Err(say(
                exit::FAILURE,
                format!("--grant {}: a grant is a non-empty name", quoted(g)),
            ));
        }
        out.push(g.to_owned());
    }
    out.sort();
    out.dedup();
    Ok(out)
}

/// What one source says of the contact `id`, read in full until found.
enum InSource {
    /// Not there.
    Absent,
    /// There and mapped.
    Contact(ContactRecord),
    /// There, but left out (`when:`, `portal_access`) or unreadable: why.
    Unusable(String),
}

/// Reads `source` until a record with contact id `id` turns up.
fn read_contact(source: &SourceConfig, id: &str) -> anyhow::Result<InSource> {
    let mapping =
        compile_mapping(source).map_err(|e| anyhow::anyhow!("source {}: {e}", source.name))?;
    let connector = crate::plugins::build(&source.connector);
    let runtime = ReadRuntime::get()?;
    let ctx = read_context(Cancel::new(), crate::clock::now_ms(), &runtime);
    let items = connector
        .read(&ReadRequest::full(), &ctx)
        .map_err(|e| anyhow::anyhow!("reading source {}: {e}", source.name))?;
    for item in items {
        match item.map_err(|e| anyhow::anyhow!("reading source {}: {e}", source.name))? {
            Item::Record(record) => {
                if mapping.contact_id_of(&record).as_deref() != Some(id) {
                    continue;
                }
                return Ok(match mapping.apply(&record) {
                    Mapped::Contact(mut c) => {
                        c.fingerprint = mapping.fingerprint(&record);
                        InSource::Contact(c)
                    }
                    Mapped::Skipped => InSource::Unusable(
                        "its source's mapping leaves it out (`when:` or portal_access): the \
                         next sync would unlink it again; give it portal access in the source, \
                         or add the user with --name and --email"
                            .to_owned(),
                    ),
                    Mapped::Invalid { message, .. } => {
                        InSource::Unusable(format!("it cannot be read: {message}"))
                    }
                });
            }
            Item::Bad(bad) if bad.key.as_deref() == Some(id) => {
                return Ok(InSource::Unusable(format!(
                    "it cannot be read ({}): {}",
                    bad.location, bad.message
                )))
            }
            Item::End(_) => break,
            _ => {}
        }
    }
    Ok(InSource::Absent)
}

/// The contact `text` names: one the store knows (from its sources' last
/// read), else read from the configured sources (the one named, or each).
fn find_contact(
    config: &Config,
    store: &mut dyn Store,
    option: &str,
    text: &str,
) -> anyhow::Result<Result<FoundContact, Said>> {
    let r = match ContactRef::parse(text) {
        Ok(r) => r,
        Err(e) => return Ok(Err(say(exit::INVALID, format!("{option}: {e}")))),
    };
    let stored = match store.stored_contacts(&r) {
        Ok(s) => s,
        Err(e) => return Err(anyhow::Error::from(e)),
    };
    match stored.as_slice() {
        [one] => return Ok(Ok(one.contact.clone())),
        [] => {}
        many => {
            let sources: Vec<&str> = many.iter().map(|s| s.contact.source.as_str()).collect();
            return Ok(Err(say(
                exit::FAILURE,
                format!(
                    "{option}: contact id {} is known in several sources ({}); name one, as SOURCE:{}",
                    quoted(&r.id),
                    sources.join(", "),
                    r.id
                ),
            )));
        }
    }
    let sources: Vec<&SourceConfig> = match &r.source {
        Some(name) => match config.sources.iter().find(|s| &s.name == name) {
            Some(s) => vec![s],
            None => {
                return Ok(Err(say(
                    exit::FAILURE,
                    format!(
                        "{option}: no source {} in the config knows contact {}",
                        quoted(name),
                        quoted(&r.id)
                    ),
                )))
            }
        },
        None => config.sources.iter().collect(),
    };
    let mut found: Vec<(String, InSource)> = Vec::new();
    for s in sources {
        match read_contact(s, &r.id)? {
            InSource::Absent => {}
            other => found.push((s.name.clone(), other)),
        }
    }
    match found.len() {
        0 => Ok(Err(say(
            exit::FAILURE,
            format!(
                "{option}: no source has a contact {}",
                quoted(&r.to_string())
            ),
        ))),
        1 => {
            let Some((source, found)) = found.pop() else {
                return Ok(Err(Said(exit::FAILURE)));
            };
            match found {
                InSource::Contact(record) => Ok(Ok(FoundContact { source, record })),
                InSource::Unusable(why) => Ok(Err(say(
                    exit::FAILURE,
                    format!("{option}: contact {source}:{}: {why}", r.id),
                ))),
                InSource::Absent => Ok(Err(Said(exit::FAILURE))),
            }
        }
        _ => {
            let names: Vec<&str> = found.iter().map(|(s, _)| s.as_str()).collect();
            Ok(Err(say(
                exit::FAILURE,
                format!(
                    "{option}: sources {} all have a contact {}; name one, as SOURCE:{}",
                    names.join(", "),
                    quoted(&r.id),
                    r.id
                ),
            )))
        }
    }
}

/// Unwraps a check, or returns its exit code from the command.
macro_rules! checked {
    ($e:expr) => {
        match $e {
            Ok(v) => v,
            Err(Said(code)) => return Ok(code),
        }
    };
}

/// `users add`.
pub(super) fn add(config: &Config, store: &mut dyn Store, args: &AddArgs) -> anyhow::Result<u8> {
    let actor = checked!(actor(args.actor.as_deref()));
    let contact = match &args.from_contact {
        Some(text) => Some(checked!(find_contact(
            config,
            store,
            "--from-contact",
            text
        )?)),
        None => None,
    };
    let (title, email) = match (&contact, &args.name, &args.email) {
        (Some(c), _, _) => (c.record.name().to_owned(), c.record.email()),
        (None, Some(name), Some(email)) => (
            checked!(check_title("--name", name)),
            checked!(check_email(email)),
        ),
        // clap requires --name with --email, or --from-contact.
        _ => return Ok(exit::INVALID),
    };
    let account = match args.account.as_deref().map(str::trim) {
        Some("") => checked!(Err(say(exit::INVALID, "--account must not be empty"))),
        other => other.map(|id| AccountId(id.to_owned())),
    };
    let new = NewManualUser {
        title,
        email,
        login: match &args.login {
            Some(l) => Some(checked!(check_login(l))),
            None => None,
        },
        locale: match &args.locale {
            Some(l) => Some(checked!(check_locale(l))),
            None => None,
        },
        description: match args.description.as_deref().map(str::trim) {
            Some("") | None => None,
            Some(d) => Some(d.to_owned()),
        },
        grants: checked!(check_grants(&args.grants)),
        account,
        contact,
    };
    let outbox = OutboxPolicy::of(config.mail.as_ref());
    let rules = rules(config);
    let now = crate::clock::now_ms();
    lock(store)?;
    let declared = super::declare_accounts(config, store);
    let done = declared.map(|()| store.add_user(&new, &rules, outbox.as_ref(), &actor, now));
    store.unlock_writer()?;
    let added = match done? {
        Ok(a) => a,
        Err(e) => return refused(e),
    };
    let contact = new.contact.as_ref().map(FoundContact::anchor);
    match args.format {
        Format::Json => output::json_out(&json!({
            "result": "created",
            "id": added.user.0,
            "login": added.login,
            "status": added.status.as_str(),
            "origin": "manual",
            "contact": contact,
            "account": new.account.as_ref().map(AccountId::as_str),
            "queued": if added.welcome_queued { vec!["welcome"] } else { vec![] },
        }))?,
        Format::Human => shown_line(&format!(
            "added {} (active, manual){}{}",
            added.login,
            contact
                .map(|c| format!(", linked to contact {c}"))
                .unwrap_or_default(),
            match (&outbox, added.welcome_queued) {
                (None, _) => "; mail: is not configured, so no welcome was queued",
                (Some(_), true) => "; welcome queued",
                (Some(_), false) => "",
            }
        )),
    }
    Ok(exit::OK)
}

/// `users enable` / `users disable`.
pub(super) fn set_enabled(
    store: &mut dyn Store,
    enable: bool,
    args: &LifecycleArgs,
) -> anyhow::Result<u8> {
    let actor = checked!(actor(args.actor.as_deref()));
    let login = args.login.as_str();
    let now = crate::clock::now_ms();
    let done = match locked(store, |s| s.set_enabled(login, enable, &actor, now))? {
        Ok(d) => d,
        Err(e) => return refused(e),
    };
    let text = match (enable, done) {
        (true, StatusChanged::Changed { .. }) => format!("enabled {login} (active)"),
        (false, StatusChanged::Changed { cancelled, .. }) => format!(
            "disabled {login}; sync does not enable it again{}",
            match cancelled {
                0 => String::new(),
                1 => "; 1 queued message cancelled".to_owned(),
                n => format!("; {n} queued messages cancelled"),
            }
        ),
        (_, StatusChanged::TakenOver) => format!(
            "{login} was disabled by sync; now it is disabled by an admin, and sync does not \
             enable it again when its contacts come back"
        ),
        (true, StatusChanged::Already) => format!("{login} is already active; nothing changed"),
        (false, StatusChanged::Already) => {
            format!("{login} is already disabled by an admin; nothing changed")
        }
    };
    shown_line(&text);
    Ok(exit::OK)
}

/// Asks on the terminal whether to delete `login`; `Err` when none can ask.
fn confirm_delete(store: &mut dyn Store, login: &str) -> anyhow::Result<Result<bool, Said>> {
    let stdin = std::io::stdin();
    if !stdin.is_terminal() {
        return Ok(Err(say(
            exit::INVALID,
            "users delete asks on a terminal before deleting; without one, pass --yes",
        )));
    }
    let Some(d) = store.user_detail(login)? else {
        return Ok(Err(say(
            exit::FAILURE,
            format!("no user with login {}", quoted(login)),
        )));
    };
    let mut err = std::io::stderr().lock();
    write!(
        err,
        "delete user {} ({}, {}, {} contact{}) for good? Its login is never given again. [y/N] ",
        quoted(login),
        quoted(&d.user.title),
        d.user.status,
        d.user.contacts.len(),
        if d.user.contacts.len() == 1 { "" } else { "s" }
    )?;
    err.flush()?;
    let mut answer = String::new();
    stdin.lock().read_line(&mut answer)?;
    Ok(Ok(matches!(
        answer.trim().to_lowercase().as_str(),
        "y" | "yes"
    )))
}

/// `users delete`.
pub(super) fn delete(store: &mut dyn Store, args: &DeleteArgs) -> anyhow::Result<u8> {
    let actor = checked!(actor(args.actor.as_deref()));
    let login = args.login.as_str();
    if !args.yes && !checked!(confirm_delete(store, login)?) {
        output::error_line("not deleted");
        return Ok(exit::FAILURE);
    }
    let now = crate::clock::now_ms();
    let done = match locked(store, |s| s.delete_user(login, &actor, now))? {
        Ok(d) => d,
        Err(e) => return refused(e),
    };
    let mut text = format!("deleted {login}; its login is never given again");
    if !done.held.is_empty() {
        text.push_str(&format!(
            "; sync does not make a user of its contacts again ({})",
            done.held.join(", ")
        ));
    }
    if done.cancelled > 0 {
        text.push_str(&format!("; {} queued message(s) cancelled", done.cancelled));
    }
    shown_line(&text);
    Ok(exit::OK)
}

/// The id of the account `text` names (an id, else one account's name).
fn account_named(store: &mut dyn Store, text: &str) -> anyhow::Result<Result<AccountId, Said>> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(Err(say(exit::INVALID, "--account must not be empty")));
    }
    let found = store.accounts_named(text).map_err(anyhow::Error::from)?;
    Ok(match found.as_slice() {
        [one] => Ok(one.clone()),
        // Unknown to the store: a user may still hold it (refused there).
        [] => Ok(AccountId(text.to_owned())),
        many => Err(say(
            exit::FAILURE,
            format!(
                "several accounts are named {} ({}); give one by id",
                quoted(text),
                many.iter()
                    .map(AccountId::as_str)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        )),
    })
}

/// `users unlink LOGIN --account ID`.
pub(super) fn unlink(
    config: &Config,
    store: &mut dyn Store,
    args: &UnlinkArgs,
) -> anyhow::Result<u8> {
    let actor = checked!(actor(args.actor.as_deref()));
    let account = checked!(account_named(store, &args.account)?);
    let login = args.login.as_str();
    let rules = rules(config);
    let now = crate::clock::now_ms();
    let done = match locked(store, |s| {
        s.unlink_account(login, &account, &rules, &actor, now)
    })? {
        Ok(d) => d,
        Err(e) => return refused(e),
    };
    let mut parts = Vec::new();
    if !done.contacts.is_empty() {
        parts.push(format!(
            "contact{} {}",
            if done.contacts.len() == 1 { "" } else { "s" },
            done.contacts.join(", ")
        ));
    }
    if done.direct {
        parts.push("its direct link".to_owned());
    }
    let mut text = format!(
        "unlinked {login} from account {account} ({}); sync does not link them again until an \
         admin does (liaison users edit {login} --link-contact SOURCE:ID)",
        parts.join(" and ")
    );
    if done.disabled {
        text.push_str(&format!(
            "; {login} has no contact left and is disabled, as when a source drops it"
        ));
    }
    shown_line(&text);
    Ok(exit::OK)
}

/// The `users edit` arguments as an [`Edit`], each value checked.
fn edit_of(
    config: &Config,
    store: &mut dyn Store,
    args: &EditArgs,
) -> anyhow::Result<Result<Edit, Said>> {
    macro_rules! ok {
        ($e:expr) => {
            match $e {
                Ok(v) => v,
                Err(said) => return Ok(Err(said)),
            }
        };
    }
    if args.new_login.is_some() {
        return Ok(Err(say(
            exit::INVALID,
            "a login never changes; add a new user instead (liaison users add --login …)",
        )));
    }
    let mut edit = Edit {
        title: match &args.title {
            Some(t) => Some(ok!(check_title("--title", t))),
            None => None,
        },
        description: args.description.as_deref().map(|d| {
            let d = d.trim();
            (!d.is_empty()).then(|| d.to_owned())
        }),
        email: match &args.email {
            Some(e) => Some(ok!(check_email(e))),
            None => None,
        },
        locale: match &args.locale {
            Some(l) => Some(ok!(check_locale(l))),
            None => None,
        },
        account_contacts: args.account_contacts.map(Switch::get),
        account_tickets: args.account_tickets.map(Switch::get),
        external_comments: args.external_comments.map(Switch::get),
        grant: ok!(check_grants(&args.grant)),
        revoke: ok!(check_grants(&args.revoke)),
        attributes: args
            .attributes
            .iter()
            .map(|(k, v)| (k.trim().to_owned(), (!v.is_empty()).then(|| v.clone())))
            .collect(),
        ..Edit::default()
    };
    for text in &args.link_contacts {
        edit.link_contacts
            .push(ok!(find_contact(config, store, "--link-contact", text)?));
    }
    for text in &args.unlink_contacts {
        match ContactRef::parse(text) {
            Ok(r) => edit.unlink_contacts.push(r),
            Err(e) => return Ok(Err(say(exit::INVALID, format!("--unlink-contact: {e}")))),
        }
    }
    for text in &args.link_accounts {
        let text = text.trim();
        if text.is_empty() {
            return Ok(Err(say(exit::INVALID, "--link-account must not be empty")));
        }
        edit.link_accounts.push(AccountId(text.to_owned()));
    }
    if edit.is_empty() {
        return Ok(Err(say(
            exit::INVALID,
            "users edit needs a change to make (see liaison users edit --help)",
        )));
    }
    Ok(Ok(edit))
}

/// A change for people: `field: old → new`.
fn change_line(c: &AdminChange) -> String {
    let f = &c.change;
    match c.action {
        "link" => format!("linked {}: {}", f.field, f.new),
        "unlink" => format!("unlinked {}: {}", f.field, f.old),
        action => format!("{action} {}: {} → {}", f.field, f.old, f.new),
    }
}

/// `users edit`.
pub(super) fn edit(config: &Config, store: &mut dyn Store, args: &EditArgs) -> anyhow::Result<u8> {
    let actor = checked!(actor(args.actor.as_deref()));
    let edit = checked!(edit_of(config, store, args)?);
    let login = args.login.as_str();
    let rules = rules(config);
    let now = crate::clock::now_ms();
    let changes = match locked(store, |s| s.edit_user(login, &edit, &rules, &actor, now))? {
        Ok(c) => c,
        Err(e) => return refused(e),
    };
    match args.format {
        Format::Json => output::json_out(&json!({
            "login": login,
            "changes": changes.iter().map(|c| json!({
                "action": c.action,
                "field": c.change.field,
                "old": c.change.old,
                "new": c.change.new,
            })).collect::<Vec<_>>(),
        }))?,
        Format::Human if changes.is_empty() => {
            shown_line(&format!("{login}: nothing changed (it already was so)"))
        }
        Format::Human => {
            shown_line(&format!("edited {login}:"));
            for c in &changes {
                shown_line(&format!("  {}", change_line(c)));
            }
        }
    }
    Ok(exit::OK)
}
