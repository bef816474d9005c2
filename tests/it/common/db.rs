//! Real databases for tests: a fresh PostgreSQL database per test on the
//! local server, and a TCP proxy in front of it that a test can sever.

use sqlx::postgres::PgPoolOptions;
use sqlx::PgPool;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub const PG_SERVER: &str = "127.0.0.1:5432";

pub fn pg_url(addr: &str, db: &str) -> String {
    format!("postgres://postgres@{addr}/{db}")
}

/// A database of its own on the shared server, dropped by `drop_db`.
pub struct PgTestDb {
    pub name: String,
    admin: PgPool,
}

impl PgTestDb {
    pub async fn new() -> PgTestDb {
        let admin = PgPoolOptions::new()
            .max_connections(1)
            .connect(&pg_url(PG_SERVER, "postgres"))
            .await
            .expect("PostgreSQL at 127.0.0.1:5432 (scripts/test.sh starts it)");
        let name = format!("lampgw_test_{:016x}", fastrand::u64(..));
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&admin)
            .await
            .unwrap();
        PgTestDb { name, admin }
    }

    pub fn url(&self) -> String {
        pg_url(PG_SERVER, &self.name)
    }

    pub fn url_via(&self, addr: SocketAddr) -> String {
        pg_url(&addr.to_string(), &self.name)
    }

    pub async fn pool(&self) -> PgPool {
        PgPoolOptions::new()
            .max_connections(2)
            .connect(&self.url())
            .await
            .unwrap()
    }

    pub async fn drop_db(self) {
        let _ = sqlx::query(&format!(
            "DROP DATABASE IF EXISTS {} WITH (FORCE)",
            self.name
        ))
        .execute(&self.admin)
        .await;
    }
}

/// Forwards TCP connections to a target; `sever` closes every open
/// connection and refuses new ones until `restore`.
pub struct Proxy {
    pub addr: SocketAddr,
    open: Arc<AtomicBool>,
    cut: watch::Sender<u64>,
    task: JoinHandle<()>,
}

impl Proxy {
    pub async fn start(target: &str) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let open = Arc::new(AtomicBool::new(true));
        let (cut, _) = watch::channel(0u64);
        let target = target.to_string();
        let task = {
            let open = open.clone();
            let cut = cut.clone();
            tokio::spawn(async move {
                while let Ok((mut inbound, _)) = listener.accept().await {
                    if !open.load(Ordering::SeqCst) {
                        drop(inbound);
                        continue;
                    }
                    let mut severed = cut.subscribe();
                    let target = target.clone();
                    tokio::spawn(async move {
                        let Ok(mut outbound) = TcpStream::connect(&target).await else {
                            return;
                        };
                        tokio::select! {
                            _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                            _ = severed.changed() => {}
                        }
                    });
                }
            })
        };
        Proxy {
            addr,
            open,
            cut,
            task,
        }
    }

    pub fn sever(&self) {
        self.open.store(false, Ordering::SeqCst);
        self.cut.send_modify(|g| *g += 1);
    }

    pub fn restore(&self) {
        self.open.store(true, Ordering::SeqCst);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A number from the Prometheus text, summed over its label sets.
pub fn metric(text: &str, name: &str) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (key, value) = l.rsplit_once(' ')?;
            let metric = key.split('{').next()?;
            (metric == name).then(|| value.parse::<f64>().ok())?
        })
        .sum()
}
