//! Walking the located YAML tree: an error collector, mapping sections that
//! refuse unknown keys, and readers for typed scalars. Every reader reports its
//! own problem (key path, position, the bad value) and returns `None`, so the
//! walk goes on and finds every error in one pass.

use std::fmt::Display;
use std::path::{Path, PathBuf};

use super::ratio::{Ratio, RatioError};
use super::secret::{self, Secret};
use super::yaml::{quote, Node, Value};
use super::{ConfigError, Span};
use crate::suggest::edit_distance;

/// Looks up an environment variable (the real environment, or a fake in tests).
pub(super) type EnvLookup<'a> = &'a dyn Fn(&str) -> Option<String>;

/// State of one load: where relative paths start, how `${env:…}` resolves, and
/// the errors found so far.
pub(super) struct Ctx<'a> {
    file: PathBuf,
    base_dir: PathBuf,
    env: EnvLookup<'a>,
    errors: Vec<ConfigError>,
}

impl<'a> Ctx<'a> {
    /// `file` names the config in messages; relative paths resolve against `base_dir`.
    pub fn new(file: &Path, base_dir: PathBuf, env: EnvLookup<'a>) -> Self {
        Ctx {
            file: file.to_path_buf(),
            base_dir,
            env,
            errors: Vec::new(),
        }
    }

    /// Records `PATH: message` at `span` (just `message` when `path` is empty).
    pub fn error(&mut self, span: Span, path: &str, message: impl Display) {
        let message = if path.is_empty() {
            message.to_string()
        } else {
            format!("{path}: {message}")
        };
        self.errors.push(ConfigError {
            file: self.file.clone(),
            span,
            message,
        });
    }

    /// Whether any error was recorded.
    pub fn has_errors(&self) -> bool {
        !self.errors.is_empty()
    }

    /// The errors found, in discovery order.
    pub fn into_errors(self) -> Vec<ConfigError> {
        self.errors
    }

    /// `text` as a path: absolute stays, relative is joined to the config folder;
    /// `.` components are dropped.
    pub fn resolve_path(&self, text: &str) -> PathBuf {
        self.base_dir.join(text).components().collect()
    }

    /// Resolves `${env:…}`/`${file:…}` in `text`.
    pub(super) fn resolve_references(&self, text: &str) -> Result<String, secret::ReferenceError> {
        secret::resolve_references(text, &self.base_dir, self.env)
    }
}

/// `parent.key`, or `key` at the top level.
pub(super) fn join(parent: &str, key: &str) -> String {
    if parent.is_empty() {
        key.to_owned()
    } else {
        format!("{parent}.{key}")
    }
}

/// A YAML mapping being read as a config section.
pub(super) struct Section<'n> {
    /// Key path of the section (`safety`, `sources[1]`; empty at the top).
    pub path: String,
    /// Where the mapping starts.
    pub span: Span,
    /// Where a missing key is reported: the section's own key, else `span`.
    anchor: Span,
    entries: Vec<(&'n str, Span, &'n Node)>,
}

impl<'n> Section<'n> {
    /// Reads `node` as a mapping with string keys; reports anything else.
    pub fn new(ctx: &mut Ctx<'_>, path: &str, node: &'n Node) -> Option<Self> {
        let Value::Map(map) = &node.value else {
            let what = if path.is_empty() { "the file" } else { path };
            let message = format!("expected a mapping of keys, found {}", node.describe());
            ctx.error(node.span, "", format!("{what}: {message}"));
            return None;
        };
        let mut entries = Vec::with_capacity(map.len());
        for (key, value) in map {
            match key.as_str() {
                Some(k) => entries.push((k, key.span, value)),
                None => ctx.error(
                    key.span,
                    path,
                    format!("keys must be strings, found {}", key.describe()),
                ),
            }
        }
        Some(Section {
            path: path.to_owned(),
            span: node.span,
            anchor: node.span,
            entries,
        })
    }

    /// The sub-section under `key`, unless absent or null; a missing key in it
    /// is reported at `key`.
    pub fn section(&self, ctx: &mut Ctx<'_>, key: &str) -> Option<Section<'n>> {
        let node = self.get(key)?;
        let mut section = Section::new(ctx, &self.child(key), node)?;
        section.anchor = self.key_span(key).unwrap_or(node.span);
        Some(section)
    }

    /// Reports every key not in `allowed`, suggesting the nearest known key.
    /// `what` qualifies the message (e.g. "for a csv source").
    pub fn deny_unknown(&self, ctx: &mut Ctx<'_>, allowed: &[&str], what: &str) {
        for (key, span, _) in &self.entries {
            if allowed.contains(key) {
                continue;
            }
            let mut message = String::from("unknown key");
            if !what.is_empty() {
                message.push(' ');
                message.push_str(what);
            }
            match nearest(key, allowed) {
                Some(near) => message.push_str(&format!("; did you mean {near:?}?")),
                None => message.push_str(&format!(" (known keys: {})", allowed.join(", "))),
            }
            ctx.error(*span, &join(&self.path, key), message);
        }
    }

    /// The value of `key`, unless absent or null.
    pub fn get(&self, key: &str) -> Option<&'n Node> {
        self.entries
            .iter()
            .find(|(k, _, _)| *k == key)
            .map(|(_, _, v)| *v)
            .filter(|v| !v.is_null())
    }

    /// Where `key` is written, if it is.
    pub fn key_span(&self, key: &str) -> Option<Span> {
        self.entries
            .iter()
            .find(|(k, _, _)| *k == key)
            .map(|(_, s, _)| *s)
    }

    /// The value of `key`; reports it when absent or null.
    pub fn require(&self, ctx: &mut Ctx<'_>, key: &str) -> Option<&'n Node> {
        let node = self.get(key);
        if node.is_none() {
            match self.key_span(key) {
                Some(span) => ctx.error(span, &self.child(key), "a value is required"),
                None => {
                    let message = format!("missing required key {key:?}");
                    ctx.error(self.anchor, &self.path, message);
                }
            }
        }
        node
    }

    /// The key path of a child key.
    pub fn child(&self, key: &str) -> String {
        join(&self.path, key)
    }

    /// The entries, in file order: key, key position, value.
    pub fn entries(&self) -> &[(&'n str, Span, &'n Node)] {
        &self.entries
    }
}

/// The allowed key closest to `key` by edit distance, if close enough to be a typo.
fn nearest<'k>(key: &str, allowed: &[&'k str]) -> Option<&'k str> {
    allowed
        .iter()
        .map(|a| (edit_distance(key, a), *a))
        .filter(|(d, a)| *d <= 2.max(a.len() / 4))
        .min_by_key(|(d, _)| *d)
        .map(|(_, a)| a)
}

/// A string scalar. Secret references are refused here: they resolve only in
/// the keys read with [`secret`].
pub(super) fn string(ctx: &mut Ctx<'_>, path: &str, node: &Node) -> Option<String> {
    let Some(s) = node.as_str() else {
        ctx.error(
            node.span,
            path,
            format!("expected a string, found {}", node.describe()),
        );
        return None;
    };
    if secret::has_reference(s) {
        ctx.error(
            node.span,
            path,
            "${env:…} and ${file:…} are resolved only in store, mail.transport, api.token, \
             an exec source's env, an ldap source's bind_password and a crm source's token and secrets",
        );
        return None;
    }
    Some(s.to_owned())
}

/// A non-empty string scalar.
pub(super) fn non_empty_string(ctx: &mut Ctx<'_>, path: &str, node: &Node) -> Option<String> {
    let s = string(ctx, path, node)?;
    if s.trim().is_empty() {
        ctx.error(node.span, path, "must not be empty");
        return None;
    }
    Some(s)
}

/// Any scalar as text (`true`, `8` and `"x"` alike), for templates and expressions.
pub(super) fn scalar_text(ctx: &mut Ctx<'_>, path: &str, node: &Node) -> Option<String> {
    match &node.value {
        Value::Str(s) => Some(s.clone()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Int(i) => Some(i.to_string()),
        Value::Float(x) => Some(x.to_string()),
        _ => {
            let found = node.describe();
            ctx.error(node.span, path, format!("expected a string, found {found}"));
            None
        }
    }
}

/// A string with `${env:…}`/`${file:…}` resolved, as a [`Secret`]. Errors name
/// the variable or file, never the value.
pub(super) fn secret(ctx: &mut Ctx<'_>, path: &str, node: &Node) -> Option<Secret> {
    let Some(raw) = node.as_str() else {
        // Describing a non-string scalar cannot leak a reference's value.
        ctx.error(
            node.span,
            path,
            format!("expected a string, found {}", node.describe()),
        );
        return None;
    };
    match ctx.resolve_references(raw) {
        Ok(value) if value.is_empty() => {
            ctx.error(node.span, path, "must not be empty");
            None
        }
        Ok(value) => Some(Secret::new(value)),
        Err(e) => {
            ctx.error(node.span, path, e.0);
            None
        }
    }
}

/// `true` or `false` (not `yes`, `on` or `1`).
pub(super) fn boolean(ctx: &mut Ctx<'_>, path: &str, node: &Node) -> Option<bool> {
    match node.value {
        Value::Bool(b) => Some(b),
        _ => {
            let found = node.describe();
            ctx.error(
                node.span,
                path,
                format!("expected true or false, found {found}"),
            );
            None
        }
    }
}

/// A whole number in `0..=u32::MAX`.
pub(super) fn unsigned(ctx: &mut Ctx<'_>, path: &str, node: &Node) -> Option<u32> {
    let parsed = match node.value {
        Value::Int(i) => u32::try_from(i).ok(),
        Value::Float(x) if x.fract() == 0.0 && (0.0..=f64::from(u32::MAX)).contains(&x) => {
            Some(x as u32)
        }
        _ => None,
    };
    if parsed.is_none() {
        let found = node.describe();
        let message = match node.value {
            Value::Int(i) if i >= 0 => {
                format!("expected an integer up to {}, found {found}", u32::MAX)
            }
            _ => format!("expected a non-negative integer, found {found}"),
        };
        ctx.error(node.span, path, message);
    }
    parsed
}

/// A number between 0 and 1 inclusive, kept exactly as written (see
/// [`Ratio`]). The YAML parser hands over floats: the shortest decimal that
/// reads back as the same float is the text the file held (for up to 15
/// significant digits, far more than a ratio's 9 places).
pub(super) fn ratio(ctx: &mut Ctx<'_>, path: &str, node: &Node) -> Option<Ratio> {
    let parsed = match node.value {
        Value::Int(i) => Ratio::parse(&i.to_string()),
        // Also -0.0, whose text would carry a sign.
        Value::Float(0.0) => Ok(Ratio::percent(0)),
        Value::Float(x) => Ratio::parse(&x.to_string()),
        _ => Err(RatioError::NotAShare),
    };
    match parsed {
        Ok(ratio) => Some(ratio),
        Err(e) => {
            let found = node.describe();
            ctx.error(node.span, path, format!("{e}, found {found}"));
            None
        }
    }
}

/// A list; reports any other value.
pub(super) fn list<'n>(ctx: &mut Ctx<'_>, path: &str, node: &'n Node) -> Option<&'n [Node]> {
    match &node.value {
        Value::Seq(items) => Some(items),
        _ => {
            let found = node.describe();
            ctx.error(node.span, path, format!("expected a list, found {found}"));
            None
        }
    }
}

/// An IANA time-zone name such as `UTC` or `Europe/Prague`, known to the
/// time-zone database built in (chrono-tz, see
/// `docs/decisions/0010-time-zones.md`). An unknown name is refused with the
/// nearest known one suggested (same but for case, else a few edits away):
/// zone names are case-sensitive on most systems.
pub(super) fn timezone(ctx: &mut Ctx<'_>, path: &str, node: &Node) -> Option<chrono_tz::Tz> {
    let text = string(ctx, path, node)?;
    if let Ok(tz) = text.parse::<chrono_tz::Tz>() {
        return Some(tz);
    }
    let hint = match nearest_zone(&text) {
        Some(name) => format!("did you mean {}?", quote(name)),
        None => "expected an IANA name such as UTC or Europe/Prague".to_owned(),
    };
    ctx.error(
        node.span,
        path,
        format!("unknown time zone {}; {hint}", quote(&text)),
    );
    None
}

/// The known zone `text` most likely meant: one equal but for case, else the
/// closest by edit distance if at most 2 edits (3 for names over 12 characters).
fn nearest_zone(text: &str) -> Option<&'static str> {
    let names = || chrono_tz::TZ_VARIANTS.iter().map(|tz| tz.name());
    if let Some(same_but_case) = names().find(|name| name.eq_ignore_ascii_case(text)) {
        return Some(same_but_case);
    }
    let limit = if text.len() > 12 { 3 } else { 2 };
    names()
        .map(|name| (edit_distance(text, name), name))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, name)| name)
}

/// A duration longer than zero in the config syntax (`500ms`, `30s`, `15m`,
/// `2h`, `1d`; not `never`). A bare number is read as text so the message
/// says the unit is missing.
pub(super) fn positive_duration(
    ctx: &mut Ctx<'_>,
    path: &str,
    node: &Node,
) -> Option<std::time::Duration> {
    let text = match &node.value {
        Value::Str(s) => s.clone(),
        Value::Int(i) => i.to_string(),
        _ => string(ctx, path, node)?,
    };
    match super::duration::parse_duration(&text) {
        Ok(Some(d)) if !d.is_zero() => Some(d),
        Ok(Some(_)) => {
            ctx.error(node.span, path, "must be longer than zero");
            None
        }
        Ok(None) => {
            ctx.error(
                node.span,
                path,
                "expected a duration such as 500ms, 30s or 15m (never is not allowed here)",
            );
            None
        }
        Err(e) => {
            ctx.error(node.span, path, format!("{e}, found {}", quote(&text)));
            None
        }
    }
}

/// A duration longer than zero, or `never` (`Some(None)`); `None` after an
/// error. `never_hint` says what `never` means here, for the zero message.
pub(super) fn duration_or_never(
    ctx: &mut Ctx<'_>,
    path: &str,
    node: &Node,
    never_hint: &str,
) -> Option<Option<std::time::Duration>> {
    let text = match &node.value {
        Value::Str(s) => s.clone(),
        // `30` without a unit: let the duration parser say what is missing.
        Value::Int(i) => i.to_string(),
        _ => string(ctx, path, node)?,
    };
    match super::duration::parse_duration(&text) {
        Ok(Some(d)) if d.is_zero() => {
            ctx.error(
                node.span,
                path,
                format!("must be longer than zero (write never {never_hint})"),
            );
            None
        }
        Ok(d) => Some(d),
        Err(e) => {
            ctx.error(node.span, path, format!("{e}, found {}", quote(&text)));
            None
        }
    }
}

/// An absolute `http://` or `https://` URL with a host.
pub(super) fn http_url(ctx: &mut Ctx<'_>, path: &str, node: &Node) -> Option<url::Url> {
    let text = non_empty_string(ctx, path, node)?;
    match url::Url::parse(&text) {
        Ok(url) if matches!(url.scheme(), "http" | "https") && url.has_host() => Some(url),
        Ok(_) => {
            let message = format!(
                "expected an http:// or https:// URL, found {}",
                quote(&text)
            );
            ctx.error(node.span, path, message);
            None
        }
        Err(e) => {
            ctx.error(
                node.span,
                path,
                format!("invalid URL {}: {e}", quote(&text)),
            );
            None
        }
    }
}

/// A non-empty path; relative paths resolve against the config file's folder.
pub(super) fn path(ctx: &mut Ctx<'_>, key_path: &str, node: &Node) -> Option<PathBuf> {
    let text = non_empty_string(ctx, key_path, node)?;
    Some(ctx.resolve_path(&text))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn typos_get_a_suggestion() {
        let keys = [
            "max_deprovision",
            "max_deprovision_ratio",
            "max_bad_row_ratio",
        ];
        assert_eq!(nearest("max_deprovison", &keys), Some("max_deprovision"));
        assert_eq!(nearest("colour", &keys), None);
    }

    #[test]
    fn relative_paths_join_the_config_folder_and_drop_dots() {
        let env = |_: &str| None;
        let ctx = Ctx::new(Path::new("c.yaml"), PathBuf::from("/etc/liaison"), &env);
        assert_eq!(
            ctx.resolve_path("./data/x.csv"),
            Path::new("/etc/liaison/data/x.csv")
        );
        assert_eq!(ctx.resolve_path("/abs/x.csv"), Path::new("/abs/x.csv"));
    }
}
