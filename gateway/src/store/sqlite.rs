//! SQLite: the embedded default. One file in the data directory, WAL journal.

use std::str::FromStr;
use std::time::Duration;

use sqlx::Sqlite;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};

use super::sql::{Dialect, SqlStore};
use super::{DatabaseUrl, Result, StoreError};

impl Dialect for Sqlite {
    const BACKEND: &'static str = "sqlite";
    const BEGIN_WRITE: &'static str = "BEGIN IMMEDIATE";
    const LOCK_AUDIT: Option<&'static str> = None;

    fn rows_affected(result: &sqlx::sqlite::SqliteQueryResult) -> u64 {
        result.rows_affected()
    }

    async fn migrate(pool: &sqlx::SqlitePool) -> Result<()> {
        migrate(pool).await
    }

    async fn notify(_: &sqlx::SqlitePool, _: &str) -> Result<()> {
        Ok(())
    }

    async fn subscribe(_: &sqlx::SqlitePool, _: &str) -> Result<Option<Box<dyn super::Subscription>>> {
        Ok(None)
    }
}

pub async fn connect(url: &DatabaseUrl) -> Result<SqlStore<Sqlite>> {
    let options = SqliteConnectOptions::from_str(url.expose())
        .map_err(|e| StoreError::Config(format!("invalid SQLite URL `{url}`: {e}")))?
        .create_if_missing(true)
        .foreign_keys(true)
        // WAL lets readers run beside the one writer; FULL makes each commit durable on its
        // own (the audit trail is written before a credential leaves, so it must survive a
        // power cut, not just a crash).
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Full)
        .busy_timeout(Duration::from_secs(10));
    let pool = SqlitePoolOptions::new()
        .max_connections(8)
        .acquire_timeout(Duration::from_secs(10))
        .connect_with(options)
        .await?;
    Ok(SqlStore::new(pool))
}

/// Opens an existing database read-only, so looking cannot change it (a read-write
/// connection may checkpoint the WAL into the main file when it closes). `None` when there
/// is no database file yet.
pub async fn open_read_only(url: &DatabaseUrl) -> Result<Option<SqlStore<Sqlite>>> {
    let options = SqliteConnectOptions::from_str(url.expose())
        .map_err(|e| StoreError::Config(format!("invalid SQLite URL `{url}`: {e}")))?
        .read_only(true)
        .busy_timeout(Duration::from_secs(10));
    if !options.get_filename().exists() {
        return Ok(None);
    }
    let pool = SqlitePoolOptions::new()
        .max_connections(1)
        .connect_with(options)
        .await?;
    Ok(Some(SqlStore::new(pool)))
}

pub async fn migrate(pool: &sqlx::SqlitePool) -> Result<()> {
    sqlx::migrate!("migrations/sqlite").run(pool).await?;
    Ok(())
}
