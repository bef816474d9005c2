//! `Link::Serial` over a socat pty pair: the farm on one end, tokio-modbus's
//! RTU client (the gateway's part) on the other.

mod common;

use common::*;
use lamp_profile::{encode, Quantity};
use lamp_sim::{EndpointFault, Framing, InventoryOptions, Link, SimConfig, SimError, Simulator};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use tokio::io::AsyncWriteExt;
use tokio::net::unix::pipe;
use tokio_modbus::prelude::*;

/// A socat process joining two pty ends; killed on drop.
struct PtyPair {
    child: Child,
    a: PathBuf,
    b: PathBuf,
    dir: PathBuf,
}

impl Drop for PtyPair {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

async fn pty_pair(name: &str) -> Option<PtyPair> {
    if Command::new("socat")
        .arg("-V")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_err()
    {
        println!("SKIPPED: socat not installed (apt-get install socat)");
        return None;
    }
    let dir = std::env::temp_dir().join(format!("lamp-sim-pty-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (a, b) = (dir.join("a"), dir.join("b"));
    let child = Command::new("socat")
        .arg(format!("pty,raw,echo=0,link={}", a.display()))
        .arg(format!("pty,raw,echo=0,link={}", b.display()))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("socat starts");
    let pair = PtyPair { child, a, b, dir };
    wait_until("socat's pty links", || async {
        pair.a.exists() && pair.b.exists()
    })
    .await;
    Some(pair)
}

/// The gateway's end of the line: the pty opened non-blocking, read and
/// written through tokio.
fn open_line(path: &Path) -> tokio::io::Join<pipe::Receiver, pipe::Sender> {
    use rustix::fs::{Mode, OFlags};
    let flags = OFlags::RDWR | OFlags::NOCTTY | OFlags::NONBLOCK | OFlags::CLOEXEC;
    let file = std::fs::File::from(rustix::fs::open(path, flags, Mode::empty()).unwrap());
    let rx = pipe::Receiver::from_file_unchecked(file.try_clone().unwrap()).unwrap();
    let tx = pipe::Sender::from_file_unchecked(file).unwrap();
    tokio::io::join(rx, tx)
}

async fn serial_farm(paths: Vec<PathBuf>, profile: &str) -> Result<Simulator, SimError> {
    let sim = Simulator::start(SimConfig {
        endpoints: paths.len(),
        slcs_per_endpoint: 3,
        slc_profile: profile.into(),
        framing: Framing::RtuOverTcp,
        link: Link::Serial(paths),
        ..SimConfig::default()
    })
    .await?;
    sim.set_frozen(true);
    Ok(sim)
}

#[tokio::test]
async fn serves_rtu_over_a_pty() {
    let Some(pty) = pty_pair("serve").await else {
        return;
    };
    let sim = serial_farm(vec![pty.a.clone()], "slc-a-unit")
        .await
        .unwrap();
    assert!(sim.endpoint_addrs().is_empty(), "no listening address");
    let cell = format!(
        "serial:{}?baud=9600&parity=N&data_bits=8&stop_bits=1",
        pty.a.display()
    );
    assert_eq!(sim.inventory_endpoint(0), cell);

    // A Modbus RTU client reads every field of SLC 2 (unit 4) and writes.
    let mut ctx = rtu::attach_slave(open_line(&pty.b), Slave(4));
    let p = sim.slc_profile().clone();
    let v = sim.slc_values(0, 2);
    for f in &p.fields {
        assert_eq!(
            read_field(&mut ctx, &p, f, 0).await,
            encode(f, v.get(f.quantity).unwrap()),
            "{}",
            f.quantity
        );
    }
    let dim = p.field(Quantity::DimLevel).unwrap();
    within(ctx.write_multiple_registers(dim.address, &encode(dim, 40.0)))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(sim.slc_values(0, 2).dim_level, 40.0);
    drop(ctx);

    // Frames back to back on one stream; garbage in front of a request, a
    // frame with a bad CRC, then a good request: the framer resynchronises.
    let mut line = open_line(&pty.b);
    let req = rtu_frame(2, &[3, 0, 0, 0, 2]);
    let mut bad = req.clone();
    bad[6] ^= 0x55;
    let mut burst = vec![0x37, 0x99, 0x00];
    burst.extend_from_slice(&bad);
    burst.extend_from_slice(&req);
    line.write_all(&burst).await.unwrap();
    let r = read_exact(&mut line, 9).await;
    assert!(crc_ok(&r) && r[..3] == [2, 3, 4], "{r:02X?}");
    // Noise no request follows at once: dropped when the line goes quiet,
    // and the next request is answered.
    line.write_all(&[0x11, 0x99, 0x42]).await.unwrap();
    line.write_all(&req).await.unwrap();
    let r = read_exact(&mut line, 9).await;
    assert!(crc_ok(&r) && r[..3] == [2, 3, 4], "{r:02X?}");

    // Stray frames on the line before the reply.
    sim.set_endpoint_fault(
        0,
        Some(EndpointFault::StrayFrames {
            every: 1,
            noise: false,
        }),
    );
    line.write_all(&req).await.unwrap();
    let first = read_exact(&mut line, 8).await;
    assert!(
        crc_ok(&first) && first[0] > 4,
        "a foreign request: {first:02X?}"
    );
    let r = read_exact(&mut line, 9).await;
    assert!(crc_ok(&r) && r[..3] == [2, 3, 4], "{r:02X?}");
    sim.set_endpoint_fault(0, None);

    // A dead unit on the bus sends nothing; the next unit answers.
    sim.set_slc_fault(
        0,
        0,
        lamp_sim::SlcFault {
            no_answer: true,
            ..Default::default()
        },
    );
    let mut burst = req.clone();
    burst.extend(rtu_frame(3, &[3, 0, 0, 0, 2]));
    line.write_all(&burst).await.unwrap();
    let r = read_exact(&mut line, 9).await;
    assert!(crc_ok(&r) && r[..3] == [3, 3, 4], "{r:02X?}");

    // The inventory names the line and RTU framing.
    let dir = pty.dir.join("inv");
    sim.write_inventory(&dir, &InventoryOptions::default())
        .unwrap();
    let mut cabs = csv::Reader::from_path(dir.join("cabinets.csv")).unwrap();
    let row = cabs.records().next().unwrap().unwrap();
    assert_eq!((&row[6], &row[7]), (cell.as_str(), "rtu"));
    sim.shutdown().await;
}

#[tokio::test]
async fn serial_configuration_is_checked() {
    let missing = std::env::temp_dir().join("lamp-sim-no-such-tty");
    match serial_farm(vec![missing], "slc-a-unit").await {
        Err(SimError::Serial { path, .. }) => assert!(path.ends_with("lamp-sim-no-such-tty")),
        Err(e) => panic!("{e}"),
        Ok(_) => panic!("opened a missing device"),
    }
    let e = Simulator::start(SimConfig {
        endpoints: 2,
        framing: Framing::RtuOverTcp,
        link: Link::Serial(vec!["/dev/null".into()]),
        ..SimConfig::default()
    })
    .await
    .err()
    .unwrap();
    assert!(e.to_string().contains("one path per endpoint"), "{e}");
    let e = Simulator::start(SimConfig {
        link: Link::Serial(vec!["/dev/null".into()]),
        ..SimConfig::default()
    })
    .await
    .err()
    .unwrap();
    assert!(e.to_string().contains("RTU frames"), "{e}");
}
