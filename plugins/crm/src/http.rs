//! One source's HTTP client: base URL, auth, a concurrency limit, a token
//! bucket, retries with backoff, and errors that say what failed without the
//! token.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

use liaison_plugin_api::{Cancel, SourceError};
use reqwest::header::{
    HeaderMap, HeaderName, HeaderValue, AUTHORIZATION, CONTENT_TYPE, DATE, RETRY_AFTER,
};
use reqwest::{Method, StatusCode};
use serde_json::Value;
use tokio::sync::{Mutex, Semaphore};
use tracing::{debug, warn};

use crate::{CrmConfig, Preset, RestAuth, Secret};

/// The longest wait between two tries, however many failed.
const MAX_BACKOFF: Duration = Duration::from_secs(60);
/// How much of an error body a message quotes.
const QUOTED: usize = 300;

/// What a successful request gave.
#[derive(Debug)]
pub(crate) struct Reply {
    /// The body, parsed.
    pub json: Value,
    /// The server's `Date`, as epoch ms.
    pub date_ms: Option<i64>,
}

/// How requests carry the credentials.
#[derive(Debug)]
enum Auth {
    None,
    Header(HeaderName, Secret),
    Bearer(Secret),
    Query(String, Secret),
    OAuth2 {
        token_url: url::Url,
        client_id: String,
        client_secret: Secret,
        scope: Option<String>,
        /// The token in use and when it stops being good.
        current: Mutex<Option<(Secret, Instant)>>,
    },
}

/// A token bucket: `rate` requests a second, bursts of up to `rate`.
#[derive(Debug)]
pub(crate) struct Limiter {
    rate: f64,
    state: Mutex<(f64, Instant)>,
}

impl Limiter {
    pub(crate) fn new(rate: f64) -> Self {
        Limiter {
            rate,
            state: Mutex::new((rate.max(1.0), Instant::now())),
        }
    }

    /// Waits for a token (at once when the rate is not limited).
    async fn acquire(&self) {
        if !(self.rate.is_finite() && self.rate > 0.0) {
            return;
        }
        loop {
            let wait = {
                let mut state = self.state.lock().await;
                let (tokens, at) = *state;
                let now = Instant::now();
                let tokens = (tokens + now.duration_since(at).as_secs_f64() * self.rate)
                    .min(self.rate.max(1.0));
                if tokens >= 1.0 {
                    *state = (tokens - 1.0, now);
                    return;
                }
                *state = (tokens, now);
                Duration::from_secs_f64((1.0 - tokens) / self.rate)
            };
            tokio::time::sleep(wait).await;
        }
    }
}

/// The HTTP side of one source.
#[derive(Debug)]
pub(crate) struct Http {
    client: reqwest::Client,
    base: String,
    auth: Auth,
    permits: Semaphore,
    limiter: Limiter,
    /// HubSpot's search endpoints have a lower limit of their own.
    search_limiter: Limiter,
    retries: u32,
    backoff: Duration,
    max_retry_after: Duration,
    timeout: Duration,
    cancel: Cancel,
    /// Requests sent (tries included), for the read's log line.
    pub(crate) requests: AtomicU64,
    /// Secrets to keep out of every message.
    secrets: Vec<Secret>,
}

/// Whether a failed try may be tried again, and the error if not.
enum Failure {
    /// Retry after this wait (at least), else fail with the error.
    Retry(Option<Duration>, SourceError),
    /// Fail now.
    Fatal(SourceError),
}

impl Http {
    /// The client for `config`; fails only when the TLS setup or `ca_file`
    /// cannot be used.
    pub(crate) fn new(config: &CrmConfig, cancel: Cancel) -> Result<Http, SourceError> {
        // One crypto provider in the tree (ring): install it as rustls'
        // default; a second call finds it installed, which is fine.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut builder = reqwest::Client::builder()
            .user_agent(concat!("liaison/", env!("CARGO_PKG_VERSION")))
            .timeout(config.timeout)
            .connect_timeout(config.timeout.min(Duration::from_secs(10)))
            .gzip(true)
            .pool_idle_timeout(Duration::from_secs(30));
        if let Some(path) = &config.ca_file {
            let pem = std::fs::read(path).map_err(|e| SourceError::Io {
                what: format!("ca_file {}", path.display()),
                source: e,
            })?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| {
                SourceError::Invalid(format!(
                    "ca_file {}: not PEM certificates: {}",
                    path.display(),
                    e.without_url()
                ))
            })?;
            for cert in certs {
                builder = builder.add_root_certificate(cert);
            }
        }
        let client = builder.build().map_err(|e| {
            SourceError::Invalid(format!(
                "cannot set up the HTTP client: {}",
                e.without_url()
            ))
        })?;
        let mut secrets: Vec<Secret> = config.token.iter().cloned().collect();
        let auth = match (&config.preset, &config.token) {
            (Preset::Daktela, Some(token)) => {
                Auth::Header(HeaderName::from_static("x-auth-token"), token.clone())
            }
            (Preset::Hubspot, Some(token)) => Auth::Bearer(token.clone()),
            (Preset::Rest(rest), token) => match (&rest.auth, token) {
                (RestAuth::None, _) => Auth::None,
                (RestAuth::Bearer, Some(t)) => Auth::Bearer(t.clone()),
                (RestAuth::Header(name), Some(t)) => {
                    let name = HeaderName::from_bytes(name.as_bytes()).map_err(|_| {
                        SourceError::Invalid(format!("{name:?} is not a header name"))
                    })?;
                    Auth::Header(name, t.clone())
                }
                (RestAuth::Query(name), Some(t)) => Auth::Query(name.clone(), t.clone()),
                (
                    RestAuth::OAuth2 {
                        token_url,
                        client_id,
                        client_secret,
                        scope,
                    },
                    _,
                ) => {
                    secrets.push(client_secret.clone());
                    Auth::OAuth2 {
                        token_url: token_url.clone(),
                        client_id: client_id.clone(),
                        client_secret: client_secret.clone(),
                        scope: scope.clone(),
                        current: Mutex::new(None),
                    }
                }
                (_, None) => {
                    return Err(SourceError::Invalid("the auth scheme needs a token".into()))
                }
            },
            (_, None) => return Err(SourceError::Invalid("a token is required".into())),
        };
        Ok(Http {
            client,
            base: config.url.as_str().trim_end_matches('/').to_owned(),
            auth,
            permits: Semaphore::new(config.concurrency.max(1)),
            limiter: Limiter::new(config.rate_limit),
            search_limiter: Limiter::new(config.search_rate_limit),
            retries: config.retries,
            backoff: config.retry_backoff,
            max_retry_after: config.max_retry_after,
            timeout: config.timeout,
            cancel,
            requests: AtomicU64::new(0),
            secrets,
        })
    }

    /// The absolute URL of `path` (`/api/v6/contacts.json?…`) under the base
    /// URL, or `path` itself when it is absolute (a next link).
    pub(crate) fn url(&self, path: &str) -> Result<url::Url, SourceError> {
        let text = if path.starts_with("http://") || path.starts_with("https://") {
            path.to_owned()
        } else if path.starts_with('/') {
            format!("{}{path}", self.base)
        } else {
            format!("{}/{path}", self.base)
        };
        url::Url::parse(&text)
            .map_err(|e| SourceError::Invalid(format!("invalid URL {:?}: {e}", self.redact(path))))
    }

    /// `GET url`.
    pub(crate) async fn get(&self, url: url::Url) -> Result<Reply, SourceError> {
        self.send(Method::GET, url, None, false).await
    }

    /// `POST url` with a JSON body; `search` counts against HubSpot's
    /// search limit as well.
    pub(crate) async fn post(
        &self,
        url: url::Url,
        body: &Value,
        search: bool,
    ) -> Result<Reply, SourceError> {
        self.send(Method::POST, url, Some(body), search).await
    }

    /// `text` with every secret replaced by `***`.
    pub(crate) fn redact(&self, text: &str) -> String {
        let mut out = text.to_owned();
        for secret in &self.secrets {
            if !secret.expose().is_empty() {
                out = out.replace(secret.expose(), "***");
            }
        }
        out
    }

    async fn send(
        &self,
        method: Method,
        url: url::Url,
        body: Option<&Value>,
        search: bool,
    ) -> Result<Reply, SourceError> {
        let what = format!("{method} {}", url.path());
        let mut attempt: u32 = 0;
        let mut refreshed = false;
        loop {
            if self.cancel.is_cancelled() {
                return Err(SourceError::Incomplete(format!(
                    "{what}: the read was cancelled"
                )));
            }
            let outcome = self.try_once(&method, &url, body, search, &what).await;
            let (wait, error) = match outcome {
                Ok(reply) => return Ok(reply),
                Err(Failure::Fatal(SourceError::Auth(message)))
                    if matches!(self.auth, Auth::OAuth2 { .. }) && !refreshed =>
                {
                    // The token may have been revoked early: get a new one, once.
                    refreshed = true;
                    self.forget_oauth_token().await;
                    debug!(%message, "renewing the OAuth2 token");
                    continue;
                }
                Err(Failure::Fatal(e)) => return Err(e),
                Err(Failure::Retry(wait, e)) => (wait, e),
            };
            if attempt >= self.retries {
                return Err(error);
            }
            attempt += 1;
            let backoff = self
                .backoff
                .checked_mul(1u32 << (attempt - 1).min(16))
                .unwrap_or(MAX_BACKOFF)
                .min(MAX_BACKOFF);
            let wait = wait.map_or_else(|| jitter(backoff), |w| w.max(Duration::from_millis(1)));
            warn!(request = %what, attempt, wait_ms = wait.as_millis() as u64, error = %error, "CRM request failed; retrying");
            self.sleep(wait).await;
        }
    }

    /// Sleeps `d`, waking early when the read is cancelled.
    async fn sleep(&self, d: Duration) {
        let until = Instant::now() + d;
        while Instant::now() < until && !self.cancel.is_cancelled() {
            let left = until.saturating_duration_since(Instant::now());
            tokio::time::sleep(left.min(Duration::from_millis(200))).await;
        }
    }

    async fn try_once(
        &self,
        method: &Method,
        url: &url::Url,
        body: Option<&Value>,
        search: bool,
        what: &str,
    ) -> Result<Reply, Failure> {
        let mut url = url.clone();
        let mut headers = HeaderMap::new();
        headers.insert(
            reqwest::header::ACCEPT,
            HeaderValue::from_static("application/json"),
        );
        match &self.auth {
            Auth::None => {}
            Auth::Header(name, token) => {
                headers.insert(name.clone(), header_value(token)?);
            }
            Auth::Bearer(token) => {
                headers.insert(AUTHORIZATION, bearer(token)?);
            }
            Auth::Query(name, token) => {
                url.query_pairs_mut().append_pair(name, token.expose());
            }
            Auth::OAuth2 { .. } => {
                let token = self.oauth_token().await?;
                headers.insert(AUTHORIZATION, bearer(&token)?);
            }
        }
        self.limiter.acquire().await;
        if search {
            self.search_limiter.acquire().await;
        }
        let _permit = self.permits.acquire().await.map_err(|_| {
            Failure::Fatal(SourceError::Incomplete(format!(
                "{what}: the read was stopped"
            )))
        })?;
        let mut request = self.client.request(method.clone(), url).headers(headers);
        if let Some(body) = body {
            request = request
                .header(CONTENT_TYPE, "application/json")
                .body(body.to_string());
        }
        self.requests.fetch_add(1, Ordering::Relaxed);
        let started = Instant::now();
        let response = request.send().await.map_err(|e| self.transport(what, &e))?;
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response
            .bytes()
            .await
            .map_err(|e| self.transport(what, &e))?;
        debug!(request = %what, status = status.as_u16(), bytes = bytes.len(), ms = started.elapsed().as_millis() as u64, "CRM request");
        if status.is_success() {
            let json = serde_json::from_slice(&bytes).map_err(|e| {
                Failure::Fatal(SourceError::Invalid(format!(
                    "{what}: the answer is not JSON ({e}): {}",
                    self.quote(&bytes)
                )))
            })?;
            return Ok(Reply {
                json,
                date_ms: headers
                    .get(DATE)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|d| chrono::DateTime::parse_from_rfc2822(d).ok())
                    .map(|d| d.timestamp_millis()),
            });
        }
        let said = self.quote(&bytes);
        let message = format!("{what}: HTTP {}{}", status.as_u16(), said_suffix(&said));
        Err(match status {
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => Failure::Fatal(SourceError::Auth(
                format!("{message} (check the token and its permissions)"),
            )),
            StatusCode::TOO_MANY_REQUESTS => {
                let retry_after = headers
                    .get(RETRY_AFTER)
                    .and_then(|v| v.to_str().ok())
                    .and_then(parse_retry_after);
                let error = SourceError::RateLimited {
                    message,
                    retry_after,
                };
                match retry_after {
                    Some(wait) if wait > self.max_retry_after => Failure::Fatal(error),
                    wait => Failure::Retry(wait, error),
                }
            }
            s if s.is_server_error() || s == StatusCode::REQUEST_TIMEOUT => {
                Failure::Retry(None, SourceError::Unreachable(message))
            }
            _ => Failure::Fatal(SourceError::Invalid(message)),
        })
    }

    /// A transport error (connect, timeout, a body cut short): retryable.
    fn transport(&self, what: &str, e: &reqwest::Error) -> Failure {
        let why = if e.is_timeout() {
            format!(
                "no answer within {} s (timeout)",
                self.timeout.as_secs_f64()
            )
        } else if e.is_connect() {
            format!("cannot connect: {}", chain(e))
        } else {
            chain(e)
        };
        Failure::Retry(
            None,
            SourceError::Unreachable(self.redact(&format!("{what}: {why}"))),
        )
    }

    /// Up to [`QUOTED`] characters of an error body, secrets taken out.
    fn quote(&self, bytes: &[u8]) -> String {
        let text = String::from_utf8_lossy(bytes);
        let text: String = text.chars().take(QUOTED).collect();
        self.redact(text.trim())
    }

    /// The OAuth2 token, fetched when there is none or it is about to expire.
    async fn oauth_token(&self) -> Result<Secret, Failure> {
        let Auth::OAuth2 {
            token_url,
            client_id,
            client_secret,
            scope,
            current,
        } = &self.auth
        else {
            return Err(Failure::Fatal(SourceError::Invalid(
                "no OAuth2 auth".into(),
            )));
        };
        let mut current = current.lock().await;
        if let Some((token, until)) = &*current {
            if Instant::now() < *until {
                return Ok(token.clone());
            }
        }
        let form = {
            let mut form = url::form_urlencoded::Serializer::new(String::new());
            form.append_pair("grant_type", "client_credentials")
                .append_pair("client_id", client_id)
                .append_pair("client_secret", client_secret.expose());
            if let Some(scope) = scope {
                form.append_pair("scope", scope);
            }
            form.finish()
        };
        let what = format!("POST {} (OAuth2 token)", token_url.path());
        self.requests.fetch_add(1, Ordering::Relaxed);
        let response = self
            .client
            .post(token_url.clone())
            .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header(reqwest::header::ACCEPT, "application/json")
            .body(form)
            .send()
            .await
            .map_err(|e| self.transport(&what, &e))?;
        let status = response.status();
        let bytes = response
            .bytes()
            .await
            .map_err(|e| self.transport(&what, &e))?;
        if !status.is_success() {
            let message = format!(
                "{what}: HTTP {}{}",
                status.as_u16(),
                said_suffix(&self.quote(&bytes))
            );
            return Err(if status.is_server_error() {
                Failure::Retry(None, SourceError::Unreachable(message))
            } else {
                Failure::Fatal(SourceError::Auth(message))
            });
        }
        let json: Value = serde_json::from_slice(&bytes).map_err(|e| {
            Failure::Fatal(SourceError::Invalid(format!(
                "{what}: the answer is not JSON ({e})"
            )))
        })?;
        let Some(token) = json.get("access_token").and_then(Value::as_str) else {
            return Err(Failure::Fatal(SourceError::Auth(format!(
                "{what}: no access_token in the answer"
            ))));
        };
        let lifetime = json
            .get("expires_in")
            .and_then(Value::as_u64)
            .unwrap_or(3600);
        // Renewed a little before it expires.
        let until = Instant::now() + Duration::from_secs(lifetime.saturating_sub(30).max(1));
        let token = Secret::new(token);
        *current = Some((token.clone(), until));
        Ok(token)
    }

    async fn forget_oauth_token(&self) {
        if let Auth::OAuth2 { current, .. } = &self.auth {
            *current.lock().await = None;
        }
    }
}

/// `Authorization: Bearer TOKEN`, marked sensitive.
fn bearer(token: &Secret) -> Result<HeaderValue, Failure> {
    header_value(&Secret::new(format!("Bearer {}", token.expose())))
}

fn header_value(token: &Secret) -> Result<HeaderValue, Failure> {
    let mut value = HeaderValue::from_str(token.expose()).map_err(|_| {
        Failure::Fatal(SourceError::Invalid(
            "the token holds characters a header cannot carry".into(),
        ))
    })?;
    value.set_sensitive(true);
    Ok(value)
}

/// `: TEXT`, or nothing for an empty text.
fn said_suffix(said: &str) -> String {
    if said.is_empty() {
        String::new()
    } else {
        format!(": {said}")
    }
}

/// An error and its causes, without the URL (which may hold a query token).
fn chain(e: &reqwest::Error) -> String {
    use std::error::Error as _;
    let mut text = e.to_string();
    if let Some(url) = e.url() {
        text = text.replace(url.as_str(), url.path());
    }
    let mut source = e.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// `Retry-After` as seconds or an HTTP date.
fn parse_retry_after(text: &str) -> Option<Duration> {
    let text = text.trim();
    if let Ok(secs) = text.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = chrono::DateTime::parse_from_rfc2822(text).ok()?;
    let at =
        SystemTime::UNIX_EPOCH + Duration::from_millis(u64::try_from(at.timestamp_millis()).ok()?);
    Some(
        at.duration_since(SystemTime::now())
            .unwrap_or(Duration::ZERO),
    )
}

/// `d` plus up to a tenth of it, so that retries of parallel requests spread.
fn jitter(d: Duration) -> Duration {
    let nanos = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |t| t.subsec_nanos());
    d + d.mul_f64(f64::from(nanos % 1000) / 10_000.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_is_seconds_or_a_date() {
        assert_eq!(parse_retry_after("7"), Some(Duration::from_secs(7)));
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon"), None);
    }
}
