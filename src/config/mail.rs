//! `mail:`: transport URL, sender mailbox, dispatcher schedule, send window.

use crate::model::Email;

use super::load::scheme_for_message;
use super::model::{
    MailConfig, MailTransport, SendWindow, SmtpTls, WelcomeConfig, DEFAULT_MAIL_TIMEOUT,
    DEFAULT_TOKEN_TTL,
};
use super::secret::Secret;
use super::walk::{self, Ctx, Section};
use super::yaml::{quote, Node, Value};
use super::Schedule;

const MAIL_KEYS: &[&str] = &[
    "transport",
    "from",
    "schedule",
    "window",
    "timezone",
    "templates",
    "rate_per_minute",
    "confirm_sync_created",
    "max_welcome_per_run",
    "max_attempts",
    "ca_file",
    "timeout",
    "welcome",
];
const WELCOME_KEYS: &[&str] = &["token_ttl", "set_password_url"];
const WINDOW_KEYS: &[&str] = &["days", "from", "to"];

/// `mail.max_attempts` when not given: sends tried before a message is `failed`.
pub const DEFAULT_MAX_ATTEMPTS: u32 = 10;

/// The dispatcher's schedule when `mail.schedule` is not given: every minute.
pub const DEFAULT_MAIL_SCHEDULE: &str = "* * * * *";

/// `default_timezone`: the zone when `mail.timezone` is absent (the top-level
/// `schedule_timezone`, itself UTC by default).
pub(super) fn mail(
    ctx: &mut Ctx<'_>,
    section: &Section<'_>,
    default_timezone: chrono_tz::Tz,
) -> Option<MailConfig> {
    section.deny_unknown(ctx, MAIL_KEYS, "");
    let transport = section
        .require(ctx, "transport")
        .and_then(|n| transport(ctx, "mail.transport", n));
    let from = section.require(ctx, "from").and_then(|n| {
        let text = walk::non_empty_string(ctx, "mail.from", n)?;
        match check_mailbox(&text) {
            Ok(()) => Some(text),
            Err(why) => {
                ctx.error(
                    n.span,
                    "mail.from",
                    format!("invalid mailbox {}: {why}", quote(&text)),
                );
                None
            }
        }
    });
    let schedule = match section.get("schedule") {
        Some(n) => walk::string(ctx, "mail.schedule", n).and_then(|text| {
            Schedule::parse(&text)
                .map_err(|e| {
                    let message = format!("invalid cron expression {}: {e}", quote(&text));
                    ctx.error(n.span, "mail.schedule", message);
                })
                .ok()
        }),
        None => Schedule::parse(DEFAULT_MAIL_SCHEDULE).ok(),
    };
    let window = section.section(ctx, "window").and_then(|s| window(ctx, &s));
    let timezone = match section.get("timezone") {
        Some(n) => walk::timezone(ctx, "mail.timezone", n).map(|tz| tz.name().to_owned()),
        None => Some(default_timezone.name().to_owned()),
    };
    let templates = section.get("templates").and_then(|n| {
        let folder = walk::path(ctx, "mail.templates", n)?;
        // Each template error names its own file (and line and column).
        if let Err(errors) = crate::mail::Templates::check_folder(&folder) {
            for e in errors.iter() {
                ctx.error(n.span, "mail.templates", e);
            }
        }
        Some(folder)
    });
    let rate_per_minute = section.get("rate_per_minute").and_then(|n| {
        let rate = walk::unsigned(ctx, "mail.rate_per_minute", n)?;
        if rate == 0 {
            let message = "must be at least 1 (leave it out for no limit)";
            ctx.error(n.span, "mail.rate_per_minute", message);
            return None;
        }
        Some(rate)
    });
    let confirm_sync_created = section
        .get("confirm_sync_created")
        .and_then(|n| walk::boolean(ctx, "mail.confirm_sync_created", n))
        .unwrap_or(false);
    let max_welcome_per_run = section
        .get("max_welcome_per_run")
        .and_then(|n| walk::unsigned(ctx, "mail.max_welcome_per_run", n))
        .map_or(crate::store::DEFAULT_MAX_WELCOME_PER_RUN, |n| n as usize);
    let max_attempts = match section.get("max_attempts") {
        Some(n) => walk::unsigned(ctx, "mail.max_attempts", n).and_then(|m| {
            if m == 0 {
                ctx.error(n.span, "mail.max_attempts", "must be at least 1");
                return None;
            }
            Some(m)
        }),
        None => Some(DEFAULT_MAX_ATTEMPTS),
    };
    let ca_file = section.get("ca_file").and_then(|n| {
        let path = walk::path(ctx, "mail.ca_file", n)?;
        if let Err(why) = check_ca_file(&path) {
            ctx.error(n.span, "mail.ca_file", why);
        }
        Some(path)
    });
    let timeout = section
        .get("timeout")
        .map_or(Some(DEFAULT_MAIL_TIMEOUT), |n| {
            walk::positive_duration(ctx, "mail.timeout", n)
        });
    let welcome = section
        .section(ctx, "welcome")
        .map_or_else(|| Some(WelcomeConfig::default()), |s| welcome(ctx, &s));
    Some(MailConfig {
        transport: transport?,
        from: from?,
        schedule: schedule?,
        window,
        timezone: timezone?,
        templates,
        rate_per_minute,
        confirm_sync_created,
        max_welcome_per_run,
        max_attempts: max_attempts?,
        ca_file,
        timeout: timeout?,
        welcome: welcome?,
    })
}

impl Default for WelcomeConfig {
    fn default() -> Self {
        WelcomeConfig {
            token_ttl: DEFAULT_TOKEN_TTL,
            set_password_url: None,
        }
    }
}

fn welcome(ctx: &mut Ctx<'_>, section: &Section<'_>) -> Option<WelcomeConfig> {
    section.deny_unknown(ctx, WELCOME_KEYS, "");
    let token_ttl = section
        .get("token_ttl")
        .map_or(Some(DEFAULT_TOKEN_TTL), |n| {
            walk::positive_duration(ctx, "mail.welcome.token_ttl", n)
        });
    let set_password_url = section.get("set_password_url").and_then(|n| {
        let url = walk::http_url(ctx, "mail.welcome.set_password_url", n)?;
        if url.query_pairs().any(|(k, _)| k == "token") {
            let message = "the link gets its token query parameter from Liaison; leave it out";
            ctx.error(n.span, "mail.welcome.set_password_url", message);
            return None;
        }
        Some(url)
    });
    Some(WelcomeConfig {
        token_ttl: token_ttl?,
        set_password_url,
    })
}

/// The set-password page under `public` (`api.public_url`): its path with
/// `/password` appended, so `https://x.example/liaison/` gives
/// `https://x.example/liaison/password`.
pub(super) fn password_page(public: &url::Url) -> url::Url {
    let mut url = public.clone();
    let path = format!("{}/password", public.path().trim_end_matches('/'));
    url.set_path(&path);
    url.set_query(None);
    url.set_fragment(None);
    url
}

/// Largest `mail.ca_file` read: a bundle of a few hundred certificates.
const MAX_CA_FILE: u64 = 4 * 1024 * 1024;

/// A readable PEM file of certificates that all parse.
fn check_ca_file(path: &std::path::Path) -> Result<(), String> {
    let shown = path.display();
    let meta = std::fs::metadata(path).map_err(|e| format!("cannot read {shown}: {e}"))?;
    if meta.len() > MAX_CA_FILE {
        return Err(format!("{shown} is larger than {MAX_CA_FILE} bytes"));
    }
    let pem = std::fs::read(path).map_err(|e| format!("cannot read {shown}: {e}"))?;
    let text = String::from_utf8_lossy(&pem);
    if !text.contains("-----BEGIN CERTIFICATE-----") {
        return Err(format!(
            "{shown} holds no PEM certificate (-----BEGIN CERTIFICATE-----)"
        ));
    }
    // The marker alone is not a certificate: parse each one as the transport
    // will, or every send would fail on a file `validate` passed.
    crate::mail::check_ca_pem(&pem)
        .map_err(|why| format!("{shown} holds no usable certificate: {why}"))
}

/// `file://PATH`, `smtp://`, `smtps://` or `smtp+starttls://[USER[:PASSWORD]@]HOST[:PORT]`.
/// The text may hold a password: messages describe the problem, never the text.
fn transport(ctx: &mut Ctx<'_>, path: &str, node: &Node) -> Option<MailTransport> {
    let url = walk::secret(ctx, path, node)?;
    let text = url.expose();
    let Some((scheme, rest)) = text.split_once("://") else {
        let message = "expected file://FOLDER, smtp://HOST, smtps://HOST or smtp+starttls://HOST";
        ctx.error(node.span, path, message);
        return None;
    };
    let tls = match scheme.to_ascii_lowercase().as_str() {
        "file" if rest.is_empty() => {
            let message = "file:// needs a folder, e.g. file:///var/lib/liaison/mail";
            ctx.error(node.span, path, message);
            return None;
        }
        "file" => return Some(MailTransport::File(ctx.resolve_path(rest))),
        "smtp" => SmtpTls::None,
        "smtps" => SmtpTls::Implicit,
        "smtp+starttls" => SmtpTls::StartTls,
        other => {
            let message = format!(
                "unsupported scheme {} (expected file://, smtp://, smtps:// or smtp+starttls://)",
                scheme_for_message(other)
            );
            ctx.error(node.span, path, message);
            return None;
        }
    };
    match smtp(text, tls) {
        Ok(transport) => Some(transport),
        Err(why) => {
            ctx.error(node.span, path, why);
            None
        }
    }
}

fn smtp(text: &str, tls: SmtpTls) -> Result<MailTransport, String> {
    let url = url::Url::parse(text).map_err(|e| format!("invalid SMTP URL: {e}"))?;
    let host = match url.host() {
        Some(url::Host::Domain(d)) if !d.is_empty() => d.to_owned(),
        Some(url::Host::Ipv4(ip)) => ip.to_string(),
        Some(url::Host::Ipv6(ip)) => ip.to_string(),
        _ => return Err("the SMTP URL needs a host".to_owned()),
    };
    if !matches!(url.path(), "" | "/") || url.query().is_some() || url.fragment().is_some() {
        return Err("an SMTP URL has no path, query or fragment after HOST[:PORT]".to_owned());
    }
    let port = url.port().unwrap_or(match tls {
        SmtpTls::None => 25,
        SmtpTls::Implicit => 465,
        SmtpTls::StartTls => 587,
    });
    let user = match url.username() {
        "" => None,
        u => Some(percent_decode(u).ok_or("the user name is not valid percent-encoded UTF-8")?),
    };
    let password = match url.password() {
        None => None,
        Some(p) => Some(Secret::new(
            percent_decode(p).ok_or("the password is not valid percent-encoded UTF-8")?,
        )),
    };
    if password.is_some() && user.is_none() {
        return Err("a password without a user name".to_owned());
    }
    Ok(MailTransport::Smtp {
        tls,
        host,
        port,
        user,
        password,
    })
}

/// Decodes `%XX` escapes; `None` if an escape is malformed or the result is not UTF-8.
fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// `Name <address>`, `"Name, Inc." <address>` or a bare address.
fn check_mailbox(text: &str) -> Result<(), String> {
    let text = text.trim();
    if text.chars().any(char::is_control) {
        return Err("control characters are not allowed".to_owned());
    }
    let address = match text.rfind('<') {
        Some(open) => {
            let Some(inner) = text[open + 1..].strip_suffix('>') else {
                return Err("expected \"Name <address>\" or a bare address".to_owned());
            };
            let name = text[..open].trim();
            let unquoted = name
                .strip_prefix('"')
                .and_then(|n| n.strip_suffix('"'))
                .unwrap_or(name);
            if unquoted.contains(['<', '>', '"']) {
                return Err("the display name holds <, > or \"".to_owned());
            }
            inner
        }
        None => text,
    };
    Email::parse(address).map(|_| ()).map_err(|e| e.to_string())
}

fn window(ctx: &mut Ctx<'_>, section: &Section<'_>) -> Option<SendWindow> {
    section.deny_unknown(ctx, WINDOW_KEYS, "");
    let days = match section.get("days") {
        Some(n) => days(ctx, "mail.window.days", n),
        None => Some((1..=7).collect()),
    };
    let from_hour = match section.get("from") {
        Some(n) => hour(ctx, "mail.window.from", n, 0..=23),
        None => Some(0),
    };
    let to_hour = match section.get("to") {
        Some(n) => hour(ctx, "mail.window.to", n, 1..=24),
        None => Some(24),
    };
    if let (Some(from), Some(to)) = (from_hour, to_hour) {
        if from >= to {
            let span = section
                .get("to")
                .map(|n| n.span)
                .or_else(|| section.key_span("from"))
                .unwrap_or(section.span);
            let message = format!(
                "the window ends at {to}:00, not after it starts at {from}:00 (windows across midnight are not supported)"
            );
            ctx.error(span, "mail.window.to", message);
            return None;
        }
    }
    Some(SendWindow {
        days: days?,
        from_hour: from_hour?,
        to_hour: to_hour?,
    })
}

/// A whole hour: `8`, `"08"`, `"08:00"`, `"24:00"`.
fn hour(
    ctx: &mut Ctx<'_>,
    path: &str,
    node: &Node,
    range: std::ops::RangeInclusive<u8>,
) -> Option<u8> {
    let parsed = match &node.value {
        Value::Int(i) => u8::try_from(*i).ok(),
        Value::Str(s) => {
            let (h, m) = s.split_once(':').unwrap_or((s, "00"));
            let digits =
                |t: &str| (1..=2).contains(&t.len()) && t.chars().all(|c| c.is_ascii_digit());
            if digits(h) && m == "00" {
                h.parse().ok()
            } else {
                None
            }
        }
        _ => None,
    };
    match parsed {
        Some(h) if range.contains(&h) => Some(h),
        _ => {
            let message = format!(
                "expected a whole hour from {} to {} such as 8 or \"08:00\", found {}",
                range.start(),
                range.end(),
                node.describe()
            );
            ctx.error(node.span, path, message);
            None
        }
    }
}

/// A list of days (`mon`, `monday`, `1` … `7` with 1 = Monday, ranges such as
/// `mon-fri`), or one such item as a string. Sorted, without repeats.
fn days(ctx: &mut Ctx<'_>, path: &str, node: &Node) -> Option<Vec<u8>> {
    let items: Vec<(String, &Node)> = match &node.value {
        Value::Seq(items) => items
            .iter()
            .enumerate()
            .map(|(i, n)| (format!("{path}[{i}]"), n))
            .collect(),
        _ => vec![(path.to_owned(), node)],
    };
    if items.is_empty() {
        ctx.error(node.span, path, "the list is empty");
        return None;
    }
    let mut days = Vec::new();
    let mut ok = true;
    for (item_path, item) in items {
        let parsed = match &item.value {
            Value::Int(i) => u8::try_from(*i)
                .ok()
                .filter(|d| (1..=7).contains(d))
                .map(|d| vec![d]),
            Value::Str(s) => day_items(s),
            _ => None,
        };
        match parsed {
            Some(mut more) => days.append(&mut more),
            None => {
                let message = format!(
                    "expected days such as mon, mon-fri or 1-5 (1 = Monday, 7 = Sunday), found {}",
                    item.describe()
                );
                ctx.error(item.span, &item_path, message);
                ok = false;
            }
        }
    }
    days.sort_unstable();
    days.dedup();
    ok.then_some(days)
}

/// `mon`, `mon-fri`, `fri-mon` (wraps), `1-5`, or a comma-separated list of those.
fn day_items(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    for part in text.split(',') {
        let part = part.trim();
        match part.split_once('-') {
            Some((a, b)) => {
                let (first, last) = (day(a.trim())?, day(b.trim())?);
                let mut d = first;
                loop {
                    out.push(d);
                    if d == last {
                        break;
                    }
                    d = d % 7 + 1;
                }
            }
            None => out.push(day(part)?),
        }
    }
    Some(out)
}

fn day(text: &str) -> Option<u8> {
    const NAMES: [&str; 7] = [
        "monday",
        "tuesday",
        "wednesday",
        "thursday",
        "friday",
        "saturday",
        "sunday",
    ];
    let lower = text.to_ascii_lowercase();
    if let Ok(n) = lower.parse::<u8>() {
        return (1..=7).contains(&n).then_some(n);
    }
    let position = NAMES
        .iter()
        .position(|name| lower.len() >= 3 && name.starts_with(&lower))?;
    u8::try_from(position + 1).ok()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn mailboxes() {
        assert!(check_mailbox("Support <support@example.com>").is_ok());
        assert!(check_mailbox("\"Support, Team\" <support@example.com>").is_ok());
        assert!(check_mailbox("support@example.com").is_ok());
        assert!(check_mailbox("Support support@example.com").is_err());
        assert!(check_mailbox("Support <support@example.com").is_err());
        assert!(check_mailbox("Support <nobody>").is_err());
        assert!(check_mailbox("Sup<port> <a@example.com>").is_err());
        assert!(check_mailbox("X\n<a@example.com>").is_err());
    }

    #[test]
    fn days_and_ranges() {
        assert_eq!(day_items("mon-fri").unwrap(), vec![1, 2, 3, 4, 5]);
        assert_eq!(day_items("fri-mon").unwrap(), vec![5, 6, 7, 1]);
        assert_eq!(day_items("1-3, sun").unwrap(), vec![1, 2, 3, 7]);
        assert_eq!(day_items("Tuesday").unwrap(), vec![2]);
        assert!(day_items("mo").is_none());
        assert!(day_items("0").is_none());
        assert!(day_items("8").is_none());
        assert!(day_items("mon-").is_none());
    }

    #[test]
    fn smtp_urls() {
        let t = smtp(
            "smtp+starttls://me%40x:p%40ss@mail.example.com",
            SmtpTls::StartTls,
        )
        .unwrap();
        let MailTransport::Smtp {
            host,
            port,
            user,
            password,
            ..
        } = t
        else {
            panic!("not smtp")
        };
        assert_eq!((host.as_str(), port), ("mail.example.com", 587));
        assert_eq!(user.as_deref(), Some("me@x"));
        assert_eq!(password.unwrap().expose(), "p@ss");
        let MailTransport::Smtp { port, .. } = smtp("smtps://h", SmtpTls::Implicit).unwrap() else {
            panic!("not smtp")
        };
        assert_eq!(port, 465);
        let MailTransport::Smtp { host, port, .. } =
            smtp("smtp://[::1]:2525", SmtpTls::None).unwrap()
        else {
            panic!("not smtp")
        };
        assert_eq!((host.as_str(), port), ("::1", 2525));
        assert!(smtp("smtp://", SmtpTls::None).is_err());
        assert!(smtp("smtp://h/path", SmtpTls::None).is_err());
        assert!(smtp("smtp://:pw@h", SmtpTls::None).is_err());
    }
}
