//! The HTTP listener (`api.listen`): `/healthz`, `/readyz`, `/metrics` and
//! the webhooks `POST /hooks/SOURCE`, which need no token (SPEC §7). The daemon binds it, hands it the shared
//! [`Metrics`] and a [`Readiness`] check, and stops it with a shutdown future.
//!
//! Routing is axum's; each connection is hyper's HTTP/1 with a header read
//! timeout, so a slow or idle client cannot hold a connection, and the drain
//! after shutdown is bounded (decision 0015).

pub mod hooks;
mod routes;
mod server;

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpListener;

use crate::telemetry::Metrics;

pub use routes::METRICS_CONTENT_TYPE;
pub use server::Limits;

/// Whether the daemon can do its work now (`/readyz`): the store answers and
/// no source has failed too often. It may block (a store query): the listener
/// calls it on tokio's blocking pool.
pub trait Readiness: Send + Sync + 'static {
    /// `Ok` when ready, else why not, in words for the operator.
    fn check(&self) -> Result<(), String>;
}

/// What the routes read: the metrics and the readiness check.
#[derive(Clone)]
pub struct ApiState {
    /// The daemon's metrics, printed by `/metrics`.
    pub metrics: Arc<Metrics>,
    /// The check behind `/readyz`.
    pub readiness: Arc<dyn Readiness>,
    /// The sources that take webhooks (`POST /hooks/SOURCE`).
    pub hooks: Arc<hooks::Hooks>,
}

/// Binds the listener's address; the error names the address.
pub async fn bind(addr: SocketAddr) -> io::Result<TcpListener> {
    TcpListener::bind(addr)
        .await
        .map_err(|e| io::Error::new(e.kind(), format!("cannot listen on {addr}: {e}")))
}

/// Serves the routes on `listener` until `shutdown` completes, then stops
/// accepting, lets requests in flight finish within the drain limit and
/// returns. Accept errors are logged and retried, not returned. Uses
/// [`Limits::default`]; see [`serve_with`].
pub async fn serve(
    listener: TcpListener,
    state: ApiState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    serve_with(listener, state, shutdown, Limits::default()).await
}

/// [`serve`] with explicit timeouts and sizes (tests shorten them).
pub async fn serve_with(
    listener: TcpListener,
    state: ApiState,
    shutdown: impl Future<Output = ()> + Send + 'static,
    limits: Limits,
) -> io::Result<()> {
    let router = routes::router(state, &limits);
    server::run(listener, router, shutdown, limits).await
}
