//! Our template filters, beyond minijinja's built-ins: `slug` and
//! `regex_replace`. (`split`, `lower`, `trim`, `default` are built in.)

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use minijinja::{Environment, Error, ErrorKind};
use regex::Regex;

/// How many compiled patterns are kept; templates use a handful, so this only
/// bounds memory if patterns were built from record data.
const REGEX_CACHE_SIZE: usize = 256;

/// Registers our filters.
pub(crate) fn register(env: &mut Environment<'_>) {
    env.add_filter("slug", slug);
    env.add_filter("regex_replace", regex_replace);
}

/// `{{ company | slug }}`: transliterated to ASCII, lower case, every run of
/// other characters turned into one `-`, none at either end
/// (`Dvořák & Syn` → `dvorak-syn`).
pub(crate) fn slug(value: Cow<'_, str>) -> String {
    let ascii = deunicode::deunicode(&value);
    let mut out = String::with_capacity(ascii.len());
    let mut gap = false;
    for c in ascii.chars() {
        if c.is_ascii_alphanumeric() {
            if gap && !out.is_empty() {
                out.push('-');
            }
            gap = false;
            out.push(c.to_ascii_lowercase());
        } else {
            gap = true;
        }
    }
    out
}

/// `{{ phone | regex_replace("[^0-9+]", "") }}`: every match of the pattern
/// (Rust `regex` syntax) replaced; the replacement may refer to groups as `$1`
/// or `${name}`. Patterns are compiled once and cached; an invalid pattern is
/// an error.
pub(crate) fn regex_replace(
    value: Cow<'_, str>,
    pattern: Cow<'_, str>,
    replacement: Cow<'_, str>,
) -> Result<String, Error> {
    let regex = compiled(&pattern)?;
    Ok(regex.replace_all(&value, replacement.as_ref()).into_owned())
}

/// `pattern` compiled (from the cache when it was seen before), or the
/// error a template gets for it.
pub(crate) fn compiled(pattern: &str) -> Result<Arc<Regex>, Error> {
    static CACHE: OnceLock<Mutex<HashMap<String, Arc<Regex>>>> = OnceLock::new();
    let cache = CACHE.get_or_init(Mutex::default);
    if let Some(regex) = cache
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .get(pattern)
    {
        return Ok(Arc::clone(regex));
    }
    let regex = Arc::new(Regex::new(pattern).map_err(|e| {
        // regex draws the pattern with a caret over several lines; a row error is
        // one line, so keep the last line, which says what is wrong.
        let text = e.to_string();
        let reason = text.lines().last().unwrap_or_default();
        let reason = reason.strip_prefix("error: ").unwrap_or(reason);
        Error::new(
            ErrorKind::InvalidOperation,
            format!("regex_replace: invalid pattern {pattern:?}: {reason}"),
        )
    })?);
    let mut cache = cache.lock().unwrap_or_else(PoisonError::into_inner);
    if cache.len() >= REGEX_CACHE_SIZE {
        cache.clear();
    }
    cache.insert(pattern.to_owned(), Arc::clone(&regex));
    Ok(regex)
}
