//! `users set-password`: a password from standard input, checked against the
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
/// broken rule listed) or a terminal on stdin, 1 for an unknown login or a
/// token that is unknown, used or expired.
pub(super) fn set_password(
    config: &Config,
    store: &mut dyn Store,
    args: &SetPasswordArgs,
) -> anyhow::Result<u8> {
    let Some(password) = read_password()? else {
        output::error_line(
            "error: the password is read from standard input (one line); \
             pipe it in, e.g. `liaison users set-password LOGIN < file`",
        );
        return Ok(exit::INVALID);
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
            if store.set_password(login, &hash, now, &actor)? {
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

/// One line of standard input without its line end; `None` when standard
/// input is a terminal (reading it without echo needs unsafe code or a new
/// dependency: decision 0022).
fn read_password() -> anyhow::Result<Option<String>> {
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        return Ok(None);
    }
    let mut line = String::new();
    stdin.lock().read_line(&mut line)?;
    let trimmed = line.trim_end_matches(['\n', '\r']);
    Ok(Some(trimmed.to_owned()))
}

/// The OS user, for the journal.
pub(super) fn os_user() -> String {
    std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .unwrap_or_else(|_| "unknown".to_owned())
}
