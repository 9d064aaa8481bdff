//! Login names: validated, derived from a display name when no source gives one.

use std::fmt;

/// Why a login was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LoginError {
    /// Empty or longer than 64 characters.
    #[error("login {0:?} must be 1 to 64 characters")]
    Length(String),
    /// Contains characters outside `[a-z0-9._-]`.
    #[error("login {0:?} may only contain a-z, 0-9, '.', '_' and '-'")]
    Characters(String),
}

/// A user's login: unique, lower-case ASCII `[a-z0-9._-]`, immutable once created.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Login(String);

impl Login {
    /// Checks a login given by a source or an admin.
    pub fn parse(raw: &str) -> Result<Self, LoginError> {
        if raw.is_empty() || raw.len() > 64 {
            return Err(LoginError::Length(raw.to_owned()));
        }
        if !raw.bytes().all(is_login_byte) {
            return Err(LoginError::Characters(raw.to_owned()));
        }
        Ok(Login(raw.to_owned()))
    }

    /// The login text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// `base` with the deterministic collision suffix `n` (2, 3, …) appended.
    pub fn with_suffix(base: &str, n: u32) -> Login {
        if n <= 1 {
            Login(base.to_owned())
        } else {
            Login(format!("{base}{n}"))
        }
    }

    /// Wraps a string already known to be valid (e.g. read back from the store).
    pub fn from_trusted(s: String) -> Login {
        Login(s)
    }
}

impl fmt::Display for Login {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

fn is_login_byte(b: u8) -> bool {
    b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'_' | b'-')
}

/// Derives the base login from a display name: transliterated to ASCII
/// (`Jiří Dvořák` → `jiri.dvorak`, Cyrillic and Greek too), lower case, name parts
/// joined by `.`, only `[a-z0-9._-]`. Falls back to the e-mail's local part, then
/// to `user`, when nothing is left. Collisions are resolved by the caller with
/// [`Login::with_suffix`].
pub fn derive_login_base(title: &str, email_local_part: &str) -> String {
    let from_title = slug_parts(title);
    if !from_title.is_empty() {
        return from_title;
    }
    let from_email = slug_parts(email_local_part);
    if !from_email.is_empty() {
        return from_email;
    }
    "user".to_owned()
}

/// Transliterates, lower-cases and joins alphanumeric runs with `.`, keeping `_`
/// and `-` inside a part; the result is at most 60 bytes so a suffix still fits.
fn slug_parts(s: &str) -> String {
    let ascii = deunicode::deunicode(s).to_ascii_lowercase();
    let mut out = String::with_capacity(ascii.len());
    let mut pending_dot = false;
    for c in ascii.chars() {
        if c.is_ascii_alphanumeric() || ((c == '_' || c == '-') && !out.is_empty() && !pending_dot)
        {
            if pending_dot && !out.is_empty() {
                out.push('.');
            }
            pending_dot = false;
            out.push(c);
        } else {
            pending_dot = true;
        }
    }
    let trimmed = out.trim_end_matches(['_', '-', '.']);
    let mut end = trimmed.len().min(60);
    while !trimmed.is_char_boundary(end) {
        end -= 1;
    }
    trimmed[..end].trim_end_matches(['_', '-', '.']).to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transliterates_names() {
        assert_eq!(derive_login_base("Jiří Dvořák", "x"), "jiri.dvorak");
        assert_eq!(derive_login_base("Łukasz", "x"), "lukasz");
        assert_eq!(
            derive_login_base("Žofie  Nováková-Malá", "x"),
            "zofie.novakova-mala"
        );
        assert_eq!(derive_login_base("Иван Петров", "x"), "ivan.petrov");
        assert_eq!(
            derive_login_base("Γιώργος Παπαδόπουλος", "x"),
            "giorgos.papadopoulos"
        );
        assert_eq!(derive_login_base("  O'Brien, Seán ", "x"), "o.brien.sean");
        assert_eq!(derive_login_base("Müller GmbH", "x"), "muller.gmbh");
    }

    #[test]
    fn falls_back_to_email_local_part() {
        assert_eq!(derive_login_base("", "Ann.Smith"), "ann.smith");
        assert_eq!(derive_login_base("!!!", "a+b"), "a.b");
        assert_eq!(derive_login_base("", ""), "user");
    }

    #[test]
    fn derived_logins_are_valid_and_bounded() {
        let long = "a".repeat(200);
        let base = derive_login_base(&long, "x");
        assert!(base.len() <= 60);
        assert!(Login::parse(&base).is_ok());
        assert_eq!(
            Login::with_suffix("jiri.dvorak", 2).as_str(),
            "jiri.dvorak2"
        );
        assert_eq!(Login::with_suffix("jiri.dvorak", 1).as_str(), "jiri.dvorak");
    }

    #[test]
    fn rejects_bad_logins() {
        assert!(Login::parse("Ann").is_err());
        assert!(Login::parse("ann smith").is_err());
        assert!(Login::parse("").is_err());
        assert!(Login::parse("ann.smith_2-x").is_ok());
    }
}
