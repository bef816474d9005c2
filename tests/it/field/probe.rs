//! The commissioning tool, run as the binary a field engineer runs, against
//! tokio-modbus's server: every field decoded with its raw registers, an
//! exception by name, a write read back; `check-config --probe` lists the
//! endpoints that do not answer.

use super::farm::{serve_tcp, write_inventory, Bus};
use parking_lot::Mutex;
use std::process::Command;
use std::sync::Arc;
use tokio_modbus::ExceptionCode;

fn gateway() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_lamp-gateway"));
    c.current_dir(env!("CARGO_MANIFEST_DIR"));
    c
}

fn run(c: &mut Command) -> (i32, String) {
    let out = c.output().expect("lamp-gateway runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or(-1), text)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probe_prints_every_field_raw_and_decoded_and_writes_with_read_back() {
    let mut bus = Bus::lamps([3, 5]);
    bus.exceptions.insert(5, ExceptionCode::GatewayTargetDevice);
    let bus = Arc::new(Mutex::new(bus));
    let addr = serve_tcp(bus.clone()).await.to_string();

    let (code, out) = tokio::task::spawn_blocking({
        let addr = addr.clone();
        move || {
            run(gateway().args([
                "probe",
                "--endpoint",
                &addr,
                "--unit",
                "3",
                "--profile",
                "slc-a-unit",
                "--write",
                "dim_level=40",
            ]))
        }
    })
    .await
    .unwrap();
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("connected in"), "{out}");
    // Holding 2 = 2300 raw (0x08FC) × 0.1 = 230 V; 3 = 350 (0x015E) × 0.001 A.
    let line = |name: &str| {
        out.lines()
            .find(|l| l.starts_with(name))
            .unwrap_or_else(|| panic!("no `{name}` line in:\n{out}"))
            .to_string()
    };
    assert!(
        line("voltage").contains("08FC") && line("voltage").contains("230 V"),
        "{out}"
    );
    assert!(
        line("current").contains("015E") && line("current").contains("0.35 A"),
        "{out}"
    );
    assert!(line("energy").contains("0000 04D2"), "{out}");
    assert!(out.contains("write dim_level=40: read back 40"), "{out}");
    assert_eq!(
        bus.lock().registers[&3][1],
        40,
        "the write reached the device"
    );

    let (code, out) = tokio::task::spawn_blocking(move || {
        run(gateway().args([
            "probe",
            "--endpoint",
            &addr,
            "--unit",
            "5",
            "--profile",
            "slc-a-unit",
        ]))
    })
    .await
    .unwrap();
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("exception 0x0b (gateway target device failed to respond)"),
        "{out}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_config_probe_lists_the_endpoints_that_do_not_answer() {
    let bus = Arc::new(Mutex::new(Bus::lamps([2])));
    let alive = serve_tcp(bus).await.to_string();
    // A port nobody listens on.
    let dead = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().to_string()
    };
    let dir = tempfile::tempdir().unwrap();
    let inv = dir.path().join("inventory");
    write_inventory(&inv, &alive, "tcp", &[2]);
    // A second cabinet on the dead endpoint.
    let cabinets = std::fs::read_to_string(inv.join("cabinets.csv")).unwrap()
        + &format!("CAB-2,D01,Cabinet 2,,,1,{dead},tcp,,,\n");
    std::fs::write(inv.join("cabinets.csv"), cabinets).unwrap();
    let lamps = std::fs::read_to_string(inv.join("lamps.csv")).unwrap()
        + "L-900,CAB-2,1,,,80,SLC-900,slc-a-unit,1,\n";
    std::fs::write(inv.join("lamps.csv"), lamps).unwrap();
    let config = dir.path().join("gateway.toml");
    std::fs::write(
        &config,
        format!(
            "[paths]\ninventory = {:?}\nprofiles = {:?}\n[mqtt]\nurl = \"none\"\n[store]\nurl = \"none\"\n",
            inv,
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("config/profiles")
        ),
    )
    .unwrap();
    let (code, out) = tokio::task::spawn_blocking(move || {
        run(gateway()
            .args([
                "check-config",
                "--probe",
                "--probe-budget",
                "5s",
                "--config",
            ])
            .arg(&config))
    })
    .await
    .unwrap();
    assert_eq!(code, 1, "{out}");
    assert!(out.contains(&format!("reachable   {alive}")), "{out}");
    assert!(
        out.contains(&format!("UNREACHABLE {dead}: cannot connect")),
        "{out}"
    );
    assert!(out.contains("1 endpoint(s) unreachable"), "{out}");
}
