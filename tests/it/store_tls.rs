//! The store reaches PostgreSQL over TLS when `store.url` asks for it
//! (`sslmode=require`): the server's own view (`pg_stat_ssl`) of the
//! gateway's connection says it is encrypted, and without it says not.

use crate::common::db::PgTestDb;
use lamp_gateway::store::{Backend, Db};

/// Whether the connection the gateway's store pool gives is encrypted,
/// as the server sees it, after the store's migrations ran over it.
async fn encrypted(url: String) -> (bool, Option<String>) {
    let db = Db::connect_lazy(&Backend::Postgres(url.into()), 1)
        .unwrap()
        .expect("a PostgreSQL store");
    db.migrate().await.expect("migrations over the connection");
    let Db::Postgres(pg) = &db else {
        unreachable!()
    };
    sqlx::query_as("SELECT ssl, version FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
        .fetch_one(&pg.pool)
        .await
        .unwrap()
}

#[tokio::test]
async fn sslmode_require_encrypts_the_store_connection() {
    let pg = PgTestDb::new().await;
    let (ssl,): (String,) = sqlx::query_as("SHOW ssl")
        .fetch_one(&pg.pool().await)
        .await
        .unwrap();
    if ssl != "on" {
        println!("skipped: the PostgreSQL server at 127.0.0.1:5432 has ssl = {ssl}");
        pg.drop_db().await;
        return;
    }
    let (on, version) = encrypted(format!("{}?sslmode=require", pg.url())).await;
    assert!(on, "sslmode=require gave an unencrypted connection");
    assert!(version.is_some_and(|v| v.starts_with("TLS")));
    let (on, _) = encrypted(format!("{}?sslmode=disable", pg.url())).await;
    assert!(!on, "sslmode=disable gave an encrypted connection");
    pg.drop_db().await;
}
