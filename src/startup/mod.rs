//! Builds the running gateway: configuration checked, pollers, live state and
//! the HTTP API on a bound port; runs it until it is stopped, reloading its
//! configuration when asked (reload.rs).

mod reload;

use crate::api::{self, AppState};
use crate::auth::Tokens;
use crate::console::Console;
use crate::control::Control;
use crate::dialin;
use crate::inventory::{ConfigIssue, Inventory};
use crate::mqtt::{self, LinkStatus};
use crate::poll::{PollerConfig, Pollers};
use crate::settings::Settings;
use crate::state::{self, LiveState};
use crate::store;
use crate::validate;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error("configuration has {} problem(s):\n{}", .0.len(), list(.0))]
    Config(Vec<ConfigIssue>),
    #[error("store: {0}")]
    Store(#[from] store::StoreError),
    #[error(transparent)]
    Mqtt(#[from] mqtt::MqttError),
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot start the API's runtime: {0}")]
    ApiRuntime(#[source] std::io::Error),
    #[error("schedule: {0}")]
    Schedule(#[source] crate::schedule::ScheduleError),
    #[error("{0}")]
    Overrides(#[source] crate::control::OverridesError),
    #[error("alarm webhooks: {0}")]
    Webhook(#[from] crate::alarm::webhook::WebhookError),
    #[error("cluster: {0}")]
    Cluster(#[from] crate::cluster::ClusterError),
}

fn list(issues: &[ConfigIssue]) -> String {
    issues
        .iter()
        .map(|i| format!("  {i}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// What a caller of [`Application::build_with`] may choose.
#[derive(Debug, Default)]
pub struct BuildOptions {
    /// The schedule engine's clock (the system's by default): tests run a
    /// night on a clock they set.
    pub schedule_clock: Option<Arc<dyn crate::schedule::clock::Clock>>,
}

#[derive(Debug)]
pub struct Application {
    /// The settings running now (a reload replaces the parts it applies).
    settings: Settings,
    local_addr: SocketAddr,
    live: Arc<LiveState>,
    control: Arc<Control>,
    cancel: CancellationToken,
    server: api::Server,
    pollers: Pollers,
    state_task: JoinHandle<()>,
    /// Every sink the state task offers batches to, kept here too so that a
    /// reload's next state task gets the same ones; dropped at stop, after
    /// the last state task, which lets the store and MQTT drain.
    sinks: Vec<Arc<dyn state::Sink>>,
    store: Option<store::Running>,
    /// The evaluation sampler (the windowed evaluation figures' lamp-time),
    /// when there is a store to keep it in.
    sampler: Option<crate::figures::sampler::Running>,
    mqtt_reload: Option<mqtt::Reloader>,
    reloads: api::Reloads,
    reload_requests: mpsc::Receiver<api::ReloadRequest>,
    /// The console's sessions and users, kept across reloads (a reload
    /// must not log people out).
    console: Arc<Console>,
    /// The TALQ API's side (its overrides), unless `[talq] enabled` is
    /// off; kept across reloads as the console is.
    talq: Option<Arc<crate::talq::Talq>>,
    /// The alarm engine; judges every batch first among the sinks.
    alarms: Arc<crate::alarm::Alarms>,
    alarm_task: Option<JoinHandle<()>>,
    webhooks: Option<crate::alarm::webhook::Webhooks>,
    webhook_status: Arc<crate::alarm::webhook::status::WebhookStatus>,
    /// The night plan's engine, unless `schedule.enabled` is off.
    schedule: Option<Arc<crate::schedule::Schedule>>,
    schedule_task: Option<JoinHandle<()>>,
    dialin: Arc<dialin::Registry>,
    /// Where dial-in DTUs connect, when `dialin.listen` is set.
    dialin_addr: Option<SocketAddr>,
    dialin_task: Option<JoinHandle<()>>,
    mqtt_task: Option<JoinHandle<()>>,
    mqtt_status: Option<Arc<LinkStatus>>,
    mqtt_embedded: Option<SocketAddr>,
    /// Cluster mode: the leases this instance holds decide what it polls.
    cluster: Option<crate::cluster::Running>,
}

impl Application {
    /// Loads and checks the configuration, binds the API listener (port 0
    /// picks a free port) and starts polling.
    pub async fn build(settings: Settings) -> Result<Application, StartupError> {
        Self::build_with(settings, BuildOptions::default()).await
    }

    /// [`Application::build`] with what tests and the demo choose.
    pub async fn build_with(
        settings: Settings,
        options: BuildOptions,
    ) -> Result<Application, StartupError> {
        let loaded = validate::load(&settings).map_err(StartupError::Config)?;
        let listener = TcpListener::bind(settings.api.listen)
            .await
            .map_err(|source| StartupError::Listen {
                addr: settings.api.listen,
                source,
            })?;
        let local_addr = listener
            .local_addr()
            .map_err(|source| StartupError::Listen {
                addr: settings.api.listen,
                source,
            })?;
        // Every `dtu:` endpoint's slot; its poller takes its DTU's
        // connection there.
        let dialin = dialin::Registry::new(
            dialin_ids(&loaded.inventory),
            settings.dialin.heartbeat.bytes(),
        );
        let dialin_listener = match settings.dialin.listen_addr() {
            Some(addr) => {
                let l = dialin::bind(addr)
                    .and_then(|l| Ok((l.local_addr()?, l)))
                    .map_err(|source| StartupError::Listen { addr, source })?;
                Some(l)
            }
            None => None,
        };
        let live = Arc::new(LiveState::new(
            loaded.inventory.clone(),
            &loaded.topology,
            settings.poll.offline_after,
        ));
        let cancel = CancellationToken::new();
        let (tx, rx) = mpsc::channel(settings.poll.outcome_channel);
        let (control, writes) = Control::new(
            live.clone(),
            &loaded.topology,
            &settings.control,
            cancel.clone(),
        );
        control.keep_groups(
            settings.control.groups_file.clone(),
            loaded.saved_groups.clone(),
        );
        let cluster = start_cluster(&settings, &loaded.topology, &cancel)?;
        if let Some(c) = &cluster {
            control.name_ids(c.cluster.instance());
        }
        let pollers = Pollers::start(
            &loaded.topology,
            &loaded.inventory,
            PollerConfig {
                dialin: Some(dialin.clone()),
                ..PollerConfig::new(&settings.poll, &settings.control)
            },
            tx,
            writes,
            cancel.clone(),
            cluster
                .as_ref()
                .map(|c| c.cluster.clone() as Arc<dyn crate::poll::Gate>),
        );
        let schedule = if settings.schedule.enabled {
            Some(
                crate::schedule::Schedule::start(
                    &settings.schedule,
                    settings.gateway.time_zone,
                    control.clone(),
                )
                .map_err(StartupError::Schedule)?,
            )
            .inspect(|s| {
                if let Some(clock) = options.schedule_clock.clone() {
                    s.use_clock(clock);
                }
            })
        } else {
            None
        };
        // Cluster mode: each instance runs the schedule of what it polls.
        if let (Some(s), Some(c)) = (&schedule, &cluster) {
            let c = c.cluster.clone();
            s.only_where(crate::schedule::engine::Here(Arc::new(move |endpoint| {
                c.polls_here(endpoint)
            })));
        }
        let alarms =
            crate::alarm::Alarms::new(settings.alarms.clone(), live.clone(), &loaded.topology);
        alarms.keep_snapshot(settings.alarms.file.clone());
        // Each webhook's queue; every change that passes its filters.
        let webhooks = crate::alarm::webhook::start(
            &settings.alarms.webhooks,
            &settings.gateway.id,
            &settings.alarms.webhook_dir,
            cancel.clone(),
        )?;
        if !webhooks.is_empty() {
            alarms.add_sink(webhooks.sink.clone());
        }
        // First among the sinks: the store and MQTT get a batch after its
        // alarm changes, which the engine hands them itself.
        let mut sinks: Vec<Arc<dyn state::Sink>> =
            vec![Arc::new(crate::alarm::AlarmJudge(alarms.clone()))];
        let slowest = settings.poll.slc_interval.max(settings.poll.rtu_interval);
        let store = store::start(store::StartArgs {
            settings: settings.store.clone(),
            gateway_id: settings.gateway.id.clone(),
            // A device counts as online for up to `offline_after` missed polls.
            sample_gap: slowest * settings.poll.offline_after.max(1),
            inventory: loaded.inventory.clone(),
            lit_threshold_w: Arc::new(live.lit_thresholds().to_vec()),
            cancel: cancel.clone(),
        })?;
        if let Some(s) = &store {
            sinks.push(s.sink.clone());
            alarms.add_sink(s.alarms());
            control.observe(s.audit());
            tracing::info!(backend = s.store.db.kind(), url = %settings.store.url, "store on");
            // The schedule's history: the version in force now, then each
            // new one (the energy baseline of past windows follows them).
            if let Some(engine) = &schedule {
                engine.keep_versions(s.schedule_versions());
            }
        }
        // The evaluation over time needs somewhere to keep its totals.
        let sampler = store.as_ref().map(|s| {
            crate::figures::sampler::start(
                live.clone(),
                &settings.figures,
                s.evaluation(),
                cancel.clone(),
            )
        });
        // The MQTT client is this process: in cluster mode several instances
        // share one `gateway.id` (one city), and two clients of one id would
        // keep throwing each other off the broker, their presence and last
        // will on one topic.
        let mqtt_name = cluster
            .as_ref()
            .map_or(settings.gateway.id.as_str(), |c| c.cluster.instance());
        let mqtt = mqtt::start(
            &settings.mqtt,
            mqtt_name,
            live.clone(),
            &loaded.topology,
            Some(control.clone()),
            alarms.clone(),
            cancel.clone(),
        )?;
        let (mqtt_task, mqtt_status, mqtt_embedded, mqtt_reload) = match mqtt {
            Some(link) => {
                sinks.push(link.sink);
                alarms.add_sink(link.alarms);
                if let Some(s) = &schedule {
                    s.add_sink(link.schedule);
                }
                (
                    Some(link.task),
                    Some(link.status),
                    link.embedded,
                    Some(link.reload),
                )
            }
            None => (None, None, None, None),
        };
        // Before the first batch, with every alarm sink in place: what was open when the gateway last stopped (or was killed).
        alarms.restore(
            open_alarms(store.as_ref(), &settings.alarms.file).await,
            chrono::Utc::now(),
        );
        let state_task = tokio::spawn(state::run(live.clone(), rx, sinks.clone()));
        let alarm_task = Some(tokio::spawn(alarms.clone().run(cancel.clone())));
        let (dialin_addr, dialin_task) = match dialin_listener {
            Some((addr, listener)) => {
                tracing::info!(listen = %addr, dtus = dialin.len(), "dial-in listener on");
                let task = tokio::spawn(dialin::serve(
                    listener,
                    dialin.clone(),
                    settings.dialin.clone(),
                    cancel.clone(),
                ));
                (Some(addr), Some(task))
            }
            None => (None, None),
        };
        let tokens = Arc::new(Tokens::new(&settings.auth.tokens));
        if tokens.is_empty() {
            tracing::warn!("no API tokens configured: every /api/v1 request will be refused (lamp-gateway token new)");
        }
        let (reloads, reload_requests) = mpsc::channel(4);
        let console = Console::new(settings.console.clone(), cancel.clone());
        let talq = crate::talq::Talq::new(&settings.talq, &settings.gateway.id, local_addr);
        if let Some(t) = &talq {
            tracing::info!(base_path = %settings.talq.base_path, gateway_address = %t.gateway_address(), "TALQ gateway API on");
        }
        let app = routers(
            &console,
            talq.as_ref(),
            app_state(&ApiParts {
                settings: &settings,
                live: &live,
                tokens,
                control: &control,
                store: store.as_ref().map(|s| s.store.clone()),
                mqtt: mqtt_status.clone(),
                dialin: &dialin,
                dialin_listening: dialin_addr.is_some(),
                reloads: Some(reloads.clone()),
                schedule: schedule.clone(),
                alarms: alarms.clone(),
                webhooks: webhooks.status.clone(),
                cluster: cluster.as_ref().map(|c| c.cluster.clone()),
            }),
        );
        // With the pollers, the schedule (which takes back the lamps it
        // governs), the store and MQTT in place: an override that expired
        // while the gateway was down restores its lamps once they are
        // polled, audited and acked like any command.
        control
            .keep_overrides(&settings.control.overrides_file)
            .map_err(StartupError::Overrides)?;
        // After the store and MQTT observe the control: the first tick's
        // commands are audited and acked like any.
        let schedule_task = schedule
            .clone()
            .map(|s| tokio::spawn(s.run(cancel.clone())));
        // The API on a runtime of its own (`api::Server`): requests never
        // queue in front of the pollers and the state task.
        let listener = listener.into_std().map_err(|source| StartupError::Listen {
            addr: local_addr,
            source,
        })?;
        let server = api::Server::start(listener, app, &settings.api, cancel.clone())
            .map_err(StartupError::ApiRuntime)?;
        tracing::info!(
            api = %local_addr,
            endpoints = loaded.topology.endpoints.len(),
            devices = loaded.topology.device_count(),
            reads_per_cycle = loaded.topology.read_count(),
            lamps = loaded.inventory.lamps.len(),
            cabinets = loaded.inventory.cabinets.len(),
            "gateway started"
        );
        Ok(Application {
            alarms,
            alarm_task,
            webhook_status: webhooks.status.clone(),
            webhooks: Some(webhooks),
            schedule,
            schedule_task,
            settings,
            sinks,
            mqtt_reload,
            reloads,
            reload_requests,
            console,
            talq,
            local_addr,
            live,
            control,
            cancel,
            server,
            pollers,
            state_task,
            store,
            sampler,
            dialin,
            dialin_addr,
            dialin_task,
            mqtt_task,
            mqtt_status,
            mqtt_embedded,
            cluster,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    pub fn port(&self) -> u16 {
        self.local_addr.port()
    }

    /// The store, unless `store.url` is `none`.
    pub fn store(&self) -> Option<Arc<store::Store>> {
        self.store.as_ref().map(|s| s.store.clone())
    }

    pub fn live(&self) -> Arc<LiveState> {
        self.live.clone()
    }

    pub fn control(&self) -> Arc<Control> {
        self.control.clone()
    }

    /// The dial-in DTUs of the inventory (empty when it has none).
    pub fn dialin(&self) -> Arc<dialin::Registry> {
        self.dialin.clone()
    }

    /// Where dial-in DTUs connect, when `dialin.listen` is set.
    pub fn dialin_addr(&self) -> Option<SocketAddr> {
        self.dialin_addr
    }

    /// The broker link, when MQTT is configured.
    pub fn mqtt_status(&self) -> Option<Arc<LinkStatus>> {
        self.mqtt_status.clone()
    }

    /// Where the embedded MQTT broker listens, when it was started.
    pub fn mqtt_embedded(&self) -> Option<SocketAddr> {
        self.mqtt_embedded
    }

    /// A token that stops the gateway when cancelled.
    pub fn stopper(&self) -> CancellationToken {
        self.cancel.clone()
    }

    /// The alarm engine.
    pub fn alarms(&self) -> Arc<crate::alarm::Alarms> {
        self.alarms.clone()
    }

    /// The schedule engine, unless `schedule.enabled` is off.
    pub fn schedule(&self) -> Option<Arc<crate::schedule::Schedule>> {
        self.schedule.clone()
    }

    /// Where reloads are asked for (`SIGHUP`); the API's admin route asks
    /// the same way.
    pub fn reloads(&self) -> api::Reloads {
        self.reloads.clone()
    }

    /// Cluster mode: the cluster handle (its leases, its view).
    pub fn cluster(&self) -> Option<Arc<crate::cluster::Cluster>> {
        self.cluster.as_ref().map(|c| c.cluster.clone())
    }

    /// Runs until the stopper fires, reloading when asked and, in cluster
    /// mode, starting and parking pollers as leases are taken and given up;
    /// then stops pollers and the dial-in listener, drains the state and
    /// closes the API.
    pub async fn run_until_stopped(mut self) -> anyhow::Result<()> {
        let cluster = self.cluster();
        loop {
            tokio::select! {
                () = self.cancel.cancelled() => break,
                Some(request) = self.reload_requests.recv() => {
                    let result = self.reload(&request.by).await;
                    // The asker may have gone (a closed connection).
                    let _ = request.reply.send(result);
                }
                () = leases_changed(cluster.as_deref()) => {
                    let (started, parked) = self.pollers.sync().await;
                    if !started.is_empty() || !parked.is_empty() {
                        tracing::info!(
                            started = started.len(),
                            parked = parked.len(),
                            polled = self.pollers.len(),
                            "pollers follow the leases"
                        );
                    }
                }
            }
        }
        if let Some(task) = self.schedule_task.take() {
            let _ = task.await;
        }
        if let Some(task) = self.alarm_task.take() {
            let _ = task.await;
        }
        self.pollers.join().await;
        // Every poller has ended: the cluster hands its leases back (it
        // waited for them to end too) and says it stopped.
        if let Some(c) = self.cluster.take() {
            c.task.await?;
        }
        // No poller holds a DTU connection any more: the listener has
        // stopped accepting, and every DTU sees its connection close.
        if let Some(task) = self.dialin_task.take() {
            task.await?;
        }
        self.dialin.close_all();
        self.state_task.await?;
        // The sampler has handed the store its last totals (it stopped at
        // the cancel): before the store drains, so they are written now.
        if let Some(sampler) = self.sampler.take() {
            sampler.join().await;
        }
        // The last state task has ended: the sinks' last handles go.
        self.sinks.clear();
        // The state task has dropped its sinks: the store drains and stops.
        if let Some(store) = self.store.take() {
            store.join().await;
        }
        // The state task dropped its sinks: the MQTT task drains, says
        // `offline` and disconnects.
        if let Some(task) = self.mqtt_task.take() {
            task.await?;
        }
        // Each webhook finishes or abandons its request in flight; the rest
        // stays in its queue for the next run.
        if let Some(w) = self.webhooks.take() {
            w.join().await;
        }
        self.server.join().await?;
        tracing::info!("gateway stopped");
        Ok(())
    }

    pub async fn shutdown(self) -> anyhow::Result<()> {
        self.cancel.cancel();
        self.run_until_stopped().await
    }
}

/// The API, the operator console and the TALQ API on one state: the
/// console's routes (`/`, `/console/…`) are HTML and the TALQ routes
/// (`[talq] base_path`) TALQ's own document's, both outside the API's
/// table and its concurrency limit, so the OpenAPI document stays the
/// API's alone.
fn routers(
    console: &Arc<Console>,
    talq: Option<&Arc<crate::talq::Talq>>,
    state: AppState,
) -> axum::Router {
    let pages = crate::console::router(state.clone(), console.clone());
    let talq = talq.map(|t| crate::talq::router(state.clone(), t.clone()));
    let app = api::router(state).merge(pages);
    match talq {
        Some(t) => app.merge(t),
        None => app,
    }
}

/// What the API's state is made of; built at start and again at a reload.
struct ApiParts<'a> {
    settings: &'a Settings,
    live: &'a Arc<LiveState>,
    tokens: Arc<Tokens>,
    control: &'a Arc<Control>,
    store: Option<Arc<store::Store>>,
    mqtt: Option<Arc<LinkStatus>>,
    dialin: &'a Arc<dialin::Registry>,
    dialin_listening: bool,
    reloads: Option<api::Reloads>,
    schedule: Option<Arc<crate::schedule::Schedule>>,
    alarms: Arc<crate::alarm::Alarms>,
    webhooks: Arc<crate::alarm::webhook::status::WebhookStatus>,
    cluster: Option<Arc<crate::cluster::Cluster>>,
}

/// The API's state over one generation of the live state: the figures'
/// inventory, fresh caches, and every subsystem's collector for `/metrics`.
fn app_state(p: &ApiParts<'_>) -> AppState {
    let settings = p.settings;
    let live = p.live;
    let time_zone = settings.gateway.time_zone;
    let figures = Arc::new(crate::figures::window::Context::new(
        live.inventory.clone(),
        &settings.gateway.id,
        // A run that did not stop cleanly was observed until its last
        // heartbeat and at most one more interval it may have missed.
        chrono::Duration::from_std(settings.store.heartbeat_interval * 2)
            .unwrap_or(chrono::Duration::minutes(1)),
        time_zone,
    ));
    let now_cache = Arc::new(crate::figures::NowCache::new(settings.api.cache_ttl));
    let mut metrics = prometheus_client::registry::Registry::default();
    metrics.register_collector(Box::new(state::metrics::PollMetrics(live.clone())));
    metrics.register_collector(Box::new(crate::figures::metrics::FigureMetrics {
        live: live.clone(),
        cache: now_cache.clone(),
        alarms: p.alarms.clone(),
    }));
    metrics.register_collector(Box::new(crate::alarm::metrics::AlarmMetrics(
        p.alarms.clone(),
    )));
    if !p.webhooks.hooks.is_empty() {
        metrics.register_collector(Box::new(crate::alarm::webhook::metrics::WebhookMetrics(
            p.webhooks.clone(),
        )));
    }
    if let Some(s) = &p.store {
        metrics.register_collector(Box::new(store::metrics::StoreMetrics(s.status.clone())));
    }
    if let Some(m) = &p.mqtt {
        metrics.register_collector(Box::new(mqtt::metrics::MqttMetrics(m.clone())));
    }
    if let Some(c) = &p.cluster {
        metrics.register_collector(Box::new(crate::cluster::metrics::ClusterMetrics(c.clone())));
    }
    if p.dialin_listening || !p.dialin.is_empty() {
        metrics.register_collector(Box::new(dialin::metrics::DialInMetrics(p.dialin.clone())));
    }
    AppState {
        live: live.clone(),
        tokens: p.tokens.clone(),
        control: p.control.clone(),
        now_cache,
        evaluation: Arc::new(crate::figures::evaluation::EvaluationCache::new(
            settings.api.cache_ttl,
            settings.figures.clone(),
        )),
        metrics: Arc::new(metrics),
        store: p.store.clone(),
        mqtt: p.mqtt.clone(),
        dialin: p.dialin.clone(),
        time_zone,
        figures,
        cache: Arc::new(api::ApiCache::new(settings.api.cache_ttl)),
        max_concurrent: settings.api.max_concurrent,
        reloads: p.reloads.clone(),
        schedule: p.schedule.clone(),
        alarms: p.alarms.clone(),
        energy: Arc::new(settings.figures.energy.clone()),
        cluster: p.cluster.clone(),
    }
}

/// Cluster mode: the lease loop over the store's PostgreSQL (`validate`
/// has refused cluster mode on any other store).
fn start_cluster(
    settings: &Settings,
    topology: &crate::topology::Topology,
    cancel: &CancellationToken,
) -> Result<Option<crate::cluster::Running>, StartupError> {
    use secrecy::ExposeSecret;
    let store::Backend::Postgres(url) = &settings.store.url else {
        return Ok(None);
    };
    if !settings.cluster.enabled {
        return Ok(None);
    }
    let running = crate::cluster::start(crate::cluster::StartArgs {
        settings: &settings.cluster,
        url: url.expose_secret(),
        endpoints: leased(topology),
        cancel: cancel.clone(),
    })?;
    Ok(Some(running))
}

/// The endpoints shared out by leases: the dialled ones (a serial line or
/// a dial-in DTU reaches one machine only).
fn leased(topology: &crate::topology::Topology) -> Vec<String> {
    topology
        .endpoints
        .iter()
        .filter(|e| matches!(e.link, crate::inventory::Link::Tcp { .. }))
        .map(|e| e.address.clone())
        .collect()
}

/// Resolves when the cluster's leases changed; never without a cluster.
async fn leases_changed(cluster: Option<&crate::cluster::Cluster>) {
    match cluster {
        Some(c) => c.changed().await,
        None => std::future::pending().await,
    }
}

/// The alarms open when the gateway last stopped: the store's (its
/// database and what its spool still holds), or, with no store or one that
/// does not answer within 5 s, the file the engine saves them to.
async fn open_alarms(
    store: Option<&store::Running>,
    file: &std::path::Path,
) -> Vec<crate::alarm::Alarm> {
    if let Some(s) = store {
        let wait = std::time::Duration::from_secs(5);
        match tokio::time::timeout(wait, s.open_alarms()).await {
            Ok(Ok(open)) => return open,
            Ok(Err(e)) => tracing::warn!(
                error = %e, file = %file.display(),
                "the store cannot give the open alarms; taking them from the saved file"
            ),
            Err(_) => tracing::warn!(
                file = %file.display(),
                "the store did not give the open alarms within 5 s; taking them from the saved file"
            ),
        }
    }
    crate::alarm::read_snapshot(file)
}

/// The registration ids of the inventory's dial-in endpoints
/// (`dtu:<id>[?…]`), each once.
fn dialin_ids(inventory: &Inventory) -> Vec<String> {
    let ids: std::collections::BTreeSet<&str> = inventory
        .cabinets
        .iter()
        .filter_map(|c| c.dtu_id())
        .collect();
    ids.into_iter().map(String::from).collect()
}
