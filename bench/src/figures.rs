//! Latency of the supervision figures for a 100,000-lamp city: `/metrics/summary`
//! and `/metrics/districts` with every lamp live (the in-process simulator,
//! 1,000 endpoints × 100 SLCs), and 30-day `/metrics/online-rates` and a
//! monthly report over a month of history GENERATED straight into the store
//! (runs, transitions, district lighting rollups), for SQLite and PostgreSQL.
//!
//! Baselines in the same run: `/healthz` (the HTTP round trip alone) for the
//! "now" figures; for the windowed ones, reading the window's transitions
//! from the database without folding them (the part no answer can skip).
//!
//! target/release/lamp-bench figures [--endpoints N] [--slcs M]
//!     [--days D] [--postgres URL|none]

use chrono::{DateTime, Duration as Span, SecondsFormat, Timelike, Utc};
use lamp_gateway::auth::{hash_token, Role, TokenConfig};
use lamp_gateway::inventory::Inventory;
use lamp_gateway::settings::Settings;
use lamp_gateway::startup::Application;
use lamp_gateway::store::ingest::rows::micros;
use lamp_gateway::store::Db;
use lamp_gateway::store::{Batch, TransitionRow};
use lamp_sim::{InventoryOptions, SimConfig, Simulator};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

const TOKEN: &str = "lgw_bench_viewer";

struct Opts {
    endpoints: usize,
    slcs: usize,
    days: i64,
    postgres: Option<String>,
}

fn opts(args: Vec<String>) -> anyhow::Result<Opts> {
    let mut o = Opts {
        endpoints: 1000,
        slcs: 100,
        days: 30,
        postgres: Some("postgres://postgres@127.0.0.1:5432/postgres".into()),
    };
    let mut args = args.into_iter();
    while let Some(a) = args.next() {
        let v = args
            .next()
            .ok_or_else(|| anyhow::anyhow!("{a} needs a value"))?;
        match a.as_str() {
            "--endpoints" => o.endpoints = v.parse()?,
            "--slcs" => o.slcs = v.parse()?,
            "--days" => o.days = v.parse()?,
            "--postgres" => o.postgres = (v != "none").then_some(v),
            _ => anyhow::bail!("unknown option {a}"),
        }
    }
    Ok(o)
}

fn floor_hour(t: DateTime<Utc>) -> DateTime<Utc> {
    t - Span::seconds(i64::from(t.minute() * 60 + t.second()))
        - Span::nanoseconds(i64::from(t.nanosecond()))
}

/// A month of history: three gateway runs (a clean stop, a crash, the last
/// one up to the end), an online transition per device at each run start, and
/// ~2 offline episodes per device of 5 min–6 h; district rollups for every
/// hour, lamps expected lit at night (18:00–06:00 local), 98 % of it lit.
async fn generate(
    db: &Db,
    inv: &Inventory,
    gw: &str,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
) -> anyhow::Result<(usize, usize)> {
    let span = end - start;
    let runs = [
        (start - Span::days(1), start + span / 3, true),
        (
            start + span / 3 + Span::hours(6),
            start + span * 2 / 3,
            false,
        ),
        (start + span * 2 / 3 + Span::hours(1), end, true),
    ];
    for (i, (s, e, stopped)) in runs.iter().enumerate() {
        let id = format!("bench-history-{i}");
        db.start_run(&id, gw, *s).await?;
        db.heartbeat(&id, *e, *stopped).await?;
    }
    let mut devices: Vec<(&str, &str, &str)> = Vec::new();
    for c in &inv.cabinets {
        if let Some(r) = &c.rtu {
            devices.push(("rtu", &r.id, &c.district));
        }
    }
    for l in &inv.lamps {
        if let (Some(s), Some(c)) = (&l.slc, inv.cabinet(&l.cabinet)) {
            devices.push(("slc", &s.id, &c.district));
        }
    }
    let mut rng = fastrand::Rng::with_seed(7);
    let mut batch = Batch::default();
    let mut transitions = 0;
    let row = |t: DateTime<Utc>, kind: &str, id: &str, d: &str, online: bool| TransitionRow {
        time_us: micros(t),
        device_kind: kind.into(),
        device_id: id.into(),
        district: d.into(),
        online,
        reason: (!online).then(|| "timeout".into()),
        detail: None,
    };
    for (kind, id, d) in &devices {
        for (s, e, _) in &runs {
            batch.transitions.push(row(
                *s + Span::milliseconds(rng.i64(0..60_000)),
                kind,
                id,
                d,
                true,
            ));
            for _ in 0..rng.usize(0..=4) {
                let off = *s + Span::seconds(rng.i64(60..(*e - *s).num_seconds() / 3 * 3));
                let on = off + Span::seconds(rng.i64(300..21_600));
                if on < *e && rng.bool() {
                    batch.transitions.push(row(off, kind, id, d, false));
                    batch.transitions.push(row(on, kind, id, d, true));
                }
            }
        }
        if batch.transitions.len() >= 50_000 {
            transitions += batch.transitions.len();
            db.write(&batch).await?;
            batch.transitions.clear();
        }
    }
    transitions += batch.transitions.len();
    db.write(&batch).await?;

    let mut districts: BTreeMap<&str, usize> = BTreeMap::new();
    for l in &inv.lamps {
        if let (Some(c), Some(_)) = (inv.cabinet(&l.cabinet), &l.slc) {
            *districts.entry(&c.district).or_default() += 1;
        }
    }
    let tz: chrono_tz::Tz = "Asia/Shanghai".parse()?;
    let mut rows = Vec::new();
    let mut hour = start;
    while hour < end {
        let local = hour.with_timezone(&tz).hour();
        let night = !(6..18).contains(&local);
        for (d, n) in &districts {
            let expected = if night { *n as f64 * 3600.0 } else { 0.0 };
            rows.push((hour, d.to_string(), *n as i32, expected, expected * 0.98));
        }
        hour += Span::hours(1);
    }
    insert_district_hours(db, &rows).await?;
    Ok((transitions, districts.len() * span.num_hours() as usize))
}

type DistrictHour = (DateTime<Utc>, String, i32, f64, f64);

/// A month of energy rollups, generated in the database from the `lamps`
/// and `cabinets` tables the gateway wrote at start: every cabinet meter
/// each hour (`cabinet_hourly`: the circuits' SLC energy × 1.03, line
/// losses) and every circuit each hour (`circuit_hourly`: 0.05 kWh per lamp
/// with an SLC). Returns the rows made.
async fn generate_energy(db: &Db, start: DateTime<Utc>, end: DateTime<Utc>) -> anyhow::Result<u64> {
    const HOUR: i64 = 3_600_000_000;
    let circuits = "SELECT cabinet, circuit, MAX(district) AS district, COUNT(slc_id) AS slcs \
                    FROM lamps GROUP BY cabinet, circuit";
    // Counted once per cabinet, not per cabinet-hour.
    let per_cabinet = "SELECT cabinet, COUNT(slc_id) AS slcs FROM lamps GROUP BY cabinet";
    let mut n = 0;
    match db {
        Db::Sqlite(p) => {
            let hours = "WITH RECURSIVE hours(h) AS (SELECT ?1 UNION ALL \
                         SELECT h + ?3 FROM hours WHERE h + ?3 < ?2)";
            n += sqlx::query(&format!(
                "{hours} INSERT INTO circuit_hourly (hour, cabinet, circuit, district, lamps, \
                 on_seconds, online_seconds, energy_kwh, failures, expected_seconds, lit_seconds) \
                 SELECT h, c.cabinet, c.circuit, c.district, c.slcs, c.slcs * 1800.0, \
                 c.slcs * 3600.0, c.slcs * 0.05, 0, 0, 0 FROM ({circuits}) c CROSS JOIN hours \
                 WHERE true ON CONFLICT DO NOTHING"
            ))
            .bind(micros(start))
            .bind(micros(end))
            .bind(HOUR)
            .execute(p)
            .await?
            .rows_affected();
            n += sqlx::query(&format!(
                "{hours} INSERT INTO cabinet_hourly (hour, cabinet, district, meter_kwh, samples) \
                 SELECT h, k.cabinet_id, k.district, 1.03 * 0.05 * n.slcs, 60 \
                 FROM cabinets k JOIN ({per_cabinet}) n ON n.cabinet = k.cabinet_id \
                 CROSS JOIN hours WHERE k.rtu_id IS NOT NULL ON CONFLICT DO NOTHING"
            ))
            .bind(micros(start))
            .bind(micros(end))
            .bind(HOUR)
            .execute(p)
            .await?
            .rows_affected();
        }
        Db::Postgres(pg) => {
            let hours = "generate_series($1::timestamptz, $2::timestamptz - interval '1 hour', \
                         interval '1 hour') AS h";
            n += sqlx::query(&format!(
                "INSERT INTO circuit_hourly (hour, cabinet, circuit, district, lamps, \
                 on_seconds, online_seconds, energy_kwh, failures, expected_seconds, lit_seconds) \
                 SELECT h, c.cabinet, c.circuit, c.district, c.slcs, c.slcs * 1800.0, \
                 c.slcs * 3600.0, c.slcs * 0.05, 0, 0, 0 FROM ({circuits}) c CROSS JOIN {hours} \
                 ON CONFLICT DO NOTHING"
            ))
            .bind(start)
            .bind(end)
            .execute(&pg.pool)
            .await?
            .rows_affected();
            n += sqlx::query(&format!(
                "INSERT INTO cabinet_hourly (hour, cabinet, district, meter_kwh, samples) \
                 SELECT h, k.cabinet_id, k.district, 1.03 * 0.05 * n.slcs, 60 \
                 FROM cabinets k JOIN ({per_cabinet}) n ON n.cabinet = k.cabinet_id \
                 CROSS JOIN {hours} WHERE k.rtu_id IS NOT NULL ON CONFLICT DO NOTHING"
            ))
            .bind(start)
            .bind(end)
            .execute(&pg.pool)
            .await?
            .rows_affected();
        }
    }
    Ok(n)
}

/// Reads what the report reads of a window's rollups, without folding it:
/// the district lighting hours and the energy hours. Returns the rows.
async fn read_rollups(db: &Db, start: DateTime<Utc>, end: DateTime<Utc>) -> anyhow::Result<usize> {
    let lighting = db.lighting_hours(start, end, None).await?.len();
    let meters = db.meter_hours(start, end, None, |_| Some(0)).await?.len();
    let circuits = db
        .circuit_energy_hours(start, end, None, |_| Some(0))
        .await?
        .len();
    Ok(lighting + meters + circuits)
}

async fn insert_district_hours(db: &Db, rows: &[DistrictHour]) -> anyhow::Result<()> {
    let sql = "INSERT INTO district_hourly (hour, district, lamps, expected_seconds, lit_seconds) \
               VALUES ($1, $2, $3, $4, $5)";
    match db {
        Db::Sqlite(p) => {
            let mut tx = p.begin().await?;
            for r in rows {
                sqlx::query(sql)
                    .bind(micros(r.0))
                    .bind(&r.1)
                    .bind(r.2)
                    .bind(r.3)
                    .bind(r.4)
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
        }
        Db::Postgres(pg) => {
            let mut tx = pg.pool.begin().await?;
            for r in rows {
                sqlx::query(sql)
                    .bind(r.0)
                    .bind(&r.1)
                    .bind(r.2)
                    .bind(r.3)
                    .bind(r.4)
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
        }
    }
    Ok(())
}

/// Median and max of `n` timed GETs, in ms; fails on a non-200.
async fn time_get(
    http: &reqwest::Client,
    base: &str,
    path: &str,
    n: usize,
) -> anyhow::Result<(f64, f64, usize)> {
    let mut ms = Vec::with_capacity(n);
    let mut bytes = 0;
    for _ in 0..n {
        let t = Instant::now();
        let r = http
            .get(format!("{base}{path}"))
            .bearer_auth(TOKEN)
            .send()
            .await?;
        let status = r.status();
        let body = r.bytes().await?;
        ms.push(t.elapsed().as_secs_f64() * 1e3);
        anyhow::ensure!(
            status.is_success(),
            "{path}: {status} {}",
            String::from_utf8_lossy(&body)
        );
        bytes = body.len();
    }
    ms.sort_by(f64::total_cmp);
    Ok((ms[ms.len() / 2], ms[ms.len() - 1], bytes))
}

async fn bench_backend(
    name: &str,
    url: &str,
    o: &Opts,
    dir: &std::path::Path,
) -> anyhow::Result<()> {
    let mut s = Settings::default();
    s.alarms.file = dir.join("alarms.open.json");
    s.alarms.webhook_dir = dir.join("webhooks");
    s.api.listen = "127.0.0.1:0".parse()?;
    s.paths.inventory = dir.join("inventory");
    s.paths.profiles = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../config/profiles");
    s.log.level = "warn".into();
    s.store.url = url.parse().map_err(anyhow::Error::msg)?;
    s.store.spool_dir = dir.join(format!("spool-{name}"));
    s.store.retention_days = 3650;
    // The figures are measured, not MQTT (its own bench is `lamp-bench mqtt`).
    s.mqtt.url = lamp_gateway::mqtt::BrokerChoice::None;
    s.auth.tokens.push(TokenConfig {
        name: "bench".into(),
        hash: hash_token(TOKEN),
        role: Role::Viewer,
        district: None,
    });
    let inv = lamp_gateway::validate::load(&s)
        .map_err(|e| anyhow::anyhow!("{e:?}"))?
        .inventory;
    let db = Db::connect_lazy(&s.store.url, 4)?.ok_or_else(|| anyhow::anyhow!("store disabled"))?;
    db.migrate().await?;
    let end = floor_hour(Utc::now());
    let start = end - Span::days(o.days);
    let t = Instant::now();
    let (transitions, district_hours) = generate(&db, &inv, &s.gateway.id, start, end).await?;
    println!(
        "{name}: generated {transitions} transitions and {district_hours} district-hours over {} days in {:.1} s",
        o.days,
        t.elapsed().as_secs_f64()
    );

    let app = Application::build(s).await?;
    let base = format!("http://{}", app.local_addr());
    let live = app.live();
    let deadline = Instant::now() + Duration::from_secs(300);
    while !live.all_polled() || live.full_cycles() < 1 {
        anyhow::ensure!(
            Instant::now() < deadline,
            "the city was not polled in 300 s"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let t = Instant::now();
    let energy_rows = generate_energy(&db, start, end).await?;
    println!(
        "{name}: generated {energy_rows} circuit- and cabinet-hours of energy in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    let http = reqwest::Client::new();
    let q = |t: DateTime<Utc>| t.to_rfc3339_opts(SecondsFormat::Secs, true);
    let window = format!("from={}&to={}", q(start), q(end));
    // The month around the middle of the generated history: most of it.
    let month = (start + (end - start) / 2)
        .with_timezone(&chrono_tz::Asia::Shanghai)
        .format("%Y-%m")
        .to_string();
    let rows: Vec<(String, String, usize)> = vec![
        ("GET /healthz (baseline)".into(), "/healthz".into(), 50),
        (
            "GET /metrics/summary".into(),
            "/api/v1/metrics/summary".into(),
            50,
        ),
        (
            "GET /metrics/districts".into(),
            "/api/v1/metrics/districts".into(),
            50,
        ),
        (
            format!("online-rates {}d city", o.days),
            format!("/api/v1/metrics/online-rates?{window}"),
            5,
        ),
        (
            format!("online-rates {}d city, bucket=day", o.days),
            format!("/api/v1/metrics/online-rates?{window}&bucket=day"),
            5,
        ),
        (
            format!("online-rates {}d D01, bucket=day", o.days),
            format!("/api/v1/metrics/online-rates?{window}&district=D01&bucket=day"),
            5,
        ),
    ];
    let lamps = live.inventory.lamps.len();
    println!(
        "{name}: {lamps} lamps live ({} endpoints)",
        live.inventory.cabinets.len()
    );
    for (what, path, n) in rows {
        let (p50, max, bytes) = time_get(&http, &base, &path, n).await?;
        println!("  {what:<40} p50 {p50:>8.1} ms   max {max:>8.1} ms   ({n} runs, {bytes} B)");
    }
    // The report: time and the process's peak RSS over its runs (the
    // gateway is in this process), against reading the month's rollups.
    for (what, path) in [
        (format!("reports/monthly {month} (json)"), "json"),
        (format!("reports/monthly {month} (csv)"), "csv"),
        (
            format!("reports/monthly {month} (xlsx, zh)"),
            "xlsx&lang=zh",
        ),
    ] {
        let path = format!("/api/v1/reports/monthly?month={month}&format={path}");
        let before = crate::procfs::self_peak_rss_mib();
        let reset = crate::procfs::reset_self_peak_rss();
        let rss_at = crate::procfs::rss_mib(std::process::id());
        let (p50, max, bytes) = time_get(&http, &base, &path, 3).await?;
        let peak = crate::procfs::self_peak_rss_mib();
        let grew = match (reset, peak, rss_at) {
            (true, Some(p), Some(r)) => format!("peak RSS +{:.0} MiB over {r:.0}", p - r),
            _ => format!("peak RSS {peak:?} MiB (was {before:?})"),
        };
        println!(
            "  {what:<40} p50 {p50:>8.1} ms   max {max:>8.1} ms   (3 runs, {bytes} B, {grew})"
        );
    }
    let mut ms = Vec::new();
    let mut rows_read = 0;
    for _ in 0..5 {
        let t = Instant::now();
        rows_read = read_rollups(&db, start, end).await?;
        ms.push(t.elapsed().as_secs_f64() * 1e3);
    }
    ms.sort_by(f64::total_cmp);
    println!(
        "  {:<40} p50 {:>8.1} ms   max {:>8.1} ms   ({rows_read} rows)",
        "baseline: read the month's rollups", ms[2], ms[4]
    );
    let mut ms = Vec::new();
    let mut n = 0;
    for _ in 0..5 {
        let t = Instant::now();
        n = db
            .transitions_between(start - Span::days(1), end, None, |_, _| Some(0))
            .await?
            .len();
        ms.push(t.elapsed().as_secs_f64() * 1e3);
    }
    ms.sort_by(f64::total_cmp);
    println!(
        "  {:<40} p50 {:>8.1} ms   max {:>8.1} ms   ({n} rows)",
        "baseline: read the window's transitions", ms[2], ms[4]
    );
    app.shutdown().await?;
    Ok(())
}

/// `lamp-bench figures [ARGS]`: the arguments as before, after the mode.
pub fn run(args: Vec<String>) -> anyhow::Result<()> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(bench(args))
}

async fn bench(args: Vec<String>) -> anyhow::Result<()> {
    let o = opts(args)?;
    let sim = Simulator::start(SimConfig {
        endpoints: o.endpoints,
        slcs_per_endpoint: o.slcs,
        districts: 10,
        failure_rate_per_hour: 0.0,
        ..SimConfig::default()
    })
    .await?;
    let dir = tempfile::tempdir()?;
    std::fs::create_dir_all(dir.path().join("inventory"))?;
    sim.write_inventory(&dir.path().join("inventory"), &InventoryOptions::default())?;
    let sqlite = format!("sqlite://{}", dir.path().join("figures.db").display());
    bench_backend("sqlite", &sqlite, &o, dir.path()).await?;
    if let Some(admin) = &o.postgres {
        let name = format!("lampgw_figures_bench_{}", fastrand::u32(..));
        let admin_pool = sqlx::PgPool::connect(admin).await?;
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&admin_pool)
            .await?;
        let url = lamp_gateway::store::db::postgres::with_database(admin, &name);
        let r = bench_backend("postgres", &url, &o, dir.path()).await;
        let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            .execute(&admin_pool)
            .await;
        r?;
    }
    sim.shutdown().await;
    Ok(())
}
