//! Minted fields: short-lived tokens a minting type obtains from its stored credential, kept
//! per secret version until shortly before they expire: in memory, and sealed in the database
//! (`minted_tokens`) so that every replica uses the token one of them minted.
//!
//! However many calls wait for a secret's token, one token request is made: one at a time per
//! process, and one replica at a time per secret (the minting lease); the others use what it
//! stored. A token is refreshed ahead of expiry in the background while calls keep using the
//! cached one; a failed token request is retried with backoff, never once per call. When the
//! provider rotates a refresh token on use, the new one is stored (sealed) as the secret's next
//! version in the chain of changes, and the token minted with it is kept for that version:
//! credgate stays the refresh token's only holder, and never uses one twice. A rotated, edited
//! or deleted secret mints afresh.

pub mod exchange;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Map, Value};
use uuid::Uuid;

use crate::audit::{AuditEvent, AuditKind};
use crate::cache::LiveSecret;
use crate::crypto::{KeyRing, open_value, seal_value};
use crate::inject::mint::Mint;
use crate::inject::{InjectError, Injector};
use crate::outbound::client::Upstream;
use crate::redact::Credential;
use crate::store::{Store, StoreError};
pub use exchange::ExchangeError;

/// Refreshed when this much of a token's life is left (or a tenth of it, if less)...
const REFRESH_AHEAD: Duration = Duration::from_secs(60);
/// ...and never kept closer than this to its expiry: a call must not leave with a token that
/// expires on the way.
const MARGIN: Duration = Duration::from_secs(5);
/// A token's lifetime is taken as the answer gives it, up to this (a longer one outlives any
/// sensible token); one too short to be used at all is refused, or every call would mint.
const MAX_LIFE: Duration = Duration::from_secs(24 * 3600);
/// Backoff after failed token requests: doubling from this...
const BACKOFF_FIRST: Duration = Duration::from_secs(1);
/// ...up to this.
const BACKOFF_MAX: Duration = Duration::from_secs(60);
/// A minting lease outlasts its token request (two timeouts: the answer's head and its body)
/// by this much.
const LEASE_MARGIN: Duration = Duration::from_secs(10);
/// How long a replica waits for another's token before it gives up on this call.
const WAIT_FOR_OTHER: Duration = Duration::from_secs(10);

/// What minting reaches beside the type: the token endpoint, the database and the keys.
#[derive(Clone, Debug)]
pub struct MintContext {
    pub upstream: Upstream,
    pub store: Arc<dyn Store>,
    pub ring: Arc<KeyRing>,
    /// This replica; each attempt's lease holder is it and a nonce.
    pub replica: Uuid,
}

/// What a call gets: the minted fields, and the secret's new version when the provider
/// rotated a stored field (the caller tells the replicas).
#[derive(Debug)]
pub struct Obtained {
    pub fields: Arc<Credential>,
    pub rotated_to: Option<i64>,
}

/// Why no minted fields are available. Messages quote nothing a template or a token endpoint
/// wrote, but for `Template`'s `detail` (logged only with `--log-plugin-errors`).
#[derive(Debug, Clone, thiserror::Error)]
pub enum MintError {
    /// The type refused or failed (its own error, summarised).
    #[error("{summary}")]
    Template { summary: String, detail: String },
    #[error("{0}")]
    Exchange(#[from] ExchangeError),
    /// Recent token requests failed; the next is not due yet.
    #[error("{last}; the next try is in {} s", retry_in.as_secs().max(1))]
    BackingOff { last: String, retry_in: Duration },
    /// The minted token or the rotated credential could not be kept or read.
    #[error("the minted token could not be kept: {0}")]
    Keeping(String),
    /// Another replica holds the lease and did not finish in time.
    #[error("another replica is obtaining this secret's token; try again")]
    Busy,
    /// The secret has a newer version than the call read, and no token for it is stored yet:
    /// minting with the older credential could use a refresh token twice.
    #[error("the secret changed while its token was being obtained; try again")]
    Stale,
}

impl From<InjectError> for MintError {
    fn from(e: InjectError) -> Self {
        Self::Template {
            summary: e.summary().into_owned(),
            detail: e.to_string(),
        }
    }
}

impl From<StoreError> for MintError {
    fn from(e: StoreError) -> Self {
        Self::Keeping(e.to_string())
    }
}

impl MintError {
    /// A failure the next call should not repeat at once: the endpoint, the template or the
    /// database failed, rather than another replica being busy or the secret changing.
    fn backs_off(&self) -> bool {
        !matches!(self, Self::BackingOff { .. } | Self::Busy | Self::Stale)
    }
}

/// What one version of one secret has minted.
#[derive(Debug, Default)]
struct Slot {
    held: Mutex<Held>,
}

#[derive(Debug, Default)]
struct Held {
    fields: Option<Arc<Credential>>,
    /// Past this the fields are not used.
    usable_until: Option<Instant>,
    /// Past this a background refresh starts.
    refresh_at: Option<Instant>,
    refreshing: bool,
    failures: u32,
    /// The last failure, and when the next request is allowed.
    backoff: Option<(String, Instant)>,
}

#[derive(Debug, Default)]
pub struct Minter {
    /// Per secret, per version: the newest is found without looking at other secrets.
    slots: Mutex<HashMap<Uuid, BTreeMap<i64, Arc<Slot>>>>,
    /// One mint at a time per secret in this process. Kept when the slots are forgotten, so a
    /// mint in flight still holds back the next one.
    minting: Mutex<HashMap<Uuid, Arc<tokio::sync::Mutex<()>>>>,
    /// Token requests made, for `/metrics`.
    requests: prometheus_client::metrics::counter::Counter,
}

impl Minter {
    pub fn new(requests: prometheus_client::metrics::counter::Counter) -> Self {
        Self {
            requests,
            ..Self::default()
        }
    }

    /// The minted fields for `secret`'s current version: cached, stored by a replica, or minted
    /// now (once for all the calls waiting). `None` when the type has nothing to mint.
    pub async fn fields(
        self: &Arc<Self>,
        ctx: &MintContext,
        secret: &Arc<LiveSecret>,
        injector: &Arc<dyn Injector>,
        credential: &Credential,
    ) -> Result<Option<Obtained>, MintError> {
        if injector.minting().is_none() {
            return Ok(None);
        }
        // A newer version this process minted (its refresh token rotated) is the one to use:
        // the call read the secret before the rotation reached the cache.
        let (version, slot) = self.newest(secret.meta.id, secret.meta.version);
        if let Some(fields) = self.cached(&slot, ctx, secret, injector, credential) {
            let rotated_to = (version != secret.meta.version).then_some(version);
            return Ok(Some(Obtained { fields, rotated_to }));
        }
        // In a task of its own: a call that goes away must not abandon a token request whose
        // answer (a rotated refresh token, say) has to be kept.
        let (minter, ctx, secret, injector, credential) = (
            self.clone(),
            ctx.clone(),
            secret.clone(),
            injector.clone(),
            credential.clone(),
        );
        tokio::spawn(async move { minter.obtain(&ctx, &secret, &injector, &credential, false).await })
            .await
            .map_err(|e| MintError::Keeping(format!("the minting task failed: {e}")))?
    }

    /// Under the secret's lock: what another call obtained meanwhile, what a replica stored, or
    /// a token request. `refresh`: mint even though the cached fields are still usable.
    async fn obtain(
        &self,
        ctx: &MintContext,
        secret: &LiveSecret,
        injector: &Arc<dyn Injector>,
        credential: &Credential,
        refresh: bool,
    ) -> Result<Option<Obtained>, MintError> {
        let Some(mint) = injector.minting() else {
            return Ok(None);
        };
        let secret_lock = self.lock_for(secret.meta.id);
        let _minting = secret_lock.lock().await;
        let (version, slot) = self.newest(secret.meta.id, secret.meta.version);
        let rotated_to = (version != secret.meta.version).then_some(version);
        if !refresh {
            if let Some(fields) = usable(&slot) {
                return Ok(Some(Obtained { fields, rotated_to }));
            }
            if let Some(fields) = stored(ctx, secret.meta.id, version, &slot).await? {
                return Ok(Some(Obtained { fields, rotated_to }));
            }
        }
        if let Some((last, at)) = lock(&slot.held).backoff.clone()
            && let Some(retry_in) = at.checked_duration_since(Instant::now())
        {
            return Err(MintError::BackingOff { last, retry_in });
        }
        let minted = self.mint_leased(&slot, mint, ctx, secret, injector, credential).await;
        match &minted {
            Err(e) if e.backs_off() => {
                let mut held = lock(&slot.held);
                held.failures += 1;
                let wait = BACKOFF_FIRST
                    .saturating_mul(1 << (held.failures - 1).min(6))
                    .min(BACKOFF_MAX);
                held.backoff = Some((e.to_string(), Instant::now() + wait));
            }
            _ => {}
        }
        minted
    }

    fn lock_for(&self, secret: Uuid) -> Arc<tokio::sync::Mutex<()>> {
        lock(&self.minting).entry(secret).or_default().clone()
    }

    /// Mints under the secret's lease, so one replica at a time asks the token endpoint; a
    /// replica that finds the lease taken waits for the token the holder stores. Each attempt
    /// holds the lease under a name of its own.
    async fn mint_leased(
        &self,
        slot: &Slot,
        mint: &dyn Mint,
        ctx: &MintContext,
        secret: &LiveSecret,
        injector: &Arc<dyn Injector>,
        credential: &Credential,
    ) -> Result<Option<Obtained>, MintError> {
        let holder = format!("{}/{}", ctx.replica, Uuid::new_v4().simple());
        let id = secret.meta.id;
        let waited = Instant::now();
        while !take_lease(ctx, id, &holder).await? {
            tokio::time::sleep(Duration::from_millis(100)).await;
            if let Some(obtained) = self.current(ctx, secret).await? {
                return Ok(Some(obtained));
            }
            if waited.elapsed() > WAIT_FOR_OTHER {
                return Err(MintError::Busy);
            }
        }
        let minted = self
            .mint_into(slot, mint, ctx, secret, injector, credential, &holder)
            .await;
        if let Err(e) = ctx.store.release_minting(id, &holder).await {
            tracing::warn!(secret = %id, error = %e, "could not give the minting lease back; it expires by itself");
        }
        minted
    }

    /// A token stored for the secret's current version, if there is one (`None`: the call's
    /// version is current and has none, so it may mint).
    async fn current(&self, ctx: &MintContext, secret: &LiveSecret) -> Result<Option<Obtained>, MintError> {
        let id = secret.meta.id;
        let current = ctx.store.secret(id).await?.map_or(secret.meta.version, |m| m.version);
        let slot = self.slot(id, current);
        if let Some(fields) = stored(ctx, id, current, &slot).await? {
            let rotated_to = (current != secret.meta.version).then_some(current);
            return Ok(Some(Obtained { fields, rotated_to }));
        }
        if current != secret.meta.version {
            return Err(MintError::Stale);
        }
        Ok(None)
    }

    /// The slot of the newest version of `secret` this process knows, `version` or later.
    fn newest(&self, secret: Uuid, version: i64) -> (i64, Arc<Slot>) {
        let newer = lock(&self.slots)
            .get(&secret)
            .and_then(|versions| versions.range(version..).next_back())
            .map(|(v, slot)| (*v, slot.clone()));
        newer.unwrap_or_else(|| (version, self.slot(secret, version)))
    }

    /// Drops what was minted for every version of `secret` (it was rotated or deleted).
    pub fn forget(&self, secret: Uuid) {
        lock(&self.slots).remove(&secret);
    }

    fn slot(&self, secret: Uuid, version: i64) -> Arc<Slot> {
        let mut slots = lock(&self.slots);
        let versions = slots.entry(secret).or_default();
        if let Some(slot) = versions.get(&version) {
            return slot.clone();
        }
        // A new version: what older ones minted is not used again.
        versions.retain(|v, _| *v > version);
        versions.entry(version).or_default().clone()
    }

    /// Usable cached fields; starts a background refresh when they are due for one.
    fn cached(
        self: &Arc<Self>,
        slot: &Arc<Slot>,
        ctx: &MintContext,
        secret: &Arc<LiveSecret>,
        injector: &Arc<dyn Injector>,
        credential: &Credential,
    ) -> Option<Arc<Credential>> {
        let now = Instant::now();
        let mut held = lock(&slot.held);
        let fields = held
            .fields
            .clone()
            .filter(|_| held.usable_until.is_some_and(|t| now < t))?;
        let due = held.refresh_at.is_some_and(|t| now >= t)
            && !held.refreshing
            && held.backoff.as_ref().is_none_or(|(_, at)| now >= *at);
        if due {
            held.refreshing = true;
            let (minter, slot, ctx, secret, injector) = (
                self.clone(),
                slot.clone(),
                ctx.clone(),
                secret.clone(),
                injector.clone(),
            );
            let credential = credential.clone();
            tokio::spawn(async move {
                if let Err(e) = minter.obtain(&ctx, &secret, &injector, &credential, true).await {
                    tracing::warn!(secret = %secret.meta.id, error = %e, "refreshing a minted token failed; the cached one is used until it expires");
                }
                lock(&slot.held).refreshing = false;
            });
        }
        Some(fields)
    }

    /// Makes the token request and keeps what it yields.
    #[allow(clippy::too_many_arguments)] // the one step that needs all of it
    async fn mint_into(
        &self,
        slot: &Slot,
        mint: &dyn Mint,
        ctx: &MintContext,
        secret: &LiveSecret,
        injector: &Arc<dyn Injector>,
        credential: &Credential,
        holder: &str,
    ) -> Result<Option<Obtained>, MintError> {
        let config: &Map<String, Value> = &secret.meta.config;
        // Under the lease: a replica may have stored a token meanwhile, or rotated the
        // secret, and only the current version's credential may be used.
        if let Some(obtained) = self.current(ctx, secret).await? {
            return Ok(Some(obtained));
        }
        let Some(request) = mint.token_request(credential, config).await? else {
            return Ok(None);
        };
        let hosts = exchange::token_hosts(&injector.description().token_hosts, config).map_err(|_| {
            MintError::Exchange(ExchangeError::Refused(
                "the template's token hosts cannot be completed from this secret's config",
            ))
        })?;
        self.requests.inc();
        let response = exchange::send(&ctx.upstream, secret, &hosts, request).await?;
        let minted = mint.accept(&response, credential, config).await?;
        drop(response);
        let id = secret.meta.id;
        let mut version = secret.meta.version;
        let mut rotated_to = None;
        if !minted.rotated.is_empty() {
            // The provider took the old refresh token back: the new one is the credential now,
            // kept only if this attempt still holds the lease (no other can have sent it).
            if !take_lease(ctx, id, holder).await? {
                tracing::error!(secret = %id, "the minting lease ran out before a rotated refresh token could be kept; the secret needs a new one");
                return Err(MintError::Keeping(
                    "the minting lease ran out before the rotated refresh token was kept".into(),
                ));
            }
            let mut next = credential.clone();
            for (name, value) in minted.rotated.fields() {
                next.insert(name, value.clone());
            }
            let sealed = seal_value(&ctx.ring, &id.to_string(), version + 1, &next.to_plaintext())
                .map_err(|e| MintError::Keeping(e.to_string()))?;
            let mut event = AuditEvent::new(AuditKind::Admin, "secret.rotate", "ok");
            event.actor = Some(format!("provider {} (rotated the refresh token on use)", injector.id()));
            event.target = Some(id.to_string());
            event.secret_id = Some(id);
            event.secret_version = Some(version + 1);
            event.provider = Some(injector.id().to_owned());
            if !ctx
                .store
                .rotate_secret(id, version, &sealed, crate::clock::now(), &event)
                .await?
            {
                return Err(MintError::Keeping(
                    "the secret changed while its token was minted; the next call mints again".into(),
                ));
            }
            version += 1;
            rotated_to = Some(version);
        }
        let life = minted.expires_in.min(MAX_LIFE);
        if life < MARGIN * 2 {
            return Err(MintError::Keeping(format!(
                "the token endpoint gave a token that expires in {} s, too soon to be used",
                life.as_secs()
            )));
        }
        let expires_at = crate::clock::to_micros(crate::clock::now()) + life.as_micros() as i64;
        let sealed = seal_value(&ctx.ring, &minted_location(id), version, &minted.fields.to_plaintext())
            .map_err(|e| MintError::Keeping(e.to_string()))?;
        ctx.store.put_minted_token(id, version, &sealed, expires_at).await?;
        let fields = Arc::new(minted.fields);
        let target = match rotated_to {
            // Kept for the version it goes with; this one is done.
            Some(v) => self.slot(id, v),
            None => return Ok(Some(keep(slot, fields, life, None))),
        };
        Ok(Some(keep(&target, fields, life, rotated_to)))
    }
}

/// Takes (or extends) the secret's minting lease for `holder`.
async fn take_lease(ctx: &MintContext, secret: Uuid, holder: &str) -> Result<bool, MintError> {
    let lease = exchange::TIMEOUT * 2 + LEASE_MARGIN;
    let now = crate::clock::to_micros(crate::clock::now());
    Ok(ctx
        .store
        .lease_minting(secret, holder, now + lease.as_micros() as i64, now)
        .await?)
}

/// The fields in `slot`, while they are usable.
fn usable(slot: &Slot) -> Option<Arc<Credential>> {
    let held = lock(&slot.held);
    held.fields
        .clone()
        .filter(|_| held.usable_until.is_some_and(|t| Instant::now() < t))
}

/// Keeps `fields` in `slot` for `life`, clearing any backoff.
fn keep(slot: &Slot, fields: Arc<Credential>, life: Duration, rotated_to: Option<i64>) -> Obtained {
    let now = Instant::now();
    let mut held = lock(&slot.held);
    held.fields = Some(fields.clone());
    held.usable_until = Some(now + life.saturating_sub(MARGIN));
    held.refresh_at = Some(now + life.saturating_sub(REFRESH_AHEAD.min(life / 10).max(MARGIN * 2)));
    held.failures = 0;
    held.backoff = None;
    Obtained { fields, rotated_to }
}

/// The token a replica stored for this version, if it is still good for a while; kept in
/// `slot` too. One that cannot be opened (its master key retired) is as good as none.
async fn stored(ctx: &MintContext, id: Uuid, version: i64, slot: &Slot) -> Result<Option<Arc<Credential>>, MintError> {
    let Some((sealed, expires_at)) = ctx.store.minted_token(id, version).await? else {
        return Ok(None);
    };
    let left = expires_at - crate::clock::to_micros(crate::clock::now());
    if left <= (MARGIN * 2).as_micros() as i64 {
        return Ok(None);
    }
    let Ok(plain) = open_value(&ctx.ring, &minted_location(id), version, &sealed) else {
        return Ok(None);
    };
    let fields = Credential::from_plaintext(&plain).map_err(|e| MintError::Keeping(e.to_string()))?;
    let left = Duration::from_micros(left as u64).min(MAX_LIFE);
    Ok(Some(keep(slot, Arc::new(fields), left, None).fields))
}

/// What a minted token is sealed to: never mistaken for the secret's own value.
fn minted_location(secret: Uuid) -> String {
    format!("minted/{secret}")
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}
