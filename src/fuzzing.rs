//! Entry points for the fuzz targets in `fuzz/` (built only with
//! `--cfg fuzzing`, which the fuzz build sets): each feeds arbitrary bytes
//! to one parser the gateway runs on input from outside, through the same
//! code a real input takes. A panic, a hang or an allocation past the fuzz
//! limits is the finding; what each returns is only checked where a property
//! holds for every input (a reply taken must be the size the request asked).

use crate::dialin::registry::Judgement;
use crate::dialin::Registry;
use crate::poll::{attach, LinkFraming, LinkOptions};
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio_modbus::client::{Context, Reader};
use tokio_modbus::Slave;

fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a tokio runtime")
    })
}

/// How a fuzzed reply reaches the gateway's Modbus client.
#[derive(Debug, Clone, Copy)]
pub enum Wire {
    /// Modbus TCP endpoints: tokio-modbus's own TCP client.
    Tcp,
    /// Serial lines and transparent DTUs: our RTU link.
    Rtu,
    /// DTUs passing Modbus TCP frames: our MBAP link.
    Mbap,
}

/// One poll's read of 10 holding registers at 100 from unit 1, answered with
/// `reply` and then end of stream: whatever the bytes, the call ends, and a
/// reply it takes holds exactly the 10 registers asked for.
pub fn modbus_reply(wire: Wire, reply: &[u8]) {
    runtime().block_on(async {
        let (ours, mut device) = tokio::io::duplex(64 * 1024);
        let mut ctx: Context = match wire {
            Wire::Tcp => tokio_modbus::client::tcp::attach_slave(ours, Slave(1)),
            Wire::Rtu | Wire::Mbap => attach(
                Box::new(ours),
                LinkOptions {
                    framing: if matches!(wire, Wire::Rtu) {
                        LinkFraming::Rtu
                    } else {
                        LinkFraming::Mbap
                    },
                    request_gap: Duration::ZERO,
                    heartbeat: Some(Arc::from(&b"www.usr.cn"[..])),
                },
            ),
        };
        let _ = device.write_all(reply).await;
        drop(device);
        let answer =
            tokio::time::timeout(Duration::from_secs(5), ctx.read_holding_registers(100, 10))
                .await
                .expect("a call on a closed stream ends");
        if let Ok(Ok(words)) = answer {
            assert_eq!(words.len(), 10, "a reply of another size was taken");
        }
    });
}

/// A DTU's registration bytes against a registry of a few ids (one the
/// prefix of another, as real fleets have) and the USR heartbeat.
pub fn dialin_registration(bytes: &[u8]) {
    static REGISTRY: OnceLock<Arc<Registry>> = OnceLock::new();
    let registry = REGISTRY.get_or_init(|| {
        Registry::new(
            ["DTU-01", "DTU-010", "860123456789012", "a"]
                .into_iter()
                .map(String::from),
            Some(Arc::from(&b"www.usr.cn"[..])),
        )
    });
    match registry.judge(bytes) {
        Judgement::Register(slot) | Judgement::RegisterIfQuiet(slot) => {
            assert!(
                bytes.starts_with(slot.id().as_bytes()),
                "registered an id the bytes do not start with"
            );
        }
        Judgement::ReadOn | Judgement::Refuse(_) => {}
    }
}

/// A command body as the API and MQTT receive it.
pub fn command_json(bytes: &[u8]) {
    if let Ok(body) = crate::control::CommandBody::parse(bytes) {
        let _ = body.action();
    }
}

/// The three inventory files, split from `bytes` at the first two `\x1e`
/// (record separator) bytes, read as `run` reads them and cross-checked
/// against the shipped profiles as `run` and `check-config` check them
/// (`validate::check`; the profiles are parsed once, their own target is
/// `profile_toml`). The files go to a RAM-backed folder where there is one.
pub fn inventory_csv(bytes: &[u8]) {
    type Profiles = std::collections::BTreeMap<String, Arc<lamp_profile::Profile>>;
    static DIR: OnceLock<(tempfile::TempDir, Profiles)> = OnceLock::new();
    let (dir, profiles) = DIR.get_or_init(|| {
        let shm = std::path::Path::new("/dev/shm");
        let dir = if shm.is_dir() {
            tempfile::tempdir_in(shm)
        } else {
            tempfile::tempdir()
        }
        .expect("a temporary folder");
        let shipped = concat!(env!("CARGO_MANIFEST_DIR"), "/config/profiles");
        let profiles = lamp_profile::Profile::load_dir(std::path::Path::new(shipped))
            .expect("the shipped profiles load")
            .into_iter()
            .map(|(k, v)| (k, Arc::new(v)))
            .collect();
        (dir, profiles)
    });
    let mut parts = bytes.splitn(3, |&b| b == 0x1e);
    for name in ["districts.csv", "cabinets.csv", "lamps.csv"] {
        std::fs::write(dir.path().join(name), parts.next().unwrap_or_default()).expect("write");
    }
    let (inventory, mut issues) = crate::inventory::load_dir(dir.path());
    let max_gap = crate::settings::Settings::default().poll.max_gap;
    let _ = crate::validate::check(&inventory, profiles, max_gap, &mut issues);
}
