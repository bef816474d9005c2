//! `lamp-gateway check-config` reports every problem of a broken
//! configuration at once, with where it is, and exits non-zero.

use std::path::Path;
use std::process::Command;

fn write(dir: &Path, name: &str, text: &str) {
    let path = dir.join(name);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

fn check(config: &Path, env: &[(&str, &str)]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_lamp-gateway"))
        .arg("check-config")
        .arg("--config")
        .arg(config)
        .envs(env.iter().copied())
        .output()
        .expect("binary runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn shipped_profiles(dir: &Path) {
    for (name, text) in lamp_profile::SHIPPED {
        write(dir, &format!("profiles/{name}"), text);
    }
}

#[test]
fn the_shipped_demo_configuration_is_valid() {
    let config = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/default.toml");
    let (code, stdout, stderr) = check(&config, &[]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(stdout.contains("configuration OK"), "{stdout}");
}

#[test]
fn every_problem_is_reported_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write(d, "gw.toml", "[poll]\noffline_after = 0\n");
    shipped_profiles(d);
    // A profile with a block over 125 registers and overlapping fields.
    write(
        d,
        "profiles/bad-block.toml",
        r#"
name = "bad-block"
kind = "slc"
layout = { mode = "block", base = 0, stride = 130 }
[[field]]
name = "switch"
table = "holding"
address = 0
access = "read_write"
[[field]]
name = "dim_level"
table = "holding"
address = 0
access = "read_write"
[[field]]
name = "power"
table = "holding"
address = 2
"#,
    );
    write(
        d,
        "inventory/districts.csv",
        "id,name\nD01,North\nD01,Again\n",
    );
    write(
        d,
        "inventory/cabinets.csv",
        "id,district,name,lat,lon,circuits,endpoint,framing,rtu_id,rtu_profile,rtu_unit\n\
         CAB-1,D01,One,,,4,127.0.0.1:1502,tcp,RTU-1,rtu-cabinet,1\n\
         CAB-2,D01,Two,,,4,127.0.0.1:1502,tcp,RTU-2,rtu-cabinet,1\n\
         CAB-3,D09,Three,,,2,127.0.0.1:1503,tcp,RTU-3,no-such-profile,250\n",
    );
    write(
        d,
        "inventory/lamps.csv",
        "id,cabinet,circuit,lat,lon,rated_power_w,slc_id,slc_profile,slc_unit,slc_index\n\
         L-1,CAB-1,1,,,100,S-1,slc-a-unit,2,\n\
         L-1,CAB-1,2,,,100,S-2,slc-a-unit,3,\n\
         L-3,CAB-404,1,,,100,,,,\n\
         L-4,CAB-1,9,,,100,,,,\n\
         L-5,CAB-1,1,,,100,S-5,slc-a-unit,0,\n\
         L-6,CAB-1,1,,,100,S-6,slc-a-unit,2,\n\
         L-7,CAB-1,1,,,abc,,,,\n",
    );
    let (code, stdout, stderr) = check(&d.join("gw.toml"), &[]);
    assert_ne!(code, 0, "{stdout}");
    let expected = [
        "settings poll.offline_after: must be at least 1",
        "bad-block.toml: layout.stride: register block of 130 registers exceeds the Modbus limit of 125",
        "bad-block.toml: field (dim_level): overlaps `switch`",
        "districts.csv:3: duplicate district id `D01`",
        "lamps.csv:3: duplicate lamp id `L-1`",
        "cabinets.csv:4: cabinet `CAB-3` is in unknown district `D09`",
        "cabinets.csv:4: RTU `RTU-3`: unit id 250 is outside 1..=247",
        "cabinets.csv:4: unknown profile `no-such-profile`",
        "lamps.csv:4: lamp `L-3` is on unknown cabinet `CAB-404`",
        "lamps.csv:5: lamp `L-4` is on circuit 9 but cabinet `CAB-1` has circuits 1..=4",
        "lamps.csv:6: SLC `S-5`: unit id 0 is outside 1..=247",
        "RTU `RTU-1` of cabinet `CAB-1` and RTU `RTU-2` of cabinet `CAB-2` on endpoint 127.0.0.1:1502 both use unit id 1",
        "SLC `S-1` of lamp `L-1` and SLC `S-6` of lamp `L-6` on endpoint 127.0.0.1:1502 both use unit id 2",
        "lamps.csv:8: column 6",
    ];
    for e in expected {
        assert!(stderr.contains(e), "missing {e:?} in:\n{stderr}");
    }
    assert!(stderr.contains("problem(s) found"), "{stderr}");
}

#[test]
fn environment_overrides_settings_and_is_checked() {
    let config = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/default.toml");
    let (code, _, stderr) = check(&config, &[("LAMPGW__POLL__OFFLINE_AFTER", "0")]);
    assert_ne!(code, 0);
    assert!(
        stderr.contains("poll.offline_after: must be at least 1"),
        "{stderr}"
    );
    let (code, _, stderr) = check(&config, &[("LAMPGW__POLL__NO_SUCH_KEY", "1")]);
    assert_ne!(code, 0);
    assert!(
        stderr.contains("no_such_key"),
        "unknown keys are rejected: {stderr}"
    );
}

#[test]
fn malformed_settings_file_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "gw.toml",
        "[poll]\nslc_interval = \"ten seconds\"\n",
    );
    let (code, _, stderr) = check(&dir.path().join("gw.toml"), &[]);
    assert_ne!(code, 0);
    assert!(stderr.contains("slc_interval"), "{stderr}");
}

const DISTRICTS: &str = "id,name\nD01,North\n";
const CABINETS: &str =
    "id,district,name,lat,lon,circuits,endpoint,framing,rtu_id,rtu_profile,rtu_unit\n\
                        CAB-1,D01,One,,,4,127.0.0.1:1502,tcp,RTU-1,rtu-cabinet,1\n";
const LAMPS: &str =
    "id,cabinet,circuit,lat,lon,rated_power_w,slc_id,slc_profile,slc_unit,slc_index\n\
                     L-1,CAB-1,1,,,100,S-1,slc-a-unit,2,\n";

/// A valid configuration in `d` whose files the caller then replaces.
fn valid(d: &Path, settings: &str) {
    write(d, "gw.toml", settings);
    shipped_profiles(d);
    write(d, "inventory/districts.csv", DISTRICTS);
    write(d, "inventory/cabinets.csv", CABINETS);
    write(d, "inventory/lamps.csv", LAMPS);
}

fn run_gateway(config: &Path) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_lamp-gateway"))
        .arg("run")
        .arg("--config")
        .arg(config)
        .arg("--listen")
        .arg("127.0.0.1:0")
        .output()
        .expect("binary runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn the_base_of_these_tests_is_valid() {
    let dir = tempfile::tempdir().unwrap();
    valid(dir.path(), "[mqtt]\nurl = \"mqtt://127.0.0.1:1\"\n");
    let (code, stdout, stderr) = check(&dir.path().join("gw.toml"), &[]);
    assert_eq!(code, 0, "{stdout}{stderr}");
}

#[test]
fn what_run_refuses_check_config_refuses_with_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    valid(d, "[mqtt]\nurl = \"mqtt://127.0.0.1:1\"\n");
    write(
        d,
        "inventory/districts.csv",
        "id,name\nD01,North\ncommands,Reserved\n",
    );
    write(
        d,
        "inventory/cabinets.csv",
        "id,district,name,lat,lon,circuits,endpoint,framing,rtu_id,rtu_profile,rtu_unit\n\
         CAB-1,D01,One,,,4,127.0.0.1:1502,tcp,RTU+1,rtu-cabinet,1\n",
    );
    write(
        d,
        "inventory/lamps.csv",
        "id,cabinet,circuit,lat,lon,rated_power_w,slc_id,slc_profile,slc_unit,slc_index\n\
         L#1,CAB-1,1,,,100,S-1,slc-a-unit,2,\n",
    );
    let expected = [
        "districts.csv:3: district id `commands`",
        "cabinets.csv:2: RTU id `RTU+1`",
        "lamps.csv:2: lamp id `L#1`",
    ];
    let (code, stdout, stderr) = check(&d.join("gw.toml"), &[]);
    assert_eq!(code, 2, "{stdout}{stderr}");
    for e in expected {
        assert!(
            stderr.contains(e),
            "check-config: missing {e:?} in:\n{stderr}"
        );
    }
    // `run` refuses the same configuration with the same words: one check.
    let (code, stderr) = run_gateway(&d.join("gw.toml"));
    assert_ne!(code, 0, "{stderr}");
    for e in expected {
        assert!(stderr.contains(e), "run: missing {e:?} in:\n{stderr}");
    }
    // Without MQTT these ids go into no topic: the same files pass.
    write(d, "gw.toml", "[mqtt]\nurl = \"none\"\n");
    let (code, stdout, stderr) = check(&d.join("gw.toml"), &[]);
    assert_eq!(code, 0, "{stdout}{stderr}");
}

#[test]
fn inventory_headers_are_checked_once_for_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    valid(d, "");
    // A misspelt optional column, and a required one missing under three rows.
    write(
        d,
        "inventory/lamps.csv",
        "id,cabinet,circuit,lat,lon,rated_powr_w,slc_id,slc_profile,slc_unit,slc_index\n\
         L-1,CAB-1,1,,,100,S-1,slc-a-unit,2,\n",
    );
    write(
        d,
        "inventory/cabinets.csv",
        "id,district,name,lat,lon,endpoint,framing,rtu_id,rtu_profile,rtu_unit\n\
         CAB-1,D01,One,,,127.0.0.1:1502,tcp,RTU-1,rtu-cabinet,1\n\
         CAB-2,D01,Two,,,127.0.0.1:1503,tcp,RTU-2,rtu-cabinet,1\n\
         CAB-3,D01,Three,,,127.0.0.1:1504,tcp,RTU-3,rtu-cabinet,1\n",
    );
    let (code, stdout, stderr) = check(&d.join("gw.toml"), &[]);
    assert_eq!(code, 2, "{stdout}{stderr}");
    for e in [
        "lamps.csv:1: unknown column `rated_powr_w`",
        "lamps.csv:1: missing column `rated_power_w`",
        "cabinets.csv:1: missing column `circuits`",
    ] {
        assert!(stderr.contains(e), "missing {e:?} in:\n{stderr}");
    }
    // The known columns are named, so the typo is easy to see.
    assert!(
        stderr.contains("id, cabinet, circuit, lat, lon, rated_power_w, slc_id"),
        "{stderr}"
    );
    assert_eq!(
        stderr.matches("circuits").count(),
        1,
        "once for the header, not once per row:\n{stderr}"
    );
}

#[test]
fn an_empty_inventory_file_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    valid(d, "");
    write(d, "inventory/lamps.csv", "");
    let (code, stdout, stderr) = check(&d.join("gw.toml"), &[]);
    assert_eq!(code, 2, "{stdout}{stderr}");
    assert!(stderr.contains("lamps.csv: empty file"), "{stderr}");
}

#[test]
fn ids_are_bounded_and_coordinates_in_range() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    valid(d, "");
    let long = "L".repeat(10 * 1024 * 1024);
    write(
        d,
        "inventory/lamps.csv",
        &format!(
            "id,cabinet,circuit,lat,lon,rated_power_w,slc_id,slc_profile,slc_unit,slc_index\n\
             L-1,CAB-1,1,999,120,100,S-1,slc-a-unit,2,\n\
             {long},CAB-1,1,30,-181,100,,,,\n"
        ),
    );
    let (code, stdout, stderr) = check(&d.join("gw.toml"), &[]);
    assert_eq!(code, 2, "{stdout}{stderr}");
    for e in [
        "lamps.csv:2: lat 999 is outside -90..=90",
        "lamps.csv:3: lamp id is longer than 64 bytes",
        "lamps.csv:3: lon -181 is outside -180..=180",
    ] {
        assert!(stderr.contains(e), "missing {e:?} in:\n{stderr}");
    }
    assert!(
        stderr.len() < 4096,
        "the id is not echoed whole: {} bytes",
        stderr.len()
    );
}

#[test]
fn rows_after_an_unreadable_row_keep_their_line() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    valid(d, "");
    write(
        d,
        "inventory/lamps.csv",
        "id,cabinet,circuit,lat,lon,rated_power_w,slc_id,slc_profile,slc_unit,slc_index\n\
         L-1,CAB-1,abc,,,100,,,,\n\
         L-2,CAB-404,1,,,100,,,,\n",
    );
    let (code, stdout, stderr) = check(&d.join("gw.toml"), &[]);
    assert_eq!(code, 2, "{stdout}{stderr}");
    assert!(stderr.contains("lamps.csv:2: column 3"), "{stderr}");
    assert!(
        stderr.contains("lamps.csv:3: lamp `L-2` is on unknown cabinet `CAB-404`"),
        "{stderr}"
    );
}

#[test]
fn settings_errors_exit_2_and_are_printed_once() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    valid(d, "[poll]\nslc_interval = \"ten seconds\"\n");
    let (code, _, stderr) = check(&d.join("gw.toml"), &[]);
    assert_eq!(code, 2, "{stderr}");
    assert_eq!(
        stderr.matches("slc_interval").count(),
        1,
        "printed once:\n{stderr}"
    );
}

#[test]
fn an_environment_typo_is_named_as_such() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    valid(d, "");
    let (code, _, stderr) = check(&d.join("gw.toml"), &[("LAMPGW__POLL__NO_SUCH_KEY", "1")]);
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("environment variable LAMPGW__POLL__NO_SUCH_KEY"),
        "{stderr}"
    );
    assert!(
        !stderr.contains("gw.toml"),
        "not the file's fault:\n{stderr}"
    );
}

#[test]
fn an_error_chain_is_printed_once() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    valid(d, "[mqtt]\nurl = \"none\"\n[store]\nurl = \"none\"\n");
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_lamp-gateway"))
        .arg("run")
        .arg("--config")
        .arg(d.join("gw.toml"))
        .arg("--listen")
        .arg(addr.to_string())
        .output()
        .expect("binary runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_ne!(out.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains(&format!("cannot listen on {addr}")),
        "{stderr}"
    );
    // The words the OS uses for this refusal, as the gateway got them.
    let cause = std::net::TcpListener::bind(addr).unwrap_err().to_string();
    assert_eq!(
        stderr.matches(&cause).count(),
        1,
        "the cause once, not once per level of the chain:\n{stderr}"
    );
}

#[test]
fn roads_are_checked_with_their_lines() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write(d, "gw.toml", "");
    shipped_profiles(d);
    write(d, "inventory/districts.csv", "id,name\nD01,One\nD02,Two\n");
    write(
        d,
        "inventory/cabinets.csv",
        "id,district,name,lat,lon,circuits,endpoint,framing,rtu_id,rtu_profile,rtu_unit\n\
         CAB-1,D01,C1,,,2,,,,,\n",
    );
    write(
        d,
        "inventory/roads.csv",
        "id,name,district,class,lamps_planned\n\
         R-1,Jingshi Road,D01,主干道,40\n\
         R-2,Lake Walk,D02,landscape,\n\
         R-3,Nowhere,D01,avenue,\n\
         R-1,Again,D01,main,\n",
    );
    write(
        d,
        "inventory/lamps.csv",
        "id,cabinet,circuit,lat,lon,rated_power_w,slc_id,slc_profile,slc_unit,slc_index,road\n\
         L-1,CAB-1,1,,,100,,,,,R-1\n\
         L-2,CAB-1,1,,,100,,,,,R-2\n\
         L-3,CAB-1,2,,,100,,,,,R-9\n\
         L-4,CAB-1,2,,,100,,,,,\n",
    );
    let (code, stdout, stderr) = check(&d.join("gw.toml"), &[]);
    let out = format!("{stdout}{stderr}");
    assert_eq!(code, 2, "{out}");
    assert!(
        out.contains("roads.csv:4") && out.contains("road class `avenue`"),
        "{out}"
    );
    assert!(
        out.contains("roads.csv:5") && out.contains("road `R-1` appears twice"),
        "{out}"
    );
    assert!(
        out.contains("lamps.csv:3") && out.contains("road `R-2` is in `D02`"),
        "a lamp of D01 on a road of D02: {out}"
    );
    assert!(
        out.contains("lamps.csv:4") && out.contains("unknown road `R-9`"),
        "{out}"
    );
    assert!(
        !out.contains("lamps.csv:2:") && !out.contains("lamps.csv:5"),
        "{out}"
    );
    // Without roads.csv and without the road column the inventory is fine.
    std::fs::remove_file(d.join("inventory/roads.csv")).unwrap();
    write(
        d,
        "inventory/lamps.csv",
        "id,cabinet,circuit,lat,lon,rated_power_w,slc_id,slc_profile,slc_unit,slc_index\n\
         L-1,CAB-1,1,,,100,,,,\n",
    );
    let (code, stdout, stderr) = check(&d.join("gw.toml"), &[]);
    assert_eq!(code, 0, "{stdout}{stderr}");
}

#[test]
fn energy_baselines_name_a_known_district_and_a_positive_figure() {
    let dir = tempfile::tempdir().unwrap();
    valid(
        dir.path(),
        "[figures.energy.baseline_kwh_per_day]\nD09 = 100.0\nD01 = 0.0\n",
    );
    let (code, stdout, stderr) = check(&dir.path().join("gw.toml"), &[]);
    assert_eq!(code, 2, "{stdout}{stderr}");
    let out = format!("{stdout}{stderr}");
    assert!(
        out.contains("settings figures.energy.baseline_kwh_per_day.D09: unknown district `D09`"),
        "{out}"
    );
    assert!(
        out.contains(
            "settings figures.energy.baseline_kwh_per_day.D01: 0 must be a number of kWh above 0"
        ),
        "{out}"
    );
    // An unknown key in the section stops the load with its name.
    valid(dir.path(), "[figures.energy]\nbaseline = 1\n");
    let (code, stdout, stderr) = check(&dir.path().join("gw.toml"), &[]);
    assert_ne!(code, 0);
    assert!(
        format!("{stdout}{stderr}").contains("unknown field `baseline`"),
        "{stdout}{stderr}"
    );
}

/// A PEM certificate and its key, made here (rcgen).
fn certificate(dir: &Path) -> (std::path::PathBuf, std::path::PathBuf) {
    let cert = rcgen::generate_simple_self_signed(vec!["lamp-gateway.test".into()]).unwrap();
    let (c, k) = (dir.join("client.crt"), dir.join("client.key"));
    std::fs::write(&c, cert.cert.pem()).unwrap();
    std::fs::write(&k, cert.signing_key.serialize_pem()).unwrap();
    (c, k)
}

#[test]
fn tls_files_and_data_folders_are_checked_each_with_its_setting() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (cert, key) = certificate(d);
    write(d, "garbage.pem", "not PEM at all\n");
    write(d, "blocker", "a file where folders should be\n");
    // Good TLS files and writable (or makeable) folders pass.
    let good = format!(
        "[paths]\ndata = \"var/not-yet\"\n[mqtt]\nurl = \"mqtts://127.0.0.1:1\"\n\
         ca_file = \"{c}\"\nclient_cert = \"{c}\"\nclient_key = \"{k}\"\n",
        c = cert.display(),
        k = key.display()
    );
    valid(d, &good);
    let (code, stdout, stderr) = check(&d.join("gw.toml"), &[]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(!d.join("var").exists(), "a check makes no folder");
    // Each problem at once, named by its setting.
    valid(
        d,
        "[paths]\ndata = \"blocker/var\"\n[store]\nspool_dir = \"/proc/lampgw-spool\"\n\
         [mqtt]\nurl = \"mqtts://127.0.0.1:1\"\nca_file = \"missing.pem\"\n\
         client_cert = \"garbage.pem\"\nclient_key = \"client.crt\"\nspill_dir = \"../blocker/spill\"\n",
    );
    let (code, stdout, stderr) = check(&d.join("gw.toml"), &[]);
    assert_eq!(code, 2, "{stdout}{stderr}");
    for e in [
        "settings mqtt.ca_file: ",
        "missing.pem",
        "settings mqtt.client_cert: ",
        "no certificate in file",
        "settings mqtt.client_key: ",
        "no private key in file",
        "settings paths.data: ",
        "blocker is a file",
        "settings store.url: ",
        "settings store.spool_dir: folder /proc/lampgw-spool is missing and cannot be made in /proc",
        "settings mqtt.spill_dir: ",
    ] {
        assert!(stderr.contains(e), "missing {e:?} in:\n{stderr}");
    }
    // `run` refuses them with the same words (one check).
    let (code, run_err) = run_gateway(&d.join("gw.toml"));
    assert_eq!(code, 2, "{run_err}");
    assert!(run_err.contains("settings mqtt.ca_file: "), "{run_err}");
    assert!(run_err.contains("settings paths.data: "), "{run_err}");
}

/// An inventory with no endpoint, so `--probe` has only the store to try.
fn no_endpoints(d: &Path, settings: &str) {
    valid(d, settings);
    write(
        d,
        "inventory/cabinets.csv",
        "id,district,name,lat,lon,circuits,endpoint,framing,rtu_id,rtu_profile,rtu_unit\n\
         CAB-1,D01,One,,,2,,,,,\n",
    );
    write(
        d,
        "inventory/lamps.csv",
        "id,cabinet,circuit,lat,lon,rated_power_w,slc_id,slc_profile,slc_unit,slc_index\n\
         L-1,CAB-1,1,,,100,,,,\n",
    );
}

fn check_probe(config: &Path) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_lamp-gateway"))
        .args(["check-config", "--probe", "--config"])
        .arg(config)
        .output()
        .expect("binary runs");
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.code().unwrap_or(-1), text)
}

#[test]
fn probe_opens_the_store_for_writing() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // An SQLite file that is not a database: only --probe opens it.
    write(
        d,
        "junk.db",
        &"this is not an SQLite database\n".repeat(200),
    );
    no_endpoints(
        d,
        "[mqtt]\nurl = \"none\"\n[store]\nurl = \"sqlite://junk.db\"\n",
    );
    let (code, stdout, stderr) = check(&d.join("gw.toml"), &[]);
    assert_eq!(
        code, 0,
        "without --probe the store is not opened: {stdout}{stderr}"
    );
    let (code, out) = check_probe(&d.join("gw.toml"));
    assert_eq!(code, 2, "{out}");
    assert!(
        out.contains("settings store.url: cannot open sqlite://") && out.contains("not a database"),
        "{out}"
    );
    // A missing SQLite file is made at start: nothing to open yet.
    no_endpoints(
        d,
        "[mqtt]\nurl = \"none\"\n[store]\nurl = \"sqlite://fresh.db\"\n",
    );
    let (code, out) = check_probe(&d.join("gw.toml"));
    assert_eq!(code, 0, "{out}");
    assert!(!d.join("fresh.db").exists(), "the probe makes no database");
    // PostgreSQL: a port nobody listens on, a database that does not
    // exist (each reported, password masked), and one that answers.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    for (url, says) in [
        (
            format!("postgres://postgres:s3cret@127.0.0.1:{port}/x"),
            "cannot open postgres://postgres:***@127.0.0.1",
        ),
        (
            "postgres://postgres@127.0.0.1:5432/lampgw_no_such_database".to_string(),
            "lampgw_no_such_database",
        ),
    ] {
        no_endpoints(
            d,
            &format!("[mqtt]\nurl = \"none\"\n[store]\nurl = \"{url}\"\n"),
        );
        let (code, out) = check_probe(&d.join("gw.toml"));
        assert_eq!(code, 2, "{out}");
        assert!(
            out.contains("settings store.url: ") && out.contains(says),
            "{out}"
        );
        assert!(!out.contains("s3cret"), "{out}");
    }
    no_endpoints(
        d,
        "[mqtt]\nurl = \"none\"\n[store]\nurl = \"postgres://postgres@127.0.0.1:5432/postgres?sslmode=require\"\n",
    );
    let (code, out) = check_probe(&d.join("gw.toml"));
    assert_eq!(code, 0, "{out}");
}

#[test]
fn settings_errors_in_two_sections_are_reported_together() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    valid(
        d,
        "[poll]\nno_such_key = 1\n[mqtt]\nurl = \"none\"\nmax_inflight = \"many\"\n",
    );
    let file = d.join("gw.toml").display().to_string();
    let (code, _, stderr) = check(&d.join("gw.toml"), &[]);
    assert_eq!(code, 2, "{stderr}");
    let line = |needle: &str| {
        stderr
            .lines()
            .find(|l| l.contains(needle))
            .unwrap_or_else(|| panic!("no {needle:?} in:\n{stderr}"))
            .to_string()
    };
    let poll = line("no_such_key");
    assert!(
        poll.contains(&format!("settings {file}: ")) && poll.contains("`poll`"),
        "{poll}"
    );
    let mqtt = line("mqtt.max_inflight");
    assert!(mqtt.contains(&format!("settings {file}: ")), "{mqtt}");
    assert!(stderr.contains("2 problems"), "{stderr}");
    // The [mqtt] mistake moved to the environment: blamed on the variable.
    valid(d, "[poll]\nno_such_key = 1\n[mqtt]\nurl = \"none\"\n");
    let (code, _, stderr) = check(
        &d.join("gw.toml"),
        &[("LAMPGW__MQTT__MAX_INFLIGHT", "many")],
    );
    assert_eq!(code, 2, "{stderr}");
    let env = stderr
        .lines()
        .find(|l| l.contains("mqtt.max_inflight"))
        .unwrap_or_else(|| panic!("{stderr}"));
    assert!(
        env.contains("environment variable LAMPGW__MQTT__MAX_INFLIGHT: "),
        "{env}"
    );
    assert!(!env.contains("gw.toml"), "{env}");
    assert!(
        stderr.contains(&format!("settings {file}: ")) && stderr.contains("no_such_key"),
        "{stderr}"
    );
    // An unknown section, from the file and from the environment.
    valid(d, "[pol]\nslc_interval = \"1s\"\n");
    let (code, _, stderr) = check(&d.join("gw.toml"), &[("LAMPGW__STOR__URL", "none")]);
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains(&format!("settings {file}: unknown section `pol`")),
        "{stderr}"
    );
    assert!(
        stderr.contains("environment variable LAMPGW__STOR__URL: unknown section `stor`"),
        "{stderr}"
    );
}
