//! lamp-sim: a Modbus TCP / RTU-over-TCP device farm of lighting cabinets
//! (RTUs) and single-lamp controllers (SLCs), speaking the same profiles as
//! the gateway, with faults that tests can switch at run time.
//!
//! Endpoints meet the gateway over a [`Link`]: each listens on its own TCP
//! port (default), or is served on a serial device / pty end
//! ([`Link::Serial`], RTU), or dials out to the gateway like a 4G DTU and
//! registers with its cabinet id ([`Link::DialIn`], see [`DialIn`]). The
//! inventory's `endpoint` cell is `host:port`,
//! `serial:PATH?baud=9600&parity=N&data_bits=8&stop_bits=1` (framing `rtu`)
//! or `dtu:CAB-0001` (framing `rtu` or `tcp`) accordingly.
//!
//! Faults: per endpoint [`EndpointFault`] (including `stray_frames` on RTU
//! links), per SLC [`SlcFault`] (also a wrong `power_scale` and a
//! `stuck_on` relay), per cabinet RTU [`RtuFault`], per circuit
//! [`CircuitFault`] (a supply cut past the cabinet, a stuck contactor);
//! `no_answer` on a unit is a dead node that sends nothing at all.
//!
//! A gateway test can run a dial-in farm in-process:
//!
//! ```no_run
//! # async fn demo(gateway_dialin: std::net::SocketAddr) -> Result<(), lamp_sim::SimError> {
//! use lamp_sim::{DialIn, Framing, Link, SimConfig, Simulator};
//! use std::time::Duration;
//! let sim = Simulator::start(SimConfig {
//!     endpoints: 3,
//!     framing: Framing::RtuOverTcp,
//!     link: Link::DialIn(DialIn {
//!         heartbeat_interval: Duration::from_millis(200),
//!         ..DialIn::new(gateway_dialin.to_string())
//!     }),
//!     ..SimConfig::default()
//! })
//! .await?;
//! sim.set_registration_override(2, Some(b"NOT-IN-INVENTORY".to_vec()))?;
//! sim.reconnect_endpoint(2)?; // registers with the wrong id now
//! sim.reconnect_endpoint_half_open(0)?; // a new link while the old one hangs
//! # Ok(()) }
//! ```
//!
//! Endpoint `i` serves the cabinet RTU at unit id 1. Its SLC `j` is unit id
//! `j + 2` with a unit-layout SLC profile, or register block `j` on unit 1
//! with a block-layout profile (unit 1 then doubles as the concentrator).
//!
//! Inventory ids (stable, scripted against): district `D01`…, cabinet of
//! endpoint `i` `CAB-{i+1:04}` with RTU `RTU-{i+1:04}`, lamp `j` of endpoint
//! `i` `LX-{i+1:04}-{j+1:03}` with SLC `SLC-{i+1:04}-{j+1:03}`, extra lamps
//! without SLC `LX-{i+1:04}-N{k+1:02}`, extra cabinets without RTU
//! `CAB-X{k+1:03}` with lamps `LX-X{k+1:03}-N{m+1:02}`.

mod control;
mod device;
mod dialin;
mod fault;
mod frame;
mod inventory;
mod proxy;
mod registers;
mod scenario;
mod serial;
mod server;
mod session;
mod stray;

pub use device::{RtuValues, SlcValues};
pub use dialin::{parse_heartbeat, DialIn};
pub use fault::{CircuitFault, EndpointFault, RtuFault, SlcFault, StuckContactor, SupplyCut};
pub use frame::Framing;
pub use inventory::InventoryOptions;
pub use proxy::Proxy;
pub use scenario::{Scenario, ScenarioError};

use device::{Cabinet, Clock};
use lamp_profile::{DeviceKind, Layout, Profile};
use parking_lot::Mutex;
use registers::Profiles;
use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// The profiles shipped in `config/profiles/`, compiled in as defaults.
pub const EMBEDDED_PROFILES: [(&str, &str); 3] = [
    (
        "rtu-cabinet.toml",
        include_str!("../../config/profiles/rtu-cabinet.toml"),
    ),
    (
        "slc-a-unit.toml",
        include_str!("../../config/profiles/slc-a-unit.toml"),
    ),
    (
        "slc-b-block.toml",
        include_str!("../../config/profiles/slc-b-block.toml"),
    ),
];

/// Parses the embedded profiles (they are validated by lamp-profile's tests).
pub fn embedded_profiles() -> BTreeMap<String, Profile> {
    EMBEDDED_PROFILES
        .iter()
        .map(|(file, text)| {
            let p = Profile::from_toml(text, file)
                .unwrap_or_else(|e| panic!("embedded profile {file} is invalid: {e:?}"));
            (p.name.clone(), p)
        })
        .collect()
}

/// Highest unit id a Modbus serial device may have.
const MAX_UNIT_ID: usize = 247;

#[derive(Debug, Clone)]
pub struct SimConfig {
    pub host: IpAddr,
    pub endpoints: usize,
    pub slcs_per_endpoint: usize,
    /// Endpoint `i` listens on `base_port + i`; 0 = an ephemeral port each.
    pub base_port: u16,
    pub slc_profile: String,
    pub rtu_profile: String,
    pub framing: Framing,
    pub profiles: BTreeMap<String, Profile>,
    /// Inventory only: endpoints go to districts round-robin.
    pub districts: usize,
    pub seed: u64,
    /// Random lamp failures per lit lamp-hour; 0 disables them.
    pub failure_rate_per_hour: f64,
    /// Control HTTP port; `Some(0)` = ephemeral, `None` = no control server.
    pub control_port: Option<u16>,
    /// How the endpoints reach the gateway (default: each listens on TCP).
    pub link: Link,
}

/// How a farm's endpoints meet the gateway.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Link {
    /// Endpoint `i` listens on `host:base_port + i` (or an ephemeral port).
    #[default]
    Listen,
    /// Endpoint `i` is served on the `i`-th serial device or pty end, RTU
    /// framing (set `framing` to [`Framing::RtuOverTcp`]), 9600 baud 8N1;
    /// as many paths as endpoints.
    Serial(Vec<PathBuf>),
    /// Every endpoint connects out to the gateway like a 4G DTU, registers
    /// with its cabinet id and keeps the link up (see [`DialIn`]). Framing
    /// [`Framing::RtuOverTcp`] passes RTU frames, [`Framing::Tcp`] MBAP.
    DialIn(DialIn),
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            host: IpAddr::V4(Ipv4Addr::LOCALHOST),
            endpoints: 1,
            slcs_per_endpoint: 4,
            base_port: 0,
            slc_profile: "slc-a-unit".into(),
            rtu_profile: "rtu-cabinet".into(),
            framing: Framing::Tcp,
            profiles: embedded_profiles(),
            districts: 1,
            seed: 1,
            failure_rate_per_hour: 0.0,
            control_port: None,
            link: Link::Listen,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SimError {
    #[error("invalid configuration: {0}")]
    Config(String),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("cannot open serial device {}: {source}", path.display())]
    Serial {
        path: PathBuf,
        source: std::io::Error,
    },
    /// An endpoint or SLC index the farm does not have.
    #[error("{0}")]
    NotFound(String),
    /// A fault or action this farm's layout, framing or link cannot carry.
    #[error("{0}")]
    Unsupported(String),
}

/// Where one endpoint meets the gateway.
pub(crate) enum Place {
    Listen(SocketAddr),
    Serial(PathBuf),
    DialIn(dialin::Dial),
}

/// One endpoint: its place, its cabinet, its fault.
pub(crate) struct Endpoint {
    pub place: Place,
    pub cabinet: Mutex<Cabinet>,
    pub fault: watch::Sender<Option<EndpointFault>>,
    /// Replies sent while `stray_frames` was set (whose turn it is).
    pub replies: AtomicU64,
    /// Requests answered by this endpoint.
    pub served: AtomicU64,
    /// TCP connections accepted by this endpoint.
    pub accepted: AtomicU64,
}

pub(crate) struct Shared {
    pub profiles: Profiles,
    pub clock: Clock,
    pub framing: Framing,
    pub failure_rate: f64,
    pub seed: u64,
    pub districts: usize,
    pub slcs: usize,
    pub endpoints: Vec<Endpoint>,
    pub requests: AtomicU64,
    pub shutdown: watch::Sender<bool>,
}

impl Shared {
    /// Locks endpoint `i`'s cabinet with its clock brought up to date.
    pub fn cabinet(&self, i: usize, force: bool) -> (parking_lot::MutexGuard<'_, Cabinet>, f64) {
        let now = self.clock.now();
        let mut cab = self.endpoints[i].cabinet.lock();
        cab.advance(now, self.failure_rate, force);
        (cab, now)
    }
}

/// A running device farm. Cheap to clone; every clone drives the same farm.
#[derive(Clone)]
pub struct Simulator {
    shared: Arc<Shared>,
    tasks: Arc<Mutex<Vec<JoinHandle<()>>>>,
    control: Option<SocketAddr>,
}

/// An endpoint's listener or device, opened by `start` before serving.
enum Opened {
    Listener(tokio::net::TcpListener),
    Serial(serial::Port),
    DialIn,
}

fn check_config(cfg: &SimConfig) -> Result<(Profile, Profile), SimError> {
    let bad = |m: String| Err(SimError::Config(m));
    let get = |name: &str, kind: DeviceKind| match cfg.profiles.get(name) {
        None => Err(SimError::Config(format!(
            "no profile `{name}` (have: {})",
            cfg.profiles.keys().cloned().collect::<Vec<_>>().join(", ")
        ))),
        Some(p) if p.kind != kind => Err(SimError::Config(format!(
            "profile `{name}` is a {:?} profile, expected {kind:?}",
            p.kind
        ))),
        Some(p) => Ok(p.clone()),
    };
    let rtu = get(&cfg.rtu_profile, DeviceKind::Rtu)?;
    let slc = get(&cfg.slc_profile, DeviceKind::Slc)?;
    let m = cfg.slcs_per_endpoint;
    match slc.layout {
        Layout::Unit if m > MAX_UNIT_ID - 1 => {
            return bad(format!(
                "{m} SLCs per endpoint: unit-layout profile `{}` gives each SLC a unit id \
                 from 2 to {MAX_UNIT_ID}, so at most {} fit",
                slc.name,
                MAX_UNIT_ID - 1
            ))
        }
        Layout::Block { .. } => {
            let max = usize::from(slc.max_block_index().unwrap_or(0)) + 1;
            if m > max {
                return bad(format!(
                    "{m} SLCs per endpoint: block-layout profile `{}` holds at most {max}",
                    slc.name
                ));
            }
        }
        _ => {}
    }
    match &cfg.link {
        Link::Listen => {}
        Link::Serial(paths) => {
            if paths.len() != cfg.endpoints {
                return bad(format!(
                    "{} serial paths for {} endpoints: give one path per endpoint",
                    paths.len(),
                    cfg.endpoints
                ));
            }
            if cfg.framing != Framing::RtuOverTcp {
                return bad(
                    "a serial line carries RTU frames: set framing to rtu-over-tcp (rtu)".into(),
                );
            }
        }
        Link::DialIn(d) => {
            d.check().map_err(SimError::Config)?;
            if let Some(i) = d
                .registration_override
                .keys()
                .find(|i| **i >= cfg.endpoints)
            {
                return bad(format!(
                    "registration override for endpoint {i}, but there are {} endpoints",
                    cfg.endpoints
                ));
            }
        }
    }
    if cfg.link == Link::Listen
        && cfg.base_port != 0
        && usize::from(cfg.base_port) + cfg.endpoints > 0x1_0000
    {
        return bad(format!(
            "{} endpoints from port {} run past port 65535",
            cfg.endpoints, cfg.base_port
        ));
    }
    if cfg.districts == 0 {
        return bad("at least one district".into());
    }
    if !(cfg.failure_rate_per_hour >= 0.0 && cfg.failure_rate_per_hour.is_finite()) {
        return bad("failure rate must be a finite number >= 0".into());
    }
    Ok((rtu, slc))
}

impl Simulator {
    /// Binds every listening endpoint, opens every serial device (and binds
    /// the control port), then serves in the background; dial-in endpoints
    /// start dialling at once.
    pub async fn start(cfg: SimConfig) -> Result<Simulator, SimError> {
        let (rtu, slc) = check_config(&cfg)?;
        let circuits = rtu.circuits;
        let mut opened = Vec::with_capacity(cfg.endpoints);
        match &cfg.link {
            Link::Listen => {
                for i in 0..cfg.endpoints {
                    let port = if cfg.base_port == 0 {
                        0
                    } else {
                        cfg.base_port + i as u16
                    };
                    let addr = SocketAddr::new(cfg.host, port);
                    let l = tokio::net::TcpListener::bind(addr)
                        .await
                        .map_err(|source| SimError::Bind { addr, source })?;
                    let addr = l.local_addr().expect("bound listener has an address");
                    opened.push((Place::Listen(addr), Opened::Listener(l)));
                }
            }
            Link::Serial(paths) => {
                for path in paths {
                    let port = serial::Port::open(path).map_err(|source| SimError::Serial {
                        path: path.clone(),
                        source,
                    })?;
                    opened.push((Place::Serial(path.clone()), Opened::Serial(port)));
                }
            }
            Link::DialIn(d) => {
                for i in 0..cfg.endpoints {
                    let id = d.registration_override.get(&i).cloned();
                    opened.push((Place::DialIn(dialin::Dial::new(id)), Opened::DialIn));
                }
            }
        }
        let clock = Clock::new();
        let now = clock.now();
        let (places, opened): (Vec<_>, Vec<_>) = opened.into_iter().unzip();
        let endpoints = places
            .into_iter()
            .enumerate()
            .map(|(i, place)| Endpoint {
                place,
                cabinet: Mutex::new(Cabinet::new(
                    i,
                    cfg.slcs_per_endpoint,
                    circuits,
                    cfg.seed,
                    now,
                )),
                fault: watch::Sender::new(None),
                replies: AtomicU64::new(0),
                served: AtomicU64::new(0),
                accepted: AtomicU64::new(0),
            })
            .collect();
        let shared = Arc::new(Shared {
            profiles: Profiles { rtu, slc },
            clock,
            framing: cfg.framing,
            failure_rate: cfg.failure_rate_per_hour,
            seed: cfg.seed,
            districts: cfg.districts,
            slcs: cfg.slcs_per_endpoint,
            endpoints,
            requests: AtomicU64::new(0),
            shutdown: watch::Sender::new(false),
        });
        let mut sim = Simulator {
            shared: shared.clone(),
            tasks: Arc::default(),
            control: None,
        };
        if let Some(port) = cfg.control_port {
            let addr = SocketAddr::new(cfg.host, port);
            let l = tokio::net::TcpListener::bind(addr)
                .await
                .map_err(|source| SimError::Bind { addr, source })?;
            sim.control = Some(l.local_addr().expect("bound listener has an address"));
            let task = tokio::spawn(control::serve(sim.clone(), l));
            sim.tasks.lock().push(task);
        }
        let mut tasks = sim.tasks.lock();
        let mut dial_cfg = None;
        for (i, o) in opened.into_iter().enumerate() {
            let shared = shared.clone();
            tasks.push(match o {
                Opened::Listener(l) => tokio::spawn(server::serve_endpoint(shared, i, l)),
                Opened::Serial(port) => {
                    let Place::Serial(path) = &shared.endpoints[i].place else {
                        unreachable!("a serial endpoint has a path")
                    };
                    let path = path.clone();
                    tokio::spawn(serial::serve_endpoint(shared, i, path, port))
                }
                Opened::DialIn => {
                    let Link::DialIn(d) = &cfg.link else {
                        unreachable!("a dial-in endpoint of a dial-in farm")
                    };
                    let d = dial_cfg.get_or_insert_with(|| Arc::new(d.clone())).clone();
                    tokio::spawn(dialin::serve_endpoint(shared, i, d))
                }
            });
        }
        drop(tasks);
        Ok(sim)
    }

    /// The listening addresses, endpoint by endpoint ([`Link::Listen`];
    /// empty for the other links, which have none).
    pub fn endpoint_addrs(&self) -> Vec<SocketAddr> {
        self.shared
            .endpoints
            .iter()
            .filter_map(|e| match e.place {
                Place::Listen(a) => Some(a),
                _ => None,
            })
            .collect()
    }

    /// Endpoint `i` as the emitted inventory's `endpoint` cell spells it:
    /// `host:port`, `serial:PATH?baud=9600&parity=N&data_bits=8&stop_bits=1`
    /// or `dtu:CAB-0001`. Panics on an unknown index.
    pub fn inventory_endpoint(&self, i: usize) -> String {
        inventory::endpoint_cell(&self.shared, i)
    }

    /// The inventory's framing cell for the farm's endpoints: `tcp` or
    /// `rtu-over-tcp` on listening endpoints, `rtu` on serial lines, `rtu`
    /// or `tcp` on dial-in links.
    pub fn inventory_framing(&self) -> &'static str {
        inventory::framing_cell(&self.shared)
    }

    /// The inventory id of endpoint `i`'s cabinet, `CAB-{i+1:04}` (also what
    /// a dial-in endpoint registers with).
    pub fn cabinet_id(&self, i: usize) -> String {
        inventory::cabinet_id(i)
    }

    /// How the farm's endpoints meet the gateway: `listen`, `serial` or `dial_in`.
    pub fn link_kind(&self) -> &'static str {
        match self.shared.endpoints.first().map(|e| &e.place) {
            Some(Place::Serial(_)) => "serial",
            Some(Place::DialIn(_)) => "dial_in",
            _ => "listen",
        }
    }

    fn dial(&self, endpoint: usize) -> Result<&dialin::Dial, SimError> {
        self.check_endpoint(endpoint)?;
        match &self.shared.endpoints[endpoint].place {
            Place::DialIn(d) => Ok(d),
            _ => Err(SimError::Unsupported(format!(
                "endpoint {endpoint} does not dial in (link `{}`)",
                self.link_kind()
            ))),
        }
    }

    /// Dial-in: closes endpoint `endpoint`'s link and dials again at once
    /// (also cutting a backoff wait short). Errors on an unknown index or an
    /// endpoint that does not dial in.
    pub fn reconnect_endpoint(&self, endpoint: usize) -> Result<(), SimError> {
        self.dial(endpoint)?.reconnect.send_replace(false);
        Ok(())
    }

    /// Dial-in: dials a new link while the old one stays open and unserved
    /// (a DTU whose radio link died without a FIN), so the gateway has to
    /// replace a connection it still believes in. The old socket is closed
    /// at the next half-open reconnect, a `refuse` fault or shutdown.
    pub fn reconnect_endpoint_half_open(&self, endpoint: usize) -> Result<(), SimError> {
        self.dial(endpoint)?.reconnect.send_replace(true);
        Ok(())
    }

    /// Dial-in: registers with these bytes instead of the cabinet id from
    /// the next connection on (`None`: the cabinet id again). Combine with
    /// [`Simulator::reconnect_endpoint`] to make it take effect now.
    pub fn set_registration_override(
        &self,
        endpoint: usize,
        id: Option<Vec<u8>>,
    ) -> Result<(), SimError> {
        *self.dial(endpoint)?.registration.lock() = id;
        Ok(())
    }

    /// Dial-in: the bytes endpoint `endpoint` registers with (`None` for
    /// other links).
    pub fn registration(&self, endpoint: usize) -> Option<Vec<u8>> {
        let d = self.dial(endpoint).ok()?;
        let id = d.registration.lock().clone();
        Some(id.unwrap_or_else(|| self.cabinet_id(endpoint).into_bytes()))
    }

    /// Dial-in: whether endpoint `endpoint` is connected and registered now.
    pub fn dial_in_connected(&self, endpoint: usize) -> bool {
        self.dial(endpoint)
            .is_ok_and(|d| d.connected.load(Ordering::Relaxed))
    }

    /// Dial-in: connections endpoint `endpoint` has made and registered so far.
    pub fn dial_in_connections(&self, endpoint: usize) -> u64 {
        self.dial(endpoint)
            .map_or(0, |d| d.connections.load(Ordering::Relaxed))
    }

    /// Modbus requests endpoint `endpoint` has answered (exception replies
    /// included). Panics on an unknown index.
    pub fn endpoint_request_count(&self, endpoint: usize) -> u64 {
        self.shared.endpoints[endpoint]
            .served
            .load(Ordering::Relaxed)
    }

    /// TCP connections endpoint `endpoint` has accepted so far: a client
    /// that keeps its link open makes one.
    pub fn endpoint_connections(&self, endpoint: usize) -> u64 {
        self.shared.endpoints[endpoint]
            .accepted
            .load(Ordering::Relaxed)
    }

    pub fn control_addr(&self) -> Option<SocketAddr> {
        self.control
    }

    pub fn endpoint_count(&self) -> usize {
        self.shared.endpoints.len()
    }

    pub fn slcs_per_endpoint(&self) -> usize {
        self.shared
            .endpoints
            .first()
            .map_or(0, |e| e.cabinet.lock().slcs.len())
    }

    pub fn framing(&self) -> Framing {
        self.shared.framing
    }

    /// The SLC profile in use.
    pub fn slc_profile(&self) -> &Profile {
        &self.shared.profiles.slc
    }

    /// The RTU profile in use.
    pub fn rtu_profile(&self) -> &Profile {
        &self.shared.profiles.rtu
    }

    /// Modbus unit id and block index (block layout) that reach SLC `slc`.
    pub fn slc_address(&self, slc: usize) -> (u8, Option<u16>) {
        match self.shared.profiles.slc.layout {
            Layout::Unit => ((slc + 2) as u8, None),
            Layout::Block { .. } => (1, Some(slc as u16)),
        }
    }

    /// Sets or clears a fault of endpoint `endpoint`. Panics where
    /// [`Simulator::try_set_endpoint_fault`] returns an error.
    pub fn set_endpoint_fault(&self, endpoint: usize, fault: Option<EndpointFault>) {
        if let Err(e) = self.try_set_endpoint_fault(endpoint, fault) {
            panic!("set_endpoint_fault({endpoint}): {e}");
        }
    }

    /// Sets or clears a fault of endpoint `endpoint`; refuses an unknown
    /// index and `stray_frames` on Modbus TCP framing (or with `every = 0`).
    pub fn try_set_endpoint_fault(
        &self,
        endpoint: usize,
        fault: Option<EndpointFault>,
    ) -> Result<(), SimError> {
        self.check_endpoint(endpoint)?;
        self.check_endpoint_fault(fault.as_ref())?;
        self.shared.endpoints[endpoint].fault.send_replace(fault);
        Ok(())
    }

    /// Whether this farm can carry an endpoint fault at all.
    pub(crate) fn check_endpoint_fault(
        &self,
        fault: Option<&EndpointFault>,
    ) -> Result<(), SimError> {
        if let Some(EndpointFault::StrayFrames { every, .. }) = fault {
            if self.shared.framing == Framing::Tcp {
                return Err(SimError::Unsupported(
                    "endpoint fault stray_frames needs RTU framing (serial, rtu-over-tcp or an \
                     RTU dial-in link): on Modbus TCP every frame has its own header and \
                     transaction id, there is no shared line to carry other traffic"
                        .into(),
                ));
            }
            if *every == 0 {
                return Err(SimError::Config(
                    "endpoint fault stray_frames: `every` must be at least 1".into(),
                ));
            }
        }
        Ok(())
    }

    pub fn endpoint_fault(&self, endpoint: usize) -> Option<EndpointFault> {
        *self.shared.endpoints[endpoint].fault.borrow()
    }

    /// Replaces the fault of one SLC (the default value clears it). Panics
    /// where [`Simulator::try_set_slc_fault`] returns an error.
    pub fn set_slc_fault(&self, endpoint: usize, slc: usize, fault: SlcFault) {
        if let Err(e) = self.try_set_slc_fault(endpoint, slc, fault) {
            panic!("set_slc_fault({endpoint}, {slc}): {e}");
        }
    }

    /// Replaces the fault of one SLC; refuses unknown indices and
    /// `no_answer` with a block-layout profile.
    pub fn try_set_slc_fault(
        &self,
        endpoint: usize,
        slc: usize,
        fault: SlcFault,
    ) -> Result<(), SimError> {
        self.check_slc(endpoint, slc)?;
        self.check_slc_fault(&fault)?;
        let (mut cab, now) = self.shared.cabinet(endpoint, true);
        cab.set_slc_fault(slc, fault, now);
        Ok(())
    }

    /// The fault SLC `slc` of endpoint `endpoint` has now (default: none).
    pub fn slc_fault(&self, endpoint: usize, slc: usize) -> SlcFault {
        self.shared.endpoints[endpoint]
            .cabinet
            .lock()
            .slc_fault(slc)
    }

    fn check_slc(&self, endpoint: usize, slc: usize) -> Result<(), SimError> {
        self.check_endpoint(endpoint)?;
        let m = self.slcs_per_endpoint();
        if slc >= m {
            return Err(SimError::NotFound(format!(
                "no SLC {slc} on endpoint {endpoint} (have {m})"
            )));
        }
        Ok(())
    }

    fn check_endpoint(&self, endpoint: usize) -> Result<(), SimError> {
        let n = self.endpoint_count();
        if endpoint >= n {
            return Err(SimError::NotFound(format!(
                "no endpoint {endpoint} (have {n})"
            )));
        }
        Ok(())
    }

    /// Whether this farm can carry an SLC fault at all.
    pub(crate) fn check_slc_fault(&self, fault: &SlcFault) -> Result<(), SimError> {
        if let Some(k) = fault.power_scale {
            if !(0.0..=10.0).contains(&k) {
                return Err(SimError::Config(format!(
                    "SLC fault power_scale {k}: a factor from 0 to 10"
                )));
            }
        }
        let p = &self.shared.profiles.slc;
        if fault.no_answer && matches!(p.layout, Layout::Block { .. }) {
            return Err(SimError::Unsupported(format!(
                "SLC fault no_answer needs a unit-layout profile: `{}` keeps its SLCs in \
                 register blocks of the concentrator (unit 1), which answers for them; \
                 use `silent` (the block reads comm_ok = 0)",
                p.name
            )));
        }
        Ok(())
    }

    /// Replaces the fault of endpoint `endpoint`'s cabinet RTU (unit 1); the
    /// default value clears it. Panics on an unknown index.
    pub fn set_rtu_fault(&self, endpoint: usize, fault: RtuFault) {
        self.shared.endpoints[endpoint].cabinet.lock().rtu_fault = fault;
    }

    pub fn rtu_fault(&self, endpoint: usize) -> RtuFault {
        self.shared.endpoints[endpoint].cabinet.lock().rtu_fault
    }

    /// Circuits per cabinet (the RTU profile's), numbered from 1.
    pub fn circuits(&self) -> usize {
        self.shared
            .endpoints
            .first()
            .map_or(0, |e| e.cabinet.lock().contactors.len())
    }

    fn check_circuit(&self, endpoint: usize, circuit: usize) -> Result<(), SimError> {
        self.check_endpoint(endpoint)?;
        let n = self.circuits();
        if !(1..=n).contains(&circuit) {
            return Err(SimError::NotFound(format!(
                "no circuit {circuit} on endpoint {endpoint} (have 1 to {n})"
            )));
        }
        Ok(())
    }

    /// Replaces the fault of circuit `circuit` (1-based) of endpoint
    /// `endpoint`'s cabinet; the default value clears it. Panics where
    /// [`Simulator::try_set_circuit_fault`] returns an error.
    pub fn set_circuit_fault(&self, endpoint: usize, circuit: usize, fault: CircuitFault) {
        if let Err(e) = self.try_set_circuit_fault(endpoint, circuit, fault) {
            panic!("set_circuit_fault({endpoint}, {circuit}): {e}");
        }
    }

    /// Replaces the fault of circuit `circuit` (1-based); refuses unknown
    /// indices.
    pub fn try_set_circuit_fault(
        &self,
        endpoint: usize,
        circuit: usize,
        fault: CircuitFault,
    ) -> Result<(), SimError> {
        self.check_circuit(endpoint, circuit)?;
        let (mut cab, now) = self.shared.cabinet(endpoint, true);
        cab.set_circuit_fault(circuit - 1, fault, now);
        Ok(())
    }

    /// The fault circuit `circuit` (1-based) has now (default: none).
    /// Panics on unknown indices.
    pub fn circuit_fault(&self, endpoint: usize, circuit: usize) -> CircuitFault {
        if let Err(e) = self.check_circuit(endpoint, circuit) {
            panic!("circuit_fault({endpoint}, {circuit}): {e}");
        }
        self.shared.endpoints[endpoint]
            .cabinet
            .lock()
            .circuit_fault(circuit - 1)
    }

    /// Sets the load (W) of the lamps without an SLC on circuit `circuit`
    /// (1-based) of endpoint `endpoint`'s cabinet: drawn while the circuit
    /// has supply, it is in the RTU's active power, phase current and
    /// energy and in no SLC's readings (0 clears it). Panics where
    /// [`Simulator::try_set_plain_load`] returns an error.
    pub fn set_plain_load(&self, endpoint: usize, circuit: usize, watts: f64) {
        if let Err(e) = self.try_set_plain_load(endpoint, circuit, watts) {
            panic!("set_plain_load({endpoint}, {circuit}, {watts}): {e}");
        }
    }

    /// Sets the load of a circuit's lamps without an SLC; refuses unknown
    /// indices and a load that is negative or not finite.
    pub fn try_set_plain_load(
        &self,
        endpoint: usize,
        circuit: usize,
        watts: f64,
    ) -> Result<(), SimError> {
        self.check_circuit(endpoint, circuit)?;
        if !(watts.is_finite() && watts >= 0.0) {
            return Err(SimError::Config(format!(
                "plain load {watts} W: a finite load of 0 W or more"
            )));
        }
        // Billed up to now at the old load first.
        let (mut cab, _) = self.shared.cabinet(endpoint, true);
        cab.plain_w[circuit - 1] = watts;
        Ok(())
    }

    /// Sets the cabinet's door and leakage (residual current) alarms, as its
    /// RTU reports them. Panics on an unknown index.
    pub fn set_rtu_alarms(&self, endpoint: usize, door: bool, leakage: bool) {
        let (mut cab, _) = self.shared.cabinet(endpoint, true);
        cab.door = door;
        cab.leakage = leakage;
    }

    /// What SLC `slc`'s registers would read now (frozen values while silent).
    pub fn slc_values(&self, endpoint: usize, slc: usize) -> SlcValues {
        let (cab, now) = self.shared.cabinet(endpoint, false);
        cab.observed_slc(slc, now)
    }

    pub fn rtu_values(&self, endpoint: usize) -> RtuValues {
        let (cab, now) = self.shared.cabinet(endpoint, false);
        cab.rtu(now)
    }

    /// Stops (or restarts) simulated time: no noise, accumulation or random failures.
    pub fn set_frozen(&self, frozen: bool) {
        self.shared.clock.set_frozen(frozen);
        // Bill every cabinet up to the freeze so frozen reads are final.
        if frozen {
            for i in 0..self.shared.endpoints.len() {
                drop(self.shared.cabinet(i, true));
            }
        }
    }

    pub fn frozen(&self) -> bool {
        self.shared.clock.frozen()
    }

    /// Modbus requests answered so far (exception replies included).
    pub fn request_count(&self) -> u64 {
        self.shared.requests.load(Ordering::Relaxed)
    }

    /// Writes `districts.csv`, `cabinets.csv` and `lamps.csv` matching this farm.
    pub fn write_inventory(&self, dir: &Path, opts: &InventoryOptions) -> std::io::Result<()> {
        inventory::write(&self.shared, dir, opts)
    }

    /// Applies a scenario's faults and alarms; rejects unknown indices first.
    pub fn apply_scenario(&self, scenario: &Scenario) -> Result<(), ScenarioError> {
        scenario.apply(self)
    }

    /// Stops listening and closes every connection.
    pub async fn shutdown(self) {
        self.shared.shutdown.send_replace(true);
        let tasks = std::mem::take(&mut *self.tasks.lock());
        for t in tasks {
            let _ = t.await;
        }
    }
}
