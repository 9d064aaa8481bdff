//! `liaison mail preview`: the variables of a mail for a stored user or a
//! sample one, with a placeholder link (a preview makes no token).

use chrono::{DateTime, Duration, TimeZone, Utc};

use super::MailVars;
use crate::config::Config;
use crate::store::UserDetail;

/// The token in a preview's set-password link: it says that no token was made.
pub const PREVIEW_TOKEN: &str = "PREVIEW-no-token-was-made";

/// Where a preview's link points when the caller gives no base: a reserved
/// domain that resolves nowhere.
const PREVIEW_LINK_BASE: &str = "https://liaison.invalid/password";

/// The variables of a preview for `user` (or a sample user when `None`) in
/// `locale` (or the user's, else `default_locale`): the link is
/// `link_base?token=PREVIEW-no-token-was-made`, the expiry `now` plus
/// `mail.welcome.token_ttl`, in the mail time zone.
pub fn preview_vars(
    config: &Config,
    user: Option<&UserDetail>,
    locale: Option<&str>,
    link_base: Option<&str>,
    now: DateTime<Utc>,
) -> MailVars {
    let zone = config
        .mail
        .as_ref()
        .and_then(|m| m.timezone.parse::<chrono_tz::Tz>().ok())
        .unwrap_or(chrono_tz::UTC);
    let mut vars = match user {
        Some(detail) => stored_user(detail),
        None => sample_vars(&config.default_locale),
    };
    if let Some(locale) = locale {
        vars.locale = locale.to_owned();
    }
    vars.portal_url = config.portal.as_ref().map(|p| p.url.to_string());
    vars.set_password_url = Some(preview_link(link_base));
    let ttl = config
        .mail
        .as_ref()
        .map_or(crate::config::DEFAULT_TOKEN_TTL, |m| m.welcome.token_ttl);
    let ttl = Duration::from_std(ttl).unwrap_or(Duration::MAX);
    vars.expires = Some(
        now.checked_add_signed(ttl)
            .unwrap_or(now)
            .with_timezone(&zone),
    );
    vars
}

/// `BASE?token=PREVIEW-…` (`&token=` when the base has a query already).
fn preview_link(base: Option<&str>) -> String {
    let base = base.unwrap_or(PREVIEW_LINK_BASE);
    let joiner = if base.contains('?') { '&' } else { '?' };
    format!("{base}{joiner}token={PREVIEW_TOKEN}")
}

/// A stored user's facts; accounts by name where a linked contact gives one.
fn stored_user(detail: &UserDetail) -> MailVars {
    let user = &detail.user;
    let accounts = user
        .accounts
        .iter()
        .map(|id| {
            detail
                .linked_contacts
                .iter()
                .find(|c| c.account.as_deref() == Some(id.as_str()))
                .and_then(|c| c.account_name.clone())
                .unwrap_or_else(|| id.clone())
        })
        .collect();
    MailVars {
        login: user.login.clone(),
        title: user.title.clone(),
        email: user.email.clone().unwrap_or_default(),
        locale: user.locale.clone(),
        portal_url: None,
        accounts,
        set_password_url: None,
        expires: None,
    }
}

/// A made-up user in `locale`, with every variable set: previews without
/// `--login`, and the trial render of every template at load.
pub(crate) fn sample_vars(locale: &str) -> MailVars {
    MailVars {
        login: "jan.novak".into(),
        title: "Jan Novák".into(),
        email: "jan.novak@example.com".into(),
        locale: locale.to_owned(),
        portal_url: Some("https://portal.example.com/login".into()),
        accounts: vec!["Example s.r.o.".into()],
        set_password_url: Some(preview_link(None)),
        expires: chrono_tz::UTC
            .with_ymd_and_hms(2026, 1, 8, 9, 0, 0)
            .single(),
    }
}
