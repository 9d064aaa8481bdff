//! The password policy check: every rule a password breaks, not just the first.

use crate::config::PasswordPolicy;

/// One rule of the policy a password broke.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rule {
    /// Fewer characters than `min_length`.
    TooShort(u32),
    /// No upper-case letter.
    Upper,
    /// No lower-case letter.
    Lower,
    /// No decimal digit.
    Digit,
    /// No special character (neither letter, digit nor white space).
    Special,
}

impl std::fmt::Display for Rule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Rule::TooShort(n) => write!(f, "must be at least {n} characters long"),
            Rule::Upper => f.write_str("must contain an upper-case letter"),
            Rule::Lower => f.write_str("must contain a lower-case letter"),
            Rule::Digit => f.write_str("must contain a digit"),
            Rule::Special => {
                f.write_str("must contain a special character (not a letter, digit or space)")
            }
        }
    }
}

/// Every rule of `policy` that `password` breaks, in policy order; empty when it passes.
pub fn check_policy(policy: &PasswordPolicy, password: &str) -> Vec<Rule> {
    let has = |f: fn(char) -> bool| password.chars().any(f);
    let mut broken = Vec::new();
    if (password.chars().count() as u64) < u64::from(policy.min_length) {
        broken.push(Rule::TooShort(policy.min_length));
    }
    if policy.upper && !has(char::is_uppercase) {
        broken.push(Rule::Upper);
    }
    if policy.lower && !has(char::is_lowercase) {
        broken.push(Rule::Lower);
    }
    if policy.digit && !has(|c| c.is_ascii_digit()) {
        broken.push(Rule::Digit);
    }
    if policy.special && !has(|c| !c.is_alphanumeric() && !c.is_whitespace()) {
        broken.push(Rule::Special);
    }
    broken
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_password_meeting_every_rule_passes() {
        assert!(check_policy(&PasswordPolicy::default(), "Abc1$x").is_empty());
        assert!(check_policy(&PasswordPolicy::default(), "Žluť1!").is_empty());
    }

    #[test]
    fn every_broken_rule_is_listed() {
        let all = [Rule::TooShort(6), Rule::Upper, Rule::Digit, Rule::Special];
        assert_eq!(check_policy(&PasswordPolicy::default(), "abc"), all);
        assert_eq!(
            check_policy(&PasswordPolicy::default(), ""),
            [
                Rule::TooShort(6),
                Rule::Upper,
                Rule::Lower,
                Rule::Digit,
                Rule::Special
            ]
        );
        assert_eq!(
            check_policy(&PasswordPolicy::default(), "ABCDEF1!"),
            [Rule::Lower]
        );
        assert_eq!(
            check_policy(&PasswordPolicy::default(), "Abcdef gh1"),
            [Rule::Special]
        );
    }

    #[test]
    fn rules_switched_off_are_not_checked() {
        let policy = PasswordPolicy {
            min_length: 3,
            upper: false,
            lower: true,
            digit: false,
            special: false,
        };
        assert!(check_policy(&policy, "abc").is_empty());
        assert_eq!(check_policy(&policy, "ab"), [Rule::TooShort(3)]);
    }
}
