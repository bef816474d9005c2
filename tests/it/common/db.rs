//! Real databases for tests: a fresh PostgreSQL database per test on the
//! local server, and a TCP proxy in front of it that a test can sever.

use sqlx::postgres::PgPoolOptions;
use sqlx::PgPool;
use std::net::SocketAddr;

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

/// The severable TCP proxy the tests put in front of PostgreSQL and the
/// broker lives with the simulator, which the soak bench shares.
pub use lamp_sim::Proxy;

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
