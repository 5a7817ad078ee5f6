//! Persistence behind one trait, for SQLite (the embedded default) and PostgreSQL.
//!
//! Queries are checked at run time (no database is needed to build) and written once in the
//! SQL both engines share, in [`sql`]; each backend adds only how it connects, migrates and
//! locks ([`sqlite`], [`postgres`]). Every change takes the audit event that records it and
//! appends it in the same transaction, so a change is never committed without its record.

mod chain_page;
mod chain_walk;
mod counts;
mod postgres;
mod sql;
mod sqlite;
mod stored_body;

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::approvals::{Approval, ApprovalStatus, Finished};
use crate::audit::{AuditEvent, AuditKind, Checkpoint, JournalBatch, StoredAudit};
use crate::crypto::{KeyCheck, SealedValue};
use crate::vault::api_key::AdminToken;
use crate::vault::{ApiKey, Grant, GrantStatus, Principal, SecretMeta};

pub use chain_page::ChainPage;
pub use chain_walk::walk_chain;
pub use counts::{CountBy, CountQuery, CountRow, Rollup};
pub use sql::SqlStore;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A unique constraint refused the write; the text names what already exists.
    #[error("{0} already exists")]
    Conflict(String),
    /// A row the change depends on is gone (e.g. deleted concurrently).
    #[error("{0} does not exist")]
    Missing(String),
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    #[error("{0}")]
    Config(String),
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// A database URL. Shown with its password masked.
#[derive(Clone, PartialEq, Eq)]
pub struct DatabaseUrl(String);

impl DatabaseUrl {
    pub fn new(url: impl Into<String>) -> Self {
        Self(url.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn is_postgres(&self) -> bool {
        self.0.starts_with("postgres://") || self.0.starts_with("postgresql://")
    }
}

impl fmt::Display for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match url::Url::parse(&self.0) {
            Ok(mut url) if url.password().is_some() => {
                let _ = url.set_password(Some("****"));
                f.write_str(url.as_str())
            }
            Ok(_) => f.write_str(&self.0),
            Err(_) => f.write_str("<unparseable database url>"),
        }
    }
}

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DatabaseUrl({self})")
    }
}

/// Connects to `url` (`sqlite:…` or `postgres://…`) and applies pending migrations.
pub async fn connect(url: &DatabaseUrl) -> Result<Arc<dyn Store>> {
    let store = open(url).await?;
    store.migrate().await?;
    Ok(store)
}

/// Opens `url` for reading only, or `None` if there is no database yet. PostgreSQL files are
/// never changed by reads, so there it is an ordinary connection.
pub async fn open_read_only(url: &DatabaseUrl) -> Result<Option<Arc<dyn Store>>> {
    if url.is_postgres() {
        return Ok(Some(Arc::new(postgres::connect(url).await?)));
    }
    Ok(sqlite::open_read_only(url)
        .await?
        .map(|s| Arc::new(s) as Arc<dyn Store>))
}

/// Connects to `url` without touching the schema, every commit flushed to disk.
pub async fn open(url: &DatabaseUrl) -> Result<Arc<dyn Store>> {
    open_with(url, true).await
}

/// Connects to `url` without touching the schema. `fsync_commits` chooses SQLite's
/// synchronisation (see [`sqlite::connect`]); PostgreSQL follows the server's own
/// `synchronous_commit`.
pub async fn open_with(url: &DatabaseUrl, fsync_commits: bool) -> Result<Arc<dyn Store>> {
    if url.is_postgres() {
        Ok(Arc::new(postgres::connect(url).await?))
    } else if url.expose().starts_with("sqlite:") {
        Ok(Arc::new(sqlite::connect(url, fsync_commits).await?))
    } else {
        Err(StoreError::Config(format!(
            "unsupported database URL `{url}`: use sqlite:<path> or postgres://…"
        )))
    }
}

/// One sealed secret version, located. A proxy CA's key is one too: its id, version
/// [`CA_KEY_VERSION`], so re-wrapping under a new master key covers it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SealedVersion {
    pub secret_id: Uuid,
    pub version: i64,
    pub sealed: SealedValue,
}

/// The envelope version a proxy CA's private key is sealed under (secret versions start at 1).
pub const CA_KEY_VERSION: i64 = 0;

/// The envelope version the audit trail's signing key is sealed under (after the approvals'
/// request and response seals, -1 and -2).
pub const AUDIT_KEY_VERSION: i64 = -3;

/// The audit trail's signing key as stored: its public half, and its private half (a PKCS#8
/// document) sealed with the master key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredSigningKey {
    pub id: Uuid,
    pub public_key: String,
    pub sealed: SealedValue,
    pub created_at: DateTime<Utc>,
}

/// A forward-proxy certificate authority as stored: the certificate, and its private key
/// sealed with the master key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredAuthority {
    pub id: Uuid,
    pub cert_pem: String,
    pub sealed_key: SealedValue,
    pub created_at: DateTime<Utc>,
    /// From when it signs leaf certificates; until then it is only in the trust bundle.
    pub activates_at: DateTime<Utc>,
    pub not_after: DateTime<Utc>,
}

/// Which of a grant's limits a [`LimitRow`] holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LimitKind {
    /// A token bucket: `value` micro-tokens left at `at`.
    Rate,
    /// Calls taken: `value` calls in the period that began at `at`.
    Quota,
}

impl LimitKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Rate => "rate",
            Self::Quota => "quota",
        }
    }
}

/// One grant's limit as every replica shares it (see `crate::limits`): a number and a time,
/// both as [`LimitKind`] says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LimitRow {
    pub value: i64,
    /// Microseconds since the epoch.
    pub at: i64,
}

#[derive(Clone, Debug, Default)]
pub struct GrantFilter {
    pub secret_id: Option<Uuid>,
    pub principal_id: Option<Uuid>,
    pub status: Option<GrantStatus>,
}

#[derive(Clone, Debug, Default)]
pub struct AuditQuery {
    pub since: Option<DateTime<Utc>>,
    pub until: Option<DateTime<Utc>>,
    pub principal_id: Option<Uuid>,
    pub grant_id: Option<Uuid>,
    pub secret_id: Option<Uuid>,
    pub outcome: Option<String>,
    pub kind: Option<AuditKind>,
    pub action: Option<String>,
    pub request_id: Option<String>,
    /// Calls made for this person (their user token named them).
    pub user_principal_id: Option<Uuid>,
    /// Records whose reason contains this text, in any case.
    pub reason: Option<String>,
    /// Records whose context holds each of these keys with this value (as text).
    pub context: Vec<(String, String)>,
    /// Only records with a smaller sequence number (paging newest first).
    pub before_seq: Option<i64>,
    pub limit: i64,
}

/// An uploaded provider component, without its bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UploadedProvider {
    pub id: String,
    pub version: String,
    pub digest: String,
    pub size: i64,
    pub uploaded_at: DateTime<Utc>,
}

/// Notifications from other replicas.
#[async_trait]
pub trait Subscription: Send {
    /// The next payload; `Ok(None)` when the connection dropped (and was re-established), so
    /// notifications may have been missed.
    async fn recv(&mut self) -> Result<Option<String>>;
}

#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// `sqlite` or `postgres`.
    fn backend(&self) -> &'static str;
    async fn ping(&self) -> Result<()>;
    /// Closes every connection (and lets SQLite checkpoint its WAL).
    async fn close(&self);
    /// Whether the schema was ever created (a fresh database answers false).
    async fn is_initialised(&self) -> Result<bool>;
    /// Applies pending migrations. Separate from connecting so a wrong master key is refused
    /// before the schema is touched.
    async fn migrate(&self) -> Result<()>;

    // Key ring.
    async fn key_checks(&self) -> Result<Vec<KeyCheck>>;
    async fn insert_key_checks(&self, checks: &[KeyCheck]) -> Result<()>;
    /// Stored data keys per master key id.
    async fn kek_usage(&self) -> Result<Vec<(String, i64)>>;
    async fn versions_to_rewrap(&self, active_kek: &str, limit: i64) -> Result<Vec<SealedVersion>>;
    /// Replaces a data key's wrapping if it is still `old` (so concurrent re-wraps and
    /// rotations cannot overwrite each other). Returns whether it was replaced.
    async fn replace_wrapped_key(&self, old: &SealedVersion, new: &SealedValue) -> Result<bool>;

    // Forward-proxy certificate authorities.
    /// Every stored CA, oldest first.
    async fn proxy_authorities(&self) -> Result<Vec<StoredAuthority>>;
    /// Stores the first CA unless one exists (replicas starting together on an empty database
    /// agree on one). Returns whether this one was stored.
    async fn insert_first_proxy_authority(&self, ca: &StoredAuthority, audit: &AuditEvent) -> Result<bool>;
    /// Stores a further CA (a rotation).
    async fn insert_proxy_authority(&self, ca: &StoredAuthority, audit: &AuditEvent) -> Result<()>;

    // Admin tokens.
    async fn insert_admin_token(&self, token: &AdminToken, audit: &AuditEvent) -> Result<()>;
    async fn admin_tokens(&self) -> Result<Vec<AdminToken>>;
    /// Revokes an admin token; false if it does not exist or was already revoked.
    async fn revoke_admin_token(&self, id: Uuid, at: DateTime<Utc>, audit: &AuditEvent) -> Result<bool>;
    /// Keeps a portal sign-in in flight (and forgets the expired ones).
    async fn insert_signin(&self, attempt: &crate::vault::session::SigninAttempt) -> Result<()>;
    /// The attempt with this state hash, removed: each is finished at most once.
    async fn take_signin(
        &self,
        state_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<crate::vault::session::SigninAttempt>>;
    /// A portal session begins (expired ones are forgotten).
    async fn insert_session(&self, session: &crate::vault::session::PortalSession, audit: &AuditEvent) -> Result<()>;
    /// The live session with this id hash.
    async fn portal_session(
        &self,
        id_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<crate::vault::session::PortalSession>>;
    /// The live portal sessions, newest first.
    async fn portal_sessions(&self, now: DateTime<Utc>) -> Result<Vec<crate::vault::session::PortalSession>>;
    /// Ends a session (sign-out); false when there was none.
    async fn delete_session(&self, id_hash: &str, audit: &AuditEvent) -> Result<bool>;

    // Principals.
    async fn insert_principal(&self, principal: &Principal, audit: &AuditEvent) -> Result<()>;
    async fn principal(&self, id: Uuid) -> Result<Option<Principal>>;
    async fn principals(&self) -> Result<Vec<Principal>>;
    /// The user or group an OpenID Provider knows by `external_id`.
    async fn principal_by_external(
        &self,
        issuer: &str,
        kind: crate::vault::PrincipalKind,
        external_id: &str,
    ) -> Result<Option<Principal>>;
    /// Deletes the principal and its memberships, and revokes its keys and grants.
    async fn delete_principal(&self, id: Uuid, at: DateTime<Utc>, audit: &AuditEvent) -> Result<bool>;
    /// Returns false if `member` already was a member.
    async fn add_member(&self, group: Uuid, member: Uuid, at: DateTime<Utc>, audit: &AuditEvent) -> Result<bool>;
    async fn remove_member(&self, group: Uuid, member: Uuid, audit: &AuditEvent) -> Result<bool>;
    async fn members(&self, group: Uuid) -> Result<Vec<Uuid>>;
    async fn groups_of(&self, member: Uuid) -> Result<Vec<Uuid>>;

    // API keys.
    async fn insert_api_key(&self, key: &ApiKey, audit: &AuditEvent) -> Result<()>;
    async fn api_key(&self, id: Uuid) -> Result<Option<ApiKey>>;
    async fn api_key_by_prefix(&self, prefix: &str) -> Result<Option<ApiKey>>;
    async fn api_keys(&self, principal: Option<Uuid>) -> Result<Vec<ApiKey>>;
    async fn revoke_api_key(&self, id: Uuid, at: DateTime<Utc>, audit: &AuditEvent) -> Result<bool>;

    // Secrets.
    async fn insert_secret(&self, meta: &SecretMeta, sealed: &SealedValue, audit: &AuditEvent) -> Result<()>;
    /// A live (not deleted) secret.
    async fn secret(&self, id: Uuid) -> Result<Option<SecretMeta>>;
    /// A live secret and its current sealed value, read together so a rotation in between
    /// cannot pair new metadata with a destroyed value.
    async fn live_secret(&self, id: Uuid) -> Result<Option<(SecretMeta, SealedValue)>>;
    async fn secrets(&self) -> Result<Vec<SecretMeta>>;
    /// Adds version `from_version + 1` and destroys the older value, if the secret is still
    /// live at `from_version`. Returns false otherwise.
    async fn rotate_secret(
        &self,
        id: Uuid,
        from_version: i64,
        sealed: &SealedValue,
        at: DateTime<Utc>,
        audit: &AuditEvent,
    ) -> Result<bool>;
    async fn sealed_value(&self, id: Uuid, version: i64) -> Result<Option<SealedValue>>;
    /// Marks the secret deleted, destroys its sealed values and revokes its grants.
    async fn delete_secret(&self, id: Uuid, at: DateTime<Utc>, audit: &AuditEvent) -> Result<bool>;
    /// Number of active grants per secret.
    async fn active_grant_counts(&self, now: DateTime<Utc>) -> Result<Vec<(Uuid, i64)>>;
    /// When the credential of `secret` was last injected into a call, from the audit trail.
    async fn secret_last_used(&self, secret: Uuid) -> Result<Option<DateTime<Utc>>>;

    // Grants.
    async fn insert_grant(&self, grant: &Grant, audit: &AuditEvent) -> Result<()>;
    async fn grant(&self, id: Uuid) -> Result<Option<Grant>>;
    async fn grants(&self, filter: &GrantFilter, now: DateTime<Utc>) -> Result<Vec<Grant>>;
    async fn revoke_grant(&self, id: Uuid, at: DateTime<Utc>, reason: &str, audit: &AuditEvent) -> Result<bool>;

    // Grant limits, shared by the replicas.
    /// Reads a grant's limit row and writes back what `change` makes of it (given `None` when
    /// there is none yet), with no other replica's change in between. `change` may run more
    /// than once (when two replicas create the row at the same moment); the row it returned
    /// last is the one written, and returned.
    async fn update_limit(
        &self,
        grant: Uuid,
        kind: LimitKind,
        change: &mut (dyn FnMut(Option<LimitRow>) -> LimitRow + Send),
    ) -> Result<LimitRow>;
    async fn limit_row(&self, grant: Uuid, kind: LimitKind) -> Result<Option<LimitRow>>;

    /// The token a minting template obtained for this version of the secret, sealed, and
    /// when it expires (microseconds since the epoch).
    async fn minted_token(&self, secret: Uuid, version: i64) -> Result<Option<(SealedValue, i64)>>;
    /// Keeps a minted token for this version, dropping those of older versions.
    async fn put_minted_token(&self, secret: Uuid, version: i64, sealed: &SealedValue, expires_at: i64) -> Result<()>;
    /// Takes the secret's minting lease for `holder` until `until`, if it is free, expired at
    /// `now`, or already `holder`'s. Whether it was taken.
    async fn lease_minting(&self, secret: Uuid, holder: &str, until: i64, now: i64) -> Result<bool>;
    /// Gives the lease back, if `holder` has it.
    async fn release_minting(&self, secret: Uuid, holder: &str) -> Result<()>;

    // Approvals (see `crate::approvals`).
    async fn insert_approval(&self, approval: &Approval) -> Result<()>;
    async fn approval(&self, id: Uuid) -> Result<Option<Approval>>;
    /// Newest first.
    async fn approvals(&self, status: Option<ApprovalStatus>, limit: i64) -> Result<Vec<Approval>>;
    /// Moves a pending approval that has not expired at `at` to `to` (`Executing` when
    /// approved, `Denied`), with its audit record; `false` when it was not pending any more
    /// or had expired, and then nothing is written. However many replicas and operators try
    /// at once, one wins.
    async fn decide_approval(
        &self,
        id: Uuid,
        to: ApprovalStatus,
        by: &str,
        note: Option<&str>,
        at: DateTime<Utc>,
        audit: &AuditEvent,
    ) -> Result<bool>;
    /// Ends an executing approval; its sealed request is dropped.
    async fn finish_approval(&self, id: Uuid, finished: &Finished) -> Result<bool>;
    /// Records what time did, as of `now`: pending approvals past their expiry become
    /// `expired` (their request dropped), responses past their keeping time are dropped, and
    /// approvals executing since before `stale` (their replica stopped mid-call) become
    /// `failed`. Returns the approvals that expired or failed.
    async fn sweep_approvals(&self, now: DateTime<Utc>, stale: DateTime<Utc>) -> Result<Vec<Approval>>;
    async fn pending_approvals(&self, now: DateTime<Utc>) -> Result<i64>;

    // Provider registry.
    async fn uploaded_providers(&self) -> Result<Vec<UploadedProvider>>;
    async fn uploaded_component(&self, id: &str) -> Result<Option<(UploadedProvider, Vec<u8>)>>;
    /// Inserts or replaces an uploaded component.
    async fn put_uploaded_provider(&self, meta: &UploadedProvider, component: &[u8], audit: &AuditEvent) -> Result<()>;
    async fn delete_uploaded_provider(&self, id: &str, audit: &AuditEvent) -> Result<bool>;
    async fn disabled_providers(&self) -> Result<Vec<String>>;
    /// Returns whether anything changed.
    async fn set_provider_disabled(
        &self,
        id: &str,
        disabled: bool,
        at: DateTime<Utc>,
        audit: &AuditEvent,
    ) -> Result<bool>;
    /// Live secrets of a type.
    async fn secrets_of_type(&self, secret_type: &str) -> Result<i64>;

    // Change propagation between replicas.
    /// Tells every other replica about a change (PostgreSQL `NOTIFY`); nothing on SQLite, which
    /// has one process.
    async fn notify(&self, payload: &str) -> Result<()>;
    /// A stream of other replicas' notifications, or `None` where there are no others.
    /// `name` labels the connection (PostgreSQL `application_name`).
    async fn subscribe(&self, name: &str) -> Result<Option<Box<dyn Subscription>>>;

    // Audit.
    async fn append_audit(&self, events: &[AuditEvent]) -> Result<()>;
    /// Chains a batch of journaled events, keeps the calls it opened and forgets those it
    /// closed, and records in the same transaction how far the batch reaches: `progress` is a
    /// segment and the byte its lines end at. A batch already indexed that far changes nothing.
    async fn index_journal(&self, batch: &JournalBatch, progress: Option<(&str, i64)>) -> Result<()>;
    /// Calls of the journal `journal` whose opening was indexed while they were in flight,
    /// and whose outcome has not been: id and opening body.
    async fn open_calls(&self, journal: &str) -> Result<Vec<(Uuid, String)>>;
    /// How many bytes of a journal segment are indexed (`None`: none yet).
    async fn journal_indexed(&self, segment: &str) -> Result<Option<i64>>;
    /// Forgets a journal segment that is indexed to its end and deleted.
    async fn forget_journal_segment(&self, segment: &str) -> Result<()>;
    /// Newest first.
    async fn audit_events(&self, query: &AuditQuery) -> Result<Vec<StoredAudit>>;
    /// Oldest first, from `after_seq` exclusive, for verification and export.
    async fn audit_chain(&self, after_seq: i64, limit: i64) -> Result<Vec<StoredAudit>>;
    /// [`Self::audit_chain`] as one buffer the walk checks in place ([`ChainPage`]), read into
    /// the room of `into` (`ChainPage::default()` for none).
    async fn audit_chain_page(&self, after_seq: i64, limit: i64, into: ChainPage) -> Result<ChainPage>;
    /// Data-plane calls counted per time bucket (from the per-minute counts kept with the
    /// trail), oldest first.
    async fn call_counts(&self, query: &CountQuery) -> Result<Vec<CountRow>>;

    // Retention (see `crate::audit_archiver`).
    /// Takes or renews the archiving lease for `holder` until `until`: `false` while another
    /// holder's lease runs.
    async fn take_archive_lease(&self, holder: Uuid, now: DateTime<Utc>, until: DateTime<Utc>) -> Result<bool>;
    /// Gives the lease up (another replica may archive at once).
    async fn release_archive_lease(&self, holder: Uuid) -> Result<()>;
    /// Until when the archiving lease is held, if it is.
    async fn archive_lease_until(&self) -> Result<Option<DateTime<Utc>>>;
    async fn audit_signing_key(&self) -> Result<Option<StoredSigningKey>>;
    /// Stores the trail's signing key, with its audit record, unless one exists (`false`).
    async fn insert_audit_signing_key(&self, key: &StoredSigningKey, audit: &AuditEvent) -> Result<bool>;
    /// Every checkpoint, oldest first.
    async fn audit_checkpoints(&self) -> Result<Vec<Checkpoint>>;
    /// Records an archive file's checkpoint with its audit record. `Conflict` if its span
    /// overlaps one recorded.
    async fn insert_audit_checkpoint(&self, checkpoint: &Checkpoint, audit: &AuditEvent) -> Result<()>;
    /// The newest record's number and hash.
    async fn audit_head(&self) -> Result<Option<(i64, String)>>;
    /// The start (microseconds) of the earliest minute with a record after `seq`.
    async fn audit_minute_after(&self, seq: i64) -> Result<Option<i64>>;
    /// The highest number among records made before `before` (microseconds, a minute's start).
    async fn audit_last_seq_before(&self, before: i64) -> Result<Option<i64>>;
    /// Deletes at most `limit` of the records numbered up to `through_seq`, the newest of them
    /// first (and the minutes' spans wholly deleted), in one short transaction; returns how
    /// many.
    async fn prune_audit(&self, through_seq: i64, limit: i64) -> Result<u64>;
}
