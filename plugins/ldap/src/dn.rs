//! Distinguished names (RFC 4514): the components of an entry's DN, so that a
//! mapping can take the account from an `ou=` or `o=` component and a group's
//! `member` values can be compared with entries' DNs.

/// One `type=value` of a DN component, the value unescaped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ava {
    /// The attribute type as written (`ou`, `CN`, an OID).
    pub attr: String,
    /// The value, with `\,`, `\2C` and the like unescaped.
    pub value: String,
}

/// A parsed DN: its components from the entry's own (leftmost) to the root.
/// A component holds several AVAs when written with `+` (`cn=a+uid=b`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Dn {
    /// The components, leftmost first.
    pub rdns: Vec<Vec<Ava>>,
}

/// Why a DN could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct DnError(String);

impl Dn {
    /// Parses `text` (RFC 4514; spaces around `,`, `+` and `=` are allowed).
    /// The empty DN has no components.
    pub fn parse(text: &str) -> Result<Dn, DnError> {
        let bytes = text.as_bytes();
        let mut rdns = Vec::new();
        let mut rdn = Vec::new();
        let mut i = 0;
        if text.trim().is_empty() {
            return Ok(Dn::default());
        }
        loop {
            // Attribute type, up to `=`.
            let start = i;
            while i < bytes.len() && bytes[i] != b'=' {
                if matches!(bytes[i], b',' | b'+' | b'\\') {
                    return Err(DnError(format!(
                        "expected type=value at character {}",
                        start + 1
                    )));
                }
                i += 1;
            }
            if i == bytes.len() {
                return Err(DnError(format!("{:?} has no \"=\"", text[start..].trim())));
            }
            let attr = text[start..i].trim();
            if attr.is_empty() {
                return Err(DnError(format!(
                    "an attribute type is missing before \"=\" at character {}",
                    i + 1
                )));
            }
            i += 1;
            // Value, up to an unescaped `,` or `+`.
            let mut value: Vec<u8> = Vec::new();
            // Where the value's last escaped byte ends: trailing spaces
            // before it are part of the value.
            let mut kept = 0;
            while i < bytes.len() && bytes[i] == b' ' {
                i += 1;
            }
            while i < bytes.len() && !matches!(bytes[i], b',' | b'+' | b';') {
                if bytes[i] == b'\\' {
                    let hex = bytes.get(i + 1..i + 3).and_then(|h| {
                        std::str::from_utf8(h)
                            .ok()
                            .and_then(|h| u8::from_str_radix(h, 16).ok())
                    });
                    match (hex, bytes.get(i + 1)) {
                        (Some(b), _) => {
                            value.push(b);
                            i += 3;
                        }
                        (None, Some(&c)) => {
                            value.push(c);
                            i += 2;
                        }
                        (None, None) => {
                            return Err(DnError("the DN ends with a lone \"\\\"".to_owned()))
                        }
                    }
                    kept = value.len();
                } else {
                    value.push(bytes[i]);
                    i += 1;
                }
            }
            while value.len() > kept && value.last() == Some(&b' ') {
                value.pop();
            }
            rdn.push(Ava {
                attr: attr.to_owned(),
                value: String::from_utf8_lossy(&value).into_owned(),
            });
            match bytes.get(i) {
                Some(b'+') => i += 1,
                Some(_) => {
                    rdns.push(std::mem::take(&mut rdn));
                    i += 1;
                }
                None => {
                    rdns.push(rdn);
                    return Ok(Dn { rdns });
                }
            }
        }
    }

    /// The value of the entry's own component (its first AVA): a group's name
    /// (`cn=partners-gold,ou=groups,…` → `partners-gold`).
    pub fn first_value(&self) -> Option<&str> {
        self.rdns.first()?.first().map(|a| a.value.as_str())
    }

    /// The values of every `attr=` AVA (type compared without case), the
    /// entry's own component first.
    pub fn values_of<'a>(&'a self, attr: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.rdns
            .iter()
            .flatten()
            .filter(move |a| a.attr.eq_ignore_ascii_case(attr))
            .map(|a| a.value.as_str())
    }

    /// A form for comparing DNs: types and values lower-cased, no optional
    /// spaces, a component's AVAs sorted, special characters escaped again.
    /// Two spellings of one DN (`CN=Ann, OU=X` and `cn=ann,ou=x`) compare equal.
    pub fn normalized(&self) -> String {
        let mut out = String::new();
        for (i, rdn) in self.rdns.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            let mut avas: Vec<String> = rdn
                .iter()
                .map(|a| {
                    format!(
                        "{}={}",
                        a.attr.to_ascii_lowercase(),
                        escape(&a.value.to_lowercase())
                    )
                })
                .collect();
            avas.sort();
            out.push_str(&avas.join("+"));
        }
        out
    }

    /// Whether this DN is `base` or below it (both compared normalized).
    pub fn is_within(&self, base: &Dn) -> bool {
        if base.rdns.len() > self.rdns.len() {
            return false;
        }
        let skip = self.rdns.len() - base.rdns.len();
        let tail = Dn {
            rdns: self.rdns[skip..].to_vec(),
        };
        tail.normalized() == base.normalized()
    }
}

/// `value` with the characters RFC 4514 escapes escaped.
fn escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for (i, c) in value.chars().enumerate() {
        let special = matches!(c, ',' | '+' | '"' | '\\' | '<' | '>' | ';' | '=')
            || (i == 0 && matches!(c, '#' | ' '));
        if special {
            out.push('\\');
        }
        out.push(c);
    }
    if out.ends_with(' ') {
        out.pop();
        out.push_str("\\ ");
    }
    out
}

/// The normalized form of `dn`, or its lower-cased text when it does not parse.
pub fn normalize(dn: &str) -> String {
    match Dn::parse(dn) {
        Ok(parsed) => parsed.normalized(),
        Err(_) => dn.trim().to_lowercase(),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn values(dn: &Dn) -> Vec<(&str, &str)> {
        dn.rdns
            .iter()
            .flatten()
            .map(|a| (a.attr.as_str(), a.value.as_str()))
            .collect()
    }

    #[test]
    fn components_come_leftmost_first_with_values_unescaped() {
        let dn = Dn::parse(r"uid=ann,ou=Dvořák \, Syn,ou=partners, dc=example,dc=com").unwrap();
        assert_eq!(
            values(&dn),
            [
                ("uid", "ann"),
                ("ou", "Dvořák , Syn"),
                ("ou", "partners"),
                ("dc", "example"),
                ("dc", "com")
            ]
        );
        assert_eq!(dn.first_value(), Some("ann"));
        assert_eq!(
            dn.values_of("OU").collect::<Vec<_>>(),
            ["Dvořák , Syn", "partners"]
        );
        let hex = Dn::parse(r"cn=a\2Cb\c5\99,o=x").unwrap();
        assert_eq!(hex.first_value(), Some("a,bř"));
    }

    #[test]
    fn multi_valued_components_and_spaces() {
        let dn = Dn::parse("cn = Ann Lee + uid=ann , o=ACME ").unwrap();
        assert_eq!(dn.rdns.len(), 2);
        assert_eq!(
            values(&dn),
            [("cn", "Ann Lee"), ("uid", "ann"), ("o", "ACME")]
        );
        let escaped_space = Dn::parse(r"cn=x\ ,o=y").unwrap();
        assert_eq!(escaped_space.first_value(), Some("x "));
        assert_eq!(Dn::parse("").unwrap().rdns.len(), 0);
    }

    #[test]
    fn spellings_of_one_dn_normalize_alike() {
        let a = Dn::parse("CN=Ann Lee,OU=People, DC=Example,DC=com").unwrap();
        let b = Dn::parse("cn=ann lee,ou=people,dc=example,dc=com").unwrap();
        assert_eq!(a.normalized(), b.normalized());
        assert_eq!(
            normalize("uid=b+cn=a,o=x"),
            normalize("cn=a+uid=b,o=x"),
            "AVAs of a component in any order"
        );
        assert_ne!(normalize(r"cn=a\,b,o=x"), normalize("cn=a,b=,o=x"));
        let base = Dn::parse("ou=Groups,dc=example,dc=com").unwrap();
        assert!(Dn::parse("cn=g,ou=groups,dc=example,dc=com")
            .unwrap()
            .is_within(&base));
        assert!(!Dn::parse("cn=g,dc=example,dc=com")
            .unwrap()
            .is_within(&base));
        assert!(base.is_within(&base));
    }

    #[test]
    fn broken_dns_are_refused() {
        assert!(Dn::parse("ann").is_err());
        assert!(Dn::parse("=ann,o=x").is_err());
        assert!(Dn::parse(r"cn=ann\").is_err());
        assert!(Dn::parse("cn=a,,o=x").is_err());
    }
}
