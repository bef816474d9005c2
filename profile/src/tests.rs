use super::*;
use std::path::PathBuf;

fn shipped() -> BTreeMap<String, Profile> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../config/profiles");
    Profile::load_dir(&dir).expect("shipped profiles are valid")
}

#[test]
fn shipped_profiles_load() {
    let p = shipped();
    assert_eq!(
        p.keys().cloned().collect::<Vec<_>>(),
        ["rtu-cabinet", "slc-a-unit", "slc-b-block"]
    );
    assert_eq!(
        p["slc-b-block"].layout,
        Layout::Block {
            base: 1000,
            stride: 16
        }
    );
    assert_eq!(p["rtu-cabinet"].circuits, 4);
}

#[test]
fn every_type_and_word_order_round_trips() {
    for profile in shipped().values() {
        for f in &profile.fields {
            let v = match f.value_type {
                ValueType::Bool => 1.0,
                ValueType::I16 | ValueType::I32 => -12.0 * f.scale,
                _ => 1234.0 * f.scale,
            };
            let words = encode(f, v);
            assert_eq!(words.len(), usize::from(f.width()));
            let back = decode(f, &words);
            assert!(
                (back - v).abs() <= f.scale.abs() / 2.0 + 1e-6,
                "{}: {v} -> {back}",
                f.quantity
            );
        }
    }
}

#[test]
fn word_order_is_applied() {
    let p = shipped();
    let f = p["slc-b-block"].field(Quantity::Voltage).unwrap();
    let words = encode(f, 220.5);
    let bits = 220.5f32.to_bits();
    assert_eq!(
        words,
        vec![bits as u16, (bits >> 16) as u16],
        "CDAB puts the low word first"
    );
    let g = p["rtu-cabinet"].field(Quantity::ActivePower).unwrap();
    assert_eq!(encode(g, 220.5), vec![(bits >> 16) as u16, bits as u16]);
}

#[test]
fn broken_profile_reports_every_problem() {
    let text = r#"
name = "bad"
kind = "slc"
layout = { mode = "block", base = 0, stride = 130 }
[[field]]
name = "switch"
table = "input"
address = 0
access = "read_write"
[[field]]
name = "voltage"
table = "holding"
address = 0
type = "u32"
[[field]]
name = "power"
table = "holding"
address = 1
[[field]]
name = "wattage"
table = "holding"
address = 9
"#;
    let issues = Profile::from_toml(text, "bad.toml").unwrap_err();
    let all = issues
        .iter()
        .map(|i| i.to_string())
        .collect::<Vec<_>>()
        .join("\n");
    for needle in [
        "unknown quantity `wattage`",
        "read_write needs coil or holding",
        "overlaps `voltage`",
        "exceeds the Modbus limit of 125",
        "must map `dim_level`",
    ] {
        assert!(all.contains(needle), "missing {needle:?} in:\n{all}");
    }
    assert!(issues.iter().all(|i| i.file == "bad.toml"));
}

#[test]
fn decoded_values_keep_the_device_precision() {
    let mut p = shipped()["slc-b-block"].clone();
    let f = p
        .fields
        .iter_mut()
        .find(|f| f.value_type == ValueType::F32)
        .unwrap();
    f.scale = 1.0;
    let f = f.clone();
    for v in [0.0004f32, 0.123_456_7, 220.5, 1.0e-6, 12_345.67] {
        let words = encode(&f, f64::from(v));
        let back = decode(&f, &words);
        assert_eq!(back, v.to_string().parse::<f64>().unwrap(), "{v}");
    }
    let mut g = f.clone();
    g.value_type = ValueType::U16;
    g.scale = 0.25;
    assert_eq!(decode(&g, &[3]), 0.75, "a quarter scale keeps two decimals");
    g.scale = 0.01;
    assert_eq!(decode(&g, &[95]), 0.95);
    g.scale = 0.001;
    assert_eq!(decode(&g, &[1]), 0.001);
    g.scale = 10.0;
    assert_eq!(decode(&g, &[7]), 70.0);
}
