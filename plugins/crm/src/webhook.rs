//! Checking a webhook call before it may trigger a read (SPEC §7).
//!
//! - **HubSpot v3** ([`WebhookConfig::HubspotV3`]): `X-HubSpot-Signature-v3`
//!   is base64(HMAC-SHA256(client secret, method + URI + body + timestamp)),
//!   the timestamp being `X-HubSpot-Request-Timestamp` (ms). The URI is the
//!   one HubSpot called — built by the daemon from `api.public_url`, not from
//!   the request's `Host` — with `%3A %2F %3F %40 %21 %24 %27 %28 %29 %2A
//!   %2C %3B` decoded, as HubSpot does before signing. A call more than five
//!   minutes old (or ahead) is refused; the signature is compared in constant
//!   time.
//! - **A shared secret** ([`WebhookConfig::SharedSecret`]): a Daktela
//!   automation's HTTP request sends a header (default `X-Webhook-Secret`)
//!   whose value must equal the configured secret, compared in constant time.
//!
//! What a call says is never used beyond this check: it only triggers a
//! changes read, which asks the CRM.
//!
//! ```
//! use liaison_plugin_crm::{Secret, WebhookConfig, WebhookRequest};
//! use liaison_plugin_crm::webhook::{check, hubspot_v3_signature};
//!
//! let config = WebhookConfig::HubspotV3 { client_secret: Secret::new("s3cret") };
//! let uri = "https://liaison.example.com/hooks/hubspot";
//! let body = br#"[{"objectId":1,"subscriptionType":"contact.propertyChange"}]"#;
//! let signature = hubspot_v3_signature("s3cret", "POST", uri, body, "1700000000000");
//! let headers = [("x-hubspot-signature-v3", signature.as_str()), ("x-hubspot-request-timestamp", "1700000000000")];
//! let request = WebhookRequest {
//!     method: "POST",
//!     uri,
//!     header: &|name| headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| *v),
//!     body,
//!     now_ms: 1_700_000_060_000,
//! };
//! assert!(check(&config, &request).is_ok());
//! ```

use base64::Engine as _;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use crate::Secret;

/// How long a signed HubSpot call stays good: five minutes.
pub const MAX_AGE_MS: i64 = 5 * 60 * 1000;

/// The shared-secret header when the config names none.
pub const DEFAULT_SECRET_HEADER: &str = "X-Webhook-Secret";

/// How a source's webhook calls are checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WebhookConfig {
    /// HubSpot's v3 request signature, with the app's client secret.
    HubspotV3 {
        /// The HubSpot app's client secret.
        client_secret: Secret,
    },
    /// A header holding a shared secret (Daktela automations, `rest`).
    SharedSecret {
        /// The header's name.
        header: String,
        /// The secret it must hold.
        secret: Secret,
    },
}

/// One incoming call, as the daemon received it.
pub struct WebhookRequest<'a> {
    /// `POST`.
    pub method: &'a str,
    /// The URI the sender called (`api.public_url` + path and query).
    pub uri: &'a str,
    /// A header's value by name (case-insensitive).
    pub header: &'a dyn Fn(&str) -> Option<&'a str>,
    /// The raw body.
    pub body: &'a [u8],
    /// The time now, ms since the Unix epoch.
    pub now_ms: i64,
}

/// Why a call was refused; what the daemon counts and logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum WebhookError {
    /// A header the check needs is absent.
    #[error("the {0} header is missing")]
    Missing(&'static str),
    /// The timestamp is not a number, or more than five minutes off.
    #[error("the request is stale (its timestamp is more than five minutes off)")]
    Stale,
    /// The signature or the secret does not match.
    #[error("the signature or secret does not match")]
    Forged,
}

impl WebhookError {
    /// A short word for metrics labels: `missing`, `stale`, `forged`.
    pub fn reason(self) -> &'static str {
        match self {
            WebhookError::Missing(_) => "missing",
            WebhookError::Stale => "stale",
            WebhookError::Forged => "forged",
        }
    }
}

/// The outcome of [`check`], named for the re-export.
pub type WebhookCheck = Result<(), WebhookError>;

/// Checks `request` as `config` says.
pub fn check(config: &WebhookConfig, request: &WebhookRequest<'_>) -> WebhookCheck {
    match config {
        WebhookConfig::HubspotV3 { client_secret } => {
            let signature = (request.header)("X-HubSpot-Signature-v3")
                .ok_or(WebhookError::Missing("X-HubSpot-Signature-v3"))?;
            let timestamp = (request.header)("X-HubSpot-Request-Timestamp")
                .ok_or(WebhookError::Missing("X-HubSpot-Request-Timestamp"))?;
            let sent: i64 = timestamp.trim().parse().map_err(|_| WebhookError::Stale)?;
            if (request.now_ms - sent).abs() > MAX_AGE_MS {
                return Err(WebhookError::Stale);
            }
            let given = base64::engine::general_purpose::STANDARD
                .decode(signature.trim())
                .map_err(|_| WebhookError::Forged)?;
            let mut mac = Hmac::<Sha256>::new_from_slice(client_secret.expose().as_bytes())
                .map_err(|_| WebhookError::Forged)?;
            mac.update(
                signed_text(request.method, request.uri, request.body, timestamp.trim()).as_slice(),
            );
            // Constant time.
            mac.verify_slice(&given).map_err(|_| WebhookError::Forged)
        }
        WebhookConfig::SharedSecret { header, secret } => {
            let given = (request.header)(header).ok_or(WebhookError::Missing("secret"))?;
            if constant_time_eq(given.as_bytes(), secret.expose().as_bytes()) {
                Ok(())
            } else {
                Err(WebhookError::Forged)
            }
        }
    }
}

/// What HubSpot signs: method, decoded URI, body, timestamp.
fn signed_text(method: &str, uri: &str, body: &[u8], timestamp: &str) -> Vec<u8> {
    let mut text = Vec::with_capacity(method.len() + uri.len() + body.len() + timestamp.len());
    text.extend_from_slice(method.to_ascii_uppercase().as_bytes());
    text.extend_from_slice(decode_uri(uri).as_bytes());
    text.extend_from_slice(body);
    text.extend_from_slice(timestamp.as_bytes());
    text
}

/// `uri` with the characters HubSpot decodes before signing decoded.
pub fn decode_uri(uri: &str) -> String {
    const DECODED: [(&str, char); 12] = [
        ("3A", ':'),
        ("2F", '/'),
        ("3F", '?'),
        ("40", '@'),
        ("21", '!'),
        ("24", '$'),
        ("27", '\''),
        ("28", '('),
        ("29", ')'),
        ("2A", '*'),
        ("2C", ','),
        ("3B", ';'),
    ];
    let mut out = String::with_capacity(uri.len());
    let mut rest = uri;
    while let Some(at) = rest.find('%') {
        out.push_str(&rest[..at]);
        let code = rest.get(at + 1..at + 3);
        match code.and_then(|c| DECODED.iter().find(|(k, _)| k.eq_ignore_ascii_case(c))) {
            Some((_, ch)) => {
                out.push(*ch);
                rest = &rest[at + 3..];
            }
            None => {
                out.push('%');
                rest = &rest[at + 1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// The v3 signature HubSpot would send: for tests and the emulated server.
pub fn hubspot_v3_signature(
    secret: &str,
    method: &str,
    uri: &str,
    body: &[u8],
    timestamp: &str,
) -> String {
    let mut mac = match Hmac::<Sha256>::new_from_slice(secret.as_bytes()) {
        Ok(mac) => mac,
        // HMAC takes keys of any length.
        Err(_) => return String::new(),
    };
    mac.update(&signed_text(method, uri, body, timestamp));
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

/// Equal bytes, in a time that does not depend on where they differ.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request<'a>(
        headers: &'a [(&'a str, &'a str)],
        body: &'a [u8],
        now_ms: i64,
        header: &'a dyn Fn(&str) -> Option<&'a str>,
    ) -> WebhookRequest<'a> {
        let _ = headers;
        WebhookRequest {
            method: "POST",
            uri: "https://l.example.com/hooks/hs?x=a%3Ab",
            header,
            body,
            now_ms,
        }
    }

    #[test]
    fn hubspot_signatures_are_checked_with_time_and_uri() {
        let config = WebhookConfig::HubspotV3 {
            client_secret: Secret::new("secret"),
        };
        let body = b"[{\"objectId\":1}]";
        let ts = "1700000000000";
        // HubSpot signs the URI with %3A decoded.
        let sig = hubspot_v3_signature(
            "secret",
            "POST",
            "https://l.example.com/hooks/hs?x=a:b",
            body,
            ts,
        );
        let headers = [
            ("X-HubSpot-Signature-v3", sig.as_str()),
            ("X-HubSpot-Request-Timestamp", ts),
        ];
        let find = |n: &str| {
            headers
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(n))
                .map(|(_, v)| *v)
        };
        assert_eq!(
            check(
                &config,
                &request(&headers, body, 1_700_000_000_000 + 1000, &find)
            ),
            Ok(())
        );
        assert_eq!(
            check(
                &config,
                &request(&headers, body, 1_700_000_000_000 + MAX_AGE_MS + 1, &find)
            ),
            Err(WebhookError::Stale)
        );
        assert_eq!(
            check(
                &config,
                &request(&headers, b"[{\"objectId\":2}]", 1_700_000_000_000, &find)
            ),
            Err(WebhookError::Forged)
        );
        let none = |_: &str| None;
        assert_eq!(
            check(&config, &request(&[], body, 0, &none)),
            Err(WebhookError::Missing("X-HubSpot-Signature-v3"))
        );
    }

    #[test]
    fn shared_secrets_must_match_exactly() {
        let config = WebhookConfig::SharedSecret {
            header: DEFAULT_SECRET_HEADER.into(),
            secret: Secret::new("abc"),
        };
        let good = |n: &str| (n == DEFAULT_SECRET_HEADER).then_some("abc");
        let bad = |n: &str| (n == DEFAULT_SECRET_HEADER).then_some("abd");
        assert_eq!(check(&config, &request(&[], b"", 0, &good)), Ok(()));
        assert_eq!(
            check(&config, &request(&[], b"", 0, &bad)),
            Err(WebhookError::Forged)
        );
        assert_eq!(decode_uri("a%3a%2F%20%"), "a:/%20%");
    }
}
