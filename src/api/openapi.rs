//! The OpenAPI 3.1 document of the HTTP API, served at
//! `GET /api/v1/openapi.json` without a token: it describes the API, not the
//! city, and a client needs it before it has a token. Each operation is the
//! `#[utoipa::path]` next to its handler; the schemas are derived from the
//! types the handlers serialise. `tests/it/openapi.rs` checks that every
//! route of `routes::ROUTES` is in it, with its methods.

use super::error::{
    BadRequest, Conflict, Forbidden, Internal, Invalid, NotFound, TooLarge, Unauthorized,
    Unavailable, UnsupportedMediaType,
};
use super::{
    admin, alarms, cluster, commands, energy, evaluation, figures, health, history, inventory,
    lamps, reports, schedules,
};
use axum::body::Bytes;
use axum::http::header;
use axum::response::IntoResponse;
use std::sync::OnceLock;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

/// The document's description: what holds for every operation.
const DESCRIPTION: &str = "\
The HTTP API of lamp-gateway: the live state of a city's street lamps, \
cabinet RTUs and their single-lamp controllers, their history, the \
supervision figures, commands, and the night plan (schedules).

**Tokens.** Every `/api/v1` operation but this document needs \
`Authorization: Bearer <token>` (the scheme in any case). `viewer` reads; \
`operator` also sends commands and edits assignments and emergency shifts \
(a district operator, those in their district); `admin` also defines groups. \
Programs and calendars are city-wide: a city-wide operator or admin edits \
them. `/healthz`, `/readyz` and `/metrics` are open to probes and scrapers; \
`/readyz` shows its details to a city-wide token only.

**District scope.** A token with a district sees only that district. To it, \
another district's districts, cabinets, circuits, RTUs, lamps, groups and \
commands do not exist: they get exactly the answer an unknown id gets, the \
same status and code and a message naming only what was asked for (404 for a \
path id; 422 for a cabinet, circuit, district or group in a command \
selector; 400 for a district or cabinet as a list filter), never a 403 that \
would confirm that they exist. Every count (`total`, the figures) is of what \
the token sees, and it gets no city total.

**Errors** are `{\"error\": {\"code\", \"message\"}}` (`ErrorBody`); `code` is \
for programs, `message` for people. Every `/api/v1` operation may answer 503 \
`overloaded` with `Retry-After` when `api.max_concurrent` requests are being \
answered already.

**Lists** take `limit` (1 to 1000, default 100) and `offset` and answer \
`{total, limit, offset, items}`.";

#[derive(Debug, OpenApi)]
#[openapi(
    info(title = "lamp-gateway HTTP API", description = DESCRIPTION),
    paths(
        health::healthz,
        health::readyz,
        health::metrics,
        document,
        inventory::districts,
        inventory::district,
        inventory::cabinets,
        inventory::cabinet,
        inventory::rtus,
        inventory::rtu,
        lamps::lamps,
        lamps::lamp,
        lamps::transitions,
        history::lamp,
        history::rtu,
        figures::summary,
        alarms::alarms,
        alarms::summary,
        alarms::alarm,
        alarms::acknowledge,
        alarms::close,
        figures::districts,
        evaluation::roads,
        evaluation::lighting,
        evaluation::roads_window,
        evaluation::lighting_window,
        figures::online_rates,
        figures::alarm_figures,
        reports::monthly,
        reports::period,
        energy::energy,
        energy::saving,
        energy::maintenance,
        commands::lamp_command,
        commands::group_command,
        commands::get_command,
        commands::audit,
        commands::groups,
        commands::group,
        commands::put_group,
        admin::reload,
        cluster::cluster,
        schedules::book,
        schedules::preview,
        schedules::sun,
        schedules::state,
        schedules::put_program,
        schedules::delete_program,
        schedules::put_calendar,
        schedules::delete_calendar,
        schedules::put_assignment,
        schedules::delete_assignment,
        schedules::put_shift,
        schedules::delete_shift,
    ),
    components(responses(
        BadRequest,
        Conflict,
        Unauthorized,
        Forbidden,
        NotFound,
        TooLarge,
        UnsupportedMediaType,
        Invalid,
        Internal,
        Unavailable
    )),
    modifiers(&Bearer),
    tags(
        (name = "probes", description = "Liveness, readiness and Prometheus metrics: no token needed"),
        (name = "meta", description = "This document"),
        (name = "inventory", description = "Districts, cabinets, RTUs and lamps with their live state"),
        (name = "history", description = "A lamp's or an RTU's stored samples"),
        (name = "figures", description = "The supervision figures, now and over a window"),
        (name = "commands", description = "Commands, groups and the audit trail"),
        (name = "admin", description = "The gateway itself: reloading its configuration; the instances of a cluster"),
        (name = "schedules", description = "The night plan: programs, calendars, assignments to scopes and emergency shifts; a day's preview, sun times and what each governed target is now"),
    )
)]
pub struct ApiDoc;

/// The `bearer` security scheme every token operation names.
struct Bearer;

impl Modify for Bearer {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "A token of `lamp-gateway token new`; only its hash is in the settings",
                    ))
                    .build(),
            ),
        );
    }
}

/// The document as served, serialised once.
fn json() -> Bytes {
    static DOC: OnceLock<Bytes> = OnceLock::new();
    DOC.get_or_init(|| {
        Bytes::from(
            ApiDoc::openapi()
                .to_json()
                .expect("the OpenAPI document serialises"),
        )
    })
    .clone()
}

/// This document: the HTTP API's operations, parameters, bodies and answers.
#[utoipa::path(
    get,
    path = "/api/v1/openapi.json",
    tag = "meta",
    responses(
        (status = 200, description = "The OpenAPI 3.1 document", content_type = "application/json", body = Object),
        (status = 503, response = Unavailable),
    )
)]
pub(super) async fn document() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], json())
}
