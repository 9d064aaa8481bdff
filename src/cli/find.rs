//! Finding users: `users list` (filters, `--limit`/`--offset`, the formats)
//! and `users history`. Read-only: no lock is taken.

use std::ops::ControlFlow;

use super::args::{FilterArgs, Format, ListArgs};
use super::text::quoted;
use super::{exit, output};
use crate::store::{Store, UserFilter, UserView};

/// The store's filter for `args`; an `--account` is an account's id, else
/// its name (one account must have it). `Err` is the exit code after the
/// error was said.
pub(super) fn filter_of(
    store: &mut dyn Store,
    args: &FilterArgs,
) -> anyhow::Result<Result<UserFilter, u8>> {
    let account = match args.account.as_deref().map(str::trim) {
        None => None,
        Some("") => {
            output::error_line("error: --account must not be empty");
            return Ok(Err(exit::INVALID));
        }
        Some(text) => {
            let found = store.accounts_named(text).map_err(anyhow::Error::from)?;
            match found.as_slice() {
                [one] => Some(one.to_string()),
                [] => {
                    output::error_line(&format!(
                        "error: no account with id or name {}",
                        quoted(text)
                    ));
                    return Ok(Err(exit::FAILURE));
                }
                many => {
                    let ids: Vec<&str> = many.iter().map(|a| a.as_str()).collect();
                    output::error_line(&format!(
                        "error: several accounts are named {} ({}); give one by id",
                        quoted(text),
                        ids.join(", ")
                    ));
                    return Ok(Err(exit::FAILURE));
                }
            }
        }
    };
    Ok(Ok(UserFilter {
        status: args.status,
        account,
        origin: args.origin,
        attributes: args.attributes.clone(),
        search: args.search.clone(),
    }))
}

/// `users list`: the users `args` selects, by login, from `--offset` on, at
/// most `--limit`, written as they are read.
pub(super) fn list(store: &mut dyn Store, args: &ListArgs) -> anyhow::Result<u8> {
    let filter = match filter_of(store, &args.filter)? {
        Ok(f) => f,
        Err(code) => return Ok(code),
    };
    let (offset, limit) = (args.offset, args.limit.unwrap_or(usize::MAX));
    output::user_list(
        &mut |visit| {
            let mut seen = 0usize;
            store
                .for_each_user(&filter, &mut |u: UserView| {
                    seen += 1;
                    if seen <= offset {
                        return ControlFlow::Continue(());
                    }
                    if seen - offset > limit {
                        return ControlFlow::Break(());
                    }
                    visit(u)
                })
                .map_err(Into::into)
        },
        args.format,
    )?;
    Ok(exit::OK)
}

/// `users history LOGIN`: the whole journal of the user who has (or had)
/// the login, oldest first.
pub(super) fn history(store: &mut dyn Store, login: &str, format: Format) -> anyhow::Result<u8> {
    match store.history(login).map_err(anyhow::Error::from)? {
        Some(entries) => {
            super::table::history(login, &entries, format)?;
            Ok(exit::OK)
        }
        None => {
            output::error_line(&format!("error: no user with login {}", quoted(login)));
            Ok(exit::FAILURE)
        }
    }
}
