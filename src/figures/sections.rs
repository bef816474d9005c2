//! The report as the bureau files it: a cover, the summary of the city and
//! each district (the four control figures, the lighting rate, alarms and
//! repairs, the facility intact rate, energy and the saving rate, coverage),
//! the evaluation-grade lighting rate per road class and per road, and one
//! row per cabinet — each a [`Section`] with Chinese and English
//! labels, for CSV (the summary) and XLSX (every section). The figures are
//! the report's own ([`MonthlyReport`]); nothing is computed here but their
//! layout.

use super::alarms::AlarmFigures;
use super::energy::{EnergySource, SavingFigures};
use super::report::{MonthlyReport, ReportRow};
use super::sheet::{Cell, Column, Kind, Lang, Section};
use crate::alarm::Severity;
use crate::inventory::RoadClass;
use chrono::{DateTime, Utc};

use Kind::{Count, Decimal, Percent, Seconds, Text};

const SUMMARY: &[Column] = &[
    Column::new("month", "月份", "Month", Text),
    Column::new("scope", "范围", "Scope", Text),
    Column::new("name", "名称", "Name", Text),
    Column::new("cabinets_total", "配电箱总数", "Cabinets", Count),
    Column::new("rtus_installed", "已装RTU数", "RTUs installed", Count),
    Column::new(
        "rtu_installation_ratio_pct",
        "远程控制器(RTU)安装比例",
        "RTU installation ratio",
        Percent,
    ),
    Column::new(
        "rtu_online_rate_pct",
        "RTU在线率",
        "RTU online rate",
        Percent,
    ),
    Column::new("lamps_total", "路灯总数", "Lamps", Count),
    Column::new(
        "slcs_installed",
        "已装单灯控制器数",
        "SLCs installed",
        Count,
    ),
    Column::new(
        "slc_control_share_pct",
        "单灯控制占比",
        "Single-lamp control share",
        Percent,
    ),
    Column::new(
        "slc_online_rate_pct",
        "单灯在线率",
        "SLC online rate",
        Percent,
    ),
    Column::new(
        "evaluation_lighting_rate_pct",
        "亮灯率",
        "Lighting rate",
        Percent,
    ),
    Column::new(
        "lighting_rate_pct",
        "单灯监测亮灯率",
        "SLC-monitored lighting rate",
        Percent,
    ),
    Column::new("coverage_pct", "监测覆盖率", "Coverage", Percent),
    Column::new(
        "rtu_online_seconds",
        "RTU在线时长(秒)",
        "RTU online seconds",
        Seconds,
    ),
    Column::new(
        "rtu_monitored_seconds",
        "RTU应监测时长(秒)",
        "RTU monitored seconds",
        Seconds,
    ),
    Column::new(
        "slc_online_seconds",
        "单灯在线时长(秒)",
        "SLC online seconds",
        Seconds,
    ),
    Column::new(
        "slc_monitored_seconds",
        "单灯应监测时长(秒)",
        "SLC monitored seconds",
        Seconds,
    ),
    Column::new(
        "lamp_lit_seconds",
        "单灯监测亮灯时长(灯·秒)",
        "SLC-monitored lit lamp-seconds",
        Seconds,
    ),
    Column::new(
        "lamp_expected_lit_seconds",
        "单灯监测应亮时长(灯·秒)",
        "SLC-monitored expected lit lamp-seconds",
        Seconds,
    ),
    Column::new("alarms_raised", "新增告警数", "Alarms raised", Count),
    Column::new("alarms_cleared", "已消除告警数", "Alarms cleared", Count),
    Column::new(
        "repair_mean_seconds_emergency",
        "紧急故障平均修复时长(秒)",
        "Mean repair time, emergency (s)",
        Seconds,
    ),
    Column::new(
        "repair_p90_seconds_emergency",
        "紧急故障修复时长90%分位(秒)",
        "90th percentile repair time, emergency (s)",
        Seconds,
    ),
    Column::new(
        "repair_mean_seconds_serious",
        "重要故障平均修复时长(秒)",
        "Mean repair time, serious (s)",
        Seconds,
    ),
    Column::new(
        "repair_p90_seconds_serious",
        "重要故障修复时长90%分位(秒)",
        "90th percentile repair time, serious (s)",
        Seconds,
    ),
    Column::new(
        "repair_mean_seconds_ordinary",
        "一般故障平均修复时长(秒)",
        "Mean repair time, ordinary (s)",
        Seconds,
    ),
    Column::new(
        "repair_p90_seconds_ordinary",
        "一般故障修复时长90%分位(秒)",
        "90th percentile repair time, ordinary (s)",
        Seconds,
    ),
    Column::new(
        "repaired_within_deadline_pct",
        "按时修复率",
        "Repaired within deadline",
        Percent,
    ),
    Column::new("open_overdue", "超期未修复数", "Open overdue", Count),
    Column::new(
        "facility_intact_rate_pct",
        "设施完好率",
        "Facility intact rate",
        Percent,
    ),
    Column::new("energy_kwh", "用电量(kWh)", "Energy (kWh)", Decimal),
    Column::new("energy_source", "电量来源", "Energy source", Text),
    Column::new("baseline_kwh", "基准电量(kWh)", "Baseline (kWh)", Decimal),
    Column::new("baseline_source", "基准来源", "Baseline source", Text),
    Column::new("saved_kwh", "节电量(kWh)", "Energy saved (kWh)", Decimal),
    Column::new("saving_rate_pct", "节电率", "Energy saving rate", Percent),
];

const CABINETS: &[Column] = &[
    Column::new("cabinet", "配电箱编号", "Cabinet", Text),
    Column::new("name", "名称", "Name", Text),
    Column::new("district", "区域", "District", Text),
    Column::new("rtu_installed", "已装RTU", "RTU installed", Text),
    Column::new(
        "slcs_installed",
        "已装单灯控制器数",
        "SLCs installed",
        Count,
    ),
    Column::new(
        "rtu_online_rate_pct",
        "RTU在线率",
        "RTU online rate",
        Percent,
    ),
    Column::new(
        "slc_online_rate_pct",
        "单灯在线率",
        "SLC online rate",
        Percent,
    ),
    Column::new("energy_kwh", "用电量(kWh)", "Energy (kWh)", Decimal),
    Column::new("energy_source", "电量来源", "Energy source", Text),
    Column::new("meter_kwh", "电表电量(kWh)", "Meter (kWh)", Decimal),
    Column::new("slc_kwh", "单灯电量合计(kWh)", "SLCs (kWh)", Decimal),
    Column::new(
        "difference_kwh",
        "电表与单灯差值(kWh)",
        "Meter minus SLCs (kWh)",
        Decimal,
    ),
];

const ROADS: &[Column] = &[
    Column::new("road", "道路编号", "Road", Text),
    Column::new("name", "道路名称", "Name", Text),
    Column::new("district", "区域", "District", Text),
    Column::new("class", "道路等级", "Class", Text),
    Column::new("lamps_total", "路灯数", "Lamps", Count),
    Column::new("lamps_planned", "设计装灯数", "Lamps planned", Count),
    Column::new(
        "installation_rate_pct",
        "装灯率",
        "Installation rate",
        Percent,
    ),
    Column::new("lighting_rate_pct", "亮灯率", "Lighting rate", Percent),
    Column::new("target_pct", "考核目标", "Target", Percent),
    Column::new("meets_target", "是否达标", "Meets target", Text),
    Column::new("dark_cap", "暗灯数上限", "Dark-lamp cap", Count),
    Column::new("dark_lamps_max", "最多暗灯数", "Most dark lamps", Count),
    Column::new(
        "over_cap_seconds",
        "暗灯超限时长(秒)",
        "Over cap (seconds)",
        Seconds,
    ),
    Column::new(
        "lamps_expected_lit_seconds",
        "应亮时长(灯·秒)",
        "Expected lit lamp-seconds",
        Seconds,
    ),
    Column::new(
        "lamps_lit_seconds",
        "亮灯时长(灯·秒)",
        "Lit lamp-seconds",
        Seconds,
    ),
    Column::new(
        "lamps_dark_seconds",
        "不亮时长(灯·秒)",
        "Dark lamp-seconds",
        Seconds,
    ),
    Column::new(
        "lamps_unknown_seconds",
        "状态未知时长(灯·秒)",
        "Unknown lamp-seconds",
        Seconds,
    ),
    Column::new(
        "lamps_estimated_seconds",
        "估算时长(灯·秒)",
        "Estimated lamp-seconds",
        Seconds,
    ),
];

const CLASSES: &[Column] = &[
    Column::new("scope", "范围", "Scope", Text),
    Column::new("name", "名称", "Name", Text),
    Column::new("class", "道路等级", "Class", Text),
    Column::new("roads", "道路数", "Roads", Count),
    Column::new("lighting_rate_pct", "亮灯率", "Lighting rate", Percent),
    Column::new("target_pct", "考核目标", "Target", Percent),
    Column::new("meets_target", "是否达标", "Meets target", Text),
    Column::new(
        "roads_over_cap",
        "暗灯超限道路数",
        "Roads over dark-lamp cap",
        Count,
    ),
    Column::new(
        "lamps_expected_lit_seconds",
        "应亮时长(灯·秒)",
        "Expected lit lamp-seconds",
        Seconds,
    ),
    Column::new(
        "lamps_lit_seconds",
        "亮灯时长(灯·秒)",
        "Lit lamp-seconds",
        Seconds,
    ),
    Column::new(
        "lamps_unknown_seconds",
        "状态未知时长(灯·秒)",
        "Unknown lamp-seconds",
        Seconds,
    ),
    Column::new("coverage_pct", "评估覆盖率", "Evaluated share", Percent),
    Column::new(
        "facility_intact_rate_pct",
        "设施完好率",
        "Facility intact rate",
        Percent,
    ),
    Column::new("intact_target_pct", "完好率目标", "Intact target", Percent),
    Column::new(
        "meets_intact_target",
        "完好率是否达标",
        "Meets intact target",
        Text,
    ),
];

fn pick(lang: Lang, zh: &'static str, en: &'static str) -> Cell {
    Cell::Text(
        match lang {
            Lang::Zh => zh,
            Lang::En => en,
        }
        .to_string(),
    )
}

fn source(lang: Lang, s: EnergySource) -> Cell {
    match s {
        EnergySource::Meter => pick(lang, "电表", "meter"),
        EnergySource::Slc => pick(lang, "单灯", "slc"),
        EnergySource::MeterAndSlc => pick(lang, "电表+单灯", "meter_and_slc"),
        EnergySource::None => pick(lang, "无", "none"),
    }
}

/// `city` is the city's own row: its name in the language.
fn scope_name(lang: Lang, r: &ReportRow) -> Cell {
    if r.scope == "city" {
        pick(lang, "全市", "city")
    } else {
        Cell::Text(r.name.clone())
    }
}

fn repair(a: &AlarmFigures, s: Severity) -> [Cell; 2] {
    let x = a.repair.get(&s);
    [
        x.and_then(|x| x.mean_seconds).into(),
        x.and_then(|x| x.p90_seconds).into(),
    ]
}

fn saving_cells(lang: Lang, s: Option<&SavingFigures>) -> Vec<Cell> {
    let Some(s) = s else {
        return vec![Cell::Empty; 6];
    };
    use super::energy::BaselineSource;
    let baseline_source = match s.baseline.source {
        Some(BaselineSource::Computed) => pick(lang, "额定功率×计划亮灯时长", "computed"),
        Some(BaselineSource::Settings) => pick(lang, "改造前实测", "settings"),
        Some(BaselineSource::SettingsAndComputed) => {
            pick(lang, "改造前实测+计算", "settings_and_computed")
        }
        None => Cell::Empty,
    };
    vec![
        s.actual.energy_kwh.into(),
        source(lang, s.actual.source),
        s.baseline.kwh.into(),
        baseline_source,
        s.saved_kwh.into(),
        s.saving_rate.into(),
    ]
}

/// The summary: one row per district, then the city.
pub fn summary(report: &MonthlyReport, lang: Lang) -> Section {
    let mut section = Section::new("汇总", "Summary", SUMMARY.to_vec());
    for r in &report.rows {
        let f = &r.window;
        let a = &r.alarms;
        let [em_mean, em_p90] = repair(a, Severity::Emergency);
        let [se_mean, se_p90] = repair(a, Severity::Serious);
        let [or_mean, or_p90] = repair(a, Severity::Ordinary);
        let mut cells = vec![
            report.month.clone().into(),
            r.scope.clone().into(),
            scope_name(lang, r),
            r.cabinets_total.into(),
            r.rtus_installed.into(),
            r.rtu_installation_ratio.into(),
            f.rtu_online_rate.into(),
            r.lamps_total.into(),
            r.slcs_installed.into(),
            r.slc_control_share.into(),
            f.slc_online_rate.into(),
            r.evaluation_lighting_rate.into(),
            f.lighting_rate.into(),
            f.coverage.into(),
            f.rtu_online_seconds.into(),
            f.rtu_monitored_seconds.into(),
            f.slc_online_seconds.into(),
            f.slc_monitored_seconds.into(),
            f.lamp_lit_seconds.into(),
            f.lamp_expected_lit_seconds.into(),
            a.raised.into(),
            a.cleared.into(),
            em_mean,
            em_p90,
            se_mean,
            se_p90,
            or_mean,
            or_p90,
            a.within_deadline_share.into(),
            a.open_overdue.into(),
            a.facility_intact_rate.into(),
        ];
        cells.extend(saving_cells(
            lang,
            report.saving.iter().find(|s| s.scope == r.scope),
        ));
        section.push(cells);
    }
    section
}

/// One row per cabinet.
pub fn cabinets(report: &MonthlyReport, lang: Lang) -> Section {
    let mut section = Section::new("配电箱", "Cabinets", CABINETS.to_vec());
    for c in &report.cabinets {
        let e = &c.energy;
        section.push(vec![
            c.cabinet.clone().into(),
            c.name.clone().into(),
            c.district.clone().into(),
            if c.rtu_installed {
                pick(lang, "是", "yes")
            } else {
                pick(lang, "否", "no")
            },
            c.slcs_installed.into(),
            c.rtu_online_rate.into(),
            c.slc_online_rate.into(),
            e.energy_kwh.into(),
            source(lang, e.source),
            e.meter_kwh.into(),
            e.slc_kwh.into(),
            e.difference_kwh.into(),
        ]);
    }
    section
}

fn class_name(lang: Lang, c: Option<RoadClass>) -> Cell {
    match (c, lang) {
        (Some(c), Lang::Zh) => c.zh().into(),
        (Some(c), Lang::En) => c.as_str().into(),
        (None, _) => Cell::Empty,
    }
}

fn yes_no(lang: Lang, v: Option<bool>) -> Cell {
    match v {
        Some(true) => pick(lang, "是", "yes"),
        Some(false) => pick(lang, "否", "no"),
        None => Cell::Empty,
    }
}

/// The evaluation-grade lighting rate per road over the window.
pub fn roads(report: &MonthlyReport, lang: Lang) -> Section {
    let mut section = Section::new("道路亮灯率", "Roads", ROADS.to_vec());
    for r in &report.lighting.roads {
        let t = &r.seconds;
        section.push(vec![
            r.road.clone().into(),
            match (&r.road, lang) {
                (None, Lang::Zh) => "(无道路)".into(),
                _ => r.name.clone().into(),
            },
            r.district.clone().into(),
            class_name(lang, r.class),
            r.lamps_total.into(),
            r.lamps_planned.map(u64::from).into(),
            r.installation_rate.into(),
            r.lighting_rate.into(),
            r.target.into(),
            yes_no(lang, r.meets_target),
            r.dark_cap.into(),
            r.dark_lamps_max.into(),
            r.over_cap_seconds.into(),
            t.lamps_expected_lit_seconds.into(),
            t.lamps_lit_seconds.into(),
            t.lamps_dark_seconds.into(),
            t.lamps_unknown_seconds.into(),
            t.lamps_estimated_seconds.into(),
        ]);
    }
    section
}

/// The lighting rate per road class of each district and the city, each
/// scope's own row first (class empty).
pub fn classes(report: &MonthlyReport, lang: Lang) -> Section {
    let mut section = Section::new("分级亮灯率", "Lighting by class", CLASSES.to_vec());
    let w = &report.lighting;
    for scope in w.districts.iter().chain(w.city.iter()) {
        let name = if scope.scope == "city" {
            pick(lang, "全市", "city")
        } else {
            scope.name.clone().into()
        };
        let t = &scope.seconds;
        // The scope's alarm figures: its own intact rate (lamps, circuits
        // and cabinets), and each class's over its lamps.
        let row = report.rows.iter().find(|r| r.scope == scope.scope);
        section.push(vec![
            scope.scope.clone().into(),
            name.clone(),
            Cell::Empty,
            Cell::Empty,
            scope.lighting_rate.into(),
            Cell::Empty,
            Cell::Empty,
            Cell::Empty,
            t.lamps_expected_lit_seconds.into(),
            t.lamps_lit_seconds.into(),
            t.lamps_unknown_seconds.into(),
            scope.coverage.into(),
            row.and_then(|r| r.alarms.facility_intact_rate).into(),
            Cell::Empty,
            Cell::Empty,
        ]);
        for c in &scope.classes {
            let t = &c.seconds;
            let intact = row.and_then(|r| r.intact_by_class.iter().find(|i| i.class == c.class));
            section.push(vec![
                scope.scope.clone().into(),
                name.clone(),
                class_name(lang, Some(c.class)),
                c.roads.into(),
                c.lighting_rate.into(),
                c.target.into(),
                yes_no(lang, c.meets_target),
                c.roads_over_cap.into(),
                t.lamps_expected_lit_seconds.into(),
                t.lamps_lit_seconds.into(),
                t.lamps_unknown_seconds.into(),
                Cell::Empty,
                intact.and_then(|i| i.facility_intact_rate).into(),
                intact.map(|i| i.target).into(),
                yes_no(lang, intact.and_then(|i| i.meets_target)),
            ]);
        }
    }
    section
}

/// The cover: what the report is of, and when it was made.
pub fn cover(report: &MonthlyReport, lang: Lang, made: DateTime<Utc>) -> Section {
    let mut section = Section::new(
        "报告说明",
        "About",
        vec![
            Column::new("item", "项目", "Item", Text),
            Column::new("value", "内容", "Value", Text),
        ],
    );
    let tz: chrono_tz::Tz = report.time_zone.parse().unwrap_or(chrono_tz::UTC);
    let local = |t: DateTime<Utc>| t.with_timezone(&tz).format("%Y-%m-%d %H:%M").to_string();
    let title = match (&report.month, lang) {
        (Some(m), Lang::Zh) => format!("城市照明月度考评报告 {m}"),
        (Some(m), Lang::En) => format!("City lighting evaluation report, {m}"),
        (None, Lang::Zh) => "城市照明考评报告(时段)".to_string(),
        (None, Lang::En) => "City lighting evaluation report, period".to_string(),
    };
    let rows: [(Cell, Cell); 5] = [
        (pick(lang, "报告", "Report"), title.into()),
        (
            pick(lang, "起(含)", "From (inclusive)"),
            local(report.from).into(),
        ),
        (
            pick(lang, "止(不含)", "To (exclusive)"),
            local(report.to).into(),
        ),
        (
            pick(lang, "时区", "Time zone"),
            report.time_zone.clone().into(),
        ),
        (pick(lang, "生成时间", "Made at"), local(made).into()),
    ];
    for (k, v) in rows {
        section.push(vec![k, v]);
    }
    section
}

/// Every section of the workbook, in order.
pub fn all(report: &MonthlyReport, lang: Lang, made: DateTime<Utc>) -> Vec<Section> {
    vec![
        cover(report, lang, made),
        summary(report, lang),
        classes(report, lang),
        roads(report, lang),
        cabinets(report, lang),
    ]
}
