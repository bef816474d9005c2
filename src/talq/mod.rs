//! The TALQ 2.7.1 gateway API (issue 19): a TALQ central management system
//! (CMS) reads the city's lamps and cabinet RTUs as TALQ devices and
//! overrides lamps, under `[talq] base_path` (default `/talq`), beside the
//! HTTP API and over the same state. A room above `api/` (it serves
//! `api::AppState`, like the console); nothing below imports it.
//!
//! - Addresses: address.rs holds THE mapping of TALQ addresses (UUIDs) to
//!   our stable inventory ids.
//! - Devices: each lamp with an SLC (BasicFunction, LampActuatorFunction,
//!   LampMonitorFunction, CommunicationFunction), each cabinet RTU
//!   (BasicFunction, CabinetMonitorFunction, ElectricalMeterFunction,
//!   CommunicationFunction, a SegmentMonitorFunction per circuit), and the
//!   gateway itself (BasicFunction, GatewayFunction); their classes and
//!   the units of every attribute in classes.rs, the values from the live
//!   state in devices.rs (its module doc has the rules).
//! - Overrides: overrides.rs (its module doc has the rules), onto the
//!   control path.
//! - Requests: every request needs a bearer token of `[[auth.tokens]]`
//!   (those `[talq] cms_tokens` names, when it names any) — its role and
//!   district apply as on `/api/v1` —, the `talq-api-version` header
//!   (2.x), a `clientAddress` UUID (the configured `cms_address`, when one
//!   is), and on writes a `talqRequestId` UUID. Errors are TALQ's
//!   `[TALQErrorMessage]` (error.rs). TLS is the reverse proxy's
//!   (`gatewayUri` says where the CMS reaches the gateway).
//! - Groups: our groups of lamps, read-only (groups.rs); an override may
//!   address one.
//! - Calendars, control programs, assign commands: the schedule's book,
//!   edited as the HTTP API edits it (schedules.rs), mapped both ways only
//!   where exact (calendars.rs, programs.rs).
//! - Not yet: group writes, logger configs and log reports, the
//!   announcements to the CMS (docs/talq.md lists what is and is not
//!   served, and why).

mod address;
mod calendars;
mod classes;
mod config;
mod devices;
mod error;
mod groups;
mod overrides;
mod programs;
mod routes;
mod schedules;
mod values;

pub use address::{default_gateway_address, group_address, lamp_address, rtu_address};
pub use config::TalqSettings;
pub use error::TalqError;

use crate::api::AppState;
use crate::inventory::Inventory;
use address::Index;
use devices::GatewayFacts;
use parking_lot::Mutex;
use std::net::SocketAddr;
use std::sync::Arc;

/// The TALQ side of the gateway: kept across reloads (a CMS's overrides
/// outlive a reload, as the console's sessions do); the device index
/// follows the inventory it is asked about.
#[derive(Debug)]
pub struct Talq {
    settings: TalqSettings,
    gateway: GatewayFacts,
    index: Mutex<Option<Arc<Index>>>,
    overrides: Arc<overrides::Overrides>,
    /// The book writes answered, for a CMS's retries.
    answered: schedules::Answered,
}

impl Talq {
    /// `None` unless `[talq] enabled`.
    pub fn new(
        settings: &TalqSettings,
        gateway_id: &str,
        api_listen: SocketAddr,
    ) -> Option<Arc<Talq>> {
        if !settings.enabled {
            return None;
        }
        let address = settings
            .gateway_address
            .unwrap_or_else(|| default_gateway_address(gateway_id));
        let uri = settings
            .gateway_uri
            .clone()
            .unwrap_or_else(|| format!("http://{api_listen}{}", settings.base_path));
        Some(Arc::new(Talq {
            settings: settings.clone(),
            gateway: GatewayFacts {
                id: gateway_id.to_string(),
                address,
                uri,
                cms_uri: settings.cms_uri.clone(),
                cms_address: settings.cms_address,
                crl_urn: settings.crl_urn.clone(),
                retry_period_s: settings.retry_period.as_secs_f64(),
            },
            index: Mutex::new(None),
            overrides: Arc::default(),
            answered: schedules::Answered::default(),
        }))
    }

    /// The gateway's TALQ address.
    pub fn gateway_address(&self) -> uuid::Uuid {
        self.gateway.address
    }

    /// The devices of `inventory`, built once per inventory (a reload's
    /// new one builds it again).
    fn index(&self, inventory: &Arc<Inventory>) -> Arc<Index> {
        let mut cached = self.index.lock();
        if let Some(i) = cached
            .as_ref()
            .filter(|i| Arc::ptr_eq(&i.inventory, inventory))
        {
            return i.clone();
        }
        let i = Arc::new(Index::new(inventory.clone(), self.gateway.address));
        *cached = Some(i.clone());
        i
    }
}

/// The TALQ routes under `[talq] base_path`, on the API's state.
pub fn router(state: AppState, talq: Arc<Talq>) -> axum::Router {
    let base = talq.settings.base_path.clone();
    let routes = routes::routes()
        .merge(schedules::routes())
        .fallback(|| async { TalqError::NotFound("no such TALQ resource here".into()) })
        // Commissioning (POST, PUT, DELETE of devices) and the rest of
        // TALQ's writes are not served (ConfigurationService says so).
        .method_not_allowed_fallback(|| async {
            TalqError::MethodNotAllowed("this gateway does not serve that method here".into())
        })
        .with_state(routes::TalqState { app: state, talq });
    axum::Router::new().nest(&base, routes)
}
