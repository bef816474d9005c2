//! The harness on a tiny city: the JSON has its fields and the counts agree.
//! Facts only; no timing is asserted.

use serde_json::Value;
use std::path::PathBuf;
use std::process::Command;

fn gateway_binary() -> PathBuf {
    // target/<profile>/lamp-bench → target/<profile>/lamp-gateway, built by
    // `cargo test --workspace` (the root package's binary); build it if absent.
    let bench = PathBuf::from(env!("CARGO_BIN_EXE_lamp-bench"));
    let gw = bench.with_file_name("lamp-gateway");
    if !gw.exists() {
        let status = Command::new(env!("CARGO"))
            .args(["build", "-p", "lamp-gateway", "--bin", "lamp-gateway"])
            .status()
            .expect("cargo build lamp-gateway");
        assert!(status.success());
    }
    gw
}

#[test]
fn tiny_city_gateway_and_raw() {
    let out = Command::new(env!("CARGO_BIN_EXE_lamp-bench"))
        .args([
            "--endpoints",
            "2",
            "--slcs-per-endpoint",
            "5",
            "--cycles",
            "2",
        ])
        .args(["--timeout", "60", "--gateway"])
        .arg(gateway_binary())
        .output()
        .expect("run lamp-bench");
    assert!(
        out.status.success(),
        "lamp-bench failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).expect("one JSON object");
    assert_eq!(v["lamps"], 10);
    assert_eq!(v["devices"], 12, "10 SLCs and 2 RTUs");
    // slc-a-unit: one read per SLC, three per RTU.
    assert_eq!(v["reads_per_cycle"], 16);
    for mode in ["gateway", "raw"] {
        let m = &v[mode];
        for key in [
            "cycles",
            "cycle_seconds_p50",
            "cycle_seconds_max",
            "lamps_per_second",
            "modbus_reads_per_second",
            "cpu_seconds_per_cycle",
            "cpu_seconds_per_1000_lamp_samples",
            "peak_rss_mib",
        ] {
            assert!(m[key].is_number(), "{mode}.{key} missing: {m}");
        }
        assert!(m["cycles"].as_f64().unwrap() >= 2.0);
        assert_eq!(m["reads_failed"], 0.0, "{mode}");
        assert!(m["cycle_seconds_max"].as_f64() >= m["cycle_seconds_p50"].as_f64());
    }
    let g = &v["gateway"];
    // Every lamp is sampled once per full cycle and every endpoint has polled
    // at least that many SLC cycles when the gateway was stopped.
    assert!(g["lamp_samples_polled_before_stop"].as_f64().unwrap() >= 10.0 * 2.0);
    assert!(
        g["samples_stored"].is_string(),
        "not measured with --store none"
    );
    assert!(g["mqtt_messages_received"].is_string());
    assert!(v["gateway_vs_raw"]["lamps_per_second"].is_number());
    assert_eq!(v["runs"].as_array().unwrap().len(), 2);
}
