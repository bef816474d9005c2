//! The evaluation report as the bureau files it (`/reports/period`,
//! `/reports/monthly`): the XLSX read back sheet by sheet and cell by cell,
//! Chinese headers, the CSV in both languages. The figures are the energy
//! test's hand-worked night (`energy.rs`, whose scenario calls
//! [`check_period_report`]); here every summary cell is also compared with
//! the same report's JSON, so the sheet shows what the API computed.

use crate::common::ADMIN_TOKEN;
use calamine::{Data, Range, Reader, Xlsx};
use serde_json::Value;

const XLSX: &str = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet";

async fn get(http: &reqwest::Client, url: &str) -> reqwest::Response {
    let r = http
        .get(url)
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .expect("request sent");
    assert_eq!(r.status().as_u16(), 200, "{url}");
    r
}

fn close(got: f64, want: f64, what: &str) {
    assert!((got - want).abs() < 1e-9, "{what}: {got} != {want}");
}

/// The column of the header row whose label is `label`.
fn col(range: &Range<Data>, label: &str) -> u32 {
    (0..range.width() as u32)
        .find(|&c| range.get_value((0, c)) == Some(&Data::String(label.into())))
        .unwrap_or_else(|| panic!("no column `{label}`"))
}

/// The row whose first cell matching column `key_col` is `key`.
fn row_of(range: &Range<Data>, key_col: u32, key: &str) -> u32 {
    (1..range.height() as u32)
        .find(|&r| range.get_value((r, key_col)) == Some(&Data::String(key.into())))
        .unwrap_or_else(|| panic!("no row `{key}`"))
}

fn number(range: &Range<Data>, r: u32, c: u32) -> Option<f64> {
    match range.get_value((r, c)) {
        Some(Data::Float(x)) => Some(*x),
        Some(Data::Int(n)) => Some(*n as f64),
        Some(Data::Empty) | None => None,
        Some(other) => panic!("({r}, {c}) is {other:?}, not a number"),
    }
}

/// The period report of the energy test's window [from, to) (RFC 3339):
/// D01 actual 6.44 kWh against a computed 7.56 (saving 1.12 ÷ 7.56), D02
/// 0.90 against the settings' 2.4 (0.625), the city 7.34 against 9.96;
/// cabinet C1 metered 4.32 kWh against its SLCs' 2.15.
pub(crate) async fn check_period_report(
    base: &str,
    http: &reqwest::Client,
    from: &str,
    to: &str,
    month: &str,
) {
    let url = |extra: &str| format!("{base}/api/v1/reports/period?from={from}&to={to}{extra}");
    let json: Value = get(http, &url("")).await.json().await.unwrap();
    assert!(json["month"].is_null());
    let scopes: Vec<&str> = json["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["scope"].as_str().unwrap())
        .collect();
    assert_eq!(scopes, ["D01", "D02", "city"]);

    let r = get(http, &url("&format=xlsx&lang=zh")).await;
    assert_eq!(r.headers()["content-type"], XLSX);
    let disposition = r.headers()["content-disposition"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(disposition.ends_with(".xlsx\""), "{disposition}");
    let bytes = r.bytes().await.unwrap().to_vec();
    let mut book: Xlsx<_> = calamine::open_workbook_from_rs(std::io::Cursor::new(bytes)).unwrap();
    assert_eq!(
        book.sheet_names(),
        ["报告说明", "汇总", "分级亮灯率", "道路亮灯率", "配电箱"]
    );

    let summary = book.worksheet_range("汇总").unwrap();
    // The figures the city's rules name, in Chinese.
    for label in [
        "远程控制器(RTU)安装比例",
        "RTU在线率",
        "单灯控制占比",
        "单灯在线率",
        "亮灯率",
        "设施完好率",
        "节电率",
    ] {
        col(&summary, label);
    }
    let scope = col(&summary, "范围");
    let name = col(&summary, "名称");
    // Every ratio and count of the JSON rows, in its cell.
    let cells = [
        ("rtu_installation_ratio", "远程控制器(RTU)安装比例"),
        ("rtu_online_rate", "RTU在线率"),
        ("slc_control_share", "单灯控制占比"),
        ("slc_online_rate", "单灯在线率"),
        ("evaluation_lighting_rate", "亮灯率"),
        ("lighting_rate", "单灯监测亮灯率"),
        ("coverage", "监测覆盖率"),
        ("lamps_total", "路灯总数"),
        ("cabinets_total", "配电箱总数"),
        ("rtu_online_seconds", "RTU在线时长(秒)"),
    ];
    for (i, row) in json["rows"].as_array().unwrap().iter().enumerate() {
        let id = row["scope"].as_str().unwrap();
        let r = row_of(&summary, scope, id);
        assert_eq!(r as usize, i + 1, "rows in the JSON's order");
        for (key, label) in cells {
            let got = number(&summary, r, col(&summary, label));
            assert_eq!(got, row[key].as_f64(), "{id} {label}");
        }
        let alarms_intact = number(&summary, r, col(&summary, "设施完好率"));
        assert_eq!(
            alarms_intact,
            row["alarms"]["facility_intact_rate"].as_f64()
        );
    }
    let city = row_of(&summary, scope, "city");
    assert_eq!(
        summary.get_value((city, name)),
        Some(&Data::String("全市".into()))
    );
    let saving = col(&summary, "节电率");
    let energy = col(&summary, "用电量(kWh)");
    let baseline = col(&summary, "基准电量(kWh)");
    let baseline_source = col(&summary, "基准来源");
    let d01 = row_of(&summary, scope, "D01");
    let d02 = row_of(&summary, scope, "D02");
    close(
        number(&summary, d01, saving).unwrap(),
        1.12 / 7.56,
        "D01 saving",
    );
    close(number(&summary, d01, energy).unwrap(), 6.44, "D01 energy");
    close(
        number(&summary, d01, baseline).unwrap(),
        7.56,
        "D01 baseline",
    );
    assert_eq!(
        summary.get_value((d01, baseline_source)),
        Some(&Data::String("额定功率×计划亮灯时长".into()))
    );
    close(number(&summary, d02, saving).unwrap(), 0.625, "D02 saving");
    assert_eq!(
        summary.get_value((d02, baseline_source)),
        Some(&Data::String("改造前实测".into()))
    );
    close(
        number(&summary, city, saving).unwrap(),
        2.62 / 9.96,
        "city saving",
    );
    close(number(&summary, city, energy).unwrap(), 7.34, "city energy");

    let cabinets = book.worksheet_range("配电箱").unwrap();
    let cab = col(&cabinets, "配电箱编号");
    let c1 = row_of(&cabinets, cab, "C1");
    close(
        number(&cabinets, c1, col(&cabinets, "电表电量(kWh)")).unwrap(),
        4.32,
        "C1 meter",
    );
    close(
        number(&cabinets, c1, col(&cabinets, "单灯电量合计(kWh)")).unwrap(),
        2.15,
        "C1 SLCs",
    );
    close(
        number(&cabinets, c1, col(&cabinets, "电表与单灯差值(kWh)")).unwrap(),
        2.17,
        "C1 difference",
    );
    assert_eq!(
        cabinets.get_value((c1, col(&cabinets, "已装RTU"))),
        Some(&Data::String("是".into()))
    );
    // C2 has no RTU, so no RTU online rate; its energy is its SLCs'.
    let c2 = row_of(&cabinets, cab, "C2");
    assert_eq!(number(&cabinets, c2, col(&cabinets, "RTU在线率")), None);
    close(
        number(&cabinets, c2, col(&cabinets, "用电量(kWh)")).unwrap(),
        2.12,
        "C2",
    );
    assert_eq!(cabinets.height(), 4, "a header and three cabinets");

    // Roads and classes: the window's evaluation as the JSON has it (no
    // verdicts were sampled in this window of written history, so the
    // rates are empty and the roads and classes still listed).
    let roads = book.worksheet_range("道路亮灯率").unwrap();
    let road = col(&roads, "道路编号");
    let rd1 = row_of(&roads, road, "RD1");
    assert_eq!(
        roads.get_value((rd1, col(&roads, "道路名称"))),
        Some(&Data::String("Jiefang Road".into()))
    );
    assert_eq!(
        roads.get_value((rd1, col(&roads, "道路等级"))),
        Some(&Data::String("主干道".into()))
    );
    // 装灯率: RD1 has L1, L2 and L3 of the 4 planned; RD2 plans none.
    assert_eq!(number(&roads, rd1, col(&roads, "路灯数")), Some(3.0));
    assert_eq!(number(&roads, rd1, col(&roads, "设计装灯数")), Some(4.0));
    assert_eq!(number(&roads, rd1, col(&roads, "装灯率")), Some(0.75));
    let rd2 = row_of(&roads, road, "RD2");
    assert_eq!(number(&roads, rd2, col(&roads, "路灯数")), Some(1.0));
    assert_eq!(number(&roads, rd2, col(&roads, "装灯率")), None);
    let json_roads = json["lighting"]["roads"].as_array().unwrap();
    let json_rd1 = json_roads.iter().find(|r| r["road"] == "RD1").unwrap();
    assert_eq!(json_rd1["lamps_total"], 3, "{json_rd1}");
    assert_eq!(json_rd1["lamps_planned"], 4, "{json_rd1}");
    assert_eq!(json_rd1["installation_rate"], 0.75, "{json_rd1}");
    assert_eq!(
        roads.height() - 1,
        json_roads.len(),
        "a row per road of the JSON"
    );
    for (i, r) in json_roads.iter().enumerate() {
        let at = i as u32 + 1;
        assert_eq!(
            number(&roads, at, col(&roads, "亮灯率")),
            r["lighting_rate"].as_f64(),
            "{r}"
        );
        assert_eq!(
            number(&roads, at, col(&roads, "应亮时长(灯·秒)")),
            r["lamps_expected_lit_seconds"].as_f64(),
            "{r}"
        );
        // The dark-lamp cap over the window (the figures themselves are
        // worked out in `evaluation_window.rs`).
        for (header, key) in [
            ("暗灯数上限", "dark_cap"),
            ("最多暗灯数", "dark_lamps_max"),
            ("暗灯超限时长(秒)", "over_cap_seconds"),
        ] {
            assert_eq!(
                number(&roads, at, col(&roads, header)),
                r[key].as_f64(),
                "{header} of {r}"
            );
        }
    }
    // RD1 has 3 lamps: a road under 100 lamps may have 2 dark.
    assert_eq!(json_rd1["dark_cap"], 2, "{json_rd1}");
    let classes = book.worksheet_range("分级亮灯率").unwrap();
    let class_scope = col(&classes, "范围");
    row_of(&classes, class_scope, "city");
    let main = (1..classes.height() as u32)
        .find(|&r| {
            classes.get_value((r, col(&classes, "道路等级")))
                == Some(&Data::String("主干道".into()))
        })
        .expect("a main-road row");
    close(
        number(&classes, main, col(&classes, "考核目标")).unwrap(),
        0.98,
        "main target",
    );
    // The facility intact rate of the class's lamps (L1–L3 on RD1): no
    // fault alarm stood in the month, so all of it, against the roads'
    // 95 %; each scope's own row carries the scope's rate, as the JSON has
    // it.
    assert_eq!(
        number(&classes, main, col(&classes, "设施完好率")),
        Some(1.0)
    );
    close(
        number(&classes, main, col(&classes, "完好率目标")).unwrap(),
        0.95,
        "main intact target",
    );
    assert_eq!(
        classes.get_value((main, col(&classes, "完好率是否达标"))),
        Some(&Data::String("是".into()))
    );
    let d01 = json["rows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["scope"] == "D01")
        .unwrap();
    let json_main = &d01["intact_by_class"][0];
    assert_eq!(json_main["class"], "main", "{d01}");
    assert_eq!(json_main["lamps"], 3, "{d01}");
    assert_eq!(json_main["facility_intact_rate"], 1.0, "{d01}");
    let d01_own = row_of(&classes, class_scope, "D01");
    assert_eq!(
        number(&classes, d01_own, col(&classes, "设施完好率")),
        d01["alarms"]["facility_intact_rate"].as_f64()
    );

    // The CSV: the summary, headers as keys in English and labels in
    // Chinese; the saving in percent with two decimals (1.12 ÷ 7.56 =
    // 14.814…%).
    let en = get(http, &url("&format=csv")).await.text().await.unwrap();
    let header: Vec<&str> = en.lines().next().unwrap().split(',').collect();
    assert_eq!(header.last(), Some(&"saving_rate_pct"));
    let d01_line: Vec<&str> = en.lines().nth(1).unwrap().split(',').collect();
    assert_eq!(d01_line[1], "D01");
    assert_eq!(d01_line.last(), Some(&"14.81"));
    let zh = get(http, &url("&format=csv&lang=zh"))
        .await
        .text()
        .await
        .unwrap();
    assert!(zh.starts_with("月份,范围,名称,配电箱总数,"), "{zh}");
    assert!(zh.lines().next().unwrap().ends_with(",节电率"));

    // The monthly report of the month around the window: the same sheets,
    // its cover naming the month.
    let monthly = format!("{base}/api/v1/reports/monthly?month={month}&format=xlsx&lang=zh");
    let bytes = get(http, &monthly).await.bytes().await.unwrap().to_vec();
    let mut book: Xlsx<_> = calamine::open_workbook_from_rs(std::io::Cursor::new(bytes)).unwrap();
    assert_eq!(
        book.sheet_names(),
        ["报告说明", "汇总", "分级亮灯率", "道路亮灯率", "配电箱"]
    );
    let cover = book.worksheet_range("报告说明").unwrap();
    assert_eq!(
        cover.get_value((1, 1)),
        Some(&Data::String(format!("城市照明月度考评报告 {month}")))
    );
    let summary = book.worksheet_range("汇总").unwrap();
    let d01 = row_of(&summary, col(&summary, "范围"), "D01");
    assert_eq!(
        summary.get_value((d01, col(&summary, "月份"))),
        Some(&Data::String(month.into()))
    );

    // Bad values are refused with their reason.
    for extra in ["&format=pdf", "&lang=fr"] {
        let r = http
            .get(url(extra))
            .bearer_auth(ADMIN_TOKEN)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 400, "{extra}");
    }
}
