//! SQLite: the embedded default. One file in the data directory, WAL journal.

use std::path::Path;
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use sqlx::Sqlite;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};

use super::chain_page;
use super::sql::{Dialect, SqlStore};
use super::{DatabaseUrl, Result, StoreError};

impl Dialect for Sqlite {
    const BACKEND: &'static str = "sqlite";
    const BEGIN_WRITE: &'static str = "BEGIN IMMEDIATE";
    const LOCK_AUDIT: Option<&'static str> = None;
    // Numbers come out of json_extract as numbers: as text they compare like PostgreSQL's.
    const FOR_UPDATE: &'static str = "";
    const BODY_FIELD: (&'static str, &'static str) = ("CAST(json_extract(body, ", ") AS TEXT)");

    async fn chain_page(
        _: &sqlx::SqlitePool,
        file: Option<&Path>,
        from_seq: i64,
        limit: i64,
        into: chain_page::ChainPage,
    ) -> Result<Option<chain_page::ChainPage>> {
        static WARNED: AtomicBool = AtomicBool::new(false);
        let Some(file) = file.map(Path::to_owned) else {
            return Ok(None);
        };
        let read = tokio::task::spawn_blocking(move || chain_page::sqlite::read(&file, from_seq, limit, into))
            .await
            .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()));
        read.or_else(|e| {
            // The rows give the same records, more slowly: said once, not for every page.
            if !WARNED.swap(true, Ordering::Relaxed) {
                tracing::warn!(error = %e, "reading the audit chain from the database file failed; reading it row by row");
            }
            Ok(None)
        })
    }

    fn body_path(keys: &[&str]) -> String {
        keys.iter()
            .fold(String::from("$"), |path, key| format!("{path}.\"{key}\""))
    }

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

/// `fsync_commits`: FULL synchronisation, each commit flushed to disk before it returns, so
/// the audit record written before a credential leaves survives a power cut. Without it
/// (NORMAL), a commit is in the WAL file when it returns: it survives a crash or SIGKILL of
/// credgate, and the disk is flushed at checkpoints, so a power cut may lose the last commits.
pub async fn connect(url: &DatabaseUrl, fsync_commits: bool) -> Result<SqlStore<Sqlite>> {
    let options = SqliteConnectOptions::from_str(url.expose())
        .map_err(|e| StoreError::Config(format!("invalid SQLite URL `{url}`: {e}")))?
        .create_if_missing(true)
        .foreign_keys(true)
        // WAL lets readers run beside the one writer.
        .journal_mode(SqliteJournalMode::Wal)
        // Statement journals and sorts stay in memory: on disk each write transaction would
        // open, write and unlink a temporary file.
        .pragma("temp_store", "memory")
        .synchronous(if fsync_commits {
            SqliteSynchronous::Full
        } else {
            SqliteSynchronous::Normal
        })
        .busy_timeout(Duration::from_secs(10));
    let pool = SqlitePoolOptions::new()
        .max_connections(8)
        .acquire_timeout(Duration::from_secs(10))
        .connect_with(options.clone())
        .await?;
    let writes = SqlitePoolOptions::new()
        .max_connections(1)
        .min_connections(1)
        // Kept open: its warm page cache is the point.
        .idle_timeout(None)
        .max_lifetime(None)
        .acquire_timeout(Duration::from_secs(10))
        .connect_with(options.clone())
        .await?;
    Ok(SqlStore::with_writer(pool, writes).with_chain_file(chain_file(url, &options)))
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
        .connect_with(options.clone())
        .await?;
    Ok(Some(SqlStore::new(pool).with_chain_file(chain_file(url, &options))))
}

/// The file the walk of the audit chain may read directly: none for an in-memory database or
/// one behind another VFS, whatever file on disk their name also names (`sqlite:x.db?mode=memory`
/// keeps the name `x.db`). Read from the URL as sqlx reads it: the options keep no public
/// record of either, and their own URL cannot be built for an in-memory database.
fn chain_file<'a>(url: &DatabaseUrl, options: &'a SqliteConnectOptions) -> Option<&'a Path> {
    let (database, params) = url.expose().split_once('?').unwrap_or((url.expose(), ""));
    let plain = !database.ends_with(":memory:")
        && url::form_urlencoded::parse(params.as_bytes())
            .all(|(key, value)| key != "vfs" && !(key == "mode" && value == "memory"));
    plain.then(|| options.get_filename())
}

pub async fn migrate(pool: &sqlx::SqlitePool) -> Result<()> {
    sqlx::migrate!("migrations/sqlite").run(pool).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_database_in_a_plain_file_is_read_directly() {
        let file = |url: &str| {
            let options = SqliteConnectOptions::from_str(url).unwrap();
            chain_file(&DatabaseUrl::new(url), &options).map(Path::to_owned)
        };
        assert_eq!(file("sqlite:/data/credgate.db"), Some("/data/credgate.db".into()));
        assert_eq!(
            file("sqlite:/data/credgate.db?mode=rwc"),
            Some("/data/credgate.db".into())
        );
        assert_eq!(file("sqlite:/data/credgate.db?mode=memory"), None);
        assert_eq!(file("sqlite::memory:"), None);
        assert_eq!(file("sqlite://:memory:"), None);
        assert_eq!(file("sqlite:/data/credgate.db?vfs=unix-dotfile"), None);
    }
}
