//! Leaf certificates for the hosts a client tunnels to, signed by the CA that signs now.
//!
//! Short-lived (a day) so a leaked leaf key is worth little, and cached (per CA and host,
//! until half its life is gone) so a new tunnel to a known host costs a handshake, not a
//! key generation and a signature. The cache holds the whole rustls server configuration.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Duration, Utc};
use rcgen::{CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair, KeyUsagePurpose};
use rustls::ServerConfig;
use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
use uuid::Uuid;

use super::{Authority, CaError, cert_error, to_offset};
use crate::clock::now;

/// How long a leaf certificate is valid.
const LEAF_LIFETIME: Duration = Duration::hours(24);
/// Hosts cached at most; past it the cache starts over (one leaf per host is cheap to make).
const MAX_CACHED: usize = 4096;

struct Cached {
    config: Arc<ServerConfig>,
    renew_after: DateTime<Utc>,
}

#[derive(Default)]
pub struct Leaves {
    cache: Mutex<HashMap<(Uuid, String), Cached>>,
}

impl std::fmt::Debug for Leaves {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Leaves").finish_non_exhaustive()
    }
}

impl Leaves {
    /// The TLS server configuration that presents a leaf for `host` (a DNS name or an IP
    /// address), ALPN `h2` and `http/1.1`.
    pub fn server_config(&self, ca: &Authority, host: &str) -> Result<Arc<ServerConfig>, CaError> {
        let key = (ca.id, host.to_owned());
        let at = now();
        if let Some(cached) = self.lock().get(&key)
            && cached.renew_after > at
        {
            return Ok(cached.config.clone());
        }
        let config = Arc::new(issue(ca, host, at)?);
        let mut cache = self.lock();
        if cache.len() >= MAX_CACHED {
            cache.clear();
        }
        cache.insert(
            key,
            Cached {
                config: config.clone(),
                renew_after: at + LEAF_LIFETIME / 2,
            },
        );
        Ok(config)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<(Uuid, String), Cached>> {
        self.cache.lock().unwrap_or_else(|p| p.into_inner())
    }
}

fn issue(ca: &Authority, host: &str, at: DateTime<Utc>) -> Result<ServerConfig, CaError> {
    let mut params = CertificateParams::new(vec![host.to_owned()]).map_err(cert_error)?;
    params.distinguished_name.push(DnType::CommonName, host);
    params.is_ca = IsCa::NoCa;
    params.not_before = to_offset(at - Duration::minutes(5));
    params.not_after = to_offset(at + LEAF_LIFETIME);
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    params.use_authority_key_identifier_extension = true;
    let key = KeyPair::generate().map_err(cert_error)?;
    let cert = params.signed_by(&key, &ca.issuer).map_err(cert_error)?;
    let private = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(cert_error)?
        .with_no_client_auth()
        .with_single_cert(vec![cert.der().clone(), ca.cert_der.clone()], private)
        .map_err(cert_error)?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}
