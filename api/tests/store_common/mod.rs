//! Runs a storage test body on every backend: SQLite in memory always, and PostgreSQL when
//! `DATABASE_URL` is set, in a schema of its own (created for the test, dropped after it, even
//! when the body panics) so that tests run in parallel without seeing each other.

use std::future::Future;
use std::str::FromStr;

use sqlx::postgres::{PgConnectOptions, PgPool};
use switchyard_api::store::{Backend, Store};

/// `body` once per backend, each time on a freshly migrated, empty store. A panic in the body
/// fails the test after the PostgreSQL schema is dropped.
pub async fn each_backend<F, Fut>(body: F)
where
    F: Fn(Store) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    each_backend_with(true, body).await
}

/// As [`each_backend`], but on an empty database with no migrations applied: for tests of the
/// migrations themselves.
#[allow(dead_code)] // Only the store tests migrate by hand.
pub async fn each_unmigrated_backend<F, Fut>(body: F)
where
    F: Fn(Store) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    each_backend_with(false, body).await
}

async fn each_backend_with<F, Fut>(migrate: bool, body: F)
where
    F: Fn(Store) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let sqlite = Store::sqlite_memory().await.expect("in-memory sqlite");
    if migrate {
        sqlite.migrate().await.expect("sqlite migrations");
    }
    assert_eq!(sqlite.backend(), Backend::Sqlite);
    let outcome = tokio::spawn(body(sqlite.clone())).await;
    sqlite.close().await;
    if let Err(e) = outcome {
        std::panic::resume_unwind(e.into_panic());
    }

    let Ok(url) = std::env::var("DATABASE_URL") else {
        return;
    };
    let admin = PgPool::connect(&url).await.expect("DATABASE_URL reachable");
    // A name made of hex digits: safe to splice into DDL.
    let schema = format!("t_{}", uuid::Uuid::new_v4().simple());
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {schema}")))
        .execute(&admin)
        .await
        .expect("create test schema");
    let options = PgConnectOptions::from_str(&url)
        .expect("DATABASE_URL parses")
        .options([("search_path", schema.as_str())]);
    let outcome = match Store::from_pg_options(options).await {
        Ok(pg) => {
            assert_eq!(pg.backend(), Backend::Postgres);
            if migrate {
                pg.migrate().await.expect("postgres migrations");
            }
            let outcome = tokio::spawn(body(pg.clone())).await;
            pg.close().await;
            outcome
        }
        Err(e) => tokio::spawn(async move { panic!("connecting to postgres: {e}") }).await,
    };
    sqlx::query(sqlx::AssertSqlSafe(format!("DROP SCHEMA {schema} CASCADE")))
        .execute(&admin)
        .await
        .expect("drop test schema");
    admin.close().await;
    if let Err(e) = outcome {
        std::panic::resume_unwind(e.into_panic());
    }
}
