//! `password_policy:`: the rules a new password must meet (SPEC §1). Every key
//! is optional; the defaults are the SPEC's: at least 6 characters with upper
//! case, lower case, digit and special character.

use super::walk::{self, Ctx, Section};

const POLICY_KEYS: &[&str] = &["min_length", "upper", "lower", "digit", "special"];

/// The password policy, as configured (see [`crate::password::check_policy`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PasswordPolicy {
    /// Fewest characters (Unicode scalar values) a password may have.
    pub min_length: u32,
    /// Whether an upper-case letter is required.
    pub upper: bool,
    /// Whether a lower-case letter is required.
    pub lower: bool,
    /// Whether a decimal digit is required.
    pub digit: bool,
    /// Whether a character that is neither a letter, a digit nor white space is required.
    pub special: bool,
}

impl Default for PasswordPolicy {
    fn default() -> Self {
        Self {
            min_length: 6,
            upper: true,
            lower: true,
            digit: true,
            special: true,
        }
    }
}

/// The `password_policy:` section; a key left out keeps its default, a bad
/// value is an error at its position (and keeps the default).
pub(super) fn password_policy(ctx: &mut Ctx<'_>, section: &Section<'_>) -> PasswordPolicy {
    section.deny_unknown(ctx, POLICY_KEYS, "");
    let mut policy = PasswordPolicy::default();
    if let Some(node) = section.get("min_length") {
        let path = section.child("min_length");
        match walk::unsigned(ctx, &path, node) {
            Some(0) => ctx.error(node.span, &path, "must be at least 1"),
            Some(n) => policy.min_length = n,
            None => {}
        }
    }
    let flags: [(&str, &mut bool); 4] = [
        ("upper", &mut policy.upper),
        ("lower", &mut policy.lower),
        ("digit", &mut policy.digit),
        ("special", &mut policy.special),
    ];
    for (key, flag) in flags {
        if let Some(value) = section
            .get(key)
            .and_then(|node| walk::boolean(ctx, &section.child(key), node))
        {
            *flag = value;
        }
    }
    policy
}
