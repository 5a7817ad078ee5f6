//! Admin tokens: which presented token is an admin, and whose.
//!
//! Tokens credgate generated (`cg_adm_…`) are stored hashed in the database and found by
//! their public prefix; an operator-chosen bootstrap token (CREDGATE_ADMIN_TOKEN) is held only
//! as a hash in memory. Both are compared in constant time. A leaf below the admin API and
//! the shared state, so that the state holds it without looking up at the API.

use std::sync::RwLock;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::redact::SecretString;
use crate::store::Store;
use crate::vault::api_key::AdminToken;
use crate::vault::scope::Scope;
use crate::vault::token::{self, TokenKind};

/// Who presented an admin token, and what it may do.
#[derive(Clone, Debug)]
pub struct Caller {
    /// `admin:<token id> (<name>)`, or `admin:bootstrap`.
    pub actor: String,
    pub scopes: Vec<Scope>,
}

#[derive(Debug)]
pub struct AdminAuth {
    tokens: RwLock<Vec<AdminToken>>,
    bootstrap_hash: Option<[u8; 32]>,
    /// When the table was last reloaded for an unknown prefix, in ms since `epoch`.
    reloaded_ms: AtomicU64,
    reloading: AtomicBool,
    epoch: Instant,
}

/// How often an unknown token may reload the table. A token issued by another replica (or by
/// a first start racing this one) is recognised within this long; unknown tokens sent faster
/// than this, as a scan or a flood would, cost a lookup in memory and nothing more.
const RELOAD_INTERVAL: Duration = Duration::from_secs(1);

pub const MIN_BOOTSTRAP_TOKEN_LEN: usize = 16;

impl AdminAuth {
    pub fn new(tokens: Vec<AdminToken>, bootstrap: Option<&SecretString>) -> Self {
        Self {
            tokens: RwLock::new(tokens),
            bootstrap_hash: bootstrap.map(|t| Sha256::digest(t.expose().as_bytes()).into()),
            reloaded_ms: AtomicU64::new(0),
            reloading: AtomicBool::new(false),
            epoch: Instant::now(),
        }
    }

    /// The actor for a presented token, or `None`.
    pub async fn authenticate(&self, store: &dyn Store, presented: &str) -> Option<Caller> {
        if let Some(prefix) = token::prefix_of(TokenKind::Admin, presented) {
            if let Some(actor) = self.find(prefix, presented) {
                return Some(actor);
            }
            // Another replica may have issued it since this one started.
            if self.reload(store).await {
                return self.find(prefix, presented);
            }
            return None;
        }
        let hash = self.bootstrap_hash.as_ref()?;
        let presented_hash = Sha256::digest(presented.as_bytes());
        bool::from(presented_hash[..].ct_eq(&hash[..])).then(|| Caller {
            actor: "admin:bootstrap".to_owned(),
            scopes: vec![Scope::Admin],
        })
    }

    /// Reloads the table unless it was reloaded within [`RELOAD_INTERVAL`] or is being
    /// reloaded now. Read outside the lock; the lock is held only to swap the table in.
    async fn reload(&self, store: &dyn Store) -> bool {
        let now_ms = u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX);
        let last = self.reloaded_ms.load(Ordering::Acquire);
        let interval = u64::try_from(RELOAD_INTERVAL.as_millis()).unwrap_or(u64::MAX);
        if last != 0 && now_ms.saturating_sub(last) < interval {
            return false;
        }
        if self.reloading.swap(true, Ordering::AcqRel) {
            return false;
        }
        let loaded = store.admin_tokens().await;
        self.reloaded_ms.store(now_ms.max(1), Ordering::Release);
        self.reloading.store(false, Ordering::Release);
        match loaded {
            Ok(tokens) => {
                *self.tokens.write().unwrap_or_else(|p| p.into_inner()) = tokens;
                true
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot reload the admin tokens");
                false
            }
        }
    }

    fn find(&self, prefix: &str, presented: &str) -> Option<Caller> {
        let tokens = self.tokens.read().unwrap_or_else(|p| p.into_inner());
        let t = tokens.iter().find(|t| t.prefix == prefix)?;
        (t.revoked_at.is_none() && token::verify(presented, &t.hash)).then(|| Caller {
            // The name goes in every record the token causes; the id tells same-named apart.
            actor: format!("admin:{} ({})", t.id, t.name),
            scopes: t.scopes.clone(),
        })
    }

    /// Reads the table again now, whatever the interval: a token was revoked.
    pub async fn force_reload(&self, store: &dyn Store) {
        self.reloaded_ms.store(0, Ordering::Release);
        self.reload(store).await;
    }
}
