//! What every request handler shares.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use crate::admin_tokens::AdminAuth;
use crate::audit_writer::AuditWriter;
use crate::cache::HotCache;
use crate::masterkey::KeyRingHandle;
use crate::metrics::Metrics;
use crate::outbound::client::Upstream;
use crate::plugin::Registry;
use crate::store::Store;

#[derive(Clone, Debug)]
pub struct Settings {
    pub admin_max_body_bytes: usize,
    /// Largest data-plane request body.
    pub max_body_bytes: u64,
    /// `--max-in-flight`: data-plane calls at once.
    pub max_in_flight: usize,
    /// Largest body of a call held for approval, and of an approved call's kept response.
    pub approval_max_body: u64,
    /// Where operators reach the portal (`--public-url`), without a trailing slash.
    pub public_url: Option<String>,
    /// Serve the portal from here instead of the embedded copy.
    pub portal_dir: Option<std::path::PathBuf>,
    /// Log the text of plugin errors (`--log-plugin-errors`).
    pub log_plugin_errors: bool,
    /// Hosts forward-proxy tunnels reach untouched (`--proxy-passthrough`).
    pub proxy_passthrough: Vec<crate::vault::host::HostPattern>,
    /// Seconds between archiving passes, with retention on (`--audit-retain-days`).
    pub archive_interval_seconds: Option<u64>,
}

#[derive(Debug)]
pub struct Inner {
    pub store: Arc<dyn Store>,
    pub keyring: KeyRingHandle,
    pub admin_auth: AdminAuth,
    pub audit: AuditWriter,
    pub cache: HotCache,
    /// Grants' rate limits and quotas, and this process's slices of them.
    pub limits: Arc<crate::limits::Limiter>,
    /// Tokens minting types obtained, per secret version, in this process.
    pub minter: Arc<crate::minting::Minter>,
    pub providers: Arc<Registry>,
    /// credgate's own CAs, for forward-proxy interception, and the leaf certificates they sign.
    pub authorities: Arc<crate::ca::Authorities>,
    pub leaves: crate::ca::leaf::Leaves,
    pub upstream: Upstream,
    /// The OpenID Providers whose users' tokens credgate trusts.
    pub identity: Arc<crate::identity::Identity>,
    pub metrics: Metrics,
    pub settings: Settings,
    /// This process's id among the replicas sharing the database.
    pub replica: uuid::Uuid,
    /// One permit per data-plane call in flight; none left means shed the call.
    pub in_flight: Arc<tokio::sync::Semaphore>,
    /// Set when shutdown begins, so `/readyz` turns away new traffic first.
    pub draining: AtomicBool,
    /// Where this process serves the portal, once it listens: the origin of the links it hands
    /// out when `--public-url` is not given.
    pub origin: std::sync::OnceLock<String>,
}

/// Cheap to clone: one `Arc`.
#[derive(Clone, Debug)]
pub struct AppState(Arc<Inner>);

impl AppState {
    pub fn new(inner: Inner) -> Self {
        Self(Arc::new(inner))
    }

    /// Where operators and apps reach this gateway: `--public-url`, else where this process
    /// listens.
    pub fn public_origin(&self) -> String {
        self.settings
            .public_url
            .clone()
            .or_else(|| self.origin.get().cloned())
            .unwrap_or_default()
    }

    /// The portal's address.
    pub fn portal_url(&self) -> String {
        format!("{}/portal/", self.public_origin())
    }
}

impl std::ops::Deref for AppState {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

impl std::fmt::Debug for dyn Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Store({})", self.backend())
    }
}
