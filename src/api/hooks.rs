//! `POST /hooks/SOURCE`: a CRM announcing changes (SPEC §7).
//!
//! Each source with `webhook:` registers a [`Hook`]: how its calls are
//! checked (HubSpot's v3 signature or a shared-secret header, see
//! `liaison_plugin_crm::webhook`) and where an accepted call is announced.
//! An accepted call answers `204` and pokes the source's debouncer (in the
//! daemon), which asks for one run shortly after the first call of a burst:
//! the run reads the CRM's changes — what the body says is never used. A
//! forged, stale or unsigned call is `401`, an oversized one `413`, a source
//! without webhooks `404`; each is counted in
//! `liaison_webhook_requests_total{source, outcome}`.

use std::collections::HashMap;
use std::sync::RwLock;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use tokio::sync::mpsc;
use tracing::{debug, warn};

use super::ApiState;

/// Where a source's accepted webhook calls go.
#[derive(Debug, Clone)]
pub struct Hook {
    /// How its calls are checked.
    #[cfg(feature = "crm")]
    pub check: liaison_plugin_crm::WebhookConfig,
    /// Poked (without waiting) for each accepted call.
    pub announce: mpsc::Sender<()>,
}

/// The sources that take webhooks, by name; the daemon replaces them on reload.
#[derive(Debug, Default)]
pub struct Hooks {
    by_source: RwLock<HashMap<String, Hook>>,
    /// `api.public_url`: the URI senders signed starts with it.
    public_url: RwLock<Option<url::Url>>,
}

impl Hooks {
    /// Replaces the sources and the public URL.
    pub fn set(&self, hooks: HashMap<String, Hook>, public_url: Option<url::Url>) {
        if let Ok(mut by_source) = self.by_source.write() {
            *by_source = hooks;
        }
        if let Ok(mut url) = self.public_url.write() {
            *url = public_url;
        }
    }

    fn get(&self, source: &str) -> Option<Hook> {
        self.by_source.read().ok()?.get(source).cloned()
    }

    /// The URI as the sender called it: `api.public_url`'s scheme, host and
    /// path prefix, then the request's path and query; without a public URL,
    /// `http://` and the `Host` header.
    fn signed_uri(&self, uri: &Uri, headers: &HeaderMap) -> String {
        let path_and_query = uri.path_and_query().map_or("/", |p| p.as_str());
        let public = self.public_url.read().ok().and_then(|u| u.clone());
        match public {
            Some(base) => format!("{}{path_and_query}", base.as_str().trim_end_matches('/')),
            None => {
                let host = headers
                    .get(axum::http::header::HOST)
                    .and_then(|h| h.to_str().ok())
                    .unwrap_or("localhost");
                format!("http://{host}{path_and_query}")
            }
        }
    }
}

/// The route's handler.
pub(super) async fn hook(
    State(state): State<ApiState>,
    Path(source): Path<String>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some(hook) = state.hooks.get(&source) else {
        // Not under its name: a scan of random names must not grow the metrics.
        state.metrics.webhook("(unknown)", "unknown");
        return (StatusCode::NOT_FOUND, "no such webhook").into_response();
    };
    #[cfg(feature = "crm")]
    {
        let signed_uri = state.hooks.signed_uri(&uri, &headers);
        let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
        let request = liaison_plugin_crm::WebhookRequest {
            method: "POST",
            uri: &signed_uri,
            header: &header,
            body: &body,
            now_ms: crate::clock::now_ms(),
        };
        if let Err(why) = liaison_plugin_crm::webhook::check(&hook.check, &request) {
            warn!(source = %source, reason = why.reason(), error = %why, "webhook call refused");
            state.metrics.webhook(&source, why.reason());
            return (StatusCode::UNAUTHORIZED, "refused").into_response();
        }
    }
    #[cfg(not(feature = "crm"))]
    let _ = (&uri, &headers, &body);
    state.metrics.webhook(&source, "accepted");
    debug!(source = %source, bytes = body.len(), "webhook call accepted");
    // Full: a run is already due, which is as good.
    let _ = hook.announce.try_send(());
    StatusCode::NO_CONTENT.into_response()
}

/// An oversized call, counted under its source when that takes webhooks.
pub(super) fn oversized(state: &ApiState, path: &str) {
    let Some(source) = path.strip_prefix("/hooks/") else {
        return;
    };
    let label = if state.hooks.get(source).is_some() {
        source.to_owned()
    } else {
        "(unknown)".to_owned()
    };
    state.metrics.webhook(&label, "oversized");
}
