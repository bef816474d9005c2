//! The control interface: a small HTTP/JSON server so tests and scripts can
//! flip faults, alarms and the clock of a running farm.

use crate::{CircuitFault, EndpointFault, RtuFault, SimError, Simulator, SlcFault};
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};
use tokio::net::TcpListener;

struct ApiError(StatusCode, &'static str, String);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = json!({"error": {"code": self.1, "message": self.2}});
        (self.0, Json(body)).into_response()
    }
}

impl From<JsonRejection> for ApiError {
    fn from(r: JsonRejection) -> Self {
        ApiError(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_body",
            r.body_text(),
        )
    }
}

impl From<SimError> for ApiError {
    fn from(e: SimError) -> Self {
        match e {
            SimError::NotFound(m) => ApiError(StatusCode::NOT_FOUND, "not_found", m),
            SimError::Unsupported(m) => ApiError(StatusCode::CONFLICT, "unsupported", m),
            SimError::Config(m) => ApiError(StatusCode::UNPROCESSABLE_ENTITY, "invalid", m),
            other => ApiError(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                other.to_string(),
            ),
        }
    }
}

type ApiResult = Result<Response, ApiError>;

fn endpoint(sim: &Simulator, i: usize) -> Result<usize, ApiError> {
    if i < sim.endpoint_count() {
        Ok(i)
    } else {
        Err(ApiError(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("no endpoint {i} (have {})", sim.endpoint_count()),
        ))
    }
}

fn slc(sim: &Simulator, i: usize, j: usize) -> Result<(usize, usize), ApiError> {
    let i = endpoint(sim, i)?;
    if j < sim.slcs_per_endpoint() {
        Ok((i, j))
    } else {
        Err(ApiError(
            StatusCode::NOT_FOUND,
            "not_found",
            format!(
                "no SLC {j} on endpoint {i} (have {})",
                sim.slcs_per_endpoint()
            ),
        ))
    }
}

/// Circuit `n` (1-based) of endpoint `i`'s cabinet, or 404.
fn circuit(sim: &Simulator, i: usize, n: usize) -> Result<(usize, usize), ApiError> {
    let i = endpoint(sim, i)?;
    if (1..=sim.circuits()).contains(&n) {
        Ok((i, n))
    } else {
        Err(ApiError(
            StatusCode::NOT_FOUND,
            "not_found",
            format!(
                "no circuit {n} on endpoint {i} (have 1 to {})",
                sim.circuits()
            ),
        ))
    }
}

fn ok(v: Value) -> ApiResult {
    Ok(Json(v).into_response())
}

async fn status(State(sim): State<Simulator>) -> ApiResult {
    ok(json!({
        "endpoints": sim.endpoint_count(),
        "slcs_per_endpoint": sim.slcs_per_endpoint(),
        "framing": sim.framing(),
        "slc_profile": sim.slc_profile().name,
        "rtu_profile": sim.rtu_profile().name,
        "frozen": sim.frozen(),
        "request_count": sim.request_count(),
        "link": sim.link_kind(),
    }))
}

async fn endpoints(State(sim): State<Simulator>) -> ApiResult {
    let list: Vec<Value> = (0..sim.endpoint_count())
        .map(|i| {
            let mut v = json!({
                "index": i,
                "addr": sim.inventory_endpoint(i),
                "fault": sim.endpoint_fault(i),
                "rtu_fault": sim.rtu_fault(i),
                "circuit_faults": circuit_faults(&sim, i),
                "request_count": sim.endpoint_request_count(i),
            });
            if let Some(id) = sim.registration(i) {
                v["registration"] = String::from_utf8_lossy(&id).into();
                v["connected"] = sim.dial_in_connected(i).into();
                v["connections"] = sim.dial_in_connections(i).into();
            }
            v
        })
        .collect();
    ok(Value::Array(list))
}

async fn put_fault(
    State(sim): State<Simulator>,
    Path(i): Path<usize>,
    body: Result<Json<EndpointFault>, JsonRejection>,
) -> ApiResult {
    let i = endpoint(&sim, i)?;
    let Json(fault) = body?;
    sim.try_set_endpoint_fault(i, Some(fault))?;
    ok(json!({"index": i, "fault": fault}))
}

async fn delete_fault(State(sim): State<Simulator>, Path(i): Path<usize>) -> ApiResult {
    let i = endpoint(&sim, i)?;
    sim.set_endpoint_fault(i, None);
    ok(json!({"index": i, "fault": null}))
}

async fn put_slc_fault(
    State(sim): State<Simulator>,
    Path((i, j)): Path<(usize, usize)>,
    body: Result<Json<SlcFault>, JsonRejection>,
) -> ApiResult {
    let (i, j) = slc(&sim, i, j)?;
    let Json(fault) = body?;
    sim.try_set_slc_fault(i, j, fault)?;
    ok(json!({"endpoint": i, "index": j, "fault": sim.slc_fault(i, j)}))
}

async fn get_slc_fault(
    State(sim): State<Simulator>,
    Path((i, j)): Path<(usize, usize)>,
) -> ApiResult {
    let (i, j) = slc(&sim, i, j)?;
    ok(json!({"endpoint": i, "index": j, "fault": sim.slc_fault(i, j)}))
}

async fn put_rtu_fault(
    State(sim): State<Simulator>,
    Path(i): Path<usize>,
    body: Result<Json<RtuFault>, JsonRejection>,
) -> ApiResult {
    let i = endpoint(&sim, i)?;
    let Json(fault) = body?;
    sim.set_rtu_fault(i, fault);
    ok(json!({"endpoint": i, "fault": fault}))
}

async fn get_rtu_fault(State(sim): State<Simulator>, Path(i): Path<usize>) -> ApiResult {
    let i = endpoint(&sim, i)?;
    ok(json!({"endpoint": i, "fault": sim.rtu_fault(i)}))
}

/// `{"1": fault, …}` for the circuits of endpoint `i` that have one.
fn circuit_faults(sim: &Simulator, i: usize) -> Value {
    let map = (1..=sim.circuits())
        .map(|n| (n, sim.circuit_fault(i, n)))
        .filter(|(_, f)| *f != CircuitFault::default())
        .map(|(n, f)| (n.to_string(), json!(f)))
        .collect();
    Value::Object(map)
}

async fn put_circuit_fault(
    State(sim): State<Simulator>,
    Path((i, n)): Path<(usize, usize)>,
    body: Result<Json<CircuitFault>, JsonRejection>,
) -> ApiResult {
    let (i, n) = circuit(&sim, i, n)?;
    let Json(fault) = body?;
    sim.try_set_circuit_fault(i, n, fault)?;
    get_circuit_fault(State(sim), Path((i, n))).await
}

async fn get_circuit_fault(
    State(sim): State<Simulator>,
    Path((i, n)): Path<(usize, usize)>,
) -> ApiResult {
    let (i, n) = circuit(&sim, i, n)?;
    ok(json!({"endpoint": i, "circuit": n, "fault": sim.circuit_fault(i, n)}))
}

async fn delete_circuit_fault(
    State(sim): State<Simulator>,
    Path((i, n)): Path<(usize, usize)>,
) -> ApiResult {
    let (i, n) = circuit(&sim, i, n)?;
    sim.try_set_circuit_fault(i, n, CircuitFault::default())?;
    get_circuit_fault(State(sim), Path((i, n))).await
}

async fn get_slc(State(sim): State<Simulator>, Path((i, j)): Path<(usize, usize)>) -> ApiResult {
    let (i, j) = slc(&sim, i, j)?;
    ok(serde_json::to_value(sim.slc_values(i, j)).unwrap_or_default())
}

async fn get_rtu(State(sim): State<Simulator>, Path(i): Path<usize>) -> ApiResult {
    let i = endpoint(&sim, i)?;
    ok(serde_json::to_value(sim.rtu_values(i)).unwrap_or_default())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Alarms {
    #[serde(default)]
    door: bool,
    #[serde(default)]
    leakage: bool,
}

async fn put_alarms(
    State(sim): State<Simulator>,
    Path(i): Path<usize>,
    body: Result<Json<Alarms>, JsonRejection>,
) -> ApiResult {
    let i = endpoint(&sim, i)?;
    let Json(a) = body?;
    sim.set_rtu_alarms(i, a.door, a.leakage);
    ok(json!({"door": a.door, "leakage": a.leakage}))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ReconnectQuery {
    #[serde(default)]
    half_open: bool,
}

async fn reconnect(
    State(sim): State<Simulator>,
    Path(i): Path<usize>,
    query: Result<Query<ReconnectQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult {
    let i = endpoint(&sim, i)?;
    let Query(q) = query.map_err(|r| {
        ApiError(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_query",
            r.body_text(),
        )
    })?;
    if q.half_open {
        sim.reconnect_endpoint_half_open(i)?;
    } else {
        sim.reconnect_endpoint(i)?;
    }
    ok(json!({"index": i, "half_open": q.half_open}))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Registration {
    id: String,
}

async fn put_registration(
    State(sim): State<Simulator>,
    Path(i): Path<usize>,
    body: Result<Json<Registration>, JsonRejection>,
) -> ApiResult {
    let i = endpoint(&sim, i)?;
    let Json(r) = body?;
    sim.set_registration_override(i, Some(r.id.into_bytes()))?;
    get_registration(State(sim), Path(i)).await
}

async fn delete_registration(State(sim): State<Simulator>, Path(i): Path<usize>) -> ApiResult {
    let i = endpoint(&sim, i)?;
    sim.set_registration_override(i, None)?;
    get_registration(State(sim), Path(i)).await
}

async fn get_registration(State(sim): State<Simulator>, Path(i): Path<usize>) -> ApiResult {
    let i = endpoint(&sim, i)?;
    let Some(id) = sim.registration(i) else {
        return Err(SimError::Unsupported(format!("endpoint {i} does not dial in")).into());
    };
    ok(json!({
        "index": i,
        "registration": String::from_utf8_lossy(&id),
        "cabinet_id": sim.cabinet_id(i),
        "connected": sim.dial_in_connected(i),
        "connections": sim.dial_in_connections(i),
    }))
}

async fn freeze(State(sim): State<Simulator>) -> ApiResult {
    sim.set_frozen(true);
    ok(json!({"frozen": true}))
}

async fn unfreeze(State(sim): State<Simulator>) -> ApiResult {
    sim.set_frozen(false);
    ok(json!({"frozen": false}))
}

async fn not_found() -> ApiError {
    ApiError(StatusCode::NOT_FOUND, "not_found", "no such route".into())
}

pub(crate) fn router(sim: Simulator) -> Router {
    Router::new()
        .route("/status", get(status))
        .route("/endpoints", get(endpoints))
        .route("/endpoints/{i}/fault", put(put_fault).delete(delete_fault))
        .route("/endpoints/{i}/slcs/{j}", get(get_slc))
        .route(
            "/endpoints/{i}/slcs/{j}/fault",
            put(put_slc_fault).get(get_slc_fault),
        )
        .route("/endpoints/{i}/rtu", get(get_rtu))
        .route("/endpoints/{i}/rtu/alarms", put(put_alarms))
        .route(
            "/endpoints/{i}/circuits/{n}/fault",
            put(put_circuit_fault)
                .get(get_circuit_fault)
                .delete(delete_circuit_fault),
        )
        .route(
            "/endpoints/{i}/rtu/fault",
            put(put_rtu_fault).get(get_rtu_fault),
        )
        .route("/endpoints/{i}/reconnect", post(reconnect))
        .route(
            "/endpoints/{i}/registration",
            put(put_registration)
                .get(get_registration)
                .delete(delete_registration),
        )
        .route("/freeze", post(freeze))
        .route("/unfreeze", post(unfreeze))
        .fallback(not_found)
        .with_state(sim)
}

pub(crate) async fn serve(sim: Simulator, listener: TcpListener) {
    let mut shutdown = sim.shared.shutdown.subscribe();
    let app = router(sim);
    let stop = async move {
        let _ = shutdown.wait_for(|s| *s).await;
    };
    if let Err(e) = axum::serve(listener, app)
        .with_graceful_shutdown(stop)
        .await
    {
        tracing::error!(error = %e, "control server failed");
    }
}
