//! Liveness, readiness and Prometheus metrics.

use super::{ApiError, AppState};
use crate::figures::{Counts, Summary};
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::Json;
use serde_json::{json, Value};
use std::fmt::Write;

pub async fn healthz() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

/// Ready once every endpoint has been polled at least once: before that,
/// "now" figures would describe the gateway's start, not the city. A degraded
/// store does not make the gateway unready: it still polls and serves "now",
/// and keeps what it cannot write in its spool; the body says `degraded`.
pub async fn readyz(State(s): State<AppState>) -> Result<Json<Value>, ApiError> {
    let live = s.live.read();
    let waiting = live.endpoints.iter().filter(|e| !e.polled).count();
    if waiting > 0 {
        return Err(ApiError::NotReady(format!(
            "{waiting} of {} endpoints not polled yet",
            live.endpoints.len()
        )));
    }
    let connected = live.endpoints.iter().filter(|e| e.connected).count();
    let store = match &s.store {
        Some(st) => serde_json::to_value(st.view()).unwrap_or(Value::Null),
        None => json!({ "state": "disabled" }),
    };
    // The broker link is shown, not required: the API and polling serve
    // without it, and events wait in the outbox until it is back.
    let mqtt = s.mqtt.as_ref().map(|m| m.snapshot());
    Ok(Json(json!({
        "status": "ready",
        "endpoints": live.endpoints.len(),
        "endpoints_connected": connected,
        "store": store,
        "mqtt": mqtt,
    })))
}

/// Prometheus text exposition, one family at a time.
struct Exposition(String);

impl Exposition {
    fn family(&mut self, name: &str, kind: &str, help: &str, samples: &[(String, f64)]) {
        let _ = writeln!(self.0, "# HELP {name} {help}\n# TYPE {name} {kind}");
        for (labels, v) in samples {
            let _ = writeln!(self.0, "{name}{labels} {v}");
        }
    }
    fn one(&mut self, name: &str, kind: &str, help: &str, v: f64) {
        self.family(name, kind, help, &[(String::new(), v)]);
    }
}

fn label(k: &str, v: &str) -> String {
    format!("{{{k}=\"{v}\"}}")
}

/// Prometheus text format. Labels are low-cardinality only: device class,
/// failure kind, and scope (`city` or a district id).
pub async fn metrics(State(s): State<AppState>) -> impl IntoResponse {
    let mut out = Exposition(String::with_capacity(8192));
    {
        let live = s.live.read();
        let eps = &live.endpoints;
        let by_class = |f: &dyn Fn(usize) -> f64| {
            vec![(label("class", "rtu"), f(0)), (label("class", "slc"), f(1))]
        };
        out.one(
            "lampgw_endpoints",
            "gauge",
            "Modbus endpoints configured",
            eps.len() as f64,
        );
        out.one(
            "lampgw_endpoints_connected",
            "gauge",
            "Endpoints with an open connection",
            eps.iter().filter(|e| e.connected).count() as f64,
        );
        out.family(
            "lampgw_poll_cycles_total",
            "counter",
            "Endpoint poll cycles completed",
            &by_class(&|c| eps.iter().map(|e| e.cycles[c]).sum::<u64>() as f64),
        );
        out.family(
            "lampgw_poll_cycle_seconds_max",
            "gauge",
            "Longest last poll cycle over the endpoints",
            &by_class(&|c| eps.iter().map(|e| e.last_cycle_ms[c]).fold(0.0, f64::max) / 1e3),
        );
        out.family(
            "lampgw_modbus_reads_total",
            "counter",
            "Modbus read requests by result",
            &[
                (
                    label("result", "ok"),
                    eps.iter().map(|e| e.reads_ok).sum::<u64>() as f64,
                ),
                (
                    label("result", "failed"),
                    eps.iter().map(|e| e.reads_failed).sum::<u64>() as f64,
                ),
            ],
        );
        out.one(
            "lampgw_device_samples_total",
            "counter",
            "Successful device polls",
            live.samples_total as f64,
        );
        let failures: Vec<(String, f64)> = live
            .failures_by_kind
            .iter()
            .map(|(k, v)| (label("kind", k), *v as f64))
            .collect();
        out.family(
            "lampgw_device_poll_failures_total",
            "counter",
            "Failed device polls by kind",
            &failures,
        );
        out.one(
            "lampgw_transitions_total",
            "counter",
            "Online/offline transitions",
            live.transitions_total as f64,
        );
    }
    out.one(
        "lampgw_full_poll_cycles",
        "gauge",
        "Poll cycles completed by every endpoint",
        s.live.full_cycles() as f64,
    );

    let now = s.now_cache.get(&s.live);
    let (city, districts) = &*now;
    let scopes: Vec<_> = std::iter::once(city).chain(districts).collect();
    let series = |f: &dyn Fn(&Summary) -> Option<f64>| {
        scopes
            .iter()
            .filter_map(|x| f(x).map(|v| (label("scope", &x.scope), v)))
            .collect::<Vec<_>>()
    };
    type CountFamily = (&'static str, &'static str, fn(&Counts) -> u64);
    let counts: [CountFamily; 8] = [
        ("lampgw_cabinets", "Cabinets in inventory", |c| {
            c.cabinets_total
        }),
        ("lampgw_rtus_installed", "Cabinets with an RTU", |c| {
            c.rtus_installed
        }),
        ("lampgw_rtus_online", "RTUs online", |c| c.rtus_online),
        ("lampgw_lamps", "Lamps in inventory", |c| c.lamps_total),
        ("lampgw_slcs_installed", "Lamps with an SLC", |c| {
            c.slcs_installed
        }),
        ("lampgw_slcs_online", "SLCs online", |c| c.slcs_online),
        ("lampgw_lamps_lit", "Lamps lit", |c| c.lamps_lit),
        (
            "lampgw_lamps_expected_lit",
            "Lamps that should be lit",
            |c| c.lamps_expected_lit,
        ),
    ];
    for (name, help, get) in counts {
        out.family(
            name,
            "gauge",
            help,
            &series(&|x| Some(get(&x.counts) as f64)),
        );
    }
    type RatioFamily = (&'static str, &'static str, fn(&Summary) -> Option<f64>);
    let ratios: [RatioFamily; 6] = [
        (
            "lampgw_rtu_installation_ratio",
            "RTUs installed / cabinets",
            |x| x.rtu_installation_ratio,
        ),
        ("lampgw_rtu_online_rate", "RTUs online / installed", |x| {
            x.rtu_online_rate
        }),
        ("lampgw_slc_control_share", "SLCs installed / lamps", |x| {
            x.slc_control_share
        }),
        ("lampgw_slc_online_rate", "SLCs online / installed", |x| {
            x.slc_online_rate
        }),
        (
            "lampgw_lighting_rate",
            "Lamps lit / lamps that should be lit",
            |x| x.lighting_rate,
        ),
        (
            "lampgw_facility_intact_rate",
            "Controllers without active fault / installed",
            |x| x.facility_intact_rate,
        ),
    ];
    for (name, help, get) in ratios {
        out.family(name, "gauge", help, &series(&get));
    }
    if let Some(st) = &s.store {
        use std::sync::atomic::Ordering::Relaxed;
        let v = &st.status;
        out.one(
            "lampgw_store_degraded",
            "gauge",
            "1 while the store cannot write or is replaying its spool",
            f64::from(u8::from(v.degraded())),
        );
        out.one(
            "lampgw_store_queued_rows",
            "gauge",
            "Rows waiting in memory for the database",
            v.queued_rows.load(Relaxed) as f64,
        );
        out.one(
            "lampgw_store_spooled_rows",
            "gauge",
            "Rows waiting in the spool file",
            v.spooled_rows.load(Relaxed) as f64,
        );
        out.one(
            "lampgw_store_spooled_bytes",
            "gauge",
            "Bytes waiting in the spool file",
            v.spooled_bytes.load(Relaxed) as f64,
        );
        out.family(
            "lampgw_store_rows_written_total",
            "counter",
            "Rows written to the database by table",
            &[
                (
                    label("table", "lamp_samples"),
                    v.lamp_rows.load(Relaxed) as f64,
                ),
                (
                    label("table", "rtu_samples"),
                    v.rtu_rows.load(Relaxed) as f64,
                ),
                (
                    label("table", "transitions"),
                    v.transition_rows.load(Relaxed) as f64,
                ),
            ],
        );
        out.one(
            "lampgw_store_write_failures_total",
            "counter",
            "Failed database writes and connection attempts",
            v.write_failures.load(Relaxed) as f64,
        );
        out.one(
            "lampgw_store_intake_overflows_total",
            "counter",
            "Batches queued on the state task because the store's intake channel was full",
            v.intake_overflows.load(Relaxed) as f64,
        );
    }
    if let Some(m) = &s.mqtt {
        let m = m.snapshot();
        out.one(
            "lampgw_mqtt_connected",
            "gauge",
            "1 while the MQTT broker link is up",
            f64::from(u8::from(m.connected)),
        );
        out.one(
            "lampgw_mqtt_connects_total",
            "counter",
            "MQTT connections established",
            m.connects as f64,
        );
        out.one(
            "lampgw_mqtt_connection_errors_total",
            "counter",
            "MQTT connections lost or refused",
            m.connection_errors as f64,
        );
        out.family(
            "lampgw_mqtt_published_total",
            "counter",
            "Publishes acknowledged by the broker, by kind",
            &[
                (label("kind", "state"), m.states_published as f64),
                (label("kind", "event"), m.events_published as f64),
            ],
        );
        out.one(
            "lampgw_mqtt_events_raised_total",
            "counter",
            "Events queued for the broker",
            m.events_raised as f64,
        );
        out.family(
            "lampgw_mqtt_events_queued",
            "gauge",
            "Events waiting for the broker, by place",
            &[
                (label("place", "memory"), m.events_queued as f64),
                (label("place", "disk"), m.events_spilled as f64),
            ],
        );
        out.one(
            "lampgw_mqtt_events_spilled_total",
            "counter",
            "Events written to the spill folder",
            m.events_spilled_total as f64,
        );
        out.one(
            "lampgw_mqtt_states_pending",
            "gauge",
            "Devices whose state waits to be published",
            m.states_pending as f64,
        );
        out.one(
            "lampgw_mqtt_in_flight",
            "gauge",
            "Publishes handed to the client without PUBACK yet",
            m.in_flight as f64,
        );
        out.one(
            "lampgw_mqtt_samples_skipped_total",
            "counter",
            "Samples left out because the MQTT task was behind (state rescanned instead)",
            m.samples_skipped as f64,
        );
    }
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], out.0)
}
