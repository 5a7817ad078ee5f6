//! PostgreSQL: for production and for many replicas sharing one database.

use std::str::FromStr;
use std::time::Duration;

use sqlx::Postgres;
use sqlx::postgres::{PgConnectOptions, PgListener, PgPoolOptions};

use super::sql::{Dialect, SqlStore};
use super::{DatabaseUrl, Result, StoreError, Subscription};

impl Dialect for Postgres {
    const BACKEND: &'static str = "postgres";
    const BEGIN_WRITE: &'static str = "BEGIN";
    // A transaction-scoped advisory lock: every replica appending to the audit chain takes
    // the same one, so the chain stays a single line however many processes write to it.
    const LOCK_AUDIT: Option<&'static str> = Some("SELECT pg_advisory_xact_lock(7305916442)");
    const FOR_UPDATE: &'static str = " FOR UPDATE";
    const BODY_FIELD: (&'static str, &'static str) = ("(body::jsonb #>> CAST(", " AS text[]))");

    fn body_path(keys: &[&str]) -> String {
        format!("{{{}}}", keys.join(","))
    }

    fn rows_affected(result: &sqlx::postgres::PgQueryResult) -> u64 {
        result.rows_affected()
    }

    async fn migrate(pool: &sqlx::PgPool) -> Result<()> {
        migrate(pool).await
    }

    async fn notify(pool: &sqlx::PgPool, payload: &str) -> Result<()> {
        sqlx::query("SELECT pg_notify($1, $2)")
            .bind(CHANNEL)
            .bind(payload.to_owned())
            .execute(pool)
            .await?;
        Ok(())
    }

    async fn subscribe(pool: &sqlx::PgPool, name: &str) -> Result<Option<Box<dyn Subscription>>> {
        // Its own connection, named so an operator can find it in pg_stat_activity.
        let options = pool.connect_options().as_ref().clone().application_name(name);
        let mut listener = PgListener::connect_with(&sqlx::PgPool::connect_lazy_with(options)).await?;
        listener.listen(CHANNEL).await?;
        Ok(Some(Box::new(Listener(listener))))
    }
}

/// The one channel replicas tell each other about changes on.
const CHANNEL: &str = "credgate_changes";

struct Listener(PgListener);

#[async_trait::async_trait]
impl Subscription for Listener {
    async fn recv(&mut self) -> Result<Option<String>> {
        // `try_recv` reports a dropped connection as `None` (and reconnects on the next call)
        // instead of hiding it: notifications sent meanwhile are lost, so the caller resyncs.
        Ok(self.0.try_recv().await?.map(|n| n.payload().to_owned()))
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
