//! `POST /api/v1/admin/reload`: the same reload as `SIGHUP`, for a
//! city-wide admin, answered with what it changed or why it changed nothing.
//! The API only asks; the application, which owns the pollers, reloads.

use super::error::{Conflict, Forbidden, Invalid, Unauthorized, Unavailable};
use super::{ApiError, AppState};
use crate::auth::{Principal, Role};
use crate::inventory::ConfigIssue;
use crate::poll::PollerChanges;
use axum::extract::State;
use axum::Json;
use serde::Serialize;
use tokio::sync::{mpsc, oneshot};
use utoipa::ToSchema;

/// One reload asked for, by whom (`sighup` or a token's name), and where
/// its answer goes.
#[derive(Debug)]
pub struct ReloadRequest {
    pub by: String,
    pub reply: oneshot::Sender<Result<ReloadReport, ReloadError>>,
}

/// Where reloads are asked for.
pub type Reloads = mpsc::Sender<ReloadRequest>;

/// What a reload changed.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ReloadReport {
    #[schema(value_type = EndpointChanges)]
    pub endpoints: PollerChanges,
    pub lamps: usize,
    pub cabinets: usize,
    pub tokens: usize,
    pub groups: usize,
    /// Settings that differ from the running ones but take effect only at
    /// the next start (a reload applies inventory, profiles, groups and
    /// tokens).
    pub restart_needed: Vec<String>,
    pub took_ms: f64,
}

/// `poll::PollerChanges` as the document shows it (poll/ is Modbus, not
/// HTTP): what a reload did to the pollers, by endpoint address.
#[derive(ToSchema)]
#[allow(dead_code)]
struct EndpointChanges {
    /// Polling on without a pause: same link, same devices, same plan.
    kept: Vec<String>,
    /// Stopped and started again: the link or the plan changed.
    restarted: Vec<String>,
    started: Vec<String>,
    stopped: Vec<String>,
}

/// Why a reload changed nothing.
#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    #[error("the settings do not load: {0}")]
    Settings(String),
    #[error("configuration has {} problem(s); nothing was changed", .0.len())]
    Config(Vec<ConfigIssue>),
    #[error("the gateway is stopping")]
    Stopping,
}

/// `POST /api/v1/admin/reload` — city-wide admins only: reads the settings
/// file, inventory, profiles, groups and tokens again, as `SIGHUP` does.
#[utoipa::path(
    post,
    path = "/api/v1/admin/reload",
    tag = "admin",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Reloaded: what changed", body = ReloadReport),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 409, response = Conflict),
        (status = 422, response = Invalid),
        (status = 503, response = Unavailable),
    )
)]
pub(super) async fn reload(
    State(s): State<AppState>,
    p: Principal,
) -> Result<Json<ReloadReport>, ApiError> {
    if p.role != Role::Admin || p.district.is_some() {
        return Err(ApiError::Forbidden(
            "only a city-wide admin reloads the configuration".into(),
        ));
    }
    let reloads = s.reloads.as_ref().ok_or_else(|| {
        ApiError::Conflict("this gateway cannot reload (no settings file)".into())
    })?;
    let (reply, answer) = oneshot::channel();
    reloads
        .send(ReloadRequest {
            by: p.name.clone(),
            reply,
        })
        .await
        .map_err(|_| ApiError::NotReady(ReloadError::Stopping.to_string()))?;
    match answer.await {
        Ok(Ok(report)) => Ok(Json(report)),
        Ok(Err(ReloadError::Config(issues))) => Err(ApiError::Unprocessable(format!(
            "configuration has {} problem(s); nothing was changed: {}",
            issues.len(),
            issues
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("; ")
        ))),
        Ok(Err(e @ ReloadError::Settings(_))) => Err(ApiError::Unprocessable(e.to_string())),
        Ok(Err(ReloadError::Stopping)) | Err(_) => {
            Err(ApiError::NotReady(ReloadError::Stopping.to_string()))
        }
    }
}
