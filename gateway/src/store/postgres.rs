//! PostgreSQL: for production and for many replicas sharing one database.

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use futures_util::TryStreamExt;
use sqlx::Postgres;
use sqlx::postgres::{PgConnectOptions, PgListener, PgPoolOptions};

use super::chain_page;
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

    async fn chain_page(
        pool: &sqlx::PgPool,
        _: Option<&Path>,
        from_seq: i64,
        limit: i64,
        into: chain_page::ChainPage,
    ) -> Result<Option<chain_page::ChainPage>> {
        let mut conn = pool.acquire().await?;
        let typed: i64 = sqlx::query_scalar(chain_page::postgres::TYPES_AS_READ)
            .fetch_one(&mut *conn)
            .await?;
        if typed != 13 {
            return Ok(None);
        }
        let mut copying = Copying(conn, false);
        // A page of records as credgate writes them is about 600 bytes each.
        let mut data = Vec::with_capacity(usize::try_from(limit.clamp(0, 1_024)).unwrap_or(0) * 640);
        let mut copy = copying
            .0
            .copy_out_raw(&chain_page::postgres::statement(from_seq, limit))
            .await?;
        while let Some(chunk) = copy.try_next().await? {
            data.extend_from_slice(&chunk);
        }
        drop(copy);
        copying.1 = true;
        drop(copying);
        // Off the async workers, so the reads of the next pages run meanwhile.
        Ok(
            tokio::task::spawn_blocking(move || chain_page::postgres::parse(&data, into))
                .await
                .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic())),
        )
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

/// A connection running a `COPY`, and whether the copy ran to its end. One that did not (the
/// walk dropped between pages drops the reads ahead of it mid-copy, or the copy failed) is
/// closed rather than put back in the pool: it would answer its next statement with the rest
/// of the copy.
struct Copying(sqlx::pool::PoolConnection<Postgres>, bool);

impl Drop for Copying {
    fn drop(&mut self) {
        if !self.1 {
            self.0.close_on_drop();
        }
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
