//! Field connectivity as cities have it: dead units on a shared bus, the
//! online rule over time, RS-485 serial, DTUs that dial in, stray frames,
//! write codes, and the commissioning probe.

mod dead_units;
mod dtu;
pub mod farm;
mod probe;
mod rtu;

use crate::common::{test_settings, ADMIN_TOKEN};
use lamp_gateway::settings::Settings;
use lamp_gateway::startup::Application;
use lamp_gateway::state::LiveState;
use serde_json::Value;
use std::sync::Arc;

/// A gateway on an inventory the test wrote into `dir/inventory`.
pub struct Gateway {
    pub app: Application,
    pub base: String,
    pub live: Arc<LiveState>,
    pub http: reqwest::Client,
}

impl Gateway {
    pub async fn start(dir: &std::path::Path, tweak: impl FnOnce(&mut Settings)) -> Gateway {
        let mut s = test_settings(dir);
        tweak(&mut s);
        let app = Application::build(s).await.expect("gateway starts");
        Gateway {
            base: format!("http://{}", app.local_addr()),
            live: app.live(),
            app,
            http: reqwest::Client::new(),
        }
    }

    pub async fn get(&self, path: &str) -> (u16, Value) {
        let r = self
            .http
            .get(format!("{}{path}", self.base))
            .bearer_auth(ADMIN_TOKEN)
            .send()
            .await
            .expect("request sent");
        let status = r.status().as_u16();
        (status, r.json::<Value>().await.unwrap_or(Value::Null))
    }

    pub async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        let r = self
            .http
            .post(format!("{}{path}", self.base))
            .bearer_auth(ADMIN_TOKEN)
            .json(&body)
            .send()
            .await
            .expect("request sent");
        let status = r.status().as_u16();
        (status, r.json::<Value>().await.unwrap_or(Value::Null))
    }

    /// Gives a lamp a command and waits until it is done; returns it.
    pub async fn command(&self, lamp: &str, body: Value) -> Value {
        let (status, given) = self
            .post(&format!("/api/v1/lamps/{lamp}/commands"), body)
            .await;
        assert_eq!(status, 202, "{given}");
        let path = format!("/api/v1/commands/{}", given["id"].as_str().expect("an id"));
        crate::common::eventually(&format!("command to {lamp} done"), || async {
            self.get(&path).await.1["status"] == "done"
        })
        .await;
        self.get(&path).await.1
    }

    /// Online state of each lamp, in inventory order.
    pub fn online(&self) -> Vec<bool> {
        let live = self.live.read();
        live.lamps.iter().map(|l| l.online).collect()
    }
}
