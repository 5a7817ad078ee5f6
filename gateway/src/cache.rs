//! The data plane's hot data, served from memory: API keys by prefix, grants, secrets (with
//! their sealed current value), group memberships, and the users and groups an OpenID
//! Provider's tokens name.
//!
//! Entries load from the store on first use and are dropped on every admin change that
//! touches them, so a revocation, rotation or deletion holds from the very next request. A
//! generation counter makes sure a load that raced with an invalidation is not cached: what
//! was read before the change is used for that one request and never stored. Entries also
//! expire after [`MAX_AGE`], a safety net should an invalidation from another replica be lost.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use uuid::Uuid;

use crate::crypto::SealedValue;
use crate::store::{Result, Store};
use crate::vault::{ApiKey, Grant, Principal, PrincipalKind, SecretMeta};

/// Longest an entry is served without being read again from the store.
pub const MAX_AGE: Duration = Duration::from_secs(30);
/// Bound on entries per map; past it the map is cleared (simple, and rare in practice).
const MAX_ENTRIES: usize = 100_000;

/// A secret as the data plane needs it: metadata and the sealed current value.
#[derive(Debug)]
pub struct LiveSecret {
    pub meta: SecretMeta,
    pub sealed: SealedValue,
    /// The configured base URL, parsed once per read instead of once per call (`Err`: the
    /// stored config is not a valid one, which creation and updates prevent).
    pub base_url: Result<Option<url::Url>, String>,
    /// The allowed hosts, parsed (stored ones are valid: they were checked when stored).
    pub allowed_hosts: Vec<crate::vault::host::HostPattern>,
}

impl LiveSecret {
    pub fn new(meta: SecretMeta, sealed: SealedValue) -> Self {
        // Checked against the secret's own http setting when it was stored.
        let base_url = crate::vault::secret::base_url(&meta.config, true);
        let allowed_hosts = meta
            .allowed_hosts
            .iter()
            .filter_map(|h| crate::vault::host::HostPattern::parse(h).ok())
            .collect();
        Self {
            meta,
            sealed,
            base_url,
            allowed_hosts,
        }
    }
}

/// A cached answer: the value (or `None`, known not to exist) and when it was read.
type Entry<V> = (Option<Arc<V>>, Instant);

struct Map<K, V> {
    entries: RwLock<HashMap<K, Entry<V>>>,
}

impl<K: Eq + Hash + Clone, V> Map<K, V> {
    fn new() -> Self {
        Self {
            entries: RwLock::new(HashMap::new()),
        }
    }

    /// `Some(found)` when cached and fresh (found may be `None`: known not to exist).
    fn get(&self, key: &K) -> Option<Option<Arc<V>>> {
        let entries = self.entries.read().unwrap_or_else(|p| p.into_inner());
        match entries.get(key) {
            Some((value, at)) if at.elapsed() < MAX_AGE => Some(value.clone()),
            _ => None,
        }
    }

    fn put(&self, key: K, value: Option<Arc<V>>) {
        let mut entries = self.entries.write().unwrap_or_else(|p| p.into_inner());
        if entries.len() >= MAX_ENTRIES {
            entries.clear();
        }
        entries.insert(key, (value, Instant::now()));
    }

    fn remove(&self, key: &K) {
        self.entries.write().unwrap_or_else(|p| p.into_inner()).remove(key);
    }

    fn clear(&self) {
        self.entries.write().unwrap_or_else(|p| p.into_inner()).clear();
    }
}

pub struct HotCache {
    keys: Map<String, ApiKey>,
    grants: Map<Uuid, Grant>,
    secrets: Map<Uuid, LiveSecret>,
    groups: Map<Uuid, Vec<Uuid>>,
    /// The active grants each principal holds directly, by id: what a forward-proxy tunnel
    /// chooses from. Dropped whole on any change to grants, secrets or memberships (rare).
    held: Map<Uuid, Vec<Uuid>>,
    /// Principals by (issuer, kind, external id); known absences too, so that a token's many
    /// unmatched groups cost no lookups. Dropped whole when one is created or deleted.
    identities: Map<(String, PrincipalKind, String), Principal>,
    generation: AtomicU64,
}

impl std::fmt::Debug for HotCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HotCache")
            .field("generation", &self.generation.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl Default for HotCache {
    fn default() -> Self {
        Self::new()
    }
}

impl HotCache {
    pub fn new() -> Self {
        Self {
            keys: Map::new(),
            grants: Map::new(),
            secrets: Map::new(),
            groups: Map::new(),
            held: Map::new(),
            identities: Map::new(),
            generation: AtomicU64::new(0),
        }
    }

    async fn load<K, V, F>(&self, map: &Map<K, V>, key: K, fetch: F) -> Result<Option<Arc<V>>>
    where
        K: Eq + Hash + Clone,
        F: std::future::Future<Output = Result<Option<V>>>,
    {
        if let Some(hit) = map.get(&key) {
            return Ok(hit);
        }
        let generation = self.generation.load(Ordering::Acquire);
        let value = fetch.await?.map(Arc::new);
        // Only cache what no invalidation could have overtaken.
        if self.generation.load(Ordering::Acquire) == generation {
            map.put(key, value.clone());
        }
        Ok(value)
    }

    pub async fn api_key(&self, store: &dyn Store, prefix: &str) -> Result<Option<Arc<ApiKey>>> {
        self.load(&self.keys, prefix.to_owned(), store.api_key_by_prefix(prefix))
            .await
    }

    pub async fn grant(&self, store: &dyn Store, id: Uuid) -> Result<Option<Arc<Grant>>> {
        self.load(&self.grants, id, store.grant(id)).await
    }

    pub async fn secret(&self, store: &dyn Store, id: Uuid) -> Result<Option<Arc<LiveSecret>>> {
        self.load(&self.secrets, id, async {
            Ok(store
                .live_secret(id)
                .await?
                .map(|(meta, sealed)| LiveSecret::new(meta, sealed)))
        })
        .await
    }

    pub async fn groups_of(&self, store: &dyn Store, principal: Uuid) -> Result<Arc<Vec<Uuid>>> {
        let groups = self
            .load(&self.groups, principal, async {
                store.groups_of(principal).await.map(Some)
            })
            .await?;
        Ok(groups.unwrap_or_default())
    }

    /// The ids of the grants `principal` holds directly that were active when read (each use
    /// checks the grant again).
    pub async fn grants_held(&self, store: &dyn Store, principal: Uuid) -> Result<Arc<Vec<Uuid>>> {
        let held = self
            .load(&self.held, principal, async {
                let filter = crate::store::GrantFilter {
                    principal_id: Some(principal),
                    status: Some(crate::vault::GrantStatus::Active),
                    ..Default::default()
                };
                let grants = store.grants(&filter, crate::clock::now()).await?;
                Ok(Some(grants.into_iter().map(|g| g.grant_id).collect()))
            })
            .await?;
        Ok(held.unwrap_or_default())
    }

    /// The user or group `issuer` knows as `external_id`, if credgate has one.
    pub async fn external(
        &self,
        store: &dyn Store,
        issuer: &str,
        kind: PrincipalKind,
        external_id: &str,
    ) -> Result<Option<Arc<Principal>>> {
        let key = (issuer.to_owned(), kind, external_id.to_owned());
        self.load(
            &self.identities,
            key,
            store.principal_by_external(issuer, kind, external_id),
        )
        .await
    }

    /// A principal this process just created for an external identity.
    pub fn remember_external(&self, principal: &Principal) {
        if let (Some(issuer), Some(id)) = (&principal.issuer, &principal.external_id) {
            self.identities.put(
                (issuer.clone(), principal.kind, id.clone()),
                Some(Arc::new(principal.clone())),
            );
        }
    }

    /// A principal with an external id was created elsewhere.
    pub fn invalidate_identities(&self) {
        self.bump();
        self.identities.clear();
    }

    fn bump(&self) {
        self.generation.fetch_add(1, Ordering::AcqRel);
    }

    /// A key was issued or revoked.
    pub fn invalidate_key(&self, prefix: &str) {
        self.bump();
        self.keys.remove(&prefix.to_owned());
    }

    pub fn invalidate_grant(&self, id: Uuid) {
        self.bump();
        self.grants.remove(&id);
        self.held.clear();
    }

    pub fn invalidate_secret(&self, id: Uuid) {
        self.bump();
        self.secrets.remove(&id);
        self.held.clear();
    }

    pub fn invalidate_memberships(&self, principal: Uuid) {
        self.bump();
        self.groups.remove(&principal);
        self.held.clear();
    }

    /// Everything: after changes that touch many entries (principal deletion, re-wrap), and
    /// when another replica's notifications may have been missed.
    pub fn invalidate_all(&self) {
        self.bump();
        self.keys.clear();
        self.grants.clear();
        self.secrets.clear();
        self.groups.clear();
        self.held.clear();
        self.identities.clear();
    }
}
