//! Reloading the configuration without a restart (`SIGHUP`, `POST
//! /api/v1/admin/reload`): the settings file (when the gateway was started
//! from one), the inventory, the profiles, the groups and the tokens are read
//! and checked as at start; a configuration with any problem changes
//! nothing and says why. Otherwise the new one takes over in this order:
//!
//! 1. a new live state and the control's new wiring (queues per endpoint)
//!    are made for the new inventory, with a new report channel;
//! 2. the pollers are replaced (`poll::Pollers::replace`): an endpoint with
//!    the same link and plan keeps polling on its open link at its due
//!    times, one that changed restarts, one that is gone stops, a new one
//!    starts; the old ones finish the cycle under way and the commands
//!    queued to them first;
//! 3. with the last old poller gone the old report channel closes and the
//!    old state task applies what is left in it and ends;
//! 4. the new live state takes over what the old one knew of each device
//!    that stays (`LiveState::carry_over`), so a reload is no transition;
//!    the control switches to its new wiring; the store names rows and the
//!    MQTT mirror devices by the new inventory (both between the two
//!    generations, so no batch sees a mix);
//! 5. the new state task starts on the new channel (the new pollers' reports
//!    waited there), the evaluation sampler judges the new state from its
//!    next tick, and the API serves the new state from its next request.
//!
//! Settings outside those parts (intervals, the store, the broker, the
//! listeners) are compared and named in the answer: they take effect at
//! the next start.

use super::{app_state, dialin_ids, ApiParts, Application};
use crate::api::{ReloadError, ReloadReport};
use crate::auth::Tokens;
use crate::settings::Settings;
use crate::state::{self, LiveState};
use crate::validate;
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::mpsc;

impl Application {
    /// Reloads the configuration (module doc); `by` names who asked, for
    /// the log.
    pub(super) async fn reload(&mut self, by: &str) -> Result<ReloadReport, ReloadError> {
        let started = Instant::now();
        let result = self.try_reload().await;
        let took_ms = started.elapsed().as_secs_f64() * 1e3;
        match &result {
            Ok(r) => tracing::info!(
                by,
                took_ms,
                kept = r.endpoints.kept.len(),
                restarted = r.endpoints.restarted.len(),
                started = r.endpoints.started.len(),
                stopped = r.endpoints.stopped.len(),
                lamps = r.lamps,
                cabinets = r.cabinets,
                restart_needed = ?r.restart_needed,
                "configuration reloaded"
            ),
            Err(ReloadError::Config(issues)) => {
                for i in issues {
                    tracing::error!(by, problem = %i, "reload refused");
                }
                tracing::error!(
                    by,
                    problems = issues.len(),
                    "reload refused: nothing was changed"
                );
            }
            Err(e) => tracing::error!(by, error = %e, "reload refused: nothing was changed"),
        }
        result.map(|mut r| {
            r.took_ms = took_ms;
            r
        })
    }

    async fn try_reload(&mut self) -> Result<ReloadReport, ReloadError> {
        let mut next = match &self.settings.source {
            Some(path) => {
                Settings::load(Some(path)).map_err(|e| ReloadError::Settings(e.to_string()))?
            }
            // Started from settings made in code: the files they name are
            // read again.
            None => self.settings.clone(),
        };
        // What the command line set is kept.
        next.api.listen = self.settings.api.listen;
        next.pinned_inventory = self.settings.pinned_inventory.clone();
        if let Some(dir) = &next.pinned_inventory {
            next.paths.inventory = dir.clone();
        }
        let loaded = validate::load(&next).map_err(ReloadError::Config)?;
        if self.cancel.is_cancelled() {
            return Err(ReloadError::Stopping);
        }
        let restart_needed = restart_needed(&self.settings, &next);

        // 1. The new generation, not yet fed.
        self.dialin.add(dialin_ids(&loaded.inventory));
        let live = Arc::new(LiveState::new(
            loaded.inventory.clone(),
            &loaded.topology,
            self.settings.poll.offline_after,
        ));
        let (wiring, writes) = self.control.prepare(live.clone(), &loaded.topology);
        let (tx, rx) = mpsc::channel(self.settings.poll.outcome_channel);
        // 2. The pollers (in cluster mode, the new endpoints get leases
        // too; the pollers start for those this instance holds).
        if let Some(c) = &self.cluster {
            c.cluster.set_endpoints(super::leased(&loaded.topology));
        }
        let endpoints = self
            .pollers
            .replace(&loaded.topology, &loaded.inventory, tx, writes)
            .await;
        // 3. The old state task ends with the old channel (the new
        // pollers' reports wait in the new one).
        let _ = (&mut self.state_task).await;
        // 4. What the old generation knew.
        live.carry_over(&self.live);
        self.control.rewire(wiring, &next.control.groups);
        // The plan's groups and inventory changed: its version takes effect
        // now (`Schedule::current`).
        if let Some(s) = &self.schedule {
            s.refresh_plan();
        }
        if let Some(store) = &self.store {
            store.reconfigure(
                loaded.inventory.clone(),
                Arc::new(live.lit_thresholds().to_vec()),
            );
        }
        if let Some(m) = &self.mqtt_reload {
            m.reconfigure(live.clone(), &loaded.topology);
        }
        self.alarms
            .rewire(live.clone(), &loaded.topology, next.alarms.clone());
        self.settings.alarms = next.alarms.clone();
        // 5. The new state task, then the API.
        self.state_task = tokio::spawn(state::run(live.clone(), rx, self.sinks.clone()));
        // The evaluation sampler judges the new generation from its next
        // tick; its run and totals go on.
        if let Some(s) = &self.sampler {
            s.rewire(live.clone());
        }
        self.live = live;
        let tokens = Arc::new(Tokens::new(&next.auth.tokens));
        let token_count = next.auth.tokens.len();
        self.settings.paths = next.paths.clone();
        self.settings.auth = next.auth.clone();
        self.settings.control.groups = next.control.groups.clone();
        self.server.replace(super::routers(
            &self.console,
            self.talq.as_ref(),
            app_state(&ApiParts {
                settings: &self.settings,
                live: &self.live,
                tokens,
                control: &self.control,
                store: self.store.as_ref().map(|s| s.store.clone()),
                mqtt: self.mqtt_status.clone(),
                dialin: &self.dialin,
                dialin_listening: self.dialin_addr.is_some(),
                reloads: Some(self.reloads.clone()),
                schedule: self.schedule.clone(),
                alarms: self.alarms.clone(),
                webhooks: self.webhook_status.clone(),
                cluster: self.cluster.as_ref().map(|c| c.cluster.clone()),
            }),
        ));
        Ok(ReloadReport {
            endpoints,
            lamps: loaded.inventory.lamps.len(),
            cabinets: loaded.inventory.cabinets.len(),
            tokens: token_count,
            groups: self.control.groups().len(),
            restart_needed,
            took_ms: 0.0,
        })
    }
}

/// The settings sections that differ between `now` and `next` outside what
/// a reload applies (paths, groups, tokens).
fn restart_needed(now: &Settings, next: &Settings) -> Vec<String> {
    let mut out = Vec::new();
    let mut differs = |name: &str, a: String, b: String| {
        if a != b {
            out.push(name.to_string());
        }
    };
    differs(
        "gateway",
        format!("{:?}", now.gateway),
        format!("{:?}", next.gateway),
    );
    differs("api", format!("{:?}", now.api), format!("{:?}", next.api));
    differs(
        "poll",
        format!("{:?}", now.poll),
        format!("{:?}", next.poll),
    );
    differs("log", format!("{:?}", now.log), format!("{:?}", next.log));
    differs(
        "mqtt",
        format!("{:?}", now.mqtt),
        format!("{:?}", next.mqtt),
    );
    differs(
        "store",
        format!("{:?}", now.store),
        format!("{:?}", next.store),
    );
    differs(
        "dialin",
        format!("{:?}", now.dialin),
        format!("{:?}", next.dialin),
    );
    differs(
        "cluster",
        format!("{:?}", now.cluster),
        format!("{:?}", next.cluster),
    );
    // Thresholds and rules apply at a reload; webhooks are started once.
    differs(
        "alarms.webhooks",
        format!("{:?}", now.alarms.webhooks),
        format!("{:?}", next.alarms.webhooks),
    );
    differs(
        "paths.data",
        format!("{:?}", now.paths.data),
        format!("{:?}", next.paths.data),
    );
    let without_groups = |s: &Settings| {
        let mut c = s.control.clone();
        c.groups.clear();
        format!("{c:?}")
    };
    differs("control", without_groups(now), without_groups(next));
    out
}
