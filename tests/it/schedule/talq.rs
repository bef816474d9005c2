//! A TALQ CMS's calendars, control programs and assign commands on the
//! schedule's own book, over a real socket on the schedule's clock: a CMS
//! creates a fixed-time and an astro program and a calendar of both,
//! assigns it to a group, and the group's lamps on the simulator follow it
//! (a weekday's and a weekend's night) while the others keep the city's
//! calendar; a program's change reaches the lamps; the objects survive a
//! restart and show on /api/v1; what TALQ cannot express is refused in its
//! error shape; un-assigning sends the group back to the city's calendar.
//! Every answer validates against the TALQ documents (when present).

use super::{local, Night};
use crate::common::{lamp_id, ADMIN_TOKEN};
use crate::talq::{answer, documents, gateway, CMS};
use lamp_gateway::auth::{hash_token, Role, TokenConfig};
use lamp_gateway::control::GroupConfig;
use serde_json::{json, Value};
use uuid::Uuid;

const VIEWER: &str = "lgw_test_talq_book_viewer";

fn level(l: u8) -> Value {
    json!({"state": {"name": "LevelState", "value": l}})
}

/// The lamps of the group (endpoint, SLC).
const RIVERSIDE: [(usize, usize); 3] = [(0, 0), (0, 1), (1, 0)];

fn in_group(e: usize, j: usize) -> bool {
    RIVERSIDE.contains(&(e, j))
}

struct Cms<'a> {
    n: &'a Night,
    docs: Option<crate::talq::Documents>,
}

impl Cms<'_> {
    /// A TALQ request; the answer is validated against the document's
    /// `spec` path (as documented for its method and status).
    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        spec: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let request = Uuid::from_u128(fastrand::u128(..));
        self.call_as(ADMIN_TOKEN, request, method, path, spec, body)
            .await
    }

    /// [`Cms::call`] with a token and a `talqRequestId` of the test's.
    async fn call_as(
        &self,
        token: &str,
        request: Uuid,
        method: reqwest::Method,
        path: &str,
        spec: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let write = method != reqwest::Method::GET;
        let mut query = format!("clientAddress={CMS}");
        if write {
            query.push_str(&format!("&talqRequestId={request}"));
        }
        let mut r = self
            .n
            .http
            .request(
                method.clone(),
                format!("{}/talq{path}?{query}", self.n.base),
            )
            .bearer_auth(token)
            .header("talq-api-version", "2.7.1");
        if let Some(b) = body {
            r = r.json(&b);
        }
        let (status, v) = answer(r).await;
        if let Some(d) = &self.docs {
            d.validate(spec, &method.as_str().to_lowercase(), status, &v);
        }
        (status, v)
    }

    async fn get(&self, path: &str, spec: &str) -> (u16, Value) {
        self.call(reqwest::Method::GET, path, spec, None).await
    }

    async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        self.call(reqwest::Method::POST, path, path, Some(body))
            .await
    }
}

fn evening(late: u8) -> Value {
    json!({
        "type": "ControlProgramOne", "id": "evening", "ownerCMS": CMS,
        "activePeriods": [{"name": "AbsoluteActivePeriod", "startTime": "00:00:00", "endTime": "00:00:00"}],
        "fixedTimeControls": [
            {"startTime": "06:00:00", "command": level(0)},
            {"startTime": "17:00:00+08:00", "command": level(100)},
            {"startTime": "22:00:00", "command": level(late)},
        ]
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cms_calendar_assigned_to_a_group_runs_its_lamps() {
    let monday = "2026-12-21";
    let saturday = "2026-12-26";
    let mut n = Night::start_with(local(monday, "12:00"), |s| {
        s.talq.enabled = true;
        s.talq.cms_address = Some(CMS.parse().unwrap());
        s.auth.tokens.push(TokenConfig {
            name: "talq-viewer".into(),
            hash: hash_token(VIEWER),
            role: Role::Viewer,
            district: None,
        });
        s.control.groups.push(GroupConfig {
            name: "riverside".into(),
            lamps: RIVERSIDE.iter().map(|&(e, j)| lamp_id(e, j)).collect(),
        });
    })
    .await;
    let cms = Cms {
        n: &n,
        docs: documents(),
    };

    // The city's own programs mix sun and fixed points (and every other
    // lamp): TALQ cannot say them, so none is offered.
    let (status, list) = cms.get("/control-programs", "/control-programs").await;
    assert_eq!((status, list.clone()), (200, json!([])), "{list}");
    let (_, list) = cms.get("/calendars", "/calendars").await;
    assert_eq!(list, json!([]));

    let (status, made) = cms.post("/control-programs", json!([evening(40), {
        "type": "ControlProgramOne", "id": "dusk", "ownerCMS": CMS, "activePeriods": [],
        "fixedTimeControls": [],
        "astroClockTimeControls": [
            {"offset": -10, "solarEventType": "sunset", "operation": "Set", "command": level(100)},
            {"offset": 10, "solarEventType": "sunrise", "operation": "Set", "command": level(0)},
        ]
    }]))
    .await;
    assert_eq!(status, 201, "{made}");
    assert_eq!(
        made[0]["fixedTimeControls"][2]["startTime"],
        "22:00:00+08:00"
    );
    assert_eq!(made[1]["astroClockTimeControls"][0]["offset"], -10);

    // What would not run as TALQ reads it is refused, and nothing is kept.
    let (status, e) = cms
        .post("/control-programs", json!([{
            "type": "ControlProgramOne", "id": "mixed", "ownerCMS": CMS, "activePeriods": [],
            "fixedTimeControls": [{"startTime": "23:30:00", "command": level(50)}],
            "astroClockTimeControls": [{"offset": 0, "solarEventType": "sunset", "operation": "Set", "command": level(100)}]
        }]))
        .await;
    assert_eq!(
        (status, e[0]["key"].as_str()),
        (422, Some("serviceConstraintExceeded")),
        "{e}"
    );
    let (status, e) = cms
        .post(
            "/calendars",
            json!([{"id": "x", "ownerCMS": CMS, "defaultProgram": "night"}]),
        )
        .await;
    assert_eq!(
        (status, e[0]["key"].as_str()),
        (422, Some("relatedResourceNotFound")),
        "{e}"
    );

    let calendar = json!({"id": "cms-city", "ownerCMS": CMS, "defaultProgram": "evening",
        "rules": [{"program": "dusk", "condition": {"type": "ccDay", "days": [{"start": 6, "end": 7}]}}]});
    // A viewer's token reads but does not write.
    let (status, e) = cms
        .call_as(
            VIEWER,
            Uuid::from_u128(1),
            reqwest::Method::POST,
            "/calendars",
            "/calendars",
            Some(json!([calendar])),
        )
        .await;
    assert_eq!(status, 403, "{e}");
    // A CMS's retry (the same talqRequestId) is answered as the first was.
    let request = Uuid::from_u128(fastrand::u128(..));
    let post = || {
        cms.call_as(
            ADMIN_TOKEN,
            request,
            reqwest::Method::POST,
            "/calendars",
            "/calendars",
            Some(json!([calendar])),
        )
    };
    let (status, made) = post().await;
    assert_eq!(status, 201, "{made}");
    assert_eq!(
        post().await,
        (201, made.clone()),
        "the retry is the same write"
    );
    assert_eq!(
        made[0]["rules"][0]["condition"]["days"],
        json!([{"start": 6}, {"start": 7}])
    );
    let (status, e) = cms.post("/calendars", json!([calendar])).await;
    assert_eq!(
        (status, e[0]["key"].as_str()),
        (409, Some("resourceConflict")),
        "{e}"
    );
    let (status, one) = cms
        .get("/calendars/cms-city", "/calendars/{calendarAddress}")
        .await;
    assert_eq!(
        (status, &one["defaultProgram"]),
        (200, &json!("evening")),
        "{one}"
    );
    let (_, count) = cms.get("/calendars/count", "/calendars/count").await;
    assert_eq!(count, json!(1));

    // Assigned to the group; an RTU has no lamp actuator to follow it.
    let group = lamp_gateway::talq::group_address(&gateway(), "riverside");
    let assign = |calendar: &str| {
        json!({"addresses": [{"resource": "groups", "address": group.to_string()}],
               "entity": {"resource": "calendars", "address": calendar}})
    };
    let (status, body) = cms.post("/assign-commands", assign("cms-city")).await;
    assert_eq!(status, 201, "{body}");
    let rtu = lamp_gateway::talq::rtu_address(&gateway(), &crate::common::rtu_id(0));
    let (status, e) = cms
        .post(
            "/assign-commands",
            json!({"addresses": [{"resource": "devices", "address": rtu.to_string()}],
               "entity": {"resource": "calendars", "address": "cms-city"}}),
        )
        .await;
    assert_eq!(
        (status, e[0]["key"].as_str()),
        (422, Some("assignmentAddressNotValid")),
        "{e}"
    );
    let (_, assigned) = cms.get("/assign-commands", "/assign-commands").await;
    assert_eq!(
        assigned[0]["addresses"][0]["address"],
        group.to_string(),
        "{assigned}"
    );

    // A weekday night: the group at the CMS's 40 % from 22:00, the others
    // on the city's night (50 % on odd lamps, even ones off at 23:30).
    n.set(local(monday, "23:45")).await;
    let odd = n.odd.clone();
    let city_night = |e: usize, j: usize| {
        if odd[e][j] {
            (true, Some(50.0))
        } else {
            (false, None)
        }
    };
    let weekday = |e: usize, j: usize| {
        if in_group(e, j) {
            (true, Some(40.0))
        } else {
            city_night(e, j)
        }
    };
    n.wait_lamps(
        "the group at 40 %, the others on the city's night",
        &weekday,
    )
    .await;
    let lamp = lamp_gateway::talq::lamp_address(&gateway(), &lamp_id(0, 0));
    let (_, actuator) = cms
        .get(
            &format!("/devices/{lamp}/lampActuator"),
            "/devices/{deviceAddress}/{functionId}",
        )
        .await;
    assert_eq!(actuator["calendarID"]["value"], "cms-city", "{actuator}");
    if let Some(d) = &cms.docs {
        d.validate_function(&actuator);
    }
    let other = lamp_gateway::talq::lamp_address(&gateway(), &lamp_id(1, 1));
    let (_, actuator) = cms
        .get(
            &format!("/devices/{other}/lampActuator"),
            "/devices/{deviceAddress}/{functionId}",
        )
        .await;
    assert!(
        actuator["calendarID"].get("value").is_none(),
        "the city's calendar is not one TALQ can say: {actuator}"
    );

    // A weekend night: the astro program, on until sunrise.
    n.set(local(saturday, "23:45")).await;
    n.wait_lamps("the group on at 100 % on Saturday", |e, j| {
        if in_group(e, j) {
            (true, Some(100.0))
        } else {
            city_night(e, j)
        }
    })
    .await;

    // One model: the book shows the CMS's objects, and keeps them.
    let (_, book) = n.get("/api/v1/schedules").await;
    let talq_assignment = book["assignments"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["id"] == format!("talq:{group}"))
        .cloned()
        .unwrap_or_else(|| panic!("no TALQ assignment in {book}"));
    assert_eq!(talq_assignment["scope"], json!({"group": "riverside"}));
    assert_eq!(talq_assignment["calendar"], "cms-city");
    drop(cms);
    n.restart().await;
    let cms = Cms {
        n: &n,
        docs: documents(),
    };
    let (_, list) = cms.get("/calendars", "/calendars").await;
    assert_eq!(list[0]["id"], "cms-city", "{list}");

    // A program's change reaches the lamps.
    n.set(local(monday, "23:45")).await;
    n.wait_lamps("after the restart, the group at 40 % again", &weekday)
        .await;
    let (status, put) = cms
        .call(
            reqwest::Method::PUT,
            "/control-programs/evening",
            "/control-programs/{controlProgramAddress}",
            Some(evening(30)),
        )
        .await;
    assert_eq!(status, 200, "{put}");
    n.wait_lamps("the group at the program's new 30 %", |e, j| {
        if in_group(e, j) {
            (true, Some(30.0))
        } else {
            weekday(e, j)
        }
    })
    .await;

    // In use, a calendar and a program are not deleted.
    let (status, e) = cms
        .call(
            reqwest::Method::DELETE,
            "/calendars/cms-city",
            "/calendars/{calendarAddress}",
            None,
        )
        .await;
    assert_eq!(
        (status, e[0]["key"].as_str()),
        (422, Some("deletingResourceIsReferred")),
        "{e}"
    );
    let (status, e) = cms
        .call(
            reqwest::Method::DELETE,
            "/control-programs/dusk",
            "/control-programs/{controlProgramAddress}",
            None,
        )
        .await;
    assert_eq!(
        (status, e[0]["key"].as_str()),
        (422, Some("deletingResourceIsReferred")),
        "{e}"
    );

    // Un-assigned: the group goes back to the city's calendar.
    let (status, body) = cms.post("/assign-commands", assign("")).await;
    assert_eq!(status, 201, "{body}");
    n.wait_lamps("the group back on the city's night", city_night)
        .await;
    let (status, gone) = cms
        .call(
            reqwest::Method::DELETE,
            "/calendars/cms-city",
            "/calendars/{calendarAddress}",
            None,
        )
        .await;
    assert_eq!((status, &gone["id"]), (200, &json!("cms-city")), "{gone}");
    let (status, _) = cms
        .get("/calendars/cms-city", "/calendars/{calendarAddress}")
        .await;
    assert_eq!(status, 404);
    drop(cms);
    n.stop().await;
}
