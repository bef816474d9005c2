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
/// (record separator) bytes, through the whole-configuration check that
/// `run` and `check-config` share, with the shipped profiles.
pub fn inventory_csv(bytes: &[u8]) {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    let dir = DIR.get_or_init(|| {
        let dir = tempfile::tempdir().expect("a temporary folder");
        std::fs::create_dir_all(dir.path().join("inventory")).expect("inventory folder");
        let profiles = dir.path().join("profiles");
        std::fs::create_dir_all(&profiles).expect("profiles folder");
        let shipped = concat!(env!("CARGO_MANIFEST_DIR"), "/config/profiles");
        for entry in std::fs::read_dir(shipped).expect("the shipped profiles") {
            let entry = entry.expect("a profile");
            std::fs::copy(entry.path(), profiles.join(entry.file_name())).expect("copy");
        }
        dir
    });
    let mut parts = bytes.splitn(3, |&b| b == 0x1e);
    let inv = dir.path().join("inventory");
    for name in ["districts.csv", "cabinets.csv", "lamps.csv"] {
        std::fs::write(inv.join(name), parts.next().unwrap_or_default()).expect("write");
    }
    let mut settings = crate::settings::Settings::default();
    settings.paths.inventory = inv;
    settings.paths.profiles = dir.path().join("profiles");
    let _ = crate::validate::load(&settings);
}
