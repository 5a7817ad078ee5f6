//! credgate's own certificate authority, for forward-proxy mode: a client that trusts it lets
//! credgate terminate its TLS to an allowed host and put the credential on each request.
//!
//! The CA is generated at the first start and stored in the database with its private key
//! sealed under the master key, so every replica presents the same CA and a restart keeps it.
//! Rotation is staged: a new CA joins the trust bundle at once and signs only from its
//! `activates_at`, so clients that refresh their bundle within the grace period never see a
//! leaf they cannot verify. The newest CA that is active signs; leaf certificates are
//! short-lived and cached ([`leaf`]).

pub mod leaf;

use std::sync::{Arc, RwLock};

use chrono::{DateTime, Duration, Utc};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use serde::Serialize;
use sha2::{Digest, Sha256};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::audit::{AuditEvent, AuditKind};
use crate::clock::now;
use crate::crypto::{CryptoError, KeyRing, open_value, seal_value};
use crate::redact::SecretBytes;
use crate::store::{CA_KEY_VERSION, Store, StoreError, StoredAuthority};

/// How long a CA is valid. Long: a CA is replaced by rotation, and every client's trust
/// bundle would have to follow an expiry.
const CA_LIFETIME_DAYS: i64 = 5 * 365;
/// How long after `credgate ca rotate` the new CA starts signing, unless told otherwise.
pub const DEFAULT_ROTATION_GRACE: Duration = Duration::hours(24);

#[derive(Debug, thiserror::Error)]
pub enum CaError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the proxy CA's key cannot be opened: {0}")]
    Crypto(#[from] CryptoError),
    #[error("the proxy CA cannot be made or read: {0}")]
    Certificate(String),
}

fn cert_error(e: impl std::fmt::Display) -> CaError {
    CaError::Certificate(e.to_string())
}

/// One CA, ready to sign.
pub struct Authority {
    pub id: Uuid,
    pub cert_pem: String,
    pub cert_der: CertificateDer<'static>,
    pub activates_at: DateTime<Utc>,
    pub not_after: DateTime<Utc>,
    issuer: Issuer<'static, KeyPair>,
}

impl std::fmt::Debug for Authority {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authority")
            .field("id", &self.id)
            .field("activates_at", &self.activates_at)
            .finish_non_exhaustive()
    }
}

/// What the admin API shows of a CA: never its key.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct AuthorityView {
    pub id: Uuid,
    /// SHA-256 of the certificate (DER), hex.
    pub fingerprint_sha256: String,
    pub activates_at: DateTime<Utc>,
    pub not_after: DateTime<Utc>,
    /// Signing leaf certificates now.
    pub active: bool,
    pub certificate_pem: String,
}

/// The distinguished name and usages a CA is made with, rebuilt the same way to sign with it.
fn ca_params(id: Uuid) -> CertificateParams {
    let mut params = CertificateParams::default();
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.distinguished_name.push(
        DnType::CommonName,
        format!("credgate forward-proxy CA {}", &id.simple().to_string()[..12]),
    );
    params.distinguished_name.push(DnType::OrganizationName, "credgate");
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params
}

impl Authority {
    /// A new CA, its key sealed under the ring's active master key.
    fn generate(ring: &KeyRing, activates_at: DateTime<Utc>) -> Result<(Self, StoredAuthority), CaError> {
        let id = Uuid::new_v4();
        let created_at = now();
        let not_after = created_at + Duration::days(CA_LIFETIME_DAYS);
        let mut params = ca_params(id);
        params.not_before = to_offset(created_at - Duration::hours(1));
        params.not_after = to_offset(not_after);
        let key = KeyPair::generate().map_err(cert_error)?;
        let cert = params.self_signed(&key).map_err(cert_error)?;
        let key_pem = zeroize::Zeroizing::new(key.serialize_pem());
        let sealed_key = seal_value(
            ring,
            &id.to_string(),
            CA_KEY_VERSION,
            &SecretBytes::new(key_pem.as_bytes().to_vec()),
        )?;
        let stored = StoredAuthority {
            id,
            cert_pem: cert.pem(),
            sealed_key,
            created_at,
            activates_at,
            not_after,
        };
        Ok((Self::open(ring, &stored)?, stored))
    }

    /// A stored CA with its key opened.
    fn open(ring: &KeyRing, stored: &StoredAuthority) -> Result<Self, CaError> {
        let key_pem = open_value(ring, &stored.id.to_string(), CA_KEY_VERSION, &stored.sealed_key)?;
        let key_text = std::str::from_utf8(key_pem.expose()).map_err(|_| cert_error("the sealed key is not PEM"))?;
        let key = KeyPair::from_pem(key_text).map_err(cert_error)?;
        let cert_der = CertificateDer::from_pem_slice(stored.cert_pem.as_bytes()).map_err(cert_error)?;
        Ok(Self {
            id: stored.id,
            cert_pem: stored.cert_pem.clone(),
            cert_der,
            activates_at: stored.activates_at,
            not_after: stored.not_after,
            issuer: Issuer::new(ca_params(stored.id), key),
        })
    }

    fn view(&self, active: bool) -> AuthorityView {
        AuthorityView {
            id: self.id,
            fingerprint_sha256: hex::encode(Sha256::digest(self.cert_der.as_ref())),
            activates_at: self.activates_at,
            not_after: self.not_after,
            active,
            certificate_pem: self.cert_pem.clone(),
        }
    }
}

fn to_offset(at: DateTime<Utc>) -> time::OffsetDateTime {
    time::OffsetDateTime::from_unix_timestamp(at.timestamp()).unwrap_or(time::OffsetDateTime::UNIX_EPOCH)
}

/// Every CA this gateway knows, newest last.
#[derive(Debug, Default)]
pub struct Authorities {
    all: RwLock<Vec<Arc<Authority>>>,
}

impl Authorities {
    /// Loads the stored CAs, creating the first one if there is none (one replica wins when
    /// several start together on an empty database; the others load its CA).
    pub async fn load_or_create(store: &dyn Store, ring: &KeyRing) -> Result<Self, CaError> {
        if store.proxy_authorities().await?.is_empty() {
            let (_, stored) = Authority::generate(ring, now())?;
            let mut event = AuditEvent::new(AuditKind::Admin, "proxy_ca.create", "ok");
            event.actor = Some("system".into());
            event.target = Some(stored.id.to_string());
            if store.insert_first_proxy_authority(&stored, &event).await? {
                tracing::info!(ca = %stored.id, "generated the forward-proxy CA");
            }
        }
        let this = Self::default();
        this.reload(store, ring).await?;
        Ok(this)
    }

    /// Reads the stored CAs again (after a rotation here or on another replica).
    pub async fn reload(&self, store: &dyn Store, ring: &KeyRing) -> Result<(), CaError> {
        let loaded = store
            .proxy_authorities()
            .await?
            .iter()
            .map(|s| Authority::open(ring, s).map(Arc::new))
            .collect::<Result<Vec<_>, _>>()?;
        *self.all.write().unwrap_or_else(|p| p.into_inner()) = loaded;
        Ok(())
    }

    fn snapshot(&self) -> Vec<Arc<Authority>> {
        self.all.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// The CA that signs now: the newest whose activation has passed.
    pub fn signing(&self) -> Option<Arc<Authority>> {
        let at = now();
        self.snapshot().into_iter().rev().find(|ca| ca.activates_at <= at)
    }

    /// The CAs a client should trust: the one signing now and any made after it that will
    /// sign later. A CA made before the one signing now never signs again (a later rotation
    /// superseded it), so it leaves the bundle.
    pub fn trusted(&self) -> Vec<AuthorityView> {
        let all = self.snapshot();
        let at = now();
        let signing = all.iter().rposition(|ca| ca.activates_at <= at);
        all.iter()
            .enumerate()
            .filter(|(i, ca)| Some(*i) == signing || (signing.is_none_or(|s| *i > s) && ca.activates_at > at))
            .map(|(i, ca)| ca.view(Some(i) == signing))
            .collect()
    }

    /// The trust bundle: the PEM of every CA in [`trusted`](Self::trusted).
    pub fn bundle_pem(&self) -> String {
        self.trusted().into_iter().map(|v| v.certificate_pem).collect()
    }

    /// Makes a new CA that signs from `grace` from now (the current one signs until then).
    pub async fn rotate(
        &self,
        store: &dyn Store,
        ring: &KeyRing,
        grace: Duration,
        mut event: AuditEvent,
    ) -> Result<AuthorityView, CaError> {
        let (authority, stored) = Authority::generate(ring, now() + grace)?;
        event.target = Some(stored.id.to_string());
        event.message = Some(format!("signs from {}", stored.activates_at.to_rfc3339()));
        store.insert_proxy_authority(&stored, &event).await?;
        self.reload(store, ring).await?;
        Ok(authority.view(grace <= Duration::zero()))
    }
}
