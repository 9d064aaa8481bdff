//! The routes and the guard every request passes: a body size limit and a
//! time limit per request.

use std::time::Duration;

use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use tracing::warn;

use super::server::Limits;
use super::ApiState;

/// The `Content-Type` of `/metrics`: the Prometheus text format, version 0.0.4.
pub const METRICS_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The router over `state`, every route behind the request guard.
pub(super) fn router(state: ApiState, limits: &Limits) -> Router {
    let guard = Guard {
        max_body_bytes: limits.max_body_bytes,
        max_hook_body_bytes: limits.max_hook_body_bytes,
        request_timeout: limits.request_timeout,
        state: state.clone(),
    };
    let hooks = Router::new()
        .route("/hooks/{source}", post(super::hooks::hook))
        .layer(DefaultBodyLimit::max(limits.max_hook_body_bytes));
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .layer(DefaultBodyLimit::max(limits.max_body_bytes))
        .merge(hooks)
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(guard, guard_request))
        .with_state(state)
}

/// The process answers.
async fn healthz() -> &'static str {
    "ok"
}

/// The daemon can do its work: 200 `ready`, or 503 with the reason.
async fn readyz(State(state): State<ApiState>) -> Response {
    let readiness = state.readiness.clone();
    match tokio::task::spawn_blocking(move || readiness.check()).await {
        Ok(Ok(())) => "ready".into_response(),
        Ok(Err(reason)) => (StatusCode::SERVICE_UNAVAILABLE, reason).into_response(),
        Err(e) => {
            warn!(error = %e, "the readiness check did not finish");
            let reason = "the readiness check did not finish";
            (StatusCode::SERVICE_UNAVAILABLE, reason).into_response()
        }
    }
}

/// Every series, in the Prometheus text format.
async fn metrics(State(state): State<ApiState>) -> Response {
    let content_type = HeaderValue::from_static(METRICS_CONTENT_TYPE);
    let body = state.metrics.encode();
    ([(header::CONTENT_TYPE, content_type)], body).into_response()
}

async fn not_found() -> (StatusCode, &'static str) {
    (StatusCode::NOT_FOUND, "not found")
}

/// What every request must keep to.
#[derive(Clone)]
struct Guard {
    max_body_bytes: usize,
    /// Webhooks (`/hooks/…`) may carry larger bodies.
    max_hook_body_bytes: usize,
    request_timeout: Duration,
    /// For counting refused webhook calls.
    state: ApiState,
}

/// Refuses a body announced larger than the limit (413; the webhooks have a
/// larger one) and answers 503 when the route takes longer than the request
/// timeout. A body sent without a length and too long is cut off at the
/// limit by the body extractor (413 too).
async fn guard_request(State(guard): State<Guard>, request: Request, next: Next) -> Response {
    let hook = request.uri().path().starts_with("/hooks/");
    let limit = if hook {
        guard.max_hook_body_bytes
    } else {
        guard.max_body_bytes
    };
    if announced_length(&request).is_some_and(|n| n > limit as u64) {
        if hook {
            super::hooks::oversized(&guard.state, request.uri().path());
        }
        return (StatusCode::PAYLOAD_TOO_LARGE, "request body too large").into_response();
    }
    match tokio::time::timeout(guard.request_timeout, next.run(request)).await {
        Ok(response) => response,
        Err(_) => (StatusCode::SERVICE_UNAVAILABLE, "request timed out").into_response(),
    }
}

/// The request's `Content-Length`, when it says one.
fn announced_length(request: &Request) -> Option<u64> {
    request
        .headers()
        .get(header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .parse()
        .ok()
}
