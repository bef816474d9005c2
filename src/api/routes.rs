//! Every route of the HTTP API, in one table: `router` is built from it, and
//! the OpenAPI test (`tests/it/openapi.rs`) checks the document against it,
//! so a route added here without an `#[utoipa::path]` in `openapi.rs` fails
//! that test.

use super::{
    admin, alarms, cluster, commands, energy, evaluation, figures, health, history, inventory,
    lamps, openapi, reports, schedules, AppState,
};
use axum::http::Method;
use axum::routing::{on, MethodFilter, MethodRouter};

/// Who may call a route, and whether it counts against `api.max_concurrent`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Under `/api/v1`: a bearer token, within `api.max_concurrent`.
    Token,
    /// Under `/api/v1` without a token (the API's own description), within
    /// `api.max_concurrent`.
    Public,
    /// Probes and scrapes: no token needed (`/readyz` reads one if sent) and
    /// never shed, so that they answer under load.
    Probe,
}

/// One method of one path and its handler.
#[derive(Debug)]
pub struct Route {
    pub method: Method,
    /// As axum and OpenAPI spell it: `{id}` for a path parameter.
    pub path: &'static str,
    pub access: Access,
    pub(super) handler: fn(MethodFilter) -> MethodRouter<AppState>,
}

impl Route {
    /// The handler routed for this route's method only.
    pub(super) fn method_router(&self) -> MethodRouter<AppState> {
        let filter = MethodFilter::try_from(self.method.clone())
            .unwrap_or_else(|e| panic!("{} {}: {e}", self.method, self.path));
        (self.handler)(filter)
    }
}

const fn route(
    method: Method,
    path: &'static str,
    access: Access,
    handler: fn(MethodFilter) -> MethodRouter<AppState>,
) -> Route {
    Route {
        method,
        path,
        access,
        handler,
    }
}

use Access::{Probe, Public, Token};

/// The HTTP API, every method of every path.
pub const ROUTES: &[Route] = &[
    route(Method::GET, "/healthz", Probe, |m| on(m, health::healthz)),
    route(Method::GET, "/readyz", Probe, |m| on(m, health::readyz)),
    route(Method::GET, "/metrics", Probe, |m| on(m, health::metrics)),
    route(Method::GET, "/api/v1/openapi.json", Public, |m| {
        on(m, openapi::document)
    }),
    route(Method::GET, "/api/v1/districts", Token, |m| {
        on(m, inventory::districts)
    }),
    route(Method::GET, "/api/v1/districts/{id}", Token, |m| {
        on(m, inventory::district)
    }),
    route(Method::GET, "/api/v1/cabinets", Token, |m| {
        on(m, inventory::cabinets)
    }),
    route(Method::GET, "/api/v1/cabinets/{id}", Token, |m| {
        on(m, inventory::cabinet)
    }),
    route(Method::GET, "/api/v1/rtus", Token, |m| {
        on(m, inventory::rtus)
    }),
    route(Method::GET, "/api/v1/rtus/{id}", Token, |m| {
        on(m, inventory::rtu)
    }),
    route(Method::GET, "/api/v1/lamps", Token, |m| on(m, lamps::lamps)),
    route(Method::GET, "/api/v1/lamps/{id}", Token, |m| {
        on(m, lamps::lamp)
    }),
    route(Method::GET, "/api/v1/transitions", Token, |m| {
        on(m, lamps::transitions)
    }),
    route(Method::GET, "/api/v1/lamps/{id}/history", Token, |m| {
        on(m, history::lamp)
    }),
    route(Method::GET, "/api/v1/rtus/{id}/history", Token, |m| {
        on(m, history::rtu)
    }),
    route(Method::GET, "/api/v1/metrics/summary", Token, |m| {
        on(m, figures::summary)
    }),
    route(Method::GET, "/api/v1/metrics/districts", Token, |m| {
        on(m, figures::districts)
    }),
    route(Method::GET, "/api/v1/metrics/roads", Token, |m| {
        on(m, evaluation::roads)
    }),
    route(Method::GET, "/api/v1/metrics/lighting", Token, |m| {
        on(m, evaluation::lighting)
    }),
    route(Method::GET, "/api/v1/metrics/roads/window", Token, |m| {
        on(m, evaluation::roads_window)
    }),
    route(Method::GET, "/api/v1/metrics/lighting/window", Token, |m| {
        on(m, evaluation::lighting_window)
    }),
    route(Method::GET, "/api/v1/metrics/online-rates", Token, |m| {
        on(m, figures::online_rates)
    }),
    route(Method::GET, "/api/v1/metrics/alarms", Token, |m| {
        on(m, figures::alarm_figures)
    }),
    route(Method::GET, "/api/v1/reports/monthly", Token, |m| {
        on(m, reports::monthly)
    }),
    route(Method::GET, "/api/v1/reports/period", Token, |m| {
        on(m, reports::period)
    }),
    route(Method::GET, "/api/v1/metrics/energy", Token, |m| {
        on(m, energy::energy)
    }),
    route(Method::GET, "/api/v1/metrics/saving", Token, |m| {
        on(m, energy::saving)
    }),
    route(Method::GET, "/api/v1/metrics/maintenance", Token, |m| {
        on(m, energy::maintenance)
    }),
    route(Method::GET, "/api/v1/alarms", Token, |m| {
        on(m, alarms::alarms)
    }),
    route(Method::GET, "/api/v1/alarms/summary", Token, |m| {
        on(m, alarms::summary)
    }),
    route(Method::GET, "/api/v1/alarms/{id}", Token, |m| {
        on(m, alarms::alarm)
    }),
    route(Method::POST, "/api/v1/alarms/{id}/ack", Token, |m| {
        on(m, alarms::acknowledge)
    }),
    route(Method::POST, "/api/v1/alarms/{id}/close", Token, |m| {
        on(m, alarms::close)
    }),
    route(Method::POST, "/api/v1/lamps/{id}/commands", Token, |m| {
        on(m, commands::lamp_command)
    }),
    route(Method::POST, "/api/v1/commands", Token, |m| {
        on(m, commands::group_command)
    }),
    route(Method::GET, "/api/v1/commands/{id}", Token, |m| {
        on(m, commands::get_command)
    }),
    route(Method::GET, "/api/v1/audit", Token, |m| {
        on(m, commands::audit)
    }),
    route(Method::GET, "/api/v1/groups", Token, |m| {
        on(m, commands::groups)
    }),
    route(Method::GET, "/api/v1/groups/{name}", Token, |m| {
        on(m, commands::group)
    }),
    route(Method::PUT, "/api/v1/groups/{name}", Token, |m| {
        on(m, commands::put_group)
    }),
    route(Method::POST, "/api/v1/admin/reload", Token, |m| {
        on(m, admin::reload)
    }),
    route(Method::GET, "/api/v1/cluster", Token, |m| {
        on(m, cluster::cluster)
    }),
    route(Method::GET, "/api/v1/schedules", Token, |m| {
        on(m, schedules::book)
    }),
    route(Method::GET, "/api/v1/schedules/preview", Token, |m| {
        on(m, schedules::preview)
    }),
    route(Method::GET, "/api/v1/schedules/sun", Token, |m| {
        on(m, schedules::sun)
    }),
    route(Method::GET, "/api/v1/schedules/state", Token, |m| {
        on(m, schedules::state)
    }),
    route(Method::PUT, "/api/v1/programs/{id}", Token, |m| {
        on(m, schedules::put_program)
    }),
    route(Method::DELETE, "/api/v1/programs/{id}", Token, |m| {
        on(m, schedules::delete_program)
    }),
    route(Method::PUT, "/api/v1/calendars/{id}", Token, |m| {
        on(m, schedules::put_calendar)
    }),
    route(Method::DELETE, "/api/v1/calendars/{id}", Token, |m| {
        on(m, schedules::delete_calendar)
    }),
    route(Method::PUT, "/api/v1/assignments/{id}", Token, |m| {
        on(m, schedules::put_assignment)
    }),
    route(Method::DELETE, "/api/v1/assignments/{id}", Token, |m| {
        on(m, schedules::delete_assignment)
    }),
    route(Method::PUT, "/api/v1/emergency-shifts/{id}", Token, |m| {
        on(m, schedules::put_shift)
    }),
    route(
        Method::DELETE,
        "/api/v1/emergency-shifts/{id}",
        Token,
        |m| on(m, schedules::delete_shift),
    ),
];
