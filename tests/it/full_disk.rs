//! Full disks, for real: the spool's folder and the SQLite file each on a
//! small tmpfs filled to the last bytes while the gateway polls, then space
//! freed. Nothing polled is lost, every row lands once, only committed rows
//! are counted, and the next start is not blocked. Mounting needs root (CI
//! runs as root); without it these tests say so and pass without checking.

use crate::common::db::{metric, PgTestDb, Proxy};
use crate::common::{eventually, spawn_app_with};
use lamp_gateway::queue::Spool;
use lamp_gateway::store;
use lamp_sim::{InventoryOptions, SimConfig};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// A tmpfs of `size` mounted on a fresh folder, unmounted on drop.
struct SmallDisk {
    path: PathBuf,
    _dir: tempfile::TempDir,
}

impl SmallDisk {
    fn mount(size: &str) -> Option<SmallDisk> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("disk");
        fs::create_dir(&path).unwrap();
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(&path)
            .output();
        match out {
            Ok(o) if o.status.success() => Some(SmallDisk { path, _dir: dir }),
            other => {
                eprintln!("SKIPPED: cannot mount a {size} tmpfs (needs root): {other:?}");
                None
            }
        }
    }

    fn free(&self) -> u64 {
        let st = rustix::fs::statvfs(&self.path).unwrap();
        st.f_bavail * st.f_frsize
    }

    /// Takes all but about `leave` bytes with a file, removed by `free_up`.
    fn fill(&self, leave: u64) {
        let take = self.free().saturating_sub(leave);
        fs::write(self.filler(), vec![0u8; take as usize]).unwrap();
    }

    fn free_up(&self) {
        fs::remove_file(self.filler()).unwrap();
    }

    fn filler(&self) -> PathBuf {
        self.path.join("filler")
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        // Lazy: a failed test may still hold files open on it.
        let _ = Command::new("umount").arg("-l").arg(&self.path).status();
    }
}

fn sim() -> SimConfig {
    SimConfig {
        endpoints: 3,
        slcs_per_endpoint: 5,
        districts: 2,
        failure_rate_per_hour: 0.0,
        ..SimConfig::default()
    }
}

fn set_aside(dir: &Path) -> Vec<String> {
    fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("spool.jsonl.bad-"))
        .collect()
}

#[tokio::test]
async fn a_full_spool_disk_keeps_every_row_and_the_next_start() {
    let Some(disk) = SmallDisk::mount("256k") else {
        return;
    };
    let spool_dir = disk.path.join("spool");
    let pg = PgTestDb::new().await;
    let proxy = Proxy::start(crate::common::db::PG_SERVER)
        .await
        .expect("proxy binds");
    let url = pg.url_via(proxy.addr);
    let dir = spool_dir.clone();
    let mut t = spawn_app_with(sim(), InventoryOptions::default(), |s| {
        s.store.url = url.parse().unwrap();
        s.store.spool_dir = dir;
        s.store.flush_interval = Duration::from_millis(50);
        s.store.write_timeout = Duration::from_secs(2);
        s.store.retry_max = Duration::from_millis(300);
        // Small, so the outage goes to the spool at once; memory may hold
        // everything while the spool's disk is full.
        s.store.queue_rows = 20;
        s.store.queue_rows_max = Some(1_000_000);
    })
    .await;
    let store = t.app.as_ref().unwrap().store().unwrap();
    t.all_online().await;
    eventually("rows written", || async { store.status.rows_written() > 0 }).await;

    proxy.sever();
    disk.fill(16 * 1024);
    eventually("the spool's disk full", || async { disk.free() < 4096 }).await;
    // Polling goes on with nowhere to spool.
    let cycles = t.live.full_cycles();
    eventually("polled on a full disk", || async {
        t.live.full_cycles() > cycles + 10
    })
    .await;
    let (_, during) = t.get("/readyz").await;
    let (_, metrics) = t.get_text("/metrics").await;

    disk.free_up();
    proxy.restore();
    eventually("everything written", || async {
        let (_, b) = t.get("/readyz").await;
        b["store"]["state"] == "ok" && b["store"]["spooled_rows"] == 0
    })
    .await;
    let app = t.app.take().unwrap();
    app.shutdown().await.unwrap();

    let (samples_total, transitions_total) = {
        let live = t.live.read();
        (live.samples_total, live.transitions_total)
    };
    let pool = pg.pool().await;
    let count = |sql: &'static str| {
        let pool = pool.clone();
        async move {
            sqlx::query_scalar::<_, i64>(sql)
                .fetch_one(&pool)
                .await
                .unwrap() as u64
        }
    };
    let samples = count("SELECT COUNT(*) FROM lamp_samples").await
        + count("SELECT COUNT(*) FROM rtu_samples").await;
    assert_eq!(samples, samples_total, "samples in the store vs polled");
    assert_eq!(
        count("SELECT COUNT(*) FROM transitions").await,
        transitions_total
    );
    // It said so while the disk was full.
    assert_eq!(during["store"]["state"], "degraded", "{during}");
    assert!(during["store"]["spool_failing"] == true, "{during}");
    assert_eq!(during["store"]["dropped_rows"], 0, "{during}");
    assert!(metric(&metrics, "lampgw_store_spool_failures_total") > 0.0);
    // The next start opens the spool as it was left: whole lines, nothing
    // set aside.
    let spool = Spool::<store::Batch>::open(&spool_dir).expect("the spool opens");
    assert!(spool.is_empty());
    assert!(
        set_aside(&spool_dir).is_empty(),
        "{:?}",
        set_aside(&spool_dir)
    );
    drop(pool);
    t.stop().await;
    pg.drop_db().await;
}

#[tokio::test]
async fn sqlite_on_a_full_disk_counts_only_committed_rows_and_writes_each_once() {
    let Some(disk) = SmallDisk::mount("3m") else {
        return;
    };
    let db_path = disk.path.join("store.db");
    let path = db_path.clone();
    let mut t = spawn_app_with(sim(), InventoryOptions::default(), |s| {
        s.store.url = store::Backend::Sqlite(path);
        s.store.flush_interval = Duration::from_millis(50);
        s.store.write_timeout = Duration::from_secs(2);
        s.store.retry_max = Duration::from_millis(300);
    })
    .await;
    let store = t.app.as_ref().unwrap().store().unwrap();
    t.all_online().await;
    eventually("rows written", || async { store.status.rows_written() > 0 }).await;

    disk.fill(64 * 1024);
    eventually("database or disk is full", || async {
        store
            .status
            .last_error
            .lock()
            .as_deref()
            .is_some_and(|e| e.contains("full"))
    })
    .await;
    let cycles = t.live.full_cycles();
    eventually("polled on a full disk", || async {
        t.live.full_cycles() > cycles + 10
    })
    .await;

    disk.free_up();
    eventually("everything written", || async {
        let (_, b) = t.get("/readyz").await;
        b["store"]["state"] == "ok" && b["store"]["spooled_rows"] == 0
    })
    .await;
    let app = t.app.take().unwrap();
    app.shutdown().await.unwrap();

    let (samples_total, transitions_total) = {
        let live = t.live.read();
        (live.samples_total, live.transitions_total)
    };
    let opts = sqlx::sqlite::SqliteConnectOptions::new().filename(&db_path);
    let pool = sqlx::SqlitePool::connect_with(opts).await.unwrap();
    let count = |sql: &'static str| {
        let pool = pool.clone();
        async move {
            sqlx::query_scalar::<_, i64>(sql)
                .fetch_one(&pool)
                .await
                .unwrap() as u64
        }
    };
    let lamps = count("SELECT COUNT(*) FROM lamp_samples").await;
    let rtus = count("SELECT COUNT(*) FROM rtu_samples").await;
    let transitions = count("SELECT COUNT(*) FROM transitions").await;
    assert_eq!(
        lamps + rtus,
        samples_total,
        "samples in the store vs polled"
    );
    assert_eq!(transitions, transitions_total);
    // Counted as written exactly what was committed (each row once: the
    // keys skip a replayed row, and the counters count it again). The
    // evaluation's running totals (a row per road per tick, each replacing
    // the last) and alarm records are not samples: left out of the count.
    use std::sync::atomic::Ordering;
    let not_samples = store.status.evaluation_rows.load(Ordering::Relaxed)
        + store.status.alarm_rows.load(Ordering::Relaxed);
    assert_eq!(
        store.status.rows_written() - not_samples,
        lamps + rtus + transitions,
        "rows counted as written vs rows in the database"
    );
    pool.close().await;
    t.stop().await;
}
