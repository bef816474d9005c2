//! Several gateway instances sharing one PostgreSQL: which instance polls
//! which endpoint, by leases in the database (`cluster.enabled`).
//!
//! # The design
//!
//! Every dialled endpoint (`host:port`) has one row in `cluster_leases`:
//! its holder (instance id and run), and when the lease expires. An
//! instance polls an endpoint only while it holds the lease. Each instance
//! ticks every `lease_ttl`/3, in one transaction: heartbeat in
//! `cluster_instances`, renew every lease it holds (expiry = `now()` +
//! `lease_ttl`), count the live instances (heartbeat within `lease_ttl`),
//! and take free or expired leases up to its share (`FOR UPDATE SKIP
//! LOCKED`: two instances taking at once get different endpoints, neither
//! waits).
//!
//! **Leases, not advisory locks.** A session advisory lock lives as long as
//! one connection: a holder whose connection breaks loses it at once, with
//! no notice, while it may still be polling (and a pooled connection may
//! outlive the code that took it); the lock says nothing about *when* the
//! holder must stop, so "no two instances write the same device" would
//! rest on TCP timeouts; and a lock cannot be listed with its holder and
//! age, nor balanced. A lease has an expiry that both sides know: the
//! holder stops before it, the others take over after it. It is a row: the
//! API lists it, a tenure history (`cluster_tenures`) shows who held what
//! when, and balancing is one `UPDATE`.
//!
//! **Time.** Expiry is judged by the database's clock only (`now()`, one
//! instant per transaction), so the instances' clocks do not matter. The
//! holder, which cannot read that clock when the database is away, keeps a
//! deadline on its own monotonic clock: the instant it *sent* the tick
//! (before the transaction began, so before the `now()` the expiry was
//! counted from) plus `lease_ttl` less a margin of `lease_ttl`/4. When no
//! renewal has succeeded by then it stops polling every leased endpoint
//! (mid-cycle), while its leases are still valid; what it polled is in the
//! store's spool already. Its next successful tick renews whatever nobody
//! took meanwhile, and it polls those again: it has rejoined.
//!
//! **Balance.** Each live instance's share is an equal part of the
//! endpoints, the remainder one each to the first ids in order
//! (`leases::share`): the shares add up to every endpoint, and each
//! instance works its own out from the list of live ones. An instance over
//! its share (a new one joined) stops polling the surplus — those it took
//! last — and then frees their leases; one under it takes free ones. So a
//! new instance takes its share without a stampede: only the surplus
//! moves, and only to instances under their share. An instance takes
//! nothing until a tick period after it joined (another's join waking it
//! earlier does not cut that short), so instances started together see
//! each other before they take anything.
//!
//! **Schedules** run once city-wide because each instance runs the night
//! plan only for the devices it polls (`schedule::engine::Here`, wired in
//! startup): the lease that says who polls an endpoint says who commands
//! its devices. The new holder after a failover had not commanded them,
//! so its next tick commands what should be now. Command ids end with the
//! instance id: two instances' commands never share an audit row.
//!
//! **Waking.** Each instance `LISTEN`s on one channel: a join (shares
//! shrink), a release or a leave (leases are free) wakes the others to
//! tick at once; a clean stop hands every lease back at once. Missing a
//! notification costs at most one tick period. An instance also wakes when
//! another's lease is due to expire, so a dead instance's endpoints are
//! taken within `lease_ttl` of its last renewal, plus a few milliseconds.
//!
//! **Handing over polling.** The pollers (`poll::Pollers`) ask this room
//! through [`poll::Gate`] for a permit per endpoint; a poller holds its
//! permit's guard while it runs. To give a lease up the room cancels the
//! permit (the poller stops at once), waits until the guard is dropped
//! (polling has really stopped), and only then frees the lease. Serial
//! lines and dial-in DTUs reach one machine only: they are not leased.

mod config;
mod leases;
pub mod metrics;
mod view;

pub use config::ClusterSettings;
pub use view::{ClusterView, InstanceView};

use crate::poll::{Gate, Permit};
use leases::{Me, Tick};
use parking_lot::Mutex;
use sqlx::postgres::{PgListener, PgPool, PgPoolOptions};
use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, Notify};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// The cluster room's one error type.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("{what} did not finish within {limit:?}")]
    Timeout { what: &'static str, limit: Duration },
}

/// A lease this instance holds and may poll under.
#[derive(Debug)]
struct Held {
    stop: CancellationToken,
    guard: mpsc::Sender<()>,
    /// `None` once every poller's clone of `guard` has gone.
    stopped: mpsc::Receiver<()>,
    /// When it was taken here: the newest go first when over the share.
    since: Instant,
}

impl Held {
    fn new() -> Held {
        let (guard, stopped) = mpsc::channel(1);
        Held {
            stop: CancellationToken::new(),
            guard,
            stopped,
            since: Instant::now(),
        }
    }
}

/// Counters and the last tick's picture, for `/metrics`.
#[derive(Debug, Default)]
struct Stats {
    ticks: AtomicU64,
    tick_failures: AtomicU64,
    taken: AtomicU64,
    released: AtomicU64,
    /// Times every lease was given up for want of a renewal.
    lost: AtomicU64,
    last: Mutex<Option<Tick>>,
}

/// One instance of the cluster: its leases, what its pollers may poll.
#[derive(Debug)]
pub struct Cluster {
    me: Me,
    pool: PgPool,
    /// The leased endpoints of this instance's inventory.
    endpoints: Mutex<Vec<String>>,
    held: Mutex<HashMap<String, Held>>,
    /// Signalled when the permits change: the application syncs its pollers.
    changed: Notify,
    /// Signalled by another instance's join, release or leave.
    wake: Notify,
    /// The endpoints changed (a reload): join again to add their rows.
    rejoin: std::sync::atomic::AtomicBool,
    stats: Stats,
}

/// What [`start`] needs.
#[derive(Debug)]
pub struct StartArgs<'a> {
    pub settings: &'a ClusterSettings,
    /// The store's `postgres://` URL (cluster mode requires it).
    pub url: &'a str,
    /// The endpoints of the inventory that may be leased (`host:port`).
    pub endpoints: Vec<String>,
    pub cancel: CancellationToken,
}

/// The running cluster task and its handle.
#[derive(Debug)]
pub struct Running {
    pub cluster: Arc<Cluster>,
    pub task: JoinHandle<()>,
}

/// Starts the lease loop. Nothing is polled under it until its second tick
/// (the first joins). On `cancel` it waits until the pollers have stopped,
/// then hands every lease back.
pub fn start(args: StartArgs<'_>) -> Result<Running, ClusterError> {
    let ttl = args.settings.lease_ttl;
    let me = Me {
        id: args.settings.instance_id(),
        run: run_id(),
        version: env!("CARGO_PKG_VERSION").to_string(),
        ttl,
        statement_timeout: ttl / 3,
    };
    // Its own few connections: a store writing a backlog must not hold up
    // a renewal. One ticks, one listens, one answers the API.
    let pool = PgPoolOptions::new()
        .max_connections(3)
        .acquire_timeout(ttl / 3)
        .connect_lazy(args.url)?;
    let cluster = Arc::new(Cluster {
        me,
        pool,
        endpoints: Mutex::new(args.endpoints),
        held: Mutex::new(HashMap::new()),
        changed: Notify::new(),
        wake: Notify::new(),
        rejoin: std::sync::atomic::AtomicBool::new(false),
        stats: Stats::default(),
    });
    tracing::info!(
        instance = %cluster.me.id,
        run = %cluster.me.run,
        lease_ttl = ?ttl,
        endpoints = cluster.endpoints.lock().len(),
        "cluster mode: endpoints are leased"
    );
    let task = tokio::spawn(cluster.clone().run(args.cancel));
    Ok(Running { cluster, task })
}

/// A random id for this process's run.
fn run_id() -> String {
    format!("{:016x}", fastrand::u64(..))
}

impl Gate for Cluster {
    fn permit(&self, endpoint: &str) -> Option<Permit> {
        self.held.lock().get(endpoint).map(|h| Permit {
            stop: h.stop.clone(),
            guard: h.guard.clone(),
        })
    }
}

/// Sleeps until `deadline`, or forever without one.
async fn until(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

impl Cluster {
    /// This instance's id.
    pub fn instance(&self) -> &str {
        &self.me.id
    }

    pub fn lease_ttl(&self) -> Duration {
        self.me.ttl
    }

    /// Waits until the permits have changed: then sync the pollers.
    pub async fn changed(&self) {
        self.changed.notified().await
    }

    /// The leased endpoints of a reloaded inventory.
    pub fn set_endpoints(&self, endpoints: Vec<String>) {
        *self.endpoints.lock() = endpoints;
        self.rejoin.store(true, Relaxed);
        self.wake.notify_one();
    }

    /// Whether `endpoint` is this instance's to poll now: not leased (a
    /// serial line, a dial-in DTU), or leased and held here.
    pub fn polls_here(&self, endpoint: &str) -> bool {
        let held = self.held.lock().contains_key(endpoint);
        held || !self.endpoints.lock().iter().any(|e| e == endpoint)
    }

    /// Endpoints this instance polls under a lease now.
    pub fn held(&self) -> usize {
        self.held.lock().len()
    }

    fn period(&self) -> Duration {
        self.me.ttl / 3
    }

    /// How long before the lease's expiry (by this instance's own clock)
    /// polling stops when no renewal got through: time for the pollers to
    /// stop, and for the two clocks to drift.
    fn margin(&self) -> Duration {
        self.me.ttl / 4
    }

    async fn run(self: Arc<Self>, cancel: CancellationToken) {
        let listener = tokio::spawn(self.clone().listen(cancel.clone()));
        let mut joined = false;
        // Nothing is taken before one period after the join: instances
        // started together see each other first (a wake-up by another's
        // join does not cut it short).
        let mut take_after = Instant::now();
        // Polling under the leases held must stop by then, unless renewed.
        let mut deadline: Option<Instant> = None;
        let mut next = Instant::now();
        // Over the share: held in the database, to be freed once their
        // pollers here have stopped (`stopping`: those not ended yet).
        let mut releasing: BTreeSet<String> = BTreeSet::new();
        let mut stopping: Vec<mpsc::Receiver<()>> = Vec::new();
        loop {
            tokio::select! {
                biased;
                () = cancel.cancelled() => break,
                () = until(deadline) => {
                    self.lose_all();
                    deadline = None;
                    continue;
                }
                () = tokio::time::sleep_until(next) => {}
                () = self.wake.notified() => {}
            }
            // Before the transaction begins: the database's `now()`, from
            // which the renewed leases run, is later than this.
            let sent = Instant::now();
            next = sent + self.period();
            let rejoin = !joined || self.rejoin.swap(false, Relaxed);
            let endpoints = self.endpoints.lock().clone();
            if !joined {
                take_after = sent + self.period();
            }
            let step = self.step(rejoin, endpoints, joined && sent >= take_after);
            let limit = self.period();
            let result = tokio::select! {
                biased;
                () = cancel.cancelled() => break,
                () = until(deadline) => {
                    self.lose_all();
                    deadline = None;
                    continue;
                }
                r = tokio::time::timeout(limit, step) => r,
            };
            let tick = match result {
                Ok(Ok(t)) => t,
                Ok(Err(e)) => {
                    self.failed(&e);
                    continue;
                }
                Err(_) => {
                    self.failed(&ClusterError::Timeout {
                        what: "a lease tick",
                        limit,
                    });
                    continue;
                }
            };
            joined = true;
            self.stats.ticks.fetch_add(1, Relaxed);
            self.stats.taken.fetch_add(tick.taken.len() as u64, Relaxed);
            deadline = (!tick.held.is_empty()).then(|| sent + self.me.ttl - self.margin());
            if !tick.taken.is_empty() {
                tracing::info!(
                    instance = %self.me.id,
                    taken = tick.taken.len(),
                    held = tick.held.len(),
                    share = tick.share,
                    live = tick.live.len(),
                    "leases taken"
                );
            }
            releasing.retain(|e| tick.held.contains(e));
            self.follow(&tick.held, &releasing);
            let over = tick.held.len().saturating_sub(tick.share + releasing.len());
            let surplus: BTreeSet<String> = self.surplus(over).into_iter().collect();
            stopping.extend(self.withdraw(Some(&surplus)));
            releasing.extend(surplus);
            if let Some(secs) = tick.next_expiry {
                // Wake just after another instance's lease expires: a dead
                // instance's endpoints are taken over at once.
                let at = Instant::now()
                    + Duration::from_secs_f64(secs.max(0.0))
                    + Duration::from_millis(20);
                next = next.min(at);
            }
            *self.stats.last.lock() = Some(tick);
            if !releasing.is_empty() {
                let freed = tokio::select! {
                    () = cancel.cancelled() => break,
                    r = self.release(&releasing, &mut stopping, false) => r,
                };
                if freed {
                    releasing.clear();
                }
            }
        }
        // A clean stop: every poller ended, then every lease handed back
        // and the instance marked stopped, so the others take over at once.
        stopping.extend(self.withdraw(None));
        self.release(&BTreeSet::new(), &mut stopping, true).await;
        let _ = listener.await;
    }

    async fn step(
        &self,
        rejoin: bool,
        endpoints: Vec<String>,
        take: bool,
    ) -> Result<Tick, ClusterError> {
        if rejoin {
            leases::schema(&self.me, &self.pool).await?;
            leases::join(&self.me, &self.pool, &endpoints).await?;
        }
        leases::tick(&self.me, &self.pool, &endpoints, take).await
    }

    fn failed(&self, e: &ClusterError) {
        self.stats.tick_failures.fetch_add(1, Relaxed);
        tracing::warn!(instance = %self.me.id, error = %e, held = self.held(), "lease tick failed; polling goes on until the leases' deadline");
    }

    /// Permits follow the leases held: a new one for each lease taken (not
    /// one being released), withdrawn for each no longer held (expired and
    /// taken over while this instance could not renew it).
    fn follow(&self, held: &BTreeSet<String>, releasing: &BTreeSet<String>) {
        let mut changed = false;
        {
            let mut map = self.held.lock();
            map.retain(|e, h| {
                let keep = held.contains(e);
                if !keep {
                    h.stop.cancel();
                    changed = true;
                }
                keep
            });
            for e in held {
                if !releasing.contains(e) && !map.contains_key(e) {
                    map.insert(e.clone(), Held::new());
                    changed = true;
                }
            }
        }
        if changed {
            self.changed.notify_one();
        }
    }

    /// `over` leases polled here, those taken last first.
    fn surplus(&self, over: usize) -> Vec<String> {
        if over == 0 {
            return Vec::new();
        }
        let map = self.held.lock();
        let mut newest: Vec<(&String, Instant)> = map.iter().map(|(e, h)| (e, h.since)).collect();
        newest.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
        newest
            .into_iter()
            .take(over)
            .map(|(e, _)| e.clone())
            .collect()
    }

    /// Withdraws the permits of `endpoints`: their pollers stop at once.
    /// Returns what tells when each has stopped.
    fn withdraw(&self, endpoints: Option<&BTreeSet<String>>) -> Vec<mpsc::Receiver<()>> {
        let mut map = self.held.lock();
        let keys: Vec<String> = match endpoints {
            Some(list) => list
                .iter()
                .filter(|e| map.contains_key(*e))
                .cloned()
                .collect(),
            None => map.keys().cloned().collect(),
        };
        let out: Vec<mpsc::Receiver<()>> = keys
            .iter()
            .filter_map(|k| map.remove(k))
            .map(|h| {
                h.stop.cancel();
                h.stopped
            })
            .collect();
        drop(map);
        if !out.is_empty() {
            self.changed.notify_one();
        }
        out
    }

    /// No renewal in time: stop polling everything leased, before the
    /// leases expire and another instance may take them.
    fn lose_all(&self) {
        let n = self.withdraw(None).len();
        if n > 0 {
            self.stats.lost.fetch_add(1, Relaxed);
            tracing::error!(
                instance = %self.me.id,
                endpoints = n,
                "no lease renewal got through in time: stopped polling every leased endpoint (the leases expire soon; what was polled is in the spool)"
            );
        }
    }

    /// Once every withdrawn poller (`stopping`) has ended, frees the leases
    /// of `endpoints` (`leaving`: all of this run's, and the instance is
    /// marked stopped). `false`: not freed (a poller did not end in time,
    /// or the database did not answer); tried again next tick.
    async fn release(
        &self,
        endpoints: &BTreeSet<String>,
        stopping: &mut Vec<mpsc::Receiver<()>>,
        leaving: bool,
    ) -> bool {
        let limit = self.period();
        let stopped = async {
            while let Some(w) = stopping.last_mut() {
                while w.recv().await.is_some() {}
                stopping.pop();
            }
        };
        if tokio::time::timeout(limit, stopped).await.is_err() {
            tracing::warn!(instance = %self.me.id, limit = ?limit, "a poller did not stop in time; its lease is kept for now");
            return false;
        }
        let list: Vec<String> = endpoints.iter().cloned().collect();
        match tokio::time::timeout(limit, leases::release(&self.me, &self.pool, &list, leaving))
            .await
        {
            Ok(Ok(n)) => {
                self.stats.released.fetch_add(n, Relaxed);
                // The picture of the last tick, as it is now.
                if let Some(t) = self.stats.last.lock().as_mut() {
                    for (holder, count) in &mut t.per_holder {
                        if *holder == self.me.id {
                            *count -= n as i64;
                        }
                    }
                    t.unassigned += n as i64;
                }
                tracing::info!(instance = %self.me.id, released = n, leaving, "leases handed back");
                true
            }
            Ok(Err(e)) => {
                tracing::warn!(instance = %self.me.id, error = %e, "cannot hand leases back; they expire");
                false
            }
            Err(_) => {
                tracing::warn!(instance = %self.me.id, limit = ?limit, "handing leases back timed out; they expire");
                false
            }
        }
    }

    /// Wakes the loop on the others' joins, releases and leaves. Only a
    /// hint: a missed one costs at most a tick period.
    async fn listen(self: Arc<Self>, cancel: CancellationToken) {
        let mine = format!(" {}", self.me.run);
        let limit = self.period();
        while !cancel.is_cancelled() {
            let connect = async {
                let mut l = PgListener::connect_with(&self.pool).await?;
                l.listen(leases::CHANNEL).await?;
                Ok::<_, sqlx::Error>(l)
            };
            let mut listener = tokio::select! {
                () = cancel.cancelled() => return,
                r = tokio::time::timeout(limit, connect) => match r {
                    Ok(Ok(l)) => l,
                    _ => {
                        tokio::select! {
                            () = cancel.cancelled() => return,
                            () = tokio::time::sleep(self.period()) => continue,
                        }
                    }
                },
            };
            loop {
                let got = tokio::select! {
                    () = cancel.cancelled() => return,
                    r = listener.try_recv() => r,
                };
                match got {
                    Ok(Some(n)) if n.payload().ends_with(&mine) => {}
                    Ok(Some(n)) => {
                        tracing::debug!(instance = %self.me.id, from = n.payload(), "woken by another instance");
                        self.wake.notify_one();
                    }
                    // Reconnected: what was missed meanwhile is found by a tick.
                    Ok(None) => self.wake.notify_one(),
                    Err(_) => break,
                }
            }
            // A listener that fails at once must not spin: wait a period.
            tokio::select! {
                () = cancel.cancelled() => return,
                () = tokio::time::sleep(self.period()) => {}
            }
        }
    }

    /// Every instance known to the database and the endpoints nobody holds.
    pub async fn view(&self) -> Result<ClusterView, ClusterError> {
        let limit = self.period().max(Duration::from_secs(2));
        tokio::time::timeout(limit, view::read(&self.me, &self.pool))
            .await
            .map_err(|_| ClusterError::Timeout {
                what: "reading the cluster",
                limit,
            })?
    }
}
