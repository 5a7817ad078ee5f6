//! PostgreSQL: for production and for many replicas sharing one database.

use std::str::FromStr;
use std::time::Duration;

use sqlx::Postgres;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

use super::sql::{Dialect, SqlStore};
use super::{DatabaseUrl, Result, StoreError};

impl Dialect for Postgres {
    const BACKEND: &'static str = "postgres";
    const BEGIN_WRITE: &'static str = "BEGIN";
    // A transaction-scoped advisory lock: every replica appending to the audit chain takes
    // the same one, so the chain stays a single line however many processes write to it.
    const LOCK_AUDIT: Option<&'static str> = Some("SELECT pg_advisory_xact_lock(7305916442)");

    fn rows_affected(result: &sqlx::postgres::PgQueryResult) -> u64 {
        result.rows_affected()
    }

    async fn migrate(pool: &sqlx::PgPool) -> Result<()> {
        migrate(pool).await
    }
}

pub async fn connect(url: &DatabaseUrl) -> Result<SqlStore<Postgres>> {
    let options = PgConnectOptions::from_str(url.expose())
        .map_err(|e| StoreError::Config(format!("invalid PostgreSQL URL `{url}`: {e}")))?
        .application_name("credgate");
    let pool = PgPoolOptions::new()
        .max_connections(16)
        .acquire_timeout(Duration::from_secs(10))
        .connect_with(options)
        .await?;
    Ok(SqlStore::new(pool))
}

pub async fn migrate(pool: &sqlx::PgPool) -> Result<()> {
    // The migrator takes its own advisory lock, so replicas starting together migrate once.
    sqlx::migrate!("migrations/postgres").run(pool).await?;
    Ok(())
}
