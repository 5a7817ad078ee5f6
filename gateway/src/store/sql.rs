//! The one implementation of [`Store`], generic over the two SQL engines.
//!
//! Everything here is SQL both SQLite and PostgreSQL accept: `$n` binds, `ON CONFLICT`,
//! partial indexes, BIGINT microsecond times, TEXT ids and JSON. What differs (how a write
//! transaction starts, how audit appends are serialised across processes) is a [`Dialect`].

use std::path::Path;
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde_json::{Map, Value};
use sqlx::{
    ColumnIndex, Database, Decode, Encode, Executor, IntoArguments, Pool, QueryBuilder, Row, Type, TypeInfo, ValueRef,
};
use tracing::instrument;
use uuid::Uuid;

use super::chain_page::ChainPage;
use super::stored_body::{self, Repeated};
use super::{
    AUDIT_KEY_VERSION, AuditQuery, CA_KEY_VERSION, CountQuery, CountRow, GrantFilter, LimitKind, LimitRow, Result,
    SealedVersion, Store, StoreError, StoredAuthority, StoredSigningKey, Subscription, UploadedProvider, counts,
};
use crate::approvals::{Approval, ApprovalStatus, Finished, REQUEST_SEAL, RESPONSE_SEAL};
use crate::audit::{AuditEvent, Checkpoint, GENESIS, JournalBatch, StoredAudit, link_digest};
use crate::clock::{from_micros, to_micros};
use crate::crypto::{KeyCheck, SealedValue};
use crate::vault::api_key::AdminToken;
use crate::vault::session::{PortalSession, SigninAttempt};
use crate::vault::{ApiKey, Grant, GrantPolicy, GrantStatus, Principal, PrincipalKind, SecretMeta};

/// What one SQL engine does differently.
pub trait Dialect: Database + sqlx::database::HasStatementCache {
    const BACKEND: &'static str;
    /// Opens a transaction that will write. SQLite takes its write lock up front
    /// (`BEGIN IMMEDIATE`) so two writers never deadlock upgrading a read lock.
    const BEGIN_WRITE: &'static str;
    /// Run first in a transaction that appends to the audit chain, so appends from several
    /// processes never fork the chain. SQLite needs none: its write lock already serialises.
    const LOCK_AUDIT: Option<&'static str>;
    /// Reads one text field out of an audit record's JSON body: the SQL before and after the
    /// bound path, and the path for `keys` (`["context", "ticket"]`) in the engine's syntax.
    /// Keys are plain words (checked by the caller), so they need no quoting beyond this.
    const BODY_FIELD: (&'static str, &'static str);
    /// Appended to a `SELECT` in a write transaction to hold the rows it read until commit.
    /// SQLite's write transaction holds the whole database already.
    const FOR_UPDATE: &'static str;
    /// Reads a page of the audit chain past the driver's row path ([`super::chain_page`]),
    /// SQLite from `file`: `None` when the page must be read row by row (no file to read, a
    /// value of a type credgate does not write there).
    fn chain_page(
        pool: &Pool<Self>,
        file: Option<&Path>,
        from_seq: i64,
        limit: i64,
        into: ChainPage,
    ) -> impl std::future::Future<Output = Result<Option<ChainPage>>> + Send;
    fn body_path(keys: &[&str]) -> String;
    /// Rows a statement changed (sqlx has no trait for this across engines).
    fn rows_affected(result: &Self::QueryResult) -> u64;
    /// Applies pending migrations.
    fn migrate(pool: &Pool<Self>) -> impl std::future::Future<Output = Result<()>> + Send;
    /// Tells the other processes on this database about a change.
    fn notify(pool: &Pool<Self>, payload: &str) -> impl std::future::Future<Output = Result<()>> + Send;
    /// Listens for other processes' notifications.
    fn subscribe(
        pool: &Pool<Self>,
        name: &str,
    ) -> impl std::future::Future<Output = Result<Option<Box<dyn Subscription>>>> + Send;
}

#[derive(Debug, Clone)]
pub struct SqlStore<DB: Database> {
    pool: Pool<DB>,
    /// Where write transactions run. For SQLite, one connection of its own: the engine takes
    /// one writer at a time anyway, and a connection that wrote last keeps its page cache,
    /// where one picked round-robin from the pool must reload every page another connection
    /// changed (most of the audit writer's cost under load, before this).
    writes: Pool<DB>,
    /// SQLite's database file, where the walk of the audit chain reads its pages directly
    /// ([`super::chain_page`]); `None` for PostgreSQL and an in-memory database.
    chain_file: Option<Arc<Path>>,
}

/// What a text column of an audit record changed by hand to hold something else (a blob, bytes
/// that are no UTF-8) reads as.
const NOT_TEXT: &str = "(not text)";

impl<DB: Database> SqlStore<DB> {
    pub fn new(pool: Pool<DB>) -> Self {
        Self {
            writes: pool.clone(),
            pool,
            chain_file: None,
        }
    }

    pub fn with_writer(pool: Pool<DB>, writes: Pool<DB>) -> Self {
        Self {
            pool,
            writes,
            chain_file: None,
        }
    }

    /// Reads pages of the audit chain from `file` directly, when there is one: the file this
    /// store's SQLite pool opened.
    pub fn with_chain_file(mut self, file: Option<&Path>) -> Self {
        // Resolved now: a relative name would otherwise follow the working directory.
        self.chain_file = file.and_then(|f| std::fs::canonicalize(f).ok()).map(Arc::from);
        self
    }

    pub fn pool(&self) -> &Pool<DB> {
        &self.pool
    }
}

fn uuid(text: &str) -> Result<Uuid> {
    Uuid::parse_str(text).map_err(|_| StoreError::Corrupt(format!("`{text}` is not a UUID")))
}

fn json<T: serde::de::DeserializeOwned>(text: &str, what: &str) -> Result<T> {
    serde_json::from_str(text).map_err(|e| StoreError::Corrupt(format!("{what}: {e}")))
}

/// `text` matched literally inside a `LIKE … ESCAPE '\'` pattern.
fn like_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

fn to_json<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_default()
}

/// Maps a unique-constraint failure to [`StoreError::Conflict`] naming `what`, and a
/// foreign-key failure to [`StoreError::Missing`].
/// A minute, in the trail's microseconds.
const MINUTE_MICROS: i64 = 60_000_000;
/// The most records one chaining statement inserts: 13 binds each, within SQLite's 32,766 and
/// PostgreSQL's 65,535, and a statement the connection keeps prepared stays small.
const CHAIN_ROWS: usize = 256;

fn classify(e: sqlx::Error, what: &str) -> StoreError {
    match e.as_database_error() {
        Some(d) if d.is_unique_violation() => StoreError::Conflict(what.to_owned()),
        Some(d) if d.is_foreign_key_violation() => StoreError::Missing(what.to_owned()),
        _ => StoreError::Database(e),
    }
}

// The bounds below say "this engine can bind and read the handful of types credgate stores".
// They are written out twice (here and on the `Store` impl) because Rust does not carry
// where-clauses from one impl to another.
// `sqlx::query` takes only `&'static str` (its guard against SQL built from input); these
// macros let statements share a column list and stay literals.
macro_rules! secret_columns {
    () => {
        "id, name, slug, secret_type, config, allowed_hosts, allow_private_destinations, allow_insecure_http, \
         redact_responses, credential_fields, current_version, created_at, updated_at, deleted_at"
    };
}
macro_rules! api_key_columns {
    () => {
        "id, principal_id, name, prefix, hash, created_at, expires_at, revoked_at"
    };
}
macro_rules! grant_columns {
    () => {
        "id, secret_id, principal_id, policy, expires_at, created_at, revoked_at, revoked_reason"
    };
}
macro_rules! audit_columns {
    () => {
        "seq, id, at, kind, action, outcome, principal_id, grant_id, secret_id, request_id, user_principal_id, body, hash"
    };
}

impl<DB> SqlStore<DB>
where
    DB: Dialect,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'c> &'c Pool<DB>: Executor<'c, Database = DB>,
    DB::Arguments: IntoArguments<DB> + Default,
    for<'q> i64: Encode<'q, DB> + Decode<'q, DB> + Type<DB>,
    for<'q> bool: Encode<'q, DB> + Decode<'q, DB> + Type<DB>,
    for<'q> String: Encode<'q, DB> + Decode<'q, DB> + Type<DB>,
    for<'q> Vec<u8>: Encode<'q, DB> + Decode<'q, DB> + Type<DB>,
    for<'q> Option<i64>: Encode<'q, DB> + Decode<'q, DB>,
    for<'q> Option<String>: Encode<'q, DB> + Decode<'q, DB>,
    for<'q> Option<Vec<u8>>: Encode<'q, DB> + Decode<'q, DB>,
    for<'q> Uuid: Encode<'q, DB> + Decode<'q, DB> + Type<DB>,
    for<'q> Option<Uuid>: Encode<'q, DB> + Decode<'q, DB>,
    for<'a> &'a str: ColumnIndex<DB::Row>,
{
    /// A transaction that will write, on the writing connection.
    async fn begin_write(&self) -> Result<sqlx::Transaction<'static, DB>> {
        Ok(self.writes.begin_with(DB::BEGIN_WRITE).await?)
    }

    /// Ends a change with its audit record: both commit, or neither.
    async fn commit_with(mut tx: sqlx::Transaction<'static, DB>, audit: &AuditEvent) -> Result<()> {
        Self::append_chain(&mut tx, std::slice::from_ref(audit)).await?;
        tx.commit().await?;
        Ok(())
    }

    /// A UUID column (stored as text).
    fn uuid_at(row: &DB::Row, column: &str) -> Result<Uuid> {
        uuid(&row.try_get::<String, _>(column)?)
    }

    /// A time column (microseconds since the epoch).
    fn time_at(row: &DB::Row, column: &str) -> Result<DateTime<Utc>> {
        Ok(from_micros(row.try_get(column)?))
    }

    fn opt_time_at(row: &DB::Row, column: &str) -> Result<Option<DateTime<Utc>>> {
        Ok(row.try_get::<Option<i64>, _>(column)?.map(from_micros))
    }

    /// Ends a change of one row: when `change` touched it, the audit record joins the
    /// transaction and both commit; when it touched nothing, nothing is written (the
    /// transaction rolls back on drop) and the caller learns `false`.
    async fn commit_if_changed(
        tx: sqlx::Transaction<'static, DB>,
        change: &DB::QueryResult,
        audit: &AuditEvent,
    ) -> Result<bool> {
        if DB::rows_affected(change) == 0 {
            return Ok(false);
        }
        Self::commit_with(tx, audit).await?;
        Ok(true)
    }

    /// Inserts a CA row; with `only_first`, only into an empty table.
    async fn insert_authority(
        conn: &mut DB::Connection,
        ca: &StoredAuthority,
        only_first: bool,
    ) -> Result<DB::QueryResult> {
        let statement = if only_first {
            "INSERT INTO proxy_authorities (id, cert_pem, kek_id, wrapped_key, ciphertext, created_at, activates_at, not_after) \
             SELECT $1, $2, $3, $4, $5, $6, $7, $8 WHERE NOT EXISTS (SELECT 1 FROM proxy_authorities)"
        } else {
            "INSERT INTO proxy_authorities (id, cert_pem, kek_id, wrapped_key, ciphertext, created_at, activates_at, not_after) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
        };
        Ok(sqlx::query::<DB>(statement)
            .bind(ca.id.to_string())
            .bind(ca.cert_pem.clone())
            .bind(ca.sealed_key.kek_id.clone())
            .bind(ca.sealed_key.wrapped_key.clone())
            .bind(ca.sealed_key.ciphertext.clone())
            .bind(to_micros(ca.created_at))
            .bind(to_micros(ca.activates_at))
            .bind(to_micros(ca.not_after))
            .execute(&mut *conn)
            .await?)
    }

    /// Appends `events` to the chain inside the caller's transaction.
    async fn append_chain(conn: &mut DB::Connection, events: &[AuditEvent]) -> Result<()> {
        let bodies: Vec<String> = events.iter().map(AuditEvent::body).collect();
        let chained: Vec<(&AuditEvent, &str)> = events.iter().zip(bodies.iter().map(String::as_str)).collect();
        Self::append_bodies(conn, &chained).await
    }

    /// Chains events whose bodies (the exact bytes hashed and kept) are already serialised.
    async fn append_bodies(conn: &mut DB::Connection, events: &[(&AuditEvent, &str)]) -> Result<()> {
        if events.is_empty() {
            return Ok(());
        }
        if let Some(lock) = DB::LOCK_AUDIT {
            sqlx::query::<DB>(lock).execute(&mut *conn).await?;
        }
        let tail = sqlx::query::<DB>("SELECT seq, hash FROM audit_events ORDER BY seq DESC LIMIT 1")
            .fetch_optional(&mut *conn)
            .await?;
        let (mut seq, mut prev) = match tail {
            Some(row) => (row.try_get::<i64, _>("seq")?, Self::hash_at(&row, "hash")?),
            // Nothing in the table: a new trail, or one whose every record is archived (which
            // archiving never does by itself: it keeps the newest). Either way the chain goes
            // on from the newest checkpoint, never back from the start.
            None => match sqlx::query::<DB>(
                "SELECT last_seq, head_hash FROM audit_checkpoints ORDER BY last_seq DESC LIMIT 1",
            )
            .fetch_optional(&mut *conn)
            .await?
            {
                Some(row) => (
                    row.try_get::<i64, _>("last_seq")?,
                    row.try_get::<String, _>("head_hash")?,
                ),
                None => (0, GENESIS.to_owned()),
            },
        };
        // Each minute's first and last sequence numbers in this batch (for time-range reads).
        let mut minutes: std::collections::BTreeMap<i64, (i64, i64)> = std::collections::BTreeMap::new();
        let mut rest = events;
        while !rest.is_empty() {
            // A statement of a power of two rows, at most `CHAIN_ROWS`, kept prepared on the
            // connection: a batch is a handful of them, and the nine sizes are prepared once
            // per connection instead of a statement of the batch's size compiled every batch.
            let rows = CHAIN_ROWS.min(1 << rest.len().ilog2());
            let (chunk, after) = rest.split_at(rows);
            rest = after;
            let mut qb = QueryBuilder::<DB>::new(
                "INSERT INTO audit_events (seq, id, at, kind, action, outcome, principal_id, grant_id, secret_id, request_id, user_principal_id, body, hash) ",
            );
            qb.push_values(chunk, |mut b, &(e, body)| {
                seq += 1;
                let span = minutes
                    .entry(to_micros(e.at).div_euclid(MINUTE_MICROS))
                    .or_insert((seq, seq));
                span.1 = seq;
                // Kept as 32 bytes; the next record's hash covers it in hex, as it always has.
                let hash = link_digest(&prev, seq, body);
                prev.clear();
                crate::audit::push_hex(&hash, &mut prev);
                // Without the values the columns hold (`stored_body`); every read puts them back.
                let stored = stored_body::shorten(body, &Repeated::of_event(e)).unwrap_or_else(|| body.to_owned());
                b.push_bind(seq)
                    .push_bind(e.id)
                    .push_bind(to_micros(e.at))
                    .push_bind(e.kind.as_str().to_owned())
                    .push_bind(e.action.clone())
                    .push_bind(e.outcome.clone())
                    .push_bind(e.principal_id)
                    .push_bind(e.grant_id)
                    .push_bind(e.secret_id)
                    .push_bind(e.request_id.clone())
                    .push_bind(e.user_principal_id)
                    .push_bind(stored)
                    .push_bind(hash.to_vec());
            });
            qb.build().execute(&mut *conn).await?;
        }
        let mut qb = QueryBuilder::<DB>::new("INSERT INTO audit_minutes (minute, first_seq, last_seq) ");
        qb.push_values(&minutes, |mut b, (minute, (first, last))| {
            b.push_bind(*minute).push_bind(*first).push_bind(*last);
        });
        qb.push(
            " ON CONFLICT (minute) DO UPDATE SET \
             first_seq = CASE WHEN excluded.first_seq < audit_minutes.first_seq THEN excluded.first_seq ELSE audit_minutes.first_seq END, \
             last_seq = CASE WHEN excluded.last_seq > audit_minutes.last_seq THEN excluded.last_seq ELSE audit_minutes.last_seq END",
        );
        qb.build().persistent(false).execute(&mut *conn).await?;
        Ok(())
    }

    /// The sequence numbers a time range's records lie between (`None`: there are none), from
    /// the minutes' spans.
    async fn seq_span(&self, since: Option<i64>, until: Option<i64>) -> Result<Option<(i64, i64)>> {
        let mut qb =
            QueryBuilder::<DB>::new("SELECT MIN(first_seq) AS lo, MAX(last_seq) AS hi FROM audit_minutes WHERE 1 = 1");
        if let Some(since) = since {
            qb.push(" AND minute >= ").push_bind(since.div_euclid(MINUTE_MICROS));
        }
        if let Some(until) = until {
            // `until` is exclusive: its own minute counts only past its first microsecond.
            qb.push(" AND minute <= ")
                .push_bind((until - 1).div_euclid(MINUTE_MICROS));
        }
        let row = qb.build().fetch_one(&self.pool).await?;
        let lo: Option<i64> = row.try_get("lo")?;
        let hi: Option<i64> = row.try_get("hi")?;
        Ok(lo.zip(hi))
    }

    /// Adds a batch's data-plane calls to the rollups ([`crate::store::counts`]), in the
    /// caller's transaction. Rows go in sorted, so two replicas' batches lock them in the same
    /// order.
    async fn count_calls(conn: &mut DB::Connection, events: impl Iterator<Item = &AuditEvent>) -> Result<()> {
        use std::collections::BTreeMap;
        // (grain, bucket, outcome, provider) and (grain, bucket, grant, outcome, provider,
        // principal, secret): the tables' keys, in their column order. Borrowed from the
        // events and spelled only for the rows written: a batch of thousands of calls is a few
        // rows, and spelling each call's keys was most of this step's cost.
        type TotalKey<'e> = (i64, i64, &'e str, &'e str);
        type GrantKey<'e> = (i64, i64, Option<Uuid>, &'e str, &'e str, Option<Uuid>, Option<Uuid>);
        let mut totals: BTreeMap<TotalKey<'_>, i64> = BTreeMap::new();
        let mut grants: BTreeMap<GrantKey<'_>, i64> = BTreeMap::new();
        for e in events {
            if e.kind != crate::audit::AuditKind::Proxy
                || !matches!(e.action.as_str(), "proxy.request" | "proxy.response")
            {
                continue;
            }
            let at = to_micros(e.at);
            let provider = e.provider.as_deref().unwrap_or_default();
            for grain in counts::TOTAL_GRAINS {
                let key = (grain, counts::bucket_of(at, grain), e.outcome.as_str(), provider);
                *totals.entry(key).or_default() += 1;
            }
            for grain in counts::GRANT_GRAINS {
                let key = (
                    grain,
                    counts::bucket_of(at, grain),
                    e.grant_id,
                    e.outcome.as_str(),
                    provider,
                    e.principal_id,
                    e.secret_id,
                );
                *grants.entry(key).or_default() += 1;
            }
        }
        // The tables keep an absent id as ''.
        let id = |v: &Option<Uuid>| v.map(|v| v.to_string()).unwrap_or_default();
        // Under SQLite's 32,766 bound parameters a statement, with room to spare.
        const ROWS: usize = 2_000;
        let totals: Vec<_> = totals.into_iter().collect();
        for chunk in totals.chunks(ROWS) {
            let mut qb = QueryBuilder::<DB>::new("INSERT INTO call_totals (grain, bucket, outcome, provider, calls) ");
            qb.push_values(chunk, |mut b, ((grain, bucket, outcome, provider), calls)| {
                b.push_bind(*grain)
                    .push_bind(*bucket)
                    .push_bind((*outcome).to_owned())
                    .push_bind((*provider).to_owned())
                    .push_bind(*calls);
            });
            qb.push(
                " ON CONFLICT (grain, bucket, outcome, provider) \
                 DO UPDATE SET calls = call_totals.calls + excluded.calls",
            );
            qb.build().persistent(false).execute(&mut *conn).await?;
        }
        let grants: Vec<_> = grants.into_iter().collect();
        for chunk in grants.chunks(ROWS) {
            let mut qb = QueryBuilder::<DB>::new(
                "INSERT INTO call_grants (grain, bucket, grant_id, outcome, provider, principal_id, secret_id, calls) ",
            );
            qb.push_values(
                chunk,
                |mut b, ((grain, bucket, grant, outcome, provider, principal, secret), calls)| {
                    b.push_bind(*grain)
                        .push_bind(*bucket)
                        .push_bind(id(grant))
                        .push_bind((*outcome).to_owned())
                        .push_bind((*provider).to_owned())
                        .push_bind(id(principal))
                        .push_bind(id(secret))
                        .push_bind(*calls);
                },
            );
            qb.push(
                " ON CONFLICT (grain, bucket, grant_id, outcome, provider, principal_id, secret_id) \
                 DO UPDATE SET calls = call_grants.calls + excluded.calls",
            );
            qb.build().persistent(false).execute(&mut *conn).await?;
        }
        Ok(())
    }

    fn principal_row(row: &DB::Row) -> Result<Principal> {
        let kind: String = row.try_get("kind")?;
        Ok(Principal {
            id: Self::uuid_at(row, "id")?,
            kind: PrincipalKind::parse(&kind).ok_or_else(|| StoreError::Corrupt(format!("principal kind `{kind}`")))?,
            name: row.try_get("name")?,
            issuer: row.try_get("issuer")?,
            external_id: row.try_get("external_id")?,
            created_at: Self::time_at(row, "created_at")?,
        })
    }

    fn api_key_row(row: &DB::Row) -> Result<ApiKey> {
        Ok(ApiKey {
            id: Self::uuid_at(row, "id")?,
            principal_id: Self::uuid_at(row, "principal_id")?,
            name: row.try_get("name")?,
            prefix: row.try_get("prefix")?,
            hash: row.try_get("hash")?,
            created_at: Self::time_at(row, "created_at")?,
            expires_at: Self::opt_time_at(row, "expires_at")?,
            revoked_at: Self::opt_time_at(row, "revoked_at")?,
        })
    }

    fn secret_row(row: &DB::Row) -> Result<SecretMeta> {
        Ok(SecretMeta {
            id: Self::uuid_at(row, "id")?,
            name: row.try_get("name")?,
            slug: row.try_get("slug")?,
            secret_type: row.try_get("secret_type")?,
            config: json::<Map<String, Value>>(&row.try_get::<String, _>("config")?, "secret config")?,
            allowed_hosts: json(&row.try_get::<String, _>("allowed_hosts")?, "allowed hosts")?,
            allow_private_destinations: row.try_get("allow_private_destinations")?,
            allow_insecure_http: row.try_get("allow_insecure_http")?,
            redact_responses: row.try_get("redact_responses")?,
            credential_fields: json(&row.try_get::<String, _>("credential_fields")?, "credential fields")?,
            version: row.try_get("current_version")?,
            created_at: Self::time_at(row, "created_at")?,
            updated_at: Self::time_at(row, "updated_at")?,
            deleted_at: Self::opt_time_at(row, "deleted_at")?,
        })
    }

    fn grant_row(row: &DB::Row) -> Result<Grant> {
        let mut policy: GrantPolicy = json(&row.try_get::<String, _>("policy")?, "grant policy")?;
        // The column is the source of truth for expiry (it is what status filters compare).
        policy.expires_at = Self::time_at(row, "expires_at")?;
        Ok(Grant {
            grant_id: Self::uuid_at(row, "id")?,
            secret_id: Self::uuid_at(row, "secret_id")?,
            principal_id: Self::uuid_at(row, "principal_id")?,
            grant_policy: policy,
            created_at: Self::time_at(row, "created_at")?,
            revoked_at: Self::opt_time_at(row, "revoked_at")?,
            revoked_reason: row.try_get("revoked_reason")?,
        })
    }

    /// A record as the database keeps it: ids as 16 bytes, its hash as 32 and its body without
    /// the columns' values, given back as the text the body and the API use (the body whole,
    /// as it was hashed). Its `prev_hash` is not stored (it is the previous record's hash):
    /// the caller fills it in, from that record or [`Self::hash_before`].
    fn audit_row(row: &DB::Row) -> Result<StoredAudit> {
        // Only a row changed by hand holds a value of another type (SQLite does not hold a
        // column to its type). Each reads as a value no record has (the nil id, text that
        // says so, time zero), so the trail still lists (the body put back together parses)
        // and verification names the record, instead of failing to read the trail or, for
        // an id kept as text with its 16 bytes, reading it as the id no filter finds.
        let id = |column: &str| -> Result<Option<String>> {
            if row.try_get_raw(column)?.type_info().name() == "TEXT" {
                return Ok(Some(Uuid::nil().to_string()));
            }
            match row.try_get::<Option<Uuid>, _>(column) {
                Ok(v) => Ok(v.map(|v| v.to_string())),
                Err(sqlx::Error::ColumnDecode { .. }) => Ok(Some(Uuid::nil().to_string())),
                Err(e) => Err(e.into()),
            }
        };
        fn lenient<T>(read: std::result::Result<T, sqlx::Error>, other: impl FnOnce() -> T) -> Result<T> {
            match read {
                Err(sqlx::Error::ColumnDecode { .. }) => Ok(other()),
                read => Ok(read?),
            }
        }
        let text = |column: &str| lenient(row.try_get::<String, _>(column), || NOT_TEXT.to_owned());
        let mut record = StoredAudit {
            seq: row.try_get("seq")?,
            id: id("id")?.unwrap_or_default(),
            at: lenient(row.try_get("at"), || 0)?,
            kind: text("kind")?,
            action: text("action")?,
            outcome: text("outcome")?,
            principal_id: id("principal_id")?,
            grant_id: id("grant_id")?,
            secret_id: id("secret_id")?,
            request_id: lenient(row.try_get("request_id"), || Some(NOT_TEXT.to_owned()))?,
            user_principal_id: id("user_principal_id")?,
            body: String::new(),
            prev_hash: String::new(),
            hash: Self::hash_at(row, "hash")?,
        };
        let body = text("body")?;
        record.body = stored_body::restore(&body, &Repeated::of_row(&record)).unwrap_or(body);
        Ok(record)
    }

    /// A chain hash kept as 32 bytes, as the hex the chain and the API speak. Whatever else a
    /// row changed by hand holds there is given back as its hex too, which no link matches.
    fn hash_at(row: &DB::Row, column: &str) -> Result<String> {
        match row.try_get::<Vec<u8>, _>(column) {
            Ok(bytes) => Ok(crate::audit::to_hex(&bytes)),
            Err(sqlx::Error::ColumnDecode { .. }) => Ok("(not a hash)".to_owned()),
            Err(e) => Err(e.into()),
        }
    }

    /// Up to `limit` records from `from_seq` on, read past the driver's row path
    /// ([`super::chain_page`]); `None` when the page must be read row by row.
    async fn audit_page_direct(&self, from_seq: i64, limit: i64, into: ChainPage) -> Result<Option<ChainPage>> {
        DB::chain_page(&self.pool, self.chain_file.as_deref(), from_seq, limit, into).await
    }

    /// Up to `limit` records from `from_seq` on, a row each.
    async fn audit_page_rows(&self, from_seq: i64, limit: i64) -> Result<Vec<StoredAudit>> {
        let sql = concat!(
            "SELECT ",
            audit_columns!(),
            " FROM audit_events WHERE seq >= $1 ORDER BY seq LIMIT $2"
        );
        let rows = sqlx::query::<DB>(sql)
            .bind(from_seq)
            .bind(limit)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(Self::audit_row).collect()
    }

    /// The hash record `seq` links to: record `seq - 1`'s, or, when that one has left the
    /// database, the head of the checkpoint that archived it; the genesis hash before the
    /// first record. Empty when none of those exists (records deleted outside the archiver,
    /// which verification reports as missing).
    async fn hash_before(&self, seq: i64) -> Result<String> {
        if seq <= 1 {
            return Ok(GENESIS.to_owned());
        }
        let row = sqlx::query::<DB>("SELECT hash FROM audit_events WHERE seq = $1")
            .bind(seq - 1)
            .fetch_optional(&self.pool)
            .await?;
        if let Some(row) = row {
            return Self::hash_at(&row, "hash");
        }
        let row = sqlx::query::<DB>("SELECT head_hash FROM audit_checkpoints WHERE last_seq = $1")
            .bind(seq - 1)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|r| r.try_get("head_hash")).transpose()?.unwrap_or_default())
    }

    /// A sealed value in columns `<prefix>kek_id`, `<prefix>wrapped_key`, `<prefix>ciphertext`,
    /// if there is one.
    fn opt_sealed_at(row: &DB::Row, prefix: &str) -> Result<Option<SealedValue>> {
        let kek_id: Option<String> = row.try_get(format!("{prefix}kek_id").as_str())?;
        let wrapped_key: Option<Vec<u8>> = row.try_get(format!("{prefix}wrapped_key").as_str())?;
        let ciphertext: Option<Vec<u8>> = row.try_get(format!("{prefix}ciphertext").as_str())?;
        Ok(match (kek_id, wrapped_key, ciphertext) {
            (Some(kek_id), Some(wrapped_key), Some(ciphertext)) => Some(SealedValue {
                kek_id,
                wrapped_key,
                ciphertext,
            }),
            _ => None,
        })
    }

    fn approval_row(row: &DB::Row) -> Result<Approval> {
        let status: String = row.try_get("status")?;
        let context: Option<String> = row.try_get("context")?;
        Ok(Approval {
            id: Self::uuid_at(row, "id")?,
            status: ApprovalStatus::parse(&status)
                .ok_or_else(|| StoreError::Corrupt(format!("approval status `{status}`")))?,
            grant_id: Self::uuid_at(row, "grant_id")?,
            secret_id: Self::uuid_at(row, "secret_id")?,
            principal_id: Self::uuid_at(row, "principal_id")?,
            user_principal_id: row
                .try_get::<Option<String>, _>("user_principal_id")?
                .map(|u| Uuid::parse_str(&u).map_err(|_| StoreError::Corrupt("approval user id".into())))
                .transpose()?,
            key_id: Self::uuid_at(row, "key_id")?,
            request_id: row.try_get("request_id")?,
            method: row.try_get("method")?,
            host: row.try_get("host")?,
            path: row.try_get("path")?,
            reason: row.try_get("reason")?,
            context: context.map(|c| json(&c, "approval context")).transpose()?,
            body_bytes: row.try_get("body_bytes")?,
            created_at: Self::time_at(row, "created_at")?,
            expires_at: Self::time_at(row, "expires_at")?,
            ttl_seconds: row.try_get("ttl_seconds")?,
            decided_at: Self::opt_time_at(row, "decided_at")?,
            decided_by: row.try_get("decided_by")?,
            note: row.try_get("note")?,
            finished_at: Self::opt_time_at(row, "finished_at")?,
            failure: row.try_get("failure")?,
            response_status: row
                .try_get::<Option<i64>, _>("response_status")?
                .and_then(|s| u16::try_from(s).ok()),
            request: Self::opt_sealed_at(row, "request_")?,
            response: Self::opt_sealed_at(row, "response_")?,
        })
    }

    fn uploaded_row(row: &DB::Row) -> Result<UploadedProvider> {
        Ok(UploadedProvider {
            id: row.try_get("id")?,
            version: row.try_get("version")?,
            digest: row.try_get("digest")?,
            size: row.try_get("size")?,
            uploaded_at: Self::time_at(row, "uploaded_at")?,
        })
    }

    fn sealed_row(row: &DB::Row) -> Result<SealedValue> {
        let kek_id: Option<String> = row.try_get("kek_id")?;
        let wrapped_key: Option<Vec<u8>> = row.try_get("wrapped_key")?;
        let ciphertext: Option<Vec<u8>> = row.try_get("ciphertext")?;
        match (kek_id, wrapped_key, ciphertext) {
            (Some(kek_id), Some(wrapped_key), Some(ciphertext)) => Ok(SealedValue {
                kek_id,
                wrapped_key,
                ciphertext,
            }),
            _ => Err(StoreError::Corrupt("secret version has no sealed value".into())),
        }
    }
}

// Every store call is a `debug` span named for it. `skip_all`: arguments include sealed
// values, token hashes and audit bodies, none of which belongs in a trace.
#[async_trait]
impl<DB> Store for SqlStore<DB>
where
    DB: Dialect,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'c> &'c Pool<DB>: Executor<'c, Database = DB>,
    DB::Arguments: IntoArguments<DB> + Default,
    for<'q> i64: Encode<'q, DB> + Decode<'q, DB> + Type<DB>,
    for<'q> bool: Encode<'q, DB> + Decode<'q, DB> + Type<DB>,
    for<'q> String: Encode<'q, DB> + Decode<'q, DB> + Type<DB>,
    for<'q> Vec<u8>: Encode<'q, DB> + Decode<'q, DB> + Type<DB>,
    for<'q> Option<i64>: Encode<'q, DB> + Decode<'q, DB>,
    for<'q> Option<String>: Encode<'q, DB> + Decode<'q, DB>,
    for<'q> Option<Vec<u8>>: Encode<'q, DB> + Decode<'q, DB>,
    for<'q> Uuid: Encode<'q, DB> + Decode<'q, DB> + Type<DB>,
    for<'q> Option<Uuid>: Encode<'q, DB> + Decode<'q, DB>,
    for<'a> &'a str: ColumnIndex<DB::Row>,
{
    fn backend(&self) -> &'static str {
        DB::BACKEND
    }

    #[instrument(skip_all, level = "debug")]
    async fn is_initialised(&self) -> Result<bool> {
        // The migrator's own table: present once the schema was ever created.
        match sqlx::query::<DB>("SELECT COUNT(*) AS n FROM _sqlx_migrations")
            .fetch_one(&self.pool)
            .await
        {
            Ok(row) => Ok(row.try_get::<i64, _>("n")? > 0),
            Err(sqlx::Error::Database(_)) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    #[instrument(skip_all, level = "debug")]
    async fn migrate(&self) -> Result<()> {
        DB::migrate(&self.pool).await
    }

    #[instrument(skip_all, level = "debug")]
    async fn close(&self) {
        self.writes.close().await;
        self.pool.close().await;
    }

    #[instrument(skip_all, level = "debug")]
    async fn ping(&self) -> Result<()> {
        sqlx::query::<DB>("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    #[instrument(skip_all, level = "debug")]
    async fn key_checks(&self) -> Result<Vec<KeyCheck>> {
        let rows = sqlx::query::<DB>("SELECT kek_id, sealed FROM key_checks ORDER BY created_at")
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| {
                Ok(KeyCheck {
                    kek_id: r.try_get("kek_id")?,
                    sealed: r.try_get("sealed")?,
                })
            })
            .collect()
    }

    #[instrument(skip_all, level = "debug")]
    async fn insert_key_checks(&self, checks: &[KeyCheck]) -> Result<()> {
        let mut tx = self.begin_write().await?;
        for check in checks {
            sqlx::query::<DB>("INSERT INTO key_checks (kek_id, sealed, created_at) VALUES ($1, $2, $3) ON CONFLICT (kek_id) DO NOTHING")
                .bind(check.kek_id.clone())
                .bind(check.sealed.clone())
                .bind(to_micros(crate::clock::now()))
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    #[instrument(skip_all, level = "debug")]
    async fn kek_usage(&self) -> Result<Vec<(String, i64)>> {
        let rows = sqlx::query::<DB>(
            "SELECT kek_id, COUNT(*) AS n FROM (SELECT kek_id FROM secret_versions WHERE kek_id IS NOT NULL \
             UNION ALL SELECT kek_id FROM proxy_authorities \
             UNION ALL SELECT kek_id FROM audit_signing_keys \
             UNION ALL SELECT request_kek_id AS kek_id FROM approvals WHERE request_kek_id IS NOT NULL \
             UNION ALL SELECT response_kek_id AS kek_id FROM approvals WHERE response_kek_id IS NOT NULL) \
             AS sealed GROUP BY kek_id ORDER BY kek_id",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("kek_id")?, r.try_get("n")?)))
            .collect()
    }

    #[instrument(skip_all, level = "debug")]
    async fn versions_to_rewrap(&self, active_kek: &str, limit: i64) -> Result<Vec<SealedVersion>> {
        let rows = sqlx::query::<DB>(
            "SELECT secret_id, version, kek_id, wrapped_key, ciphertext FROM secret_versions \
             WHERE kek_id IS NOT NULL AND kek_id <> $1 \
             UNION ALL SELECT id AS secret_id, 0 AS version, kek_id, wrapped_key, ciphertext FROM proxy_authorities \
             WHERE kek_id <> $1 \
             UNION ALL SELECT id AS secret_id, -3 AS version, kek_id, wrapped_key, ciphertext FROM audit_signing_keys \
             WHERE kek_id <> $1 \
             UNION ALL SELECT id AS secret_id, -1 AS version, request_kek_id AS kek_id, request_wrapped_key AS wrapped_key, \
             request_ciphertext AS ciphertext FROM approvals WHERE request_kek_id IS NOT NULL AND request_kek_id <> $1 \
             UNION ALL SELECT id AS secret_id, -2 AS version, response_kek_id AS kek_id, response_wrapped_key AS wrapped_key, \
             response_ciphertext AS ciphertext FROM approvals WHERE response_kek_id IS NOT NULL AND response_kek_id <> $1 \
             ORDER BY secret_id, version LIMIT $2",
        )
        .bind(active_kek.to_owned())
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(SealedVersion {
                    secret_id: Self::uuid_at(r, "secret_id")?,
                    version: r.try_get("version")?,
                    sealed: Self::sealed_row(r)?,
                })
            })
            .collect()
    }

    #[instrument(skip_all, level = "debug")]
    async fn replace_wrapped_key(&self, old: &SealedVersion, new: &SealedValue) -> Result<bool> {
        let query = if old.version == CA_KEY_VERSION {
            sqlx::query::<DB>(
                "UPDATE proxy_authorities SET kek_id = $1, wrapped_key = $2 \
                 WHERE id = $3 AND $4 = 0 AND kek_id = $5 AND wrapped_key = $6",
            )
        } else if old.version == AUDIT_KEY_VERSION {
            sqlx::query::<DB>(
                "UPDATE audit_signing_keys SET kek_id = $1, wrapped_key = $2 \
                 WHERE id = $3 AND $4 = -3 AND kek_id = $5 AND wrapped_key = $6",
            )
        } else if old.version == REQUEST_SEAL {
            sqlx::query::<DB>(
                "UPDATE approvals SET request_kek_id = $1, request_wrapped_key = $2 \
                 WHERE id = $3 AND $4 = -1 AND request_kek_id = $5 AND request_wrapped_key = $6",
            )
        } else if old.version == RESPONSE_SEAL {
            sqlx::query::<DB>(
                "UPDATE approvals SET response_kek_id = $1, response_wrapped_key = $2 \
                 WHERE id = $3 AND $4 = -2 AND response_kek_id = $5 AND response_wrapped_key = $6",
            )
        } else {
            sqlx::query::<DB>(
                "UPDATE secret_versions SET kek_id = $1, wrapped_key = $2 \
                 WHERE secret_id = $3 AND version = $4 AND kek_id = $5 AND wrapped_key = $6",
            )
        };
        let done = query
            .bind(new.kek_id.clone())
            .bind(new.wrapped_key.clone())
            .bind(old.secret_id.to_string())
            .bind(old.version)
            .bind(old.sealed.kek_id.clone())
            .bind(old.sealed.wrapped_key.clone())
            .execute(&self.pool)
            .await?;
        Ok(DB::rows_affected(&done) == 1)
    }

    #[instrument(skip_all, level = "debug")]
    async fn proxy_authorities(&self) -> Result<Vec<StoredAuthority>> {
        let rows = sqlx::query::<DB>(
            "SELECT id, cert_pem, kek_id, wrapped_key, ciphertext, created_at, activates_at, not_after \
             FROM proxy_authorities ORDER BY created_at, id",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(StoredAuthority {
                    id: Self::uuid_at(r, "id")?,
                    cert_pem: r.try_get("cert_pem")?,
                    sealed_key: Self::sealed_row(r)?,
                    created_at: Self::time_at(r, "created_at")?,
                    activates_at: Self::time_at(r, "activates_at")?,
                    not_after: Self::time_at(r, "not_after")?,
                })
            })
            .collect()
    }

    #[instrument(skip_all, level = "debug")]
    async fn insert_first_proxy_authority(&self, ca: &StoredAuthority, audit: &AuditEvent) -> Result<bool> {
        let mut tx = self.begin_write().await?;
        let done = Self::insert_authority(&mut tx, ca, true).await?;
        Self::commit_if_changed(tx, &done, audit).await
    }

    #[instrument(skip_all, level = "debug")]
    async fn insert_proxy_authority(&self, ca: &StoredAuthority, audit: &AuditEvent) -> Result<()> {
        let mut tx = self.begin_write().await?;
        Self::insert_authority(&mut tx, ca, false).await?;
        Self::commit_with(tx, audit).await
    }

    #[instrument(skip_all, level = "debug")]
    async fn insert_admin_token(&self, token: &AdminToken, audit: &AuditEvent) -> Result<()> {
        let mut tx = self.begin_write().await?;
        sqlx::query::<DB>(
            "INSERT INTO admin_tokens (id, name, prefix, hash, created_at, revoked_at, scopes) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(token.id.to_string())
        .bind(token.name.clone())
        .bind(token.prefix.clone())
        .bind(token.hash.clone())
        .bind(to_micros(token.created_at))
        .bind(token.revoked_at.map(to_micros))
        .bind(crate::vault::scope::to_text(&token.scopes))
        .execute(&mut *tx)
        .await
        .map_err(|e| classify(e, "an admin token with that prefix"))?;
        Self::commit_with(tx, audit).await?;
        Ok(())
    }

    #[instrument(skip_all, level = "debug")]
    async fn admin_tokens(&self) -> Result<Vec<AdminToken>> {
        let rows = sqlx::query::<DB>("SELECT id, name, scopes, prefix, hash, created_at, revoked_at FROM admin_tokens")
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| {
                Ok(AdminToken {
                    id: Self::uuid_at(r, "id")?,
                    name: r.try_get("name")?,
                    scopes: crate::vault::scope::from_text(&r.try_get::<String, _>("scopes")?),
                    prefix: r.try_get("prefix")?,
                    hash: r.try_get("hash")?,
                    created_at: Self::time_at(r, "created_at")?,
                    revoked_at: Self::opt_time_at(r, "revoked_at")?,
                })
            })
            .collect()
    }

    #[instrument(skip_all, level = "debug")]
    async fn revoke_admin_token(&self, id: Uuid, at: DateTime<Utc>, audit: &AuditEvent) -> Result<bool> {
        let mut tx = self.begin_write().await?;
        let done = sqlx::query::<DB>("UPDATE admin_tokens SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL")
            .bind(id.to_string())
            .bind(to_micros(at))
            .execute(&mut *tx)
            .await?;
        if DB::rows_affected(&done) == 0 {
            return Ok(false);
        }
        Self::commit_with(tx, audit).await?;
        Ok(true)
    }

    #[instrument(skip_all, level = "debug")]
    async fn insert_signin(&self, a: &SigninAttempt) -> Result<()> {
        let mut tx = self.begin_write().await?;
        sqlx::query::<DB>("DELETE FROM signin_attempts WHERE expires_at <= $1")
            .bind(to_micros(crate::clock::now()))
            .execute(&mut *tx)
            .await?;
        sqlx::query::<DB>(
            "INSERT INTO signin_attempts (state_hash, verifier, nonce, expires_at) VALUES ($1, $2, $3, $4)",
        )
        .bind(a.state_hash.clone())
        .bind(a.verifier.clone())
        .bind(a.nonce.clone())
        .bind(to_micros(a.expires_at))
        .execute(&mut *tx)
        .await
        .map_err(|e| classify(e, "a sign-in with that state"))?;
        tx.commit().await?;
        Ok(())
    }

    #[instrument(skip_all, level = "debug")]
    async fn take_signin(&self, state_hash: &str, now: DateTime<Utc>) -> Result<Option<SigninAttempt>> {
        let mut tx = self.begin_write().await?;
        let row = sqlx::query::<DB>(
            "SELECT state_hash, verifier, nonce, expires_at FROM signin_attempts WHERE state_hash = $1",
        )
        .bind(state_hash.to_owned())
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = row else { return Ok(None) };
        let deleted = sqlx::query::<DB>("DELETE FROM signin_attempts WHERE state_hash = $1")
            .bind(state_hash.to_owned())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        // Another replica finished it first.
        if DB::rows_affected(&deleted) == 0 {
            return Ok(None);
        }
        let attempt = SigninAttempt {
            state_hash: row.try_get("state_hash")?,
            verifier: row.try_get("verifier")?,
            nonce: row.try_get("nonce")?,
            expires_at: Self::time_at(&row, "expires_at")?,
        };
        Ok((attempt.expires_at > now).then_some(attempt))
    }

    #[instrument(skip_all, level = "debug")]
    async fn insert_session(&self, session: &PortalSession, audit: &AuditEvent) -> Result<()> {
        let mut tx = self.begin_write().await?;
        sqlx::query::<DB>("DELETE FROM portal_sessions WHERE expires_at <= $1")
            .bind(to_micros(crate::clock::now()))
            .execute(&mut *tx)
            .await?;
        sqlx::query::<DB>(
            "INSERT INTO portal_sessions (id_hash, actor, scopes, created_at, expires_at) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(session.id_hash.clone())
        .bind(session.actor.clone())
        .bind(crate::vault::scope::to_text(&session.scopes))
        .bind(to_micros(session.created_at))
        .bind(to_micros(session.expires_at))
        .execute(&mut *tx)
        .await
        .map_err(|e| classify(e, "a session with that id"))?;
        Self::commit_with(tx, audit).await?;
        Ok(())
    }

    #[instrument(skip_all, level = "debug")]
    async fn portal_session(&self, id_hash: &str, now: DateTime<Utc>) -> Result<Option<PortalSession>> {
        let row = sqlx::query::<DB>(
            "SELECT id_hash, actor, scopes, created_at, expires_at FROM portal_sessions WHERE id_hash = $1 AND expires_at > $2",
        )
        .bind(id_hash.to_owned())
        .bind(to_micros(now))
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| {
            Ok(PortalSession {
                id_hash: r.try_get("id_hash")?,
                actor: r.try_get("actor")?,
                scopes: crate::vault::scope::from_text(&r.try_get::<String, _>("scopes")?),
                created_at: Self::time_at(&r, "created_at")?,
                expires_at: Self::time_at(&r, "expires_at")?,
            })
        })
        .transpose()
    }

    #[instrument(skip_all, level = "debug")]
    async fn portal_sessions(&self, now: DateTime<Utc>) -> Result<Vec<PortalSession>> {
        let rows = sqlx::query::<DB>(
            "SELECT id_hash, actor, scopes, created_at, expires_at FROM portal_sessions WHERE expires_at > $1 \
             ORDER BY created_at DESC, id_hash",
        )
        .bind(to_micros(now))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(PortalSession {
                    id_hash: r.try_get("id_hash")?,
                    actor: r.try_get("actor")?,
                    scopes: crate::vault::scope::from_text(&r.try_get::<String, _>("scopes")?),
                    created_at: Self::time_at(r, "created_at")?,
                    expires_at: Self::time_at(r, "expires_at")?,
                })
            })
            .collect()
    }

    #[instrument(skip_all, level = "debug")]
    async fn delete_session(&self, id_hash: &str, audit: &AuditEvent) -> Result<bool> {
        let mut tx = self.begin_write().await?;
        let deleted = sqlx::query::<DB>("DELETE FROM portal_sessions WHERE id_hash = $1")
            .bind(id_hash.to_owned())
            .execute(&mut *tx)
            .await?;
        Self::commit_if_changed(tx, &deleted, audit).await
    }

    #[instrument(skip_all, level = "debug")]
    async fn insert_principal(&self, p: &Principal, audit: &AuditEvent) -> Result<()> {
        let mut tx = self.begin_write().await?;
        sqlx::query::<DB>(
            "INSERT INTO principals (id, kind, name, issuer, external_id, created_at) VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(p.id.to_string())
        .bind(p.kind.as_str().to_owned())
        .bind(p.name.clone())
        .bind(p.issuer.clone())
        .bind(p.external_id.clone())
        .bind(to_micros(p.created_at))
        .execute(&mut *tx)
        .await
        .map_err(|e| classify(e, "a principal with that name or external id"))?;
        Self::commit_with(tx, audit).await?;
        Ok(())
    }

    #[instrument(skip_all, level = "debug")]
    async fn principal(&self, id: Uuid) -> Result<Option<Principal>> {
        let row =
            sqlx::query::<DB>("SELECT id, kind, name, issuer, external_id, created_at FROM principals WHERE id = $1")
                .bind(id.to_string())
                .fetch_optional(&self.pool)
                .await?;
        row.as_ref().map(Self::principal_row).transpose()
    }

    #[instrument(skip_all, level = "debug")]
    async fn principals(&self) -> Result<Vec<Principal>> {
        let rows = sqlx::query::<DB>(
            "SELECT id, kind, name, issuer, external_id, created_at FROM principals ORDER BY created_at, id",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(Self::principal_row).collect()
    }

    #[instrument(skip_all, level = "debug")]
    async fn principal_by_external(
        &self,
        issuer: &str,
        kind: PrincipalKind,
        external_id: &str,
    ) -> Result<Option<Principal>> {
        let row = sqlx::query::<DB>(
            "SELECT id, kind, name, issuer, external_id, created_at FROM principals \
             WHERE issuer = $1 AND kind = $2 AND external_id = $3",
        )
        .bind(issuer.to_owned())
        .bind(kind.as_str().to_owned())
        .bind(external_id.to_owned())
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(Self::principal_row).transpose()
    }

    #[instrument(skip_all, level = "debug")]
    async fn delete_principal(&self, id: Uuid, at: DateTime<Utc>, audit: &AuditEvent) -> Result<bool> {
        let mut tx = self.begin_write().await?;
        let id = id.to_string();
        sqlx::query::<DB>("DELETE FROM group_members WHERE group_id = $1 OR member_id = $1")
            .bind(id.clone())
            .execute(&mut *tx)
            .await?;
        sqlx::query::<DB>("UPDATE api_keys SET revoked_at = $2 WHERE principal_id = $1 AND revoked_at IS NULL")
            .bind(id.clone())
            .bind(to_micros(at))
            .execute(&mut *tx)
            .await?;
        sqlx::query::<DB>(
            "UPDATE grants SET revoked_at = $2, revoked_reason = 'principal_deleted' WHERE principal_id = $1 AND revoked_at IS NULL",
        )
        .bind(id.clone())
        .bind(to_micros(at))
        .execute(&mut *tx)
        .await?;
        let deleted = sqlx::query::<DB>("DELETE FROM principals WHERE id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        Self::commit_if_changed(tx, &deleted, audit).await
    }

    #[instrument(skip_all, level = "debug")]
    async fn add_member(&self, group: Uuid, member: Uuid, at: DateTime<Utc>, audit: &AuditEvent) -> Result<bool> {
        let mut tx = self.begin_write().await?;
        let added = sqlx::query::<DB>(
            "INSERT INTO group_members (group_id, member_id, created_at) VALUES ($1, $2, $3) ON CONFLICT (group_id, member_id) DO NOTHING",
        )
        .bind(group.to_string())
        .bind(member.to_string())
        .bind(to_micros(at))
        .execute(&mut *tx)
        .await
        .map_err(|e| classify(e, "the group or the member"))?;
        Self::commit_if_changed(tx, &added, audit).await
    }

    #[instrument(skip_all, level = "debug")]
    async fn remove_member(&self, group: Uuid, member: Uuid, audit: &AuditEvent) -> Result<bool> {
        let mut tx = self.begin_write().await?;
        let removed = sqlx::query::<DB>("DELETE FROM group_members WHERE group_id = $1 AND member_id = $2")
            .bind(group.to_string())
            .bind(member.to_string())
            .execute(&mut *tx)
            .await?;
        Self::commit_if_changed(tx, &removed, audit).await
    }

    #[instrument(skip_all, level = "debug")]
    async fn members(&self, group: Uuid) -> Result<Vec<Uuid>> {
        let rows =
            sqlx::query::<DB>("SELECT member_id FROM group_members WHERE group_id = $1 ORDER BY created_at, member_id")
                .bind(group.to_string())
                .fetch_all(&self.pool)
                .await?;
        rows.iter().map(|r| Self::uuid_at(r, "member_id")).collect()
    }

    #[instrument(skip_all, level = "debug")]
    async fn groups_of(&self, member: Uuid) -> Result<Vec<Uuid>> {
        let rows =
            sqlx::query::<DB>("SELECT group_id FROM group_members WHERE member_id = $1 ORDER BY created_at, group_id")
                .bind(member.to_string())
                .fetch_all(&self.pool)
                .await?;
        rows.iter().map(|r| Self::uuid_at(r, "group_id")).collect()
    }

    #[instrument(skip_all, level = "debug")]
    async fn insert_api_key(&self, key: &ApiKey, audit: &AuditEvent) -> Result<()> {
        let mut tx = self.begin_write().await?;
        // The principal must still exist when the key is written (no foreign key: keys
        // outlive their principal as revoked records).
        let exists = sqlx::query::<DB>("SELECT id FROM principals WHERE id = $1")
            .bind(key.principal_id.to_string())
            .fetch_optional(&mut *tx)
            .await?;
        if exists.is_none() {
            return Err(StoreError::Missing("the principal".into()));
        }
        sqlx::query::<DB>(
            "INSERT INTO api_keys (id, principal_id, name, prefix, hash, created_at, expires_at, revoked_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(key.id.to_string())
        .bind(key.principal_id.to_string())
        .bind(key.name.clone())
        .bind(key.prefix.clone())
        .bind(key.hash.clone())
        .bind(to_micros(key.created_at))
        .bind(key.expires_at.map(to_micros))
        .bind(key.revoked_at.map(to_micros))
        .execute(&mut *tx)
        .await
        .map_err(|e| classify(e, "an API key with that prefix"))?;
        Self::commit_with(tx, audit).await?;
        Ok(())
    }

    #[instrument(skip_all, level = "debug")]
    async fn api_key(&self, id: Uuid) -> Result<Option<ApiKey>> {
        let row = sqlx::query::<DB>(concat!("SELECT ", api_key_columns!(), " FROM api_keys WHERE id = $1"))
            .bind(id.to_string())
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(Self::api_key_row).transpose()
    }

    #[instrument(skip_all, level = "debug")]
    async fn api_key_by_prefix(&self, prefix: &str) -> Result<Option<ApiKey>> {
        let row = sqlx::query::<DB>(concat!(
            "SELECT ",
            api_key_columns!(),
            " FROM api_keys WHERE prefix = $1"
        ))
        .bind(prefix.to_owned())
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(Self::api_key_row).transpose()
    }

    #[instrument(skip_all, level = "debug")]
    async fn api_keys(&self, principal: Option<Uuid>) -> Result<Vec<ApiKey>> {
        let rows = sqlx::query::<DB>(concat!(
            "SELECT ",
            api_key_columns!(),
            " FROM api_keys WHERE ($1 IS NULL OR principal_id = $1) ORDER BY created_at, id"
        ))
        .bind(principal.map(|p| p.to_string()))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(Self::api_key_row).collect()
    }

    #[instrument(skip_all, level = "debug")]
    async fn revoke_api_key(&self, id: Uuid, at: DateTime<Utc>, audit: &AuditEvent) -> Result<bool> {
        let mut tx = self.begin_write().await?;
        let done = sqlx::query::<DB>("UPDATE api_keys SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL")
            .bind(id.to_string())
            .bind(to_micros(at))
            .execute(&mut *tx)
            .await?;
        Self::commit_if_changed(tx, &done, audit).await
    }

    #[instrument(skip_all, level = "debug")]
    async fn insert_secret(&self, meta: &SecretMeta, sealed: &SealedValue, audit: &AuditEvent) -> Result<()> {
        let mut tx = self.begin_write().await?;
        sqlx::query::<DB>(
            "INSERT INTO secrets (id, name, slug, secret_type, config, allowed_hosts, allow_private_destinations, allow_insecure_http, \
             redact_responses, credential_fields, current_version, created_at, updated_at, deleted_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, NULL)",
        )
        .bind(meta.id.to_string())
        .bind(meta.name.clone())
        .bind(meta.slug.clone())
        .bind(meta.secret_type.clone())
        .bind(to_json(&meta.config))
        .bind(to_json(&meta.allowed_hosts))
        .bind(meta.allow_private_destinations)
        .bind(meta.allow_insecure_http)
        .bind(meta.redact_responses)
        .bind(to_json(&meta.credential_fields))
        .bind(meta.version)
        .bind(to_micros(meta.created_at))
        .bind(to_micros(meta.updated_at))
        .execute(&mut *tx)
        .await
        .map_err(|e| classify(e, "a secret with that name"))?;
        sqlx::query::<DB>(
            "INSERT INTO secret_versions (secret_id, version, kek_id, wrapped_key, ciphertext, created_at) VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(meta.id.to_string())
        .bind(meta.version)
        .bind(sealed.kek_id.clone())
        .bind(sealed.wrapped_key.clone())
        .bind(sealed.ciphertext.clone())
        .bind(to_micros(meta.created_at))
        .execute(&mut *tx)
        .await?;
        Self::commit_with(tx, audit).await?;
        Ok(())
    }

    #[instrument(skip_all, level = "debug")]
    async fn secret(&self, id: Uuid) -> Result<Option<SecretMeta>> {
        let sql = concat!(
            "SELECT ",
            secret_columns!(),
            " FROM secrets WHERE id = $1 AND deleted_at IS NULL"
        );
        let row = sqlx::query::<DB>(sql)
            .bind(id.to_string())
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(Self::secret_row).transpose()
    }

    #[instrument(skip_all, level = "debug")]
    async fn secrets(&self) -> Result<Vec<SecretMeta>> {
        let sql = concat!(
            "SELECT ",
            secret_columns!(),
            " FROM secrets WHERE deleted_at IS NULL ORDER BY created_at, id"
        );
        let rows = sqlx::query::<DB>(sql).fetch_all(&self.pool).await?;
        rows.iter().map(Self::secret_row).collect()
    }

    #[instrument(skip_all, level = "debug")]
    async fn rotate_secret(
        &self,
        id: Uuid,
        from_version: i64,
        sealed: &SealedValue,
        at: DateTime<Utc>,
        audit: &AuditEvent,
    ) -> Result<bool> {
        let mut tx = self.begin_write().await?;
        let id = id.to_string();
        let moved = sqlx::query::<DB>(
            "UPDATE secrets SET current_version = $2 + 1, updated_at = $3 WHERE id = $1 AND current_version = $2 AND deleted_at IS NULL",
        )
        .bind(id.clone())
        .bind(from_version)
        .bind(to_micros(at))
        .execute(&mut *tx)
        .await?;
        if DB::rows_affected(&moved) == 0 {
            return Ok(false);
        }
        sqlx::query::<DB>(
            "INSERT INTO secret_versions (secret_id, version, kek_id, wrapped_key, ciphertext, created_at) VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(id.clone())
        .bind(from_version + 1)
        .bind(sealed.kek_id.clone())
        .bind(sealed.wrapped_key.clone())
        .bind(sealed.ciphertext.clone())
        .bind(to_micros(at))
        .execute(&mut *tx)
        .await?;
        // The old value is destroyed, not kept: rotation exists to retire a credential.
        sqlx::query::<DB>(
            "UPDATE secret_versions SET kek_id = NULL, wrapped_key = NULL, ciphertext = NULL, destroyed_at = $3 \
             WHERE secret_id = $1 AND version <= $2 AND destroyed_at IS NULL",
        )
        .bind(id.clone())
        .bind(from_version)
        .bind(to_micros(at))
        .execute(&mut *tx)
        .await?;
        // And so is any token minted with it.
        sqlx::query::<DB>("DELETE FROM minted_tokens WHERE secret_id = $1 AND version <= $2")
            .bind(id)
            .bind(from_version)
            .execute(&mut *tx)
            .await?;
        Self::commit_with(tx, audit).await?;
        Ok(true)
    }

    #[instrument(skip_all, level = "debug")]
    async fn live_secret(&self, id: Uuid) -> Result<Option<(SecretMeta, SealedValue)>> {
        let sql = concat!(
            "SELECT s.id, s.name, s.slug, s.secret_type, s.config, s.allowed_hosts, s.allow_private_destinations, ",
            "s.allow_insecure_http, s.redact_responses, s.credential_fields, s.current_version, s.created_at, s.updated_at, s.deleted_at, ",
            "v.kek_id, v.wrapped_key, v.ciphertext FROM secrets s JOIN secret_versions v ",
            "ON v.secret_id = s.id AND v.version = s.current_version ",
            "WHERE s.id = $1 AND s.deleted_at IS NULL AND v.destroyed_at IS NULL"
        );
        let row = sqlx::query::<DB>(sql)
            .bind(id.to_string())
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref()
            .map(|r| Ok((Self::secret_row(r)?, Self::sealed_row(r)?)))
            .transpose()
    }

    #[instrument(skip_all, level = "debug")]
    async fn sealed_value(&self, id: Uuid, version: i64) -> Result<Option<SealedValue>> {
        let row = sqlx::query::<DB>(
            "SELECT kek_id, wrapped_key, ciphertext FROM secret_versions WHERE secret_id = $1 AND version = $2 AND destroyed_at IS NULL",
        )
        .bind(id.to_string())
        .bind(version)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(Self::sealed_row).transpose()
    }

    #[instrument(skip_all, level = "debug")]
    async fn delete_secret(&self, id: Uuid, at: DateTime<Utc>, audit: &AuditEvent) -> Result<bool> {
        let mut tx = self.begin_write().await?;
        let id = id.to_string();
        let at = to_micros(at);
        let done = sqlx::query::<DB>(
            "UPDATE secrets SET deleted_at = $2, updated_at = $2 WHERE id = $1 AND deleted_at IS NULL",
        )
        .bind(id.clone())
        .bind(at)
        .execute(&mut *tx)
        .await?;
        if DB::rows_affected(&done) == 0 {
            return Ok(false);
        }
        sqlx::query::<DB>(
            "UPDATE secret_versions SET kek_id = NULL, wrapped_key = NULL, ciphertext = NULL, destroyed_at = $2 \
             WHERE secret_id = $1 AND destroyed_at IS NULL",
        )
        .bind(id.clone())
        .bind(at)
        .execute(&mut *tx)
        .await?;
        sqlx::query::<DB>(
            "UPDATE grants SET revoked_at = $2, revoked_reason = 'secret_deleted' WHERE secret_id = $1 AND revoked_at IS NULL",
        )
        .bind(id.clone())
        .bind(at)
        .execute(&mut *tx)
        .await?;
        sqlx::query::<DB>("DELETE FROM minted_tokens WHERE secret_id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        Self::commit_with(tx, audit).await?;
        Ok(true)
    }

    #[instrument(skip_all, level = "debug")]
    async fn active_grant_counts(&self, now: DateTime<Utc>) -> Result<Vec<(Uuid, i64)>> {
        let rows = sqlx::query::<DB>(
            "SELECT secret_id, COUNT(*) AS n FROM grants WHERE revoked_at IS NULL AND expires_at > $1 GROUP BY secret_id",
        )
        .bind(to_micros(now))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| Ok((Self::uuid_at(r, "secret_id")?, r.try_get("n")?)))
            .collect()
    }

    #[instrument(skip_all, level = "debug")]
    async fn secret_last_used(&self, secret: Uuid) -> Result<Option<DateTime<Utc>>> {
        // A call the credential went out on is chained once, as `proxy.response`, when it ends.
        let row = sqlx::query::<DB>(
            "SELECT MAX(at) AS at FROM (SELECT at FROM audit_events \
             WHERE secret_id = $1 AND action = 'proxy.response' ORDER BY seq DESC LIMIT 1) AS newest",
        )
        .bind(secret)
        .fetch_one(&self.pool)
        .await?;
        if let Some(at) = Self::opt_time_at(&row, "at")? {
            return Ok(Some(at));
        }
        // Its last use was archived (`--audit-retain-days`): the hour of the last call that
        // went through, from the per-hour counts, which are kept.
        let row = sqlx::query::<DB>(
            "SELECT MAX(bucket) AS at FROM call_grants WHERE secret_id = $1 AND grain = $2 AND outcome = 'ok'",
        )
        .bind(secret.to_string())
        .bind(counts::HOUR_GRAIN)
        .fetch_one(&self.pool)
        .await?;
        Self::opt_time_at(&row, "at")
    }

    #[instrument(skip_all, level = "debug")]
    async fn insert_grant(&self, grant: &Grant, audit: &AuditEvent) -> Result<()> {
        let mut tx = self.begin_write().await?;
        // Both ends must still exist at commit: a grant to a deleted principal or of a
        // deleted secret would be dead on arrival.
        let principal = sqlx::query::<DB>("SELECT id FROM principals WHERE id = $1")
            .bind(grant.principal_id.to_string())
            .fetch_optional(&mut *tx)
            .await?;
        if principal.is_none() {
            return Err(StoreError::Missing("the principal".into()));
        }
        let secret = sqlx::query::<DB>("SELECT id FROM secrets WHERE id = $1 AND deleted_at IS NULL")
            .bind(grant.secret_id.to_string())
            .fetch_optional(&mut *tx)
            .await?;
        if secret.is_none() {
            return Err(StoreError::Missing("the secret".into()));
        }
        sqlx::query::<DB>(
            "INSERT INTO grants (id, secret_id, principal_id, policy, expires_at, created_at, revoked_at, revoked_reason) \
             VALUES ($1, $2, $3, $4, $5, $6, NULL, NULL)",
        )
        .bind(grant.grant_id.to_string())
        .bind(grant.secret_id.to_string())
        .bind(grant.principal_id.to_string())
        .bind(to_json(&grant.grant_policy))
        .bind(to_micros(grant.grant_policy.expires_at))
        .bind(to_micros(grant.created_at))
        .execute(&mut *tx)
        .await
        .map_err(|e| classify(e, "a grant with that id"))?;
        Self::commit_with(tx, audit).await?;
        Ok(())
    }

    #[instrument(skip_all, level = "debug")]
    async fn grant(&self, id: Uuid) -> Result<Option<Grant>> {
        let row = sqlx::query::<DB>(concat!("SELECT ", grant_columns!(), " FROM grants WHERE id = $1"))
            .bind(id.to_string())
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(Self::grant_row).transpose()
    }

    #[instrument(skip_all, level = "debug")]
    async fn grants(&self, filter: &GrantFilter, now: DateTime<Utc>) -> Result<Vec<Grant>> {
        let mut qb = QueryBuilder::<DB>::new(concat!("SELECT ", grant_columns!(), " FROM grants WHERE 1 = 1"));
        if let Some(secret) = filter.secret_id {
            qb.push(" AND secret_id = ").push_bind(secret.to_string());
        }
        if let Some(principal) = filter.principal_id {
            qb.push(" AND principal_id = ").push_bind(principal.to_string());
        }
        match filter.status {
            None => {}
            Some(GrantStatus::Revoked) => {
                qb.push(" AND revoked_at IS NOT NULL");
            }
            Some(GrantStatus::Expired) => {
                qb.push(" AND revoked_at IS NULL AND expires_at <= ")
                    .push_bind(to_micros(now));
            }
            Some(GrantStatus::Active) => {
                qb.push(" AND revoked_at IS NULL AND expires_at > ")
                    .push_bind(to_micros(now));
            }
        }
        qb.push(" ORDER BY created_at, id");
        let rows = qb.build().fetch_all(&self.pool).await?;
        rows.iter().map(Self::grant_row).collect()
    }

    #[instrument(skip_all, level = "debug")]
    async fn revoke_grant(&self, id: Uuid, at: DateTime<Utc>, reason: &str, audit: &AuditEvent) -> Result<bool> {
        let mut tx = self.begin_write().await?;
        let done = sqlx::query::<DB>(
            "UPDATE grants SET revoked_at = $2, revoked_reason = $3 WHERE id = $1 AND revoked_at IS NULL",
        )
        .bind(id.to_string())
        .bind(to_micros(at))
        .bind(reason.to_owned())
        .execute(&mut *tx)
        .await?;
        Self::commit_if_changed(tx, &done, audit).await
    }

    #[instrument(skip_all, level = "debug")]
    async fn update_limit(
        &self,
        grant: Uuid,
        kind: LimitKind,
        change: &mut (dyn FnMut(Option<LimitRow>) -> LimitRow + Send),
    ) -> Result<LimitRow> {
        // Fixed text: the dialect's locking clause only.
        let select = format!(
            "SELECT value, at FROM grant_limits WHERE grant_id = $1 AND kind = $2{}",
            DB::FOR_UPDATE
        );
        // Twice at most: a first write loses only to another replica creating the row, and
        // then the row exists to be locked.
        for _ in 0..2 {
            let mut tx = self.begin_write().await?;
            let found = sqlx::query::<DB>(sqlx::AssertSqlSafe(select.clone()))
                .bind(grant.to_string())
                .bind(kind.as_str().to_owned())
                .fetch_optional(&mut *tx)
                .await?
                .map(|row| -> Result<LimitRow> {
                    Ok(LimitRow {
                        value: row.try_get("value")?,
                        at: row.try_get("at")?,
                    })
                })
                .transpose()?;
            let existed = found.is_some();
            let new = change(found);
            let statement = if existed {
                "UPDATE grant_limits SET value = $3, at = $4 WHERE grant_id = $1 AND kind = $2"
            } else {
                "INSERT INTO grant_limits (grant_id, kind, value, at) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING"
            };
            let written = sqlx::query::<DB>(statement)
                .bind(grant.to_string())
                .bind(kind.as_str().to_owned())
                .bind(new.value)
                .bind(new.at)
                .execute(&mut *tx)
                .await
                .map_err(|e| classify(e, "grant"))?;
            if DB::rows_affected(&written) == 1 {
                tx.commit().await?;
                return Ok(new);
            }
        }
        Err(StoreError::Conflict("the grant's limit row".into()))
    }

    #[instrument(skip_all, level = "debug")]
    async fn limit_row(&self, grant: Uuid, kind: LimitKind) -> Result<Option<LimitRow>> {
        let row = sqlx::query::<DB>("SELECT value, at FROM grant_limits WHERE grant_id = $1 AND kind = $2")
            .bind(grant.to_string())
            .bind(kind.as_str().to_owned())
            .fetch_optional(&self.pool)
            .await?;
        row.map(|row| {
            Ok(LimitRow {
                value: row.try_get("value")?,
                at: row.try_get("at")?,
            })
        })
        .transpose()
    }

    #[instrument(skip_all, level = "debug")]
    async fn minted_token(&self, secret: Uuid, version: i64) -> Result<Option<(SealedValue, i64)>> {
        let row = sqlx::query::<DB>(
            "SELECT kek_id, wrapped_key, ciphertext, expires_at FROM minted_tokens WHERE secret_id = $1 AND version = $2",
        )
        .bind(secret.to_string())
        .bind(version)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|row| Ok((Self::sealed_row(&row)?, row.try_get("expires_at")?)))
            .transpose()
    }

    #[instrument(skip_all, level = "debug")]
    async fn put_minted_token(&self, secret: Uuid, version: i64, sealed: &SealedValue, expires_at: i64) -> Result<()> {
        let mut tx = self.begin_write().await?;
        sqlx::query::<DB>("DELETE FROM minted_tokens WHERE secret_id = $1 AND version < $2")
            .bind(secret.to_string())
            .bind(version)
            .execute(&mut *tx)
            .await?;
        sqlx::query::<DB>(
            "INSERT INTO minted_tokens (secret_id, version, kek_id, wrapped_key, ciphertext, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (secret_id, version) DO UPDATE SET \
             kek_id = excluded.kek_id, wrapped_key = excluded.wrapped_key, ciphertext = excluded.ciphertext, \
             expires_at = excluded.expires_at",
        )
        .bind(secret.to_string())
        .bind(version)
        .bind(sealed.kek_id.clone())
        .bind(sealed.wrapped_key.clone())
        .bind(sealed.ciphertext.clone())
        .bind(expires_at)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    #[instrument(skip_all, level = "debug")]
    async fn lease_minting(&self, secret: Uuid, holder: &str, until: i64, now: i64) -> Result<bool> {
        let done = sqlx::query::<DB>(
            "INSERT INTO mint_leases (secret_id, holder, lease_until) VALUES ($1, $2, $3) \
             ON CONFLICT (secret_id) DO UPDATE SET holder = excluded.holder, lease_until = excluded.lease_until \
             WHERE mint_leases.lease_until < $4 OR mint_leases.holder = excluded.holder",
        )
        .bind(secret.to_string())
        .bind(holder.to_owned())
        .bind(until)
        .bind(now)
        .execute(&self.writes)
        .await?;
        Ok(DB::rows_affected(&done) == 1)
    }

    #[instrument(skip_all, level = "debug")]
    async fn release_minting(&self, secret: Uuid, holder: &str) -> Result<()> {
        sqlx::query::<DB>("DELETE FROM mint_leases WHERE secret_id = $1 AND holder = $2")
            .bind(secret.to_string())
            .bind(holder.to_owned())
            .execute(&self.writes)
            .await?;
        Ok(())
    }

    #[instrument(skip_all, level = "debug")]
    async fn insert_approval(&self, a: &Approval) -> Result<()> {
        let (kek_id, wrapped_key, ciphertext) = match &a.request {
            Some(s) => (
                Some(s.kek_id.clone()),
                Some(s.wrapped_key.clone()),
                Some(s.ciphertext.clone()),
            ),
            None => (None, None, None),
        };
        sqlx::query::<DB>(
            "INSERT INTO approvals (id, status, grant_id, secret_id, principal_id, key_id, request_id, method, host, path, \
             reason, context, body_bytes, created_at, expires_at, ttl_seconds, request_kek_id, request_wrapped_key, \
             request_ciphertext, user_principal_id) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20)",
        )
        .bind(a.id.to_string())
        .bind(a.status.as_str().to_owned())
        .bind(a.grant_id.to_string())
        .bind(a.secret_id.to_string())
        .bind(a.principal_id.to_string())
        .bind(a.key_id.to_string())
        .bind(a.request_id.clone())
        .bind(a.method.clone())
        .bind(a.host.clone())
        .bind(a.path.clone())
        .bind(a.reason.clone())
        .bind(a.context.as_ref().map(to_json))
        .bind(a.body_bytes)
        .bind(to_micros(a.created_at))
        .bind(to_micros(a.expires_at))
        .bind(a.ttl_seconds)
        .bind(kek_id)
        .bind(wrapped_key)
        .bind(ciphertext)
        .bind(a.user_principal_id.map(|u| u.to_string()))
        .execute(&self.writes)
        .await
        .map_err(|e| classify(e, "approval"))?;
        Ok(())
    }

    #[instrument(skip_all, level = "debug")]
    async fn approval(&self, id: Uuid) -> Result<Option<Approval>> {
        sqlx::query::<DB>("SELECT * FROM approvals WHERE id = $1")
            .bind(id.to_string())
            .fetch_optional(&self.pool)
            .await?
            .map(|row| Self::approval_row(&row))
            .transpose()
    }

    #[instrument(skip_all, level = "debug")]
    async fn approvals(&self, status: Option<ApprovalStatus>, limit: i64) -> Result<Vec<Approval>> {
        let mut qb = QueryBuilder::<DB>::new("SELECT * FROM approvals");
        if let Some(status) = status {
            qb.push(" WHERE status = ").push_bind(status.as_str().to_owned());
        }
        qb.push(" ORDER BY created_at DESC, id LIMIT ").push_bind(limit);
        let rows = qb.build().fetch_all(&self.pool).await?;
        rows.iter().map(Self::approval_row).collect()
    }

    #[instrument(skip_all, level = "debug")]
    async fn decide_approval(
        &self,
        id: Uuid,
        to: ApprovalStatus,
        by: &str,
        note: Option<&str>,
        at: DateTime<Utc>,
        audit: &AuditEvent,
    ) -> Result<bool> {
        let mut tx = self.begin_write().await?;
        // A denied call's request is of no more use: dropped with the decision.
        let drop_request = if to == ApprovalStatus::Denied {
            ", request_kek_id = NULL, request_wrapped_key = NULL, request_ciphertext = NULL"
        } else {
            ""
        };
        // Both texts are fixed here: nothing in them comes from a request.
        let changed = sqlx::query::<DB>(sqlx::AssertSqlSafe(format!(
            "UPDATE approvals SET status = $1, decided_by = $2, note = $3, decided_at = $4{drop_request} \
             WHERE id = $5 AND status = 'pending' AND expires_at > $4"
        )))
        .bind(to.as_str().to_owned())
        .bind(by.to_owned())
        .bind(note.map(str::to_owned))
        .bind(to_micros(at))
        .bind(id.to_string())
        .execute(&mut *tx)
        .await?;
        Self::commit_if_changed(tx, &changed, audit).await
    }

    #[instrument(skip_all, level = "debug")]
    async fn finish_approval(&self, id: Uuid, f: &Finished) -> Result<bool> {
        let (kek_id, wrapped_key, ciphertext) = match &f.response {
            Some(s) => (
                Some(s.kek_id.clone()),
                Some(s.wrapped_key.clone()),
                Some(s.ciphertext.clone()),
            ),
            None => (None, None, None),
        };
        let done = sqlx::query::<DB>(
            "UPDATE approvals SET status = $1, finished_at = $2, expires_at = $3, response_status = $4, \
             response_kek_id = $5, response_wrapped_key = $6, response_ciphertext = $7, failure = $8, \
             request_kek_id = NULL, request_wrapped_key = NULL, request_ciphertext = NULL \
             WHERE id = $9 AND status = 'executing'",
        )
        .bind(f.status.as_str().to_owned())
        .bind(to_micros(f.at))
        .bind(to_micros(f.keep_until))
        .bind(f.response_status.map(i64::from))
        .bind(kek_id)
        .bind(wrapped_key)
        .bind(ciphertext)
        .bind(f.failure.clone())
        .bind(id.to_string())
        .execute(&self.writes)
        .await?;
        Ok(DB::rows_affected(&done) == 1)
    }

    #[instrument(skip_all, level = "debug")]
    async fn sweep_approvals(&self, now: DateTime<Utc>, stale: DateTime<Utc>) -> Result<Vec<Approval>> {
        let mut tx = self.begin_write().await?;
        // Locked as read: with several replicas sweeping at once, each approval is reported by
        // the one that changes it, and one approved meanwhile is not reported as expired.
        let ended = sqlx::query::<DB>(sqlx::AssertSqlSafe(format!(
            "SELECT * FROM approvals WHERE (status = 'pending' AND expires_at <= $1) \
             OR (status = 'executing' AND decided_at < $2){}",
            DB::FOR_UPDATE
        )))
        .bind(to_micros(now))
        .bind(to_micros(stale))
        .fetch_all(&mut *tx)
        .await?
        .iter()
        .map(Self::approval_row)
        .collect::<Result<Vec<_>>>()?;
        sqlx::query::<DB>(
            "UPDATE approvals SET status = 'expired', request_kek_id = NULL, request_wrapped_key = NULL, \
             request_ciphertext = NULL WHERE status = 'pending' AND expires_at <= $1",
        )
        .bind(to_micros(now))
        .execute(&mut *tx)
        .await?;
        sqlx::query::<DB>(
            "UPDATE approvals SET status = 'failed', finished_at = $1, \
             failure = 'interrupted: the replica making the call stopped; whether it reached the upstream is unknown', \
             request_kek_id = NULL, request_wrapped_key = NULL, request_ciphertext = NULL \
             WHERE status = 'executing' AND decided_at < $2",
        )
        .bind(to_micros(now))
        .bind(to_micros(stale))
        .execute(&mut *tx)
        .await?;
        sqlx::query::<DB>(
            "UPDATE approvals SET response_kek_id = NULL, response_wrapped_key = NULL, response_ciphertext = NULL \
             WHERE response_kek_id IS NOT NULL AND expires_at <= $1",
        )
        .bind(to_micros(now))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(ended)
    }

    #[instrument(skip_all, level = "debug")]
    async fn pending_approvals(&self, now: DateTime<Utc>) -> Result<i64> {
        let row = sqlx::query::<DB>("SELECT COUNT(*) AS n FROM approvals WHERE status = 'pending' AND expires_at > $1")
            .bind(to_micros(now))
            .fetch_one(&self.pool)
            .await?;
        Ok(row.try_get("n")?)
    }

    #[instrument(skip_all, level = "debug")]
    async fn append_audit(&self, events: &[AuditEvent]) -> Result<()> {
        let mut tx = self.begin_write().await?;
        Self::append_chain(&mut tx, events).await?;
        tx.commit().await?;
        Ok(())
    }

    #[instrument(skip_all, level = "debug")]
    async fn index_journal(&self, batch: &JournalBatch, progress: Option<(&str, i64)>) -> Result<()> {
        let mut tx = self.begin_write().await?;
        if let Some((segment, indexed_bytes)) = progress {
            // A retry after a commit whose answer was lost (the connection dropped) finds its
            // batch already indexed: batches are whole and in order, so progress says so.
            let done = sqlx::query::<DB>("SELECT indexed_bytes FROM audit_journal WHERE segment = $1")
                .bind(segment.to_owned())
                .fetch_optional(&mut *tx)
                .await?
                .map(|r| r.try_get::<i64, _>("indexed_bytes"))
                .transpose()?;
            if done.is_some_and(|done| done >= indexed_bytes) {
                return Ok(());
            }
        }
        let chained: Vec<(&AuditEvent, &str)> = batch.events.iter().map(|e| (&e.event, e.body.as_str())).collect();
        Self::append_bodies(&mut tx, &chained).await?;
        Self::count_calls(&mut tx, batch.events.iter().map(|e| &e.event)).await?;
        if !batch.opened.is_empty() {
            let mut qb = QueryBuilder::<DB>::new("INSERT INTO audit_open_calls (id, journal, body) ");
            qb.push_values(&batch.opened, |mut b, (id, body)| {
                b.push_bind(id.to_string())
                    .push_bind(batch.journal.clone())
                    .push_bind(body.clone());
            });
            // A retried batch whose first attempt committed was caught above; this keeps a
            // recovery that stopped halfway from failing on the rows it already wrote.
            qb.push(" ON CONFLICT (id) DO NOTHING");
            qb.build().persistent(false).execute(&mut *tx).await?;
        }
        if !batch.closed.is_empty() {
            let mut qb = QueryBuilder::<DB>::new("DELETE FROM audit_open_calls WHERE id IN (");
            let mut ids = qb.separated(", ");
            for id in &batch.closed {
                ids.push_bind(id.to_string());
            }
            qb.push(")");
            qb.build().persistent(false).execute(&mut *tx).await?;
        }
        if let Some((segment, indexed_bytes)) = progress {
            sqlx::query::<DB>(
                "INSERT INTO audit_journal (segment, indexed_bytes) VALUES ($1, $2) \
                 ON CONFLICT (segment) DO UPDATE SET indexed_bytes = excluded.indexed_bytes",
            )
            .bind(segment.to_owned())
            .bind(indexed_bytes)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    #[instrument(skip_all, level = "debug")]
    async fn open_calls(&self, journal: &str) -> Result<Vec<(Uuid, String)>> {
        let rows = sqlx::query::<DB>("SELECT id, body FROM audit_open_calls WHERE journal = $1 ORDER BY id")
            .bind(journal.to_owned())
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| Ok((Self::uuid_at(r, "id")?, r.try_get("body")?)))
            .collect()
    }

    #[instrument(skip_all, level = "debug")]
    async fn journal_indexed(&self, segment: &str) -> Result<Option<i64>> {
        let row = sqlx::query::<DB>("SELECT indexed_bytes FROM audit_journal WHERE segment = $1")
            .bind(segment.to_owned())
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|r| r.try_get("indexed_bytes")).transpose()?)
    }

    #[instrument(skip_all, level = "debug")]
    async fn forget_journal_segment(&self, segment: &str) -> Result<()> {
        sqlx::query::<DB>("DELETE FROM audit_journal WHERE segment = $1")
            .bind(segment.to_owned())
            .execute(&self.writes)
            .await?;
        Ok(())
    }

    #[instrument(skip_all, level = "debug")]
    async fn uploaded_providers(&self) -> Result<Vec<UploadedProvider>> {
        let rows =
            sqlx::query::<DB>("SELECT id, version, digest, size, uploaded_at FROM uploaded_providers ORDER BY id")
                .fetch_all(&self.pool)
                .await?;
        rows.iter().map(Self::uploaded_row).collect()
    }

    #[instrument(skip_all, level = "debug")]
    async fn uploaded_component(&self, id: &str) -> Result<Option<(UploadedProvider, Vec<u8>)>> {
        let row = sqlx::query::<DB>(
            "SELECT id, version, digest, size, uploaded_at, component FROM uploaded_providers WHERE id = $1",
        )
        .bind(id.to_owned())
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref()
            .map(|r| Ok((Self::uploaded_row(r)?, r.try_get("component")?)))
            .transpose()
    }

    #[instrument(skip_all, level = "debug")]
    async fn put_uploaded_provider(&self, meta: &UploadedProvider, component: &[u8], audit: &AuditEvent) -> Result<()> {
        let mut tx = self.begin_write().await?;
        sqlx::query::<DB>(
            "INSERT INTO uploaded_providers (id, version, digest, component, size, uploaded_at) VALUES ($1, $2, $3, $4, $5, $6) \
             ON CONFLICT (id) DO UPDATE SET version = excluded.version, digest = excluded.digest, component = excluded.component, \
             size = excluded.size, uploaded_at = excluded.uploaded_at",
        )
        .bind(meta.id.clone())
        .bind(meta.version.clone())
        .bind(meta.digest.clone())
        .bind(component.to_vec())
        .bind(meta.size)
        .bind(to_micros(meta.uploaded_at))
        .execute(&mut *tx)
        .await?;
        Self::commit_with(tx, audit).await?;
        Ok(())
    }

    #[instrument(skip_all, level = "debug")]
    async fn delete_uploaded_provider(&self, id: &str, audit: &AuditEvent) -> Result<bool> {
        let mut tx = self.begin_write().await?;
        let done = sqlx::query::<DB>("DELETE FROM uploaded_providers WHERE id = $1")
            .bind(id.to_owned())
            .execute(&mut *tx)
            .await?;
        Self::commit_if_changed(tx, &done, audit).await
    }

    #[instrument(skip_all, level = "debug")]
    async fn disabled_providers(&self) -> Result<Vec<String>> {
        let rows = sqlx::query::<DB>("SELECT id FROM disabled_providers ORDER BY id")
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(|r| Ok(r.try_get("id")?)).collect()
    }

    #[instrument(skip_all, level = "debug")]
    async fn set_provider_disabled(
        &self,
        id: &str,
        disabled: bool,
        at: DateTime<Utc>,
        audit: &AuditEvent,
    ) -> Result<bool> {
        let mut tx = self.begin_write().await?;
        let done = if disabled {
            sqlx::query::<DB>(
                "INSERT INTO disabled_providers (id, disabled_at) VALUES ($1, $2) ON CONFLICT (id) DO NOTHING",
            )
            .bind(id.to_owned())
            .bind(to_micros(at))
            .execute(&mut *tx)
            .await?
        } else {
            sqlx::query::<DB>("DELETE FROM disabled_providers WHERE id = $1")
                .bind(id.to_owned())
                .execute(&mut *tx)
                .await?
        };
        Self::commit_if_changed(tx, &done, audit).await
    }

    #[instrument(skip_all, level = "debug")]
    async fn secrets_of_type(&self, secret_type: &str) -> Result<i64> {
        let row = sqlx::query::<DB>("SELECT COUNT(*) AS n FROM secrets WHERE secret_type = $1 AND deleted_at IS NULL")
            .bind(secret_type.to_owned())
            .fetch_one(&self.pool)
            .await?;
        Ok(row.try_get("n")?)
    }

    #[instrument(skip_all, level = "debug")]
    async fn notify(&self, payload: &str) -> Result<()> {
        DB::notify(&self.pool, payload).await
    }

    #[instrument(skip_all, level = "debug")]
    async fn subscribe(&self, name: &str) -> Result<Option<Box<dyn Subscription>>> {
        DB::subscribe(&self.pool, name).await
    }

    #[instrument(skip_all, level = "debug")]
    async fn audit_events(&self, q: &AuditQuery) -> Result<Vec<StoredAudit>> {
        let mut qb = QueryBuilder::<DB>::new(concat!(
            "SELECT e.*, p.hash AS prev FROM (SELECT ",
            audit_columns!(),
            " FROM audit_events WHERE 1 = 1"
        ));
        let (since, until) = (q.since.map(to_micros), q.until.map(to_micros));
        if since.is_some() || until.is_some() {
            // The range as sequence numbers, walked newest first; `at + 0` keeps the planner
            // off the time index, which would read every record in the range and sort them.
            let Some((lo, hi)) = self.seq_span(since, until).await? else {
                return Ok(Vec::new());
            };
            qb.push(" AND seq >= ").push_bind(lo);
            qb.push(" AND seq <= ").push_bind(hi);
            if let Some(since) = since {
                qb.push(" AND at + 0 >= ").push_bind(since);
            }
            if let Some(until) = until {
                qb.push(" AND at + 0 < ").push_bind(until);
            }
        }
        for (column, value) in [
            ("principal_id", q.principal_id),
            ("grant_id", q.grant_id),
            ("secret_id", q.secret_id),
            ("user_principal_id", q.user_principal_id),
        ] {
            if let Some(value) = value {
                qb.push(format_args!(" AND {column} = ")).push_bind(value);
            }
        }
        for (column, value) in [
            ("outcome", q.outcome.clone()),
            ("kind", q.kind.map(|k| k.as_str().to_owned())),
            ("action", q.action.clone()),
            ("request_id", q.request_id.clone()),
        ] {
            if let Some(value) = value {
                qb.push(format_args!(" AND {column} = ")).push_bind(value);
            }
        }
        // Reason and context are read from the hashed body itself: no copy of them exists that
        // could disagree with what the chain covers.
        let (open, close) = DB::BODY_FIELD;
        if let Some(needle) = &q.reason {
            // Both sides lowered by the engine, so they are folded alike (ASCII on SQLite).
            let pattern = format!("%{}%", like_escape(needle));
            qb.push(format_args!(" AND lower({open}"))
                .push_bind(DB::body_path(&["reason"]))
                .push(format_args!("{close}) LIKE lower("))
                .push_bind(pattern)
                .push(") ESCAPE '\\'");
        }
        for (key, value) in &q.context {
            qb.push(format_args!(" AND {open}"))
                .push_bind(DB::body_path(&["context", key]))
                .push(format_args!("{close} = "))
                .push_bind(value.clone());
        }
        if let Some(before) = q.before_seq {
            qb.push(" AND seq < ").push_bind(before);
        }
        // Each record's `prev_hash` is its predecessor's hash: one primary-key lookup each.
        qb.push(" ORDER BY seq DESC LIMIT ")
            .push_bind(q.limit)
            .push(") e LEFT JOIN audit_events p ON p.seq = e.seq - 1 ORDER BY e.seq DESC");
        let rows = qb.build().fetch_all(&self.pool).await?;
        let mut records = Vec::with_capacity(rows.len());
        for row in &rows {
            let mut record = Self::audit_row(row)?;
            record.prev_hash = match row.try_get::<Option<Vec<u8>>, _>("prev")? {
                Some(bytes) => hex::encode(bytes),
                None => self.hash_before(record.seq).await?,
            };
            records.push(record);
        }
        Ok(records)
    }

    #[instrument(skip_all, level = "debug")]
    async fn call_counts(&self, q: &CountQuery) -> Result<Vec<CountRow>> {
        let rollup = q.rollup().map_err(StoreError::Config)?;
        let size = q.bucket_seconds * 1_000_000;
        let column = q.by.column();
        let table = if rollup.per_grant { "call_grants" } else { "call_totals" };
        let mut qb = QueryBuilder::<DB>::new("SELECT (bucket / ");
        // Fixed text: a column and a table name from the enums above.
        qb.push_bind(size)
            .push(") * ")
            .push_bind(size)
            .push(format_args!(
                " AS b, {column} AS k, CAST(SUM(calls) AS BIGINT) AS n FROM {table} WHERE grain = "
            ))
            .push_bind(rollup.grain)
            .push(" AND bucket >= ")
            .push_bind(to_micros(rollup.from))
            .push(" AND bucket < ")
            .push_bind(to_micros(rollup.to));
        for (column, value) in [
            ("grant_id", q.grant_id),
            ("secret_id", q.secret_id),
            ("principal_id", q.principal_id),
        ] {
            if let Some(value) = value {
                qb.push(format_args!(" AND {column} = ")).push_bind(value.to_string());
            }
        }
        qb.push(" GROUP BY b, k ORDER BY b, k");
        let rows = qb.build().fetch_all(&self.pool).await?;
        rows.iter()
            .map(|r| {
                Ok(CountRow {
                    bucket: from_micros(r.try_get("b")?),
                    key: r.try_get("k")?,
                    calls: r.try_get("n")?,
                })
            })
            .collect()
    }

    #[instrument(skip_all, level = "debug")]
    async fn audit_chain(&self, after_seq: i64, limit: i64) -> Result<Vec<StoredAudit>> {
        Ok(self
            .audit_chain_page(after_seq, limit, ChainPage::default())
            .await?
            .to_records())
    }

    #[instrument(skip_all, level = "debug")]
    async fn audit_chain_page(&self, after_seq: i64, limit: i64, into: ChainPage) -> Result<ChainPage> {
        // From record `after_seq` itself when it is still here: its hash is the first
        // record's `prev_hash`.
        let read = limit.saturating_add(1);
        let mut page = match self.audit_page_direct(after_seq, read, into).await? {
            Some(page) => page,
            None => ChainPage::of_records(&self.audit_page_rows(after_seq, read).await?),
        };
        for i in page.link(after_seq, usize::try_from(limit).unwrap_or(0)) {
            let hash = self.hash_before(page.seq(i)).await?;
            page.set_prev_hash(i, &hash);
        }
        Ok(page)
    }

    #[instrument(skip_all, level = "debug")]
    async fn take_archive_lease(&self, holder: Uuid, now: DateTime<Utc>, until: DateTime<Utc>) -> Result<bool> {
        let done = sqlx::query::<DB>(
            "INSERT INTO audit_archiver (id, holder, until) VALUES (1, $1, $2) \
             ON CONFLICT (id) DO UPDATE SET holder = excluded.holder, until = excluded.until \
             WHERE audit_archiver.holder = excluded.holder OR audit_archiver.until < $3",
        )
        .bind(holder.to_string())
        .bind(to_micros(until))
        .bind(to_micros(now))
        .execute(&self.writes)
        .await?;
        Ok(DB::rows_affected(&done) == 1)
    }

    #[instrument(skip_all, level = "debug")]
    async fn release_archive_lease(&self, holder: Uuid) -> Result<()> {
        sqlx::query::<DB>("DELETE FROM audit_archiver WHERE holder = $1")
            .bind(holder.to_string())
            .execute(&self.writes)
            .await?;
        Ok(())
    }

    #[instrument(skip_all, level = "debug")]
    async fn archive_lease_until(&self) -> Result<Option<DateTime<Utc>>> {
        let row = sqlx::query::<DB>("SELECT until FROM audit_archiver WHERE id = 1")
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| Ok(from_micros(r.try_get("until")?))).transpose()
    }

    #[instrument(skip_all, level = "debug")]
    async fn audit_signing_key(&self) -> Result<Option<StoredSigningKey>> {
        let row = sqlx::query::<DB>(
            "SELECT id, public_key, kek_id, wrapped_key, ciphertext, created_at FROM audit_signing_keys \
             ORDER BY created_at, id LIMIT 1",
        )
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| {
            Ok(StoredSigningKey {
                id: Self::uuid_at(&r, "id")?,
                public_key: r.try_get("public_key")?,
                sealed: Self::sealed_row(&r)?,
                created_at: Self::time_at(&r, "created_at")?,
            })
        })
        .transpose()
    }

    #[instrument(skip_all, level = "debug")]
    async fn insert_audit_signing_key(&self, key: &StoredSigningKey, audit: &AuditEvent) -> Result<bool> {
        let mut tx = self.begin_write().await?;
        let done = sqlx::query::<DB>(
            "INSERT INTO audit_signing_keys (id, public_key, kek_id, wrapped_key, ciphertext, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
        )
        .bind(key.id.to_string())
        .bind(key.public_key.clone())
        .bind(key.sealed.kek_id.clone())
        .bind(key.sealed.wrapped_key.clone())
        .bind(key.sealed.ciphertext.clone())
        .bind(to_micros(key.created_at))
        .execute(&mut *tx)
        .await?;
        Self::commit_if_changed(tx, &done, audit).await
    }

    #[instrument(skip_all, level = "debug")]
    async fn audit_checkpoints(&self) -> Result<Vec<Checkpoint>> {
        let rows = sqlx::query::<DB>(
            "SELECT period, first_seq, last_seq, first_prev_hash, head_hash, records, first_at, last_at, file, \
             file_sha256, file_bytes, created_at, key_id, signature FROM audit_checkpoints ORDER BY first_seq",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(Checkpoint {
                    period: r.try_get("period")?,
                    first_seq: r.try_get("first_seq")?,
                    last_seq: r.try_get("last_seq")?,
                    first_prev_hash: r.try_get("first_prev_hash")?,
                    head_hash: r.try_get("head_hash")?,
                    records: r.try_get("records")?,
                    first_at: Self::time_at(r, "first_at")?,
                    last_at: Self::time_at(r, "last_at")?,
                    file: r.try_get("file")?,
                    file_sha256: r.try_get("file_sha256")?,
                    file_bytes: r.try_get("file_bytes")?,
                    created_at: Self::time_at(r, "created_at")?,
                    key_id: r.try_get("key_id")?,
                    signature: r.try_get("signature")?,
                })
            })
            .collect()
    }

    #[instrument(skip_all, level = "debug")]
    async fn insert_audit_checkpoint(&self, c: &Checkpoint, audit: &AuditEvent) -> Result<()> {
        let mut tx = self.begin_write().await?;
        sqlx::query::<DB>(
            "INSERT INTO audit_checkpoints (period, first_seq, last_seq, first_prev_hash, head_hash, records, \
             first_at, last_at, file, file_sha256, file_bytes, created_at, key_id, signature) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
        )
        .bind(c.period.clone())
        .bind(c.first_seq)
        .bind(c.last_seq)
        .bind(c.first_prev_hash.clone())
        .bind(c.head_hash.clone())
        .bind(c.records)
        .bind(to_micros(c.first_at))
        .bind(to_micros(c.last_at))
        .bind(c.file.clone())
        .bind(c.file_sha256.clone())
        .bind(c.file_bytes)
        .bind(to_micros(c.created_at))
        .bind(c.key_id.clone())
        .bind(c.signature.clone())
        .execute(&mut *tx)
        .await
        .map_err(|e| classify(e, "a checkpoint for that span"))?;
        Self::commit_with(tx, audit).await
    }

    #[instrument(skip_all, level = "debug")]
    async fn audit_head(&self) -> Result<Option<(i64, String)>> {
        let row = sqlx::query::<DB>("SELECT seq, hash FROM audit_events ORDER BY seq DESC LIMIT 1")
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| Ok((r.try_get("seq")?, Self::hash_at(&r, "hash")?)))
            .transpose()
    }

    #[instrument(skip_all, level = "debug")]
    async fn audit_minute_after(&self, seq: i64) -> Result<Option<i64>> {
        let row = sqlx::query::<DB>("SELECT MIN(minute) AS m FROM audit_minutes WHERE last_seq > $1")
            .bind(seq)
            .fetch_one(&self.pool)
            .await?;
        Ok(row.try_get::<Option<i64>, _>("m")?.map(|m| m * MINUTE_MICROS))
    }

    #[instrument(skip_all, level = "debug")]
    async fn audit_last_seq_before(&self, before: i64) -> Result<Option<i64>> {
        let row = sqlx::query::<DB>("SELECT MAX(last_seq) AS s FROM audit_minutes WHERE minute < $1")
            .bind(before.div_euclid(MINUTE_MICROS))
            .fetch_one(&self.pool)
            .await?;
        Ok(row.try_get("s")?)
    }

    #[instrument(skip_all, level = "debug")]
    async fn prune_audit(&self, through_seq: i64, limit: i64) -> Result<u64> {
        let mut tx = self.begin_write().await?;
        // Two subqueries, each one index seek: SQLite walks the whole range for a MIN and a
        // MAX asked together.
        let row = sqlx::query::<DB>(
            "SELECT (SELECT MIN(seq) FROM audit_events) AS lo, \
             (SELECT MAX(seq) FROM audit_events WHERE seq <= $1) AS hi",
        )
        .bind(through_seq)
        .fetch_one(&mut *tx)
        .await?;
        let (Some(oldest), Some(newest)) = (
            row.try_get::<Option<i64>, _>("lo")?,
            row.try_get::<Option<i64>, _>("hi")?,
        ) else {
            return Ok(0);
        };
        // The newest of them first: every record left, archived or not, still has the record
        // before it in the database (or the checkpoint that ends just before it), so its
        // `prev_hash` reads back while a cut is being deleted.
        let above = newest.saturating_sub(limit.max(1)).max(oldest - 1);
        let done = sqlx::query::<DB>("DELETE FROM audit_events WHERE seq > $1 AND seq <= $2")
            .bind(above)
            .bind(newest)
            .execute(&mut *tx)
            .await?;
        // The minutes wholly deleted; with the last of the records, every minute up to the cut.
        let floor = if above < oldest { i64::MIN } else { above };
        sqlx::query::<DB>("DELETE FROM audit_minutes WHERE last_seq <= $1 AND first_seq > $2")
            .bind(through_seq)
            .bind(floor)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(DB::rows_affected(&done))
    }
}

#[cfg(test)]
mod direct_tests {
    use sqlx::Sqlite;

    use super::*;
    use crate::audit::AuditKind;

    /// A trail of six calls in a fresh SQLite file, changed by `sql`.
    async fn changed(sql: &[&str]) -> (SqlStore<Sqlite>, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let url = super::super::DatabaseUrl::new(format!("sqlite:{}", dir.path().join("t.db").display()));
        let store = super::super::sqlite::connect(&url, false).await.unwrap();
        super::super::sqlite::migrate(&store.pool).await.unwrap();
        let events: Vec<_> = (0..6)
            .map(|i| {
                let mut e = AuditEvent::new(AuditKind::Proxy, "proxy.response", if i == 3 { "denied" } else { "ok" });
                e.principal_id = Some(Uuid::new_v4());
                e.grant_id = (i % 2 == 0).then(Uuid::new_v4);
                e.request_id = (i != 1).then(|| format!("req-{i}"));
                e
            })
            .collect();
        store.append_audit(&events).await.unwrap();
        // One connection: `writable_schema` holds for the connection that set it.
        let mut conn = store.pool.acquire().await.unwrap();
        for statement in sql {
            sqlx::raw_sql(sqlx::AssertSqlSafe(*statement))
                .execute(&mut *conn)
                .await
                .unwrap();
        }
        drop(conn);
        (store, dir)
    }

    /// Whatever a row holds, the direct read gives what the row read gives, or leaves the page
    /// to it: it never reads a record the rows do not hold.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_direct_page_is_the_rows_or_nothing() {
        let cases: &[(&str, &[&str], bool)] = &[
            ("as written", &[], true),
            (
                "an empty blob id",
                &["UPDATE audit_events SET id = x'' WHERE seq = 2"],
                false,
            ),
            (
                "a short principal id",
                &["UPDATE audit_events SET principal_id = x'0102' WHERE seq = 2"],
                false,
            ),
            (
                "an id as text",
                &["UPDATE audit_events SET principal_id = CAST(principal_id AS TEXT) WHERE seq = 2"],
                false,
            ),
            (
                "an outcome as a blob",
                &["UPDATE audit_events SET outcome = CAST(outcome AS BLOB) WHERE seq = 2"],
                false,
            ),
            (
                "a body as a blob",
                &["UPDATE audit_events SET body = CAST(body AS BLOB) WHERE seq = 2"],
                false,
            ),
            (
                "a body that is no UTF-8",
                &["UPDATE audit_events SET body = CAST(x'7bff7d' AS TEXT) WHERE seq = 2"],
                false,
            ),
            (
                "a real time",
                &["UPDATE audit_events SET at = 1.5 WHERE seq = 2"],
                false,
            ),
            (
                "a time as text",
                &["UPDATE audit_events SET at = 'noon' WHERE seq = 2"],
                false,
            ),
            // Text is read as it is, whatever it holds.
            (
                "a kind holding a control character",
                &["UPDATE audit_events SET kind = 'proxy' || char(31) || 'x' WHERE seq = 2"],
                true,
            ),
            (
                "a request id holding a comma and a control character",
                &["UPDATE audit_events SET request_id = 'a,' || char(31) || 'b' WHERE seq = 2"],
                true,
            ),
            (
                "an empty request id",
                &["UPDATE audit_events SET request_id = '' WHERE seq = 2"],
                true,
            ),
            ("a record gone", &["DELETE FROM audit_events WHERE seq = 3"], true),
            (
                "the outcome column allowed NULL, and one NULL",
                &[
                    "PRAGMA writable_schema = ON",
                    "UPDATE sqlite_schema SET sql = replace(sql, 'outcome            TEXT NOT NULL', 'outcome TEXT') WHERE name = 'audit_events'",
                    "PRAGMA writable_schema = OFF",
                ],
                false,
            ),
        ];
        for (name, sql, reads) in cases {
            let (store, _dir) = changed(sql).await;
            if name.starts_with("the outcome column") {
                // On a connection that read the changed schema.
                store.pool.close().await;
                let file = _dir.path().join("t.db");
                let store = SqlStore::<Sqlite>::new(
                    sqlx::SqlitePool::connect(&format!("sqlite:{}", file.display()))
                        .await
                        .unwrap(),
                )
                .with_chain_file(Some(&file));
                sqlx::raw_sql("UPDATE audit_events SET outcome = NULL WHERE seq = 2")
                    .execute(&store.pool)
                    .await
                    .unwrap();
                assert!(
                    store
                        .audit_page_direct(0, 100, ChainPage::default())
                        .await
                        .unwrap()
                        .is_none(),
                    "{name}"
                );
                continue;
            }
            let direct = store
                .audit_page_direct(0, 100, ChainPage::default())
                .await
                .unwrap()
                .map(|page| page.to_records());
            let rows = store.audit_page_rows(0, 100).await;
            match (&direct, rows) {
                (Some(direct), Ok(rows)) => assert_eq!(direct, &rows, "{name}"),
                (None, _) => {}
                (Some(_), Err(e)) => panic!("{name}: read directly, yet the rows do not read: {e}"),
            }
            assert_eq!(direct.is_some(), *reads, "{name}");
        }
    }
}
