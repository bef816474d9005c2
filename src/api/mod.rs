//! The HTTP API (axum). `router(state)` is separate from serving, so tests can
//! drive it over a real socket on a port of their own.
//!
//! Load on the API must not cost polling its cadence (issue 12). So: the API
//! is served on a runtime of its own whose threads run at a lower priority
//! (`Server`, `api.threads`, `api.nice`), so a poller never waits in a run
//! queue behind requests and the kernel gives polling the CPU first when it
//! is short; at most `api.max_concurrent` `/api/v1` requests are answered at
//! once, and one more is refused at once with 503 and `Retry-After` (the
//! layers in `router`, `shed`); no handler holds the live state's read lock for longer than a
//! copy of what it shows, and the serialisation of large answers runs on the
//! blocking pool (`blocking`); the lamp list pages and the figures now are
//! reused for `api.cache_ttl` (`cache.rs`, `figures::NowCache`).
//!
//! Every route is in one table, `routes::ROUTES`, from which `router` is
//! built; the OpenAPI document of them all is `openapi.rs`, served at
//! `/api/v1/openapi.json`.

mod admin;
mod alarms;
mod auth;
mod cache;
mod cluster;
mod commands;
mod config;
mod energy;
mod error;
mod evaluation;
mod figures;
mod health;
mod history;
mod inventory;
mod lamps;
mod openapi;
mod query;
mod reports;
mod routes;
mod schedules;

pub use admin::{ReloadError, ReloadReport, ReloadRequest, Reloads};
// What the console shares with the API's routes: one path for each rule.
pub(crate) use alarms::{acknowledge_alarm, alarm_page, AlarmQuery};
/// The caller a request's bearer token names, for the rooms that serve
/// beside the API (TALQ) with its tokens.
pub(crate) use auth::principal as bearer_principal;
pub(crate) use commands::{audit_trail, AuditQuery};
pub use config::ApiSettings;
pub use error::ApiError;
pub(crate) use figures::online_rates_of;
pub use openapi::ApiDoc;
pub(crate) use reports::{monthly_report, MonthlyQuery};
pub use routes::{Access, Route, ROUTES};
pub(crate) use schedules::{
    book_view, day_preview, edit as edit_book, save_shift, Kind as BookKind, PreviewItem,
    PreviewQuery,
};

use crate::auth::Tokens;
use crate::control::Control;
use crate::state::LiveState;
use auth::require_token;
use axum::error_handling::HandleErrorLayer;
use axum::middleware;
use axum::response::{IntoResponse, Response};
use axum::Router;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;
use tower::limit::GlobalConcurrencyLimitLayer;
use tower::load_shed::error::Overloaded;
use tower::load_shed::LoadShedLayer;
use tower::{BoxError, ServiceBuilder};
use tower_http::trace::TraceLayer;

#[derive(Debug, Clone)]
pub struct AppState {
    pub live: Arc<LiveState>,
    pub tokens: Arc<Tokens>,
    pub control: Arc<Control>,
    /// The figures now for `/metrics`, computed at most once a second.
    pub now_cache: Arc<crate::figures::NowCache>,
    /// The evaluation-grade lighting figures now, with the `[figures]`
    /// settings they are computed under, reused for `api.cache_ttl`.
    pub evaluation: Arc<crate::figures::evaluation::EvaluationCache>,
    /// `None` when `store.url` is `none`.
    pub store: Option<Arc<crate::store::Store>>,
    pub time_zone: chrono_tz::Tz,
    /// The MQTT broker link, when MQTT is configured.
    pub mqtt: Option<Arc<crate::mqtt::LinkStatus>>,
    /// The dial-in DTUs of `dtu:` endpoints (empty when there are none).
    pub dialin: Arc<crate::dialin::Registry>,
    /// Every subsystem's Prometheus collector, for `/metrics`.
    pub metrics: Arc<prometheus_client::registry::Registry>,
    /// What the windowed figures need of the inventory and the gateway.
    pub figures: Arc<crate::figures::window::Context>,
    /// Answers many clients ask for, reused for `api.cache_ttl`.
    pub cache: Arc<ApiCache>,
    /// `/api/v1` requests answered at once (`api.max_concurrent`).
    pub max_concurrent: usize,
    /// Where `POST /api/v1/admin/reload` asks for a reload; `None` when the
    /// gateway was not started from a settings file.
    pub reloads: Option<Reloads>,
    /// The night plan, unless `schedule.enabled` is off.
    pub schedule: Option<Arc<crate::schedule::Schedule>>,
    /// The alarm engine: open alarms, acknowledgements.
    pub alarms: Arc<crate::alarm::Alarms>,
    /// What the energy saving rate is measured against (`[figures.energy]`).
    pub energy: Arc<crate::figures::config::EnergySettings>,
    /// Cluster mode: this instance's leases and the cluster's view.
    pub cluster: Option<Arc<crate::cluster::Cluster>>,
}

pub use cache::ApiCache;

pub fn router(state: AppState) -> Router {
    let add = |router: Router<AppState>, access: Access| {
        ROUTES
            .iter()
            .filter(|r| r.access == access)
            .fold(router, |router, r| router.route(r.path, r.method_router()))
    };
    // The token is required of the `Token` routes only: `route_layer` wraps
    // the routes added before it.
    let v1 = add(Router::new(), Access::Token).route_layer(middleware::from_fn_with_state(
        state.tokens.clone(),
        require_token,
    ));
    let v1 = add(v1, Access::Public)
        // At most `max_concurrent` at once over every `/api/v1` route: one
        // semaphore (`GlobalConcurrencyLimitLayer`, since `Router::layer`
        // builds the layer once per route); past it `LoadShed` refuses a
        // request at once rather than queue it, and `shed` makes that our 503.
        .layer(
            ServiceBuilder::new()
                .layer(HandleErrorLayer::new(shed))
                .layer(LoadShedLayer::new())
                .layer(GlobalConcurrencyLimitLayer::new(state.max_concurrent)),
        );
    add(Router::new(), Access::Probe)
        .merge(v1)
        .fallback(|| async { ApiError::NotFound("no such path".into()) })
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}

/// A request the concurrency limit refused: 503 with `Retry-After`.
async fn shed(e: BoxError) -> Response {
    if e.is::<Overloaded>() {
        ApiError::Overloaded("too many requests at once; try again shortly".into()).into_response()
    } else {
        ApiError::Internal(e.to_string()).into_response()
    }
}

/// Runs `f` on the blocking pool: handlers whose work grows with the city
/// (walking or serialising every lamp) must not hold an async worker.
pub(crate) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ApiError::Internal(format!("a blocking task failed: {e}")))
}

/// The HTTP server on a runtime of its own: `api.threads` worker threads
/// (and its blocking pool) at `api.nice` below the process's priority, so
/// that however many requests arrive, a poller never waits in a run queue
/// behind them, and when the CPU is short the kernel gives it to polling
/// first. Everything the handlers share with the rest of the gateway is
/// runtime-agnostic (the live state's lock, channels, the store's pool).
#[derive(Debug)]
pub struct Server {
    runtime: Option<tokio::runtime::Runtime>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
    /// The router requests go to; a reload puts a new one here.
    current: Arc<parking_lot::RwLock<Router>>,
}

impl Server {
    /// Serves `app` on `listener` until `stop` is cancelled.
    pub fn start(
        listener: std::net::TcpListener,
        app: Router,
        settings: &ApiSettings,
        stop: CancellationToken,
    ) -> std::io::Result<Server> {
        listener.set_nonblocking(true)?;
        let base = own_niceness();
        let nice = (base + settings.nice).min(19);
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(settings.threads)
            .max_blocking_threads(settings.threads * 4)
            .thread_name("lampgw-api")
            .enable_all()
            .on_thread_start(move || {
                if nice != base {
                    set_niceness(nice);
                }
            })
            .build()?;
        let current = Arc::new(parking_lot::RwLock::new(app));
        // Each request goes to the router current when it arrives: one
        // that started before a reload finishes on the old one.
        let routed = current.clone();
        let serve = Router::new().fallback_service(tower::service_fn(
            move |req: axum::extract::Request| {
                let router = routed.read().clone();
                tower::ServiceExt::oneshot(router, req)
            },
        ));
        let task = runtime.spawn(async move {
            let listener = tokio::net::TcpListener::from_std(listener)?;
            // The peer's address for the console's login limits.
            let serve = serve.into_make_service_with_connect_info::<std::net::SocketAddr>();
            axum::serve(listener, serve)
                .with_graceful_shutdown(stop.cancelled_owned())
                .await
        });
        Ok(Server {
            runtime: Some(runtime),
            task,
            current,
        })
    }

    /// Serves `app` from the next request on (a reload's new state).
    pub fn replace(&self, app: Router) {
        *self.current.write() = app;
    }

    /// Waits until the server has stopped (after `stop`), then ends its runtime.
    pub async fn join(mut self) -> std::io::Result<()> {
        let result = (&mut self.task).await;
        result.map_err(std::io::Error::other)?
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        // Dropping a runtime waits for its blocking tasks, which an async
        // caller may not do; a stopped server has none left that matter.
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}

/// The calling thread's niceness (Linux keeps one per thread).
fn own_niceness() -> i32 {
    #[cfg(target_os = "linux")]
    {
        rustix::process::getpriority_process(Some(rustix::thread::gettid())).unwrap_or(0)
    }
    #[cfg(not(target_os = "linux"))]
    {
        0
    }
}

/// Sets the calling thread's niceness; a refusal is logged, never fatal.
fn set_niceness(nice: i32) {
    #[cfg(target_os = "linux")]
    if let Err(e) = rustix::process::setpriority_process(Some(rustix::thread::gettid()), nice) {
        tracing::warn!(nice, error = %e, "cannot lower the API threads' priority");
    }
    #[cfg(not(target_os = "linux"))]
    let _ = nice;
}
