//! Secrets: a string type that never prints itself, and the `${env:NAME}` /
//! `${file:PATH}` references that fill it at load time.

use std::fmt;
use std::path::Path;

/// A secret value (password, token, URL holding a password): `Debug` and
/// `Display` print `***`. Read it with [`Secret::expose`] where it is used.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a value.
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The secret itself. Never log or format the result.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// `url` with its password and any `password`-like query value replaced by `***`;
/// all of it is `***` when it does not parse as a URL.
pub fn redact_url(url: &str) -> String {
    let Ok(mut parsed) = url::Url::parse(url) else {
        return "***".to_owned();
    };
    if parsed.password().is_some() && parsed.set_password(Some("***")).is_err() {
        return "***".to_owned();
    }
    let sensitive = |key: &str| {
        let key = key.to_ascii_lowercase();
        key.contains("pass") || key.contains("secret") || key.contains("token")
    };
    if parsed.query_pairs().any(|(k, _)| sensitive(&k)) {
        let pairs: Vec<(String, String)> = parsed
            .query_pairs()
            .map(|(k, v)| {
                let v = if sensitive(&k) { "***".into() } else { v };
                (k.into_owned(), v.into_owned())
            })
            .collect();
        parsed.query_pairs_mut().clear().extend_pairs(pairs);
    }
    parsed.to_string()
}

/// Why a secret reference could not be resolved. Messages name the variable or
/// the file, never a value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct ReferenceError(pub String);

/// Replaces every `${env:NAME}` and `${file:PATH}` in `text`; `$${` stands for a
/// literal `${`. A file's trailing line break is dropped; a relative `PATH` is
/// relative to `base_dir`.
pub(super) fn resolve_references(
    text: &str,
    base_dir: &Path,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<String, ReferenceError> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let tail = &rest[at..];
        if let Some(after) = tail.strip_prefix("$${") {
            out.push_str("${");
            rest = after;
        } else if let Some(after) = tail.strip_prefix("${") {
            let Some(end) = after.find('}') else {
                return Err(ReferenceError(
                    "unterminated secret reference: \"${\" without \"}\"".to_owned(),
                ));
            };
            out.push_str(&resolve_one(&after[..end], base_dir, env)?);
            rest = &after[end + 1..];
        } else {
            out.push('$');
            rest = &tail[1..];
        }
    }
    out.push_str(rest);
    Ok(out)
}

fn resolve_one(
    reference: &str,
    base_dir: &Path,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<String, ReferenceError> {
    let (kind, target) = reference.split_once(':').unwrap_or((reference, ""));
    match kind {
        "env" => {
            let valid = !target.is_empty()
                && target
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_');
            if !valid {
                return Err(ReferenceError(format!(
                    "invalid environment variable name {target:?} in ${{env:…}}"
                )));
            }
            env(target).ok_or_else(|| {
                ReferenceError(format!("environment variable {target:?} is not set"))
            })
        }
        "file" => {
            if target.is_empty() {
                return Err(ReferenceError("empty path in ${file:…}".to_owned()));
            }
            let path = base_dir.join(target);
            match std::fs::read_to_string(&path) {
                Ok(content) => {
                    let trimmed = content.strip_suffix('\n').unwrap_or(&content);
                    Ok(trimmed.strip_suffix('\r').unwrap_or(trimmed).to_owned())
                }
                Err(e) => Err(ReferenceError(format!(
                    "cannot read secret file {:?}: {e}",
                    path.display().to_string()
                ))),
            }
        }
        other => Err(ReferenceError(format!(
            "unknown secret reference kind {other:?} (use ${{env:NAME}} or ${{file:PATH}})"
        ))),
    }
}

/// Whether `text` holds something that looks like a secret reference.
pub(super) fn has_reference(text: &str) -> bool {
    text.replace("$${", "").contains("${")
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        (name == "TOKEN").then(|| "s3cr3t".to_owned())
    }

    fn resolve(text: &str) -> Result<String, ReferenceError> {
        resolve_references(text, Path::new("/nonexistent"), &env)
    }

    #[test]
    fn secret_never_prints_itself() {
        let s = Secret::new("hunter2");
        assert_eq!(format!("{s:?} {s}"), "*** ***");
        assert_eq!(s.expose(), "hunter2");
    }

    #[test]
    fn env_references_resolve_inside_text() {
        assert_eq!(resolve("${env:TOKEN}").unwrap(), "s3cr3t");
        assert_eq!(
            resolve("pg://u:${env:TOKEN}@h/db").unwrap(),
            "pg://u:s3cr3t@h/db"
        );
        assert_eq!(resolve("a$b $${env:X}").unwrap(), "a$b ${env:X}");
    }

    #[test]
    fn missing_variable_is_named_without_values() {
        let e = resolve("${env:MISSING}").unwrap_err();
        assert_eq!(e.0, "environment variable \"MISSING\" is not set");
        assert!(resolve("${env:}").is_err());
        assert!(resolve("${vault:x}").unwrap_err().0.contains("vault"));
        assert!(resolve("${env:TOKEN")
            .unwrap_err()
            .0
            .contains("unterminated"));
    }

    #[test]
    fn file_references_read_relative_to_base_and_drop_final_newline() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("token"), "from-file\r\n").unwrap();
        let got = resolve_references("${file:token}", dir.path(), &env).unwrap();
        assert_eq!(got, "from-file");
        let e = resolve_references("${file:nope}", dir.path(), &env).unwrap_err();
        assert!(e.0.contains("nope"), "{}", e.0);
    }

    #[test]
    fn urls_are_redacted() {
        assert_eq!(
            redact_url("postgres://liaison:pw@db.example.com/liaison"),
            "postgres://liaison:***@db.example.com/liaison"
        );
        assert_eq!(
            redact_url("postgres://db/x?user=a&password=pw"),
            "postgres://db/x?user=a&password=***"
        );
        assert_eq!(redact_url("not a url pw"), "***");
        assert!(has_reference("${env:A}"));
        assert!(!has_reference("$${env:A}"));
    }
}
