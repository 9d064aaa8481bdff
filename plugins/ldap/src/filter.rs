//! Search filters (RFC 4515), checked when the config loads so that a typo is
//! a `validate` error with its position in the filter, not a failed run.

use std::fmt;

/// A checked search filter, in its parenthesized form.
#[derive(Clone, PartialEq, Eq)]
pub struct Filter(String);

/// Why a filter was refused: what is wrong, at which character (1-based).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FilterError {
    /// The character of the filter where the problem is (1-based), if at one.
    pub at: Option<usize>,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for FilterError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.at {
            Some(at) => write!(f, "{} (at character {at})", self.message),
            None => f.write_str(&self.message),
        }
    }
}

impl Filter {
    /// `text` checked as a filter. A filter without its outer parentheses
    /// (`objectClass=person`) is accepted and wrapped, as `ldapsearch` does.
    pub fn parse(text: &str) -> Result<Filter, FilterError> {
        let trimmed = text.trim();
        if trimmed.is_empty() {
            return Err(FilterError {
                at: None,
                message: "the filter is empty".to_owned(),
            });
        }
        let wrapped = if trimmed.starts_with('(') {
            trimmed.to_owned()
        } else {
            format!("({trimmed})")
        };
        // Positions in messages count in the text as written.
        let shift = if trimmed.starts_with('(') { 0 } else { 1 };
        let offset = text.len() - text.trim_start().len();
        let mut p = Parser {
            chars: wrapped.chars().collect(),
            i: 0,
        };
        let located = |e: FilterError| FilterError {
            at: e.at.map(|at| (at + offset).saturating_sub(shift).max(1)),
            message: e.message,
        };
        p.filter().map_err(located)?;
        if p.i != p.chars.len() {
            return Err(located(
                p.error("unexpected text after the filter's closing \")\""),
            ));
        }
        // What we accept, the encoder must too.
        if ldap3::parse_filter(&wrapped).is_err() {
            return Err(FilterError {
                at: None,
                message: "the LDAP library cannot encode this filter".to_owned(),
            });
        }
        Ok(Filter(wrapped))
    }

    /// A filter the crate itself writes, known to be valid (unit tests
    /// parse each one).
    pub(crate) fn built_in(text: &str) -> Filter {
        Filter(text.to_owned())
    }

    /// The filter's text, parenthesized.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// This filter and `other` together: `(&THIS OTHER)`.
    pub fn and(&self, other: &str) -> String {
        format!("(&{}{other})", self.0)
    }
}

impl fmt::Debug for Filter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Filter({:?})", self.0)
    }
}

impl fmt::Display for Filter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A recursive-descent check of RFC 4515's grammar.
struct Parser {
    chars: Vec<char>,
    i: usize,
}

impl Parser {
    fn error(&self, message: &str) -> FilterError {
        FilterError {
            at: Some(self.i + 1),
            message: message.to_owned(),
        }
    }

    fn peek(&self) -> Option<char> {
        self.chars.get(self.i).copied()
    }

    fn expect(&mut self, c: char, what: &str) -> Result<(), FilterError> {
        match self.peek() {
            Some(found) if found == c => {
                self.i += 1;
                Ok(())
            }
            Some(found) => Err(self.error(&format!("expected {what}, found {found:?}"))),
            None => Err(self.error(&format!("expected {what}, but the filter ends"))),
        }
    }

    /// `( filtercomp )`
    fn filter(&mut self) -> Result<(), FilterError> {
        self.expect('(', "\"(\"")?;
        match self.peek() {
            Some('&') | Some('|') => {
                self.i += 1;
                // `(&)` and `(|)` (RFC 4526) are allowed.
                while self.peek() == Some('(') {
                    self.filter()?;
                }
            }
            Some('!') => {
                self.i += 1;
                self.filter()?;
            }
            Some(')') => return Err(self.error("an empty filter \"()\"")),
            Some(_) => self.item()?,
            None => return Err(self.error("the filter ends after \"(\"")),
        }
        self.expect(')', "\")\"")
    }

    /// `attr op value`, `attr=*`, substrings or an extensible match.
    fn item(&mut self) -> Result<(), FilterError> {
        let start = self.i;
        let attr = self.attribute()?;
        if self.peek() == Some(':') {
            return self.extensible(attr.is_empty());
        }
        if attr.is_empty() {
            self.i = start;
            return Err(self.error("expected an attribute name"));
        }
        match self.peek() {
            Some('=') => self.i += 1,
            Some('~') | Some('>') | Some('<') => {
                self.i += 1;
                self.expect('=', "\"=\" (the operators are =, ~=, >=, <=)")?;
                return self.value(false);
            }
            Some(c) => {
                return Err(self.error(&format!(
                    "expected an operator (=, ~=, >=, <=) after {:?}, found {c:?}",
                    attr
                )))
            }
            None => return Err(self.error("the filter ends after an attribute name")),
        }
        // `=`: equality, presence or substrings.
        self.value(true)
    }

    /// An attribute description: a name or OID with `;options`. Empty when
    /// the item starts with `:` (an extensible match without a type).
    fn attribute(&mut self) -> Result<String, FilterError> {
        let start = self.i;
        while let Some(c) = self.peek() {
            if c.is_ascii_alphanumeric() || c == '-' || c == '.' || c == ';' || c == '_' {
                self.i += 1;
            } else {
                break;
            }
        }
        let attr: String = self.chars[start..self.i].iter().collect();
        if let Some(first) = attr.chars().next() {
            if !first.is_ascii_alphanumeric() {
                self.i = start;
                return Err(self.error(&format!("{attr:?} is not an attribute name")));
            }
        }
        if self.i == start {
            if let Some(c) = self.peek().filter(|c| *c != ':') {
                return Err(self.error(&format!("expected an attribute name, found {c:?}")));
            }
        }
        Ok(attr)
    }

    /// `[:dn][:rule]:=value`
    fn extensible(&mut self, no_type: bool) -> Result<(), FilterError> {
        let mut rule = false;
        loop {
            self.expect(':', "\":\"")?;
            if self.peek() == Some('=') {
                self.i += 1;
                break;
            }
            let start = self.i;
            while let Some(c) = self.peek() {
                if c.is_ascii_alphanumeric() || c == '-' || c == '.' {
                    self.i += 1;
                } else {
                    break;
                }
            }
            let part: String = self.chars[start..self.i].iter().collect();
            if part.is_empty() {
                return Err(self.error("expected dn, a matching rule or \"=\" after \":\""));
            }
            if !part.eq_ignore_ascii_case("dn") {
                rule = true;
            }
        }
        if no_type && !rule {
            return Err(
                self.error("an extensible match without an attribute needs a matching rule")
            );
        }
        self.value(false)
    }

    /// An assertion value up to the closing `)`; `*` only where substrings
    /// allow it, `\` followed by two hex digits.
    fn value(&mut self, stars: bool) -> Result<(), FilterError> {
        while let Some(c) = self.peek() {
            match c {
                ')' => return Ok(()),
                '(' => return Err(self.error("an unescaped \"(\" in a value (write \\28)")),
                '*' if !stars => {
                    return Err(self.error("\"*\" is only allowed with = (write \\2a for a star)"))
                }
                '\\' => {
                    let hex = |c: Option<&char>| c.is_some_and(|c| c.is_ascii_hexdigit());
                    if !(hex(self.chars.get(self.i + 1)) && hex(self.chars.get(self.i + 2))) {
                        return Err(self.error(
                            "\"\\\" must be followed by two hex digits (\\2a for *, \\5c for \\)",
                        ));
                    }
                    self.i += 3;
                }
                _ => self.i += 1,
            }
        }
        Err(self.error("a \")\" is missing at the end"))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn err(text: &str) -> String {
        Filter::parse(text).unwrap_err().to_string()
    }

    #[test]
    fn valid_filters_are_kept_and_bare_ones_wrapped() {
        for f in [
            "(objectClass=inetOrgPerson)",
            "(&(objectClass=person)(|(employeeType=partner)(o=ACME*))(!(mail=*)))",
            "(cn=*Dvořák*)",
            r"(cn=a\28b\29)",
            "(modifyTimestamp>=20260101000000Z)",
            "(cn~=ann)",
            "(member:1.2.840.113556.1.4.1941:=cn=g,dc=x)",
            "(:dn:2.5.13.5:=ann)",
            "(&)",
            "(mail;lang-en=x)",
        ] {
            assert_eq!(Filter::parse(f).unwrap().as_str(), f, "{f}");
        }
        assert_eq!(
            Filter::parse(" objectClass=person ").unwrap().as_str(),
            "(objectClass=person)"
        );
        assert_eq!(
            Filter::parse("(a=b)").unwrap().and("(c>=d)"),
            "(&(a=b)(c>=d))"
        );
    }

    #[test]
    fn broken_filters_say_what_and_where() {
        assert_eq!(
            err("(&(objectClass=person)(mail=*)"),
            "expected \")\", but the filter ends (at character 31)"
        );
        assert_eq!(
            err("(objectClass=person))"),
            "unexpected text after the filter's closing \")\" (at character 21)"
        );
        assert!(
            err("(cn)").contains("expected an operator"),
            "{}",
            err("(cn)")
        );
        assert!(
            err("(cn>x)").contains("at character 5"),
            "{}",
            err("(cn>x)")
        );
        assert!(err("(cn=a(b)").contains("\\28"));
        assert!(err(r"(cn=a\zz)").contains("two hex digits"));
        assert!(err("(cn>=a*)").contains("only allowed with ="));
        assert!(err("()").contains("empty filter"));
        assert_eq!(err("  "), "the filter is empty");
        // A bare filter counts positions as written.
        assert!(err("cn=a(").contains("at character 5"), "{}", err("cn=a("));
        assert!(err("(=x)").contains("attribute name"));
    }
}
