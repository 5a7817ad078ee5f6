//! Minted fields: short-lived tokens a minting type obtains from its stored credential,
//! cached per secret version in this process until shortly before they expire.
//!
//! However many calls wait for a secret's token, one token request is made (single flight).
//! A token is refreshed ahead of expiry in the background while calls keep using the cached
//! one; a failed token request is retried with backoff, never once per call. Minted fields
//! live in memory only, in redacting types, and are dropped with the version they came from:
//! a rotation or deletion of the secret makes the next call mint afresh.

pub mod exchange;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Map, Value};
use uuid::Uuid;

use crate::cache::LiveSecret;
use crate::inject::mint::Mint;
use crate::inject::{InjectError, Injector};
use crate::outbound::client::Upstream;
use crate::redact::Credential;
pub use exchange::ExchangeError;

/// Refreshed when this much of a token's life is left (or a tenth of it, if less)...
const REFRESH_AHEAD: Duration = Duration::from_secs(60);
/// ...and never kept closer than this to its expiry: a call must not leave with a token that
/// expires on the way.
const MARGIN: Duration = Duration::from_secs(5);
/// Backoff after failed token requests: doubling from this...
const BACKOFF_FIRST: Duration = Duration::from_secs(1);
/// ...up to this.
const BACKOFF_MAX: Duration = Duration::from_secs(60);

/// Why no minted fields are available.
#[derive(Debug, Clone, thiserror::Error)]
pub enum MintError {
    /// The type refused or failed (its own error, summarised).
    #[error("{summary}")]
    Template { summary: String, detail: String },
    #[error("{0}")]
    Exchange(#[from] ExchangeError),
    /// Recent token requests failed; the next is not due yet.
    #[error("{last}; the next try is in {} s", retry_in.as_secs().max(1))]
    BackingOff { last: ExchangeError, retry_in: Duration },
}

impl From<InjectError> for MintError {
    fn from(e: InjectError) -> Self {
        Self::Template {
            summary: e.summary().into_owned(),
            detail: e.to_string(),
        }
    }
}

/// What one version of one secret has minted.
#[derive(Debug, Default)]
struct Slot {
    held: Mutex<Held>,
    /// One token request at a time for this version, in this process.
    minting: tokio::sync::Mutex<()>,
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
    backoff: Option<(ExchangeError, Instant)>,
}

#[derive(Debug, Default)]
pub struct Minter {
    slots: Mutex<HashMap<(Uuid, i64), Arc<Slot>>>,
    /// Token requests made, for `/metrics`.
    requests: prometheus_client::metrics::counter::Counter,
}

impl Minter {
    pub fn new(requests: prometheus_client::metrics::counter::Counter) -> Self {
        Self {
            slots: Mutex::default(),
            requests,
        }
    }

    /// The minted fields for `secret`'s current version: cached, or minted now (once for all
    /// the calls waiting). `None` when the type has nothing to mint for this credential.
    pub async fn fields(
        self: &Arc<Self>,
        upstream: &Upstream,
        secret: &Arc<LiveSecret>,
        injector: &Arc<dyn Injector>,
        credential: &Credential,
    ) -> Result<Option<Arc<Credential>>, MintError> {
        let Some(mint) = injector.minting() else {
            return Ok(None);
        };
        let slot = self.slot(secret);
        if let Some(fields) = self.cached(&slot, upstream, secret, injector, credential) {
            return Ok(Some(fields));
        }
        let _minting = slot.minting.lock().await;
        // Whoever held the lock before may have minted for this call too.
        if let Some(fields) = self.cached(&slot, upstream, secret, injector, credential) {
            return Ok(Some(fields));
        }
        if let Some((last, at)) = lock(&slot.held).backoff.clone()
            && let Some(retry_in) = at.checked_duration_since(Instant::now())
        {
            return Err(MintError::BackingOff { last, retry_in });
        }
        self.mint_into(&slot, mint, upstream, secret, injector, credential)
            .await
    }

    /// Drops what was minted for every version of `secret` (it was rotated or deleted).
    pub fn forget(&self, secret: Uuid) {
        lock(&self.slots).retain(|(id, _), _| *id != secret);
    }

    fn slot(&self, secret: &LiveSecret) -> Arc<Slot> {
        let key = (secret.meta.id, secret.meta.version);
        let mut slots = lock(&self.slots);
        if let Some(slot) = slots.get(&key) {
            return slot.clone();
        }
        // A new version: what older ones minted is not used again.
        slots.retain(|(id, _), _| *id != secret.meta.id);
        slots.entry(key).or_default().clone()
    }

    /// Usable cached fields; starts a background refresh when they are due for one.
    fn cached(
        self: &Arc<Self>,
        slot: &Arc<Slot>,
        upstream: &Upstream,
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
            let (minter, slot, upstream, secret, injector) = (
                self.clone(),
                slot.clone(),
                upstream.clone(),
                secret.clone(),
                injector.clone(),
            );
            let credential = credential.clone();
            tokio::spawn(async move {
                let _minting = slot.minting.lock().await;
                if let Some(mint) = injector.minting()
                    && let Err(e) = minter
                        .mint_into(&slot, mint, &upstream, &secret, &injector, &credential)
                        .await
                {
                    tracing::warn!(secret = %secret.meta.id, error = %e, "refreshing a minted token failed; the cached one is used until it expires");
                }
                lock(&slot.held).refreshing = false;
            });
        }
        Some(fields)
    }

    /// Makes the token request and keeps what it yields; on failure, backs off.
    async fn mint_into(
        &self,
        slot: &Slot,
        mint: &dyn Mint,
        upstream: &Upstream,
        secret: &LiveSecret,
        injector: &Arc<dyn Injector>,
        credential: &Credential,
    ) -> Result<Option<Arc<Credential>>, MintError> {
        let config: &Map<String, Value> = &secret.meta.config;
        let Some(request) = mint.token_request(credential, config).await? else {
            return Ok(None);
        };
        let hosts = exchange::token_hosts(&injector.description().token_hosts, config)
            .map_err(|why| MintError::Exchange(ExchangeError::Refused(why)))?;
        self.requests.inc();
        let answered = exchange::send(upstream, secret, &hosts, request).await;
        let response = match answered {
            Ok(response) => response,
            Err(e) => {
                let mut held = lock(&slot.held);
                held.failures += 1;
                let wait = BACKOFF_FIRST
                    .saturating_mul(1 << (held.failures - 1).min(6))
                    .min(BACKOFF_MAX);
                held.backoff = Some((e.clone(), Instant::now() + wait));
                return Err(e.into());
            }
        };
        let minted = mint.accept(&response, credential, config).await?;
        drop(response);
        let now = Instant::now();
        let life = minted.expires_in;
        let fields = Arc::new(minted.fields);
        let mut held = lock(&slot.held);
        held.fields = Some(fields.clone());
        held.usable_until = Some(now + life.saturating_sub(MARGIN));
        held.refresh_at = Some(now + life.saturating_sub(REFRESH_AHEAD.min(life / 10).max(MARGIN * 2)));
        held.failures = 0;
        held.backoff = None;
        Ok(Some(fields))
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}
