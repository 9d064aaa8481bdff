//! `users set-password`: a password from standard input or typed on the
//! terminal (twice, echo off), checked against the
//! policy, stored as an Argon2id hash — for a login, or through a set-password
//! token. The password and its hash are never printed or logged.

use std::io::{BufRead, IsTerminal};

use super::args::SetPasswordArgs;
use super::exit;
use super::output;
use super::text::quoted;
use crate::config::Config;
use crate::password::{check_policy, hash_password, token_hash};
use crate::store::{Store, TokenCheck};

/// Runs `users set-password`. Exit 2 for a password the policy refuses (every
/// broken rule listed), 1 for two different passwords typed, an unknown login or a
/// token that is unknown, used or expired.
pub(super) fn set_password(
    config: &Config,
    store: &mut dyn Store,
    args: &SetPasswordArgs,
) -> anyhow::Result<u8> {
    let Some(password) = read_password()? else {
        output::error_line("error: the two passwords differ; nothing was set");
        return Ok(exit::FAILURE);
    };
    let broken = check_policy(&config.password_policy, &password);
    if !broken.is_empty() {
        output::error_line("error: the password does not meet the password policy:");
        for rule in &broken {
            output::error_line(&format!("  - it {rule}"));
        }
        return Ok(exit::INVALID);
    }
    let hash = hash_password(&password)?;
    let actor = args.actor.clone().unwrap_or_else(os_user);
    let now = crate::clock::now_ms();
    match (&args.login, &args.token) {
        (_, Some(token)) => {
            match store.redeem_password_token(&token_hash(token), &hash, now, &actor)? {
                TokenCheck::Valid(_) => Ok(exit::OK),
                refused => {
                    output::error_line(refusal(refused));
                    Ok(exit::FAILURE)
                }
            }
        }
        (Some(login), None) => {
            // An admin write: it waits for a running sync, as `sync` does.
            let wait = super::lock_wait()?;
            store.lock_writer(wait, &mut |holder| {
                output::error_line(&format!(
                    "waiting for the store's writer lock, held by {holder} (up to {} s)",
                    wait.as_secs()
                ));
            })?;
            let set = store.set_password(login, &hash, now, &actor);
            store.unlock_writer()?;
            if set? {
                Ok(exit::OK)
            } else {
                output::error_line(&format!("no user with login {}", quoted(login)));
                Ok(exit::FAILURE)
            }
        }
        // clap requires one of them.
        (None, None) => Ok(exit::INVALID),
    }
}

/// Why a token was refused, for the person holding it.
fn refusal(check: TokenCheck) -> &'static str {
    match check {
        TokenCheck::Used => "error: this set-password link was already used (or a newer password was set); ask for a new one",
        TokenCheck::Expired => "error: this set-password link has expired; ask for a new one",
        _ => "error: this set-password link is not known; check that it was copied whole",
    }
}

/// The password: one line of standard input without its line end, or, on a
/// terminal, typed twice at a prompt on stderr with echo off (rustix's
/// termios, no unsafe code of ours); `None` when the two differ.
fn read_password() -> anyhow::Result<Option<String>> {
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        let first = read_hidden(&stdin, "password: ")?;
        let again = read_hidden(&stdin, "the same password again: ")?;
        return Ok((first == again).then_some(first));
    }
    let mut line = String::new();
    stdin.lock().read_line(&mut line)?;
    let trimmed = line.trim_end_matches(['\n', '\r']);
    Ok(Some(trimmed.to_owned()))
}

/// One line from the terminal on `stdin` with echo off, after `prompt`;
/// the terminal's modes are put back whatever the read did.
fn read_hidden(stdin: &std::io::Stdin, prompt: &str) -> anyhow::Result<String> {
    use rustix::termios::{tcgetattr, tcsetattr, LocalModes, OptionalActions};
    use std::io::Write;
    let saved = tcgetattr(stdin)?;
    let mut quiet = saved.clone();
    quiet.local_modes.remove(LocalModes::ECHO);
    quiet.local_modes.insert(LocalModes::ECHONL);
    let mut err = std::io::stderr().lock();
    write!(err, "{prompt}")?;
    err.flush()?;
    tcsetattr(stdin, OptionalActions::Flush, &quiet)?;
    let mut line = String::new();
    let read = stdin.lock().read_line(&mut line);
    tcsetattr(stdin, OptionalActions::Now, &saved)?;
    read?;
    Ok(line.trim_end_matches(['\n', '\r']).to_owned())
}

/// The OS user, for the journal: `$USER`, else `$LOGNAME`, else the name
/// `/etc/passwd` gives this process's uid, else `uid N`.
pub(super) fn os_user() -> String {
    if let Some(name) = ["USER", "LOGNAME"]
        .iter()
        .filter_map(|v| std::env::var(v).ok())
        .find(|n| !n.trim().is_empty())
    {
        return name;
    }
    let uid = rustix::process::getuid().as_raw();
    let named = std::fs::read_to_string("/etc/passwd")
        .ok()
        .and_then(|passwd| {
            passwd.lines().find_map(|line| {
                let mut fields = line.split(':');
                let name = fields.next()?;
                let found = fields.nth(1)?.parse::<u32>().ok()? == uid;
                found.then(|| name.to_owned())
            })
        });
    named.unwrap_or_else(|| format!("uid {uid}"))
}
