//! `GET /api/v1/cluster`: the gateway instances sharing the store, what each
//! holds, and the endpoints nobody holds — read from the database, so any
//! instance answers for the whole cluster.

use super::error::{Forbidden, Unauthorized, Unavailable};
use super::{ApiError, AppState};
use crate::auth::Principal;
use crate::cluster::ClusterView;
use axum::extract::State;
use axum::Json;

/// `GET /api/v1/cluster` — city-wide tokens: every instance (id, version,
/// start, last heartbeat, live, endpoints held) and the unassigned
/// endpoints. A gateway not in cluster mode answers `enabled: false`.
#[utoipa::path(
    get,
    path = "/api/v1/cluster",
    tag = "admin",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The instances and the endpoints nobody holds", body = ClusterView),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 503, response = Unavailable),
    )
)]
pub(super) async fn cluster(
    State(s): State<AppState>,
    p: Principal,
) -> Result<Json<ClusterView>, ApiError> {
    // Which instance polls which endpoint is about the whole city.
    if p.district.is_some() {
        return Err(ApiError::Forbidden(
            "the cluster is shown to city-wide tokens only".into(),
        ));
    }
    let Some(cluster) = &s.cluster else {
        return Ok(Json(ClusterView::single(&s.figures.gateway_id)));
    };
    cluster
        .view()
        .await
        .map(Json)
        .map_err(|e| ApiError::NotReady(format!("cannot read the cluster: {e}")))
}
