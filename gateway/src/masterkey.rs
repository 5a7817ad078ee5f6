//! The master key ring of a running server: checked against the database at start, rotated
//! and re-wrapped online.
//!
//! Re-wrapping is resumable by construction: it moves every data key not yet wrapped by the
//! active master key, in small batches, each batch its own conditional update. Stopping at any
//! point leaves every value readable (old keys stay in the ring), and the next run, or the next
//! start, carries on from wherever it stopped.

use std::sync::{Arc, RwLock};

use serde::Serialize;
use utoipa::ToSchema;

use crate::crypto::{CryptoError, KeyRing, KeyRingSource, MasterKey, rewrap_value};
use crate::store::{Store, StoreError};

const REWRAP_BATCH: i64 = 100;

#[derive(Debug, thiserror::Error)]
pub enum KeyRingError {
    #[error(transparent)]
    Crypto(#[from] CryptoError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{0}")]
    NotPossible(String),
}

/// The ring in use, swapped whole on rotation so readers never see half a change.
#[derive(Debug)]
pub struct KeyRingHandle {
    ring: RwLock<Arc<KeyRing>>,
    /// Serialises rotations and re-wraps within this process.
    busy: tokio::sync::Mutex<()>,
}

impl KeyRingHandle {
    pub fn new(ring: KeyRing) -> Self {
        Self {
            ring: RwLock::new(Arc::new(ring)),
            busy: tokio::sync::Mutex::new(()),
        }
    }

    pub fn current(&self) -> Arc<KeyRing> {
        self.ring
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    fn replace(&self, ring: KeyRing) {
        *self.ring.write().unwrap_or_else(|poisoned| poisoned.into_inner()) = Arc::new(ring);
    }
}

/// Checks the ring against the database without writing anything.
pub async fn verify(store: &dyn Store, ring: &KeyRing) -> Result<(), KeyRingError> {
    let checks = store.key_checks().await?;
    let in_use: Vec<String> = store.kek_usage().await?.into_iter().map(|(id, _)| id).collect();
    ring.reconcile(&checks, &in_use)?;
    Ok(())
}

/// Refuses a ring that does not fit the database (see [`KeyRing::reconcile`]) before anything
/// is read or written, then records checks for keys the database has not seen.
pub async fn check_at_start(store: &dyn Store, ring: &KeyRing) -> Result<(), KeyRingError> {
    let checks = store.key_checks().await?;
    let in_use: Vec<String> = store.kek_usage().await?.into_iter().map(|(id, _)| id).collect();
    let new_checks = ring.reconcile(&checks, &in_use)?;
    if !new_checks.is_empty() {
        store.insert_key_checks(&new_checks).await?;
    }
    Ok(())
}

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct KeyRingStatus {
    pub active_key_id: String,
    pub keys: Vec<MasterKeyStatus>,
    /// Data keys still wrapped by a master key other than the active one.
    pub pending_rewrap: i64,
    /// `environment`, `file` or `memory`.
    pub source: String,
}

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct MasterKeyStatus {
    pub id: String,
    pub active: bool,
    /// Secret versions whose data key this master key wraps.
    pub data_keys: i64,
}

pub async fn status(store: &dyn Store, handle: &KeyRingHandle) -> Result<KeyRingStatus, KeyRingError> {
    let ring = handle.current();
    let usage = store.kek_usage().await?;
    let active = ring.active().id().to_owned();
    let keys = ring
        .ids()
        .map(|id| MasterKeyStatus {
            id: id.to_owned(),
            active: id == active,
            data_keys: usage.iter().find(|(k, _)| k == id).map_or(0, |(_, n)| *n),
        })
        .collect();
    let pending_rewrap = usage.iter().filter(|(k, _)| *k != active).map(|(_, n)| n).sum();
    let source = match ring.source() {
        KeyRingSource::Environment => "environment",
        KeyRingSource::File(_) => "file",
        KeyRingSource::Memory => "memory",
    };
    Ok(KeyRingStatus {
        active_key_id: active,
        keys,
        pending_rewrap,
        source: source.into(),
    })
}

/// Adds a freshly generated master key as the active one and saves the ring file. The
/// caller then re-wraps. Only a file-backed ring can be rotated from inside credgate.
pub async fn rotate(store: &dyn Store, handle: &KeyRingHandle) -> Result<String, KeyRingError> {
    let _busy = handle.busy.lock().await;
    let ring = handle.current();
    let path = match ring.source() {
        KeyRingSource::File(path) => path.clone(),
        KeyRingSource::Environment => {
            return Err(KeyRingError::NotPossible(
                "the key ring comes from CREDGATE_MASTER_KEY, which credgate cannot change: put a new base64 key \
                 first in it (keeping the old ones after it), restart every replica, then run `credgate keyring rewrap`"
                    .into(),
            ));
        }
        KeyRingSource::Memory => {
            return Err(KeyRingError::NotPossible("this key ring has no file to save to".into()));
        }
    };
    let key = MasterKey::generate()?;
    let id = key.id().to_owned();
    let rotated = ring.with_new_active(key)?;
    // File first: if credgate stops right after, the next start finds the new key in the
    // ring (old keys kept) and carries on; the reverse order could lose the only copy.
    rotated.save_file(&path)?;
    store
        .insert_key_checks(&[KeyRing::make_check(rotated.active())?])
        .await?;
    handle.replace(rotated);
    Ok(id)
}

#[derive(Clone, Debug, Default, Serialize, ToSchema)]
pub struct RewrapReport {
    pub rewrapped: u64,
    pub remaining: i64,
}

/// Re-wraps up to `limit` data keys (all when `None`) under the active master key.
pub async fn rewrap(
    store: &dyn Store,
    handle: &KeyRingHandle,
    limit: Option<u64>,
) -> Result<RewrapReport, KeyRingError> {
    let _busy = handle.busy.lock().await;
    let ring = handle.current();
    let active = ring.active().id().to_owned();
    let mut report = RewrapReport::default();
    let mut stalls = 0;
    loop {
        let want = match limit {
            Some(limit) if report.rewrapped >= limit => break,
            Some(limit) => REWRAP_BATCH.min((limit - report.rewrapped) as i64),
            None => REWRAP_BATCH,
        };
        let batch = store.versions_to_rewrap(&active, want).await?;
        if batch.is_empty() {
            break;
        }
        let mut moved_any = false;
        for version in &batch {
            let moved = rewrap_value(&ring, &version.secret_id.to_string(), version.version, &version.sealed)?;
            if store.replace_wrapped_key(version, &moved).await? {
                report.rewrapped += 1;
                moved_any = true;
            }
        }
        if !moved_any {
            // Someone else moved (or destroyed) this batch first; read again, but do not spin
            // against a replica that keeps winning: what is left shows in `remaining`.
            stalls += 1;
            if stalls > 3 {
                break;
            }
            tokio::task::yield_now().await;
        }
    }
    report.remaining = store
        .kek_usage()
        .await?
        .into_iter()
        .filter(|(k, _)| *k != active)
        .map(|(_, n)| n)
        .sum();
    Ok(report)
}
