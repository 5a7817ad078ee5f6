//! App API keys: how a principal authenticates to the data plane.

use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

/// A stored API key. `hash` never leaves the server; the rest is the key's metadata.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, ToSchema)]
pub struct ApiKey {
    pub id: Uuid,
    pub principal_id: Uuid,
    pub name: Option<String>,
    /// Public part of the key (`cg_app_<prefix>_…`), enough to recognise it in a list.
    pub prefix: String,
    #[serde(skip)]
    pub hash: Vec<u8>,
    pub created_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
}

impl ApiKey {
    pub fn is_usable(&self, now: DateTime<Utc>) -> bool {
        self.revoked_at.is_none() && self.expires_at.is_none_or(|at| at > now)
    }
}

/// Admin tokens: stored like API keys, but for the admin API.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AdminToken {
    pub id: Uuid,
    pub name: String,
    /// What it may do; `admin` is everything.
    pub scopes: Vec<crate::vault::scope::Scope>,
    pub prefix: String,
    pub hash: Vec<u8>,
    pub created_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
}
