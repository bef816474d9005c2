//! `lamp-bench store`: sustained samples per second through the whole store
//! (sink and its spool append → writer → database) into SQLite and PostgreSQL, next to a
//! plain sqlx loop of one-row inserts in transactions on the same machine in
//! the same run, so the figures read as ratios.

use chrono::{Duration as Span, Utc};
use lamp_gateway::inventory::{Cabinet, District, Framing, Inventory, Lamp, SlcSpec};
use lamp_gateway::state::{Applied, Reading, Sample, SlcReading};
use lamp_gateway::store::db::postgres::{with_database, Postgres};
use lamp_gateway::store::{self, Backend, Db, LampRow, StartArgs, StoreSettings, StoreTime};
use lamp_gateway::topology::{DeviceKey, PollClass};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

#[derive(clap::Args)]
pub struct StoreArgs {
    /// Simulated endpoints (cabinets) per poll cycle
    #[arg(long, default_value_t = 1000)]
    pub endpoints: usize,
    /// Lamps behind each endpoint
    #[arg(long, default_value_t = 100)]
    pub lamps_per_endpoint: usize,
    /// Poll cycles of every lamp pushed through the store
    #[arg(long, default_value_t = 5)]
    pub cycles: usize,
    /// Rows for the one-row-INSERT baseline
    #[arg(long, default_value_t = 100_000)]
    pub baseline_rows: usize,
    /// `store.batch_size` for the run
    #[arg(long, default_value_t = 5000)]
    pub batch_size: usize,
    /// PostgreSQL server to create a scratch database on; `none` to skip
    #[arg(long, default_value = "postgres://postgres@127.0.0.1:5432/postgres")]
    pub postgres: String,
    /// `store.fsync`: every spool append synced to the device (SQLite FULL)
    #[arg(long)]
    pub fsync: bool,
}

struct BenchOptions {
    lamps_per_endpoint: usize,
    endpoints: usize,
    cycles: usize,
    baseline_rows: usize,
    postgres: Option<String>,
    batch_size: usize,
    fsync: bool,
}

/// Runs the store bench on its own runtime and prints a line per backend.
pub fn main(args: StoreArgs) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(run(BenchOptions {
        lamps_per_endpoint: args.lamps_per_endpoint,
        endpoints: args.endpoints,
        cycles: args.cycles,
        baseline_rows: args.baseline_rows,
        postgres: (args.postgres != "none").then_some(args.postgres),
        batch_size: args.batch_size,
        fsync: args.fsync,
    }))
}

fn inventory(o: &BenchOptions) -> Inventory {
    let districts = vec![District {
        at: String::new(),
        id: "D01".into(),
        name: "bench".into(),
    }];
    let cabinets = (0..o.endpoints)
        .map(|e| Cabinet {
            at: String::new(),
            id: format!("CAB-{:05}", e + 1),
            district: "D01".into(),
            name: String::new(),
            lat: None,
            lon: None,
            circuits: 4,
            endpoint: None,
            link: None,
            framing: Framing::Tcp,
            rtu: None,
        })
        .collect();
    let lamps = (0..o.endpoints * o.lamps_per_endpoint)
        .map(|i| Lamp {
            at: String::new(),
            id: format!(
                "LX-{:05}-{:03}",
                i / o.lamps_per_endpoint + 1,
                i % o.lamps_per_endpoint + 1
            ),
            cabinet: format!("CAB-{:05}", i / o.lamps_per_endpoint + 1),
            circuit: (i % 4) as u8 + 1,
            lat: None,
            lon: None,
            rated_power_w: Some(100.0),
            slc: Some(SlcSpec {
                id: format!("SLC-{i}"),
                profile: "slc-a-unit".into(),
                unit: 2,
                index: None,
            }),
            road: None,
        })
        .collect();
    Inventory::new(districts, cabinets, lamps)
}

fn reading(i: usize, cycle: usize) -> SlcReading {
    SlcReading {
        on: i % 7 >= 1,
        dim_level: (i % 101) as f64,
        voltage: Some(220.0 + (i % 10) as f64 * 0.1),
        current: Some(0.45),
        power: Some(99.5),
        power_factor: Some(0.95),
        energy_kwh: Some(1000.0 + cycle as f64 * 0.01),
        burning_hours: Some(5000.0),
        fault_flags: 0,
    }
}

/// Runs the store on `url` and returns sustained samples per second, and
/// samples per second handed to the sink (what the state task spends on
/// it: turning batches into rows and appending them to the spool).
async fn through_store(
    url: &str,
    o: &BenchOptions,
    inv: Arc<Inventory>,
) -> anyhow::Result<(f64, f64)> {
    let spool = tempfile::tempdir()?;
    let settings = StoreSettings {
        url: url.parse().map_err(anyhow::Error::msg)?,
        spool_dir: spool.path().to_path_buf(),
        batch_size: o.batch_size,
        // Only the database's own speed should bound this run.
        queue_rows: usize::MAX / 2,
        fsync: o.fsync,
        ..StoreSettings::default()
    };
    let cancel = CancellationToken::new();
    let running = store::start(StartArgs {
        settings,
        gateway_id: "bench".into(),
        sample_gap: Duration::from_secs(30),
        inventory: inv.clone(),
        lit_threshold_w: Arc::new(vec![5.0; inv.lamps.len()]),
        cancel: cancel.clone(),
    })?
    .ok_or_else(|| anyhow::anyhow!("store disabled"))?;
    let status = running.store.status.clone();
    // Let the writer connect and migrate before the clock starts.
    let deadline = Instant::now() + Duration::from_secs(30);
    while !status.ready.load(Ordering::Relaxed) {
        anyhow::ensure!(
            Instant::now() < deadline,
            "store did not connect: {:?}",
            status.last_error.lock()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let total = (o.cycles * inv.lamps.len()) as u64;
    let start = Instant::now();
    let t0 = Utc::now() - Span::hours(1);
    let mut offering = Duration::ZERO;
    for cycle in 0..o.cycles {
        let at = t0 + Span::seconds(cycle as i64 * 10);
        for e in 0..o.endpoints {
            let samples = (e * o.lamps_per_endpoint..(e + 1) * o.lamps_per_endpoint)
                .map(|i| Sample {
                    key: DeviceKey::Lamp(i as u32),
                    reading: Reading::Slc(reading(i, cycle)),
                    lamp: None,
                })
                .collect();
            let applied = Arc::new(Applied {
                endpoint: e as u32,
                class: PollClass::Slc,
                at,
                samples,
                transitions: Vec::new(),
            });
            let t = Instant::now();
            lamp_gateway::state::Sink::offer(running.sink.as_ref(), applied);
            offering += t.elapsed();
        }
        tokio::task::yield_now().await;
    }
    let deadline = Instant::now() + Duration::from_secs(600);
    while status.lamp_rows.load(Ordering::Relaxed) < total {
        anyhow::ensure!(
            Instant::now() < deadline,
            "store did not keep up within 10 minutes"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let rate = total as f64 / start.elapsed().as_secs_f64();
    cancel.cancel();
    running.join().await;
    Ok((rate, total as f64 / offering.as_secs_f64()))
}

fn rows_for_baseline(n: usize, lamps: usize) -> Vec<LampRow> {
    let t0 = (Utc::now() - Span::hours(2)).timestamp_micros();
    (0..n)
        .map(|k| {
            let i = k % lamps;
            let r = reading(i, k / lamps);
            LampRow {
                time_us: t0 + (k / lamps) as i64 * 10_000_000,
                lamp_id: format!("BASE-{i}").into(),
                district: "D01".into(),
                on: r.on,
                dim_level: r.dim_level,
                voltage_v: r.voltage,
                current_a: r.current,
                power_w: r.power,
                power_factor: r.power_factor,
                energy_kwh: r.energy_kwh,
                burning_hours: r.burning_hours,
                fault_flags: 0,
                commanded: None,
                should_be_lit: false,
                lit: false,
            }
        })
        .collect()
}

const BASE_SQL: &str = "INSERT INTO lamp_samples (time, lamp_id, district, is_on, dim_level, \
    voltage_v, current_a, power_w, power_factor, energy_kwh, burning_hours, fault_flags) \
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)";

macro_rules! bind_row {
    ($q:expr, $r:expr, $t:expr) => {
        $q.bind($t)
            .bind(&*$r.lamp_id)
            .bind(&*$r.district)
            .bind($r.on)
            .bind($r.dim_level)
            .bind($r.voltage_v)
            .bind($r.current_a)
            .bind($r.power_w)
            .bind($r.power_factor)
            .bind($r.energy_kwh)
            .bind($r.burning_hours)
            .bind($r.fault_flags)
    };
}

/// One prepared single-row INSERT per sample, committed every `batch` rows.
async fn baseline(db: &Db, rows: &[LampRow], batch: usize) -> anyhow::Result<f64> {
    let start = Instant::now();
    match db {
        Db::Sqlite(p) => {
            for chunk in rows.chunks(batch) {
                let mut tx = p.begin().await?;
                for r in chunk {
                    bind_row!(sqlx::query(BASE_SQL), r, StoreTime::from_micros(r.time_us))
                        .execute(&mut *tx)
                        .await?;
                }
                tx.commit().await?;
            }
        }
        Db::Postgres(pg) => {
            pg.ensure_days(
                rows.iter()
                    .map(|r| StoreTime::from_micros(r.time_us).0.date_naive())
                    .collect::<std::collections::BTreeSet<_>>(),
            )
            .await?;
            for chunk in rows.chunks(batch) {
                let mut tx = pg.pool.begin().await?;
                for r in chunk {
                    bind_row!(sqlx::query(BASE_SQL), r, StoreTime::from_micros(r.time_us))
                        .execute(&mut *tx)
                        .await?;
                }
                tx.commit().await?;
            }
        }
    }
    Ok(rows.len() as f64 / start.elapsed().as_secs_f64())
}

async fn bench_backend(
    name: &str,
    url: &str,
    o: &BenchOptions,
    inv: Arc<Inventory>,
) -> anyhow::Result<()> {
    let (store, offer) = through_store(url, o, inv.clone()).await?;
    let backend: Backend = url.parse().map_err(anyhow::Error::msg)?;
    let db = Db::connect_lazy(&backend, 2)?.ok_or_else(|| anyhow::anyhow!("disabled"))?;
    let rows = rows_for_baseline(o.baseline_rows, inv.lamps.len());
    let base = baseline(&db, &rows, o.batch_size).await?;
    println!(
        "{name:<10} store {store:>10.0} samples/s   baseline (one-row INSERTs, {} per transaction) {base:>9.0} samples/s   ratio {:.1}x",
        o.batch_size,
        store / base
    );
    println!("{name:<10} sink offer (the state task's share: rows + spool append) {offer:>10.0} samples/s");
    Ok(())
}

async fn run(o: BenchOptions) -> anyhow::Result<()> {
    let inv = Arc::new(inventory(&o));
    println!(
        "store bench: {} lamps on {} endpoints, {} cycles = {} samples per backend, batch_size {}, fsync {}",
        inv.lamps.len(),
        o.endpoints,
        o.cycles,
        inv.lamps.len() * o.cycles,
        o.batch_size,
        o.fsync
    );
    let dir = tempfile::tempdir()?;
    let sqlite = format!("sqlite://{}", dir.path().join("bench.db").display());
    bench_backend("sqlite", &sqlite, &o, inv.clone()).await?;
    if let Some(admin) = &o.postgres {
        let name = format!("lampgw_bench_{}", fastrand::u32(..));
        let admin_db = Postgres::new(admin, 1)?;
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&admin_db.pool)
            .await?;
        let url = with_database(admin, &name);
        let r = bench_backend("postgres", &url, &o, inv.clone()).await;
        let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            .execute(&admin_db.pool)
            .await;
        r?;
    }
    Ok(())
}
