//! The outbound HTTP clients, built once: connection pooling, timeouts, no system proxy, no
//! redirects, TLS verified against the system roots plus an optional extra CA file.
//!
//! There are two, identical but for their resolver: one refuses private addresses at
//! connect time, the other (for secrets that allow private destinations) does not. A request
//! picks one by its secret, so the rule checked before decryption is the rule enforced when
//! the connection is made.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rustls::RootCertStore;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;

use super::destination::{CheckedResolve, Resolver};

#[derive(Debug, Clone)]
pub struct UpstreamOptions {
    pub connect_timeout: Duration,
    /// From the request being sent to the response's headers arriving.
    pub first_byte_timeout: Duration,
    /// Longest pause between two reads of a response body.
    pub idle_timeout: Duration,
    pub ca_file: Option<std::path::PathBuf>,
}

#[derive(Debug, Clone)]
pub struct Upstream {
    strict: reqwest::Client,
    permissive: reqwest::Client,
    pub first_byte_timeout: Duration,
    pub resolver: Arc<Resolver>,
}

impl Upstream {
    pub fn client(&self, allow_private: bool) -> &reqwest::Client {
        if allow_private { &self.permissive } else { &self.strict }
    }

    pub fn build(options: &UpstreamOptions) -> anyhow::Result<Self> {
        let tls = tls_config(options.ca_file.as_deref())?;
        let resolver = Arc::new(Resolver::default());
        let client = |allow_private: bool| {
            reqwest::Client::builder()
                .use_preconfigured_tls(tls.clone())
                .no_proxy()
                .redirect(reqwest::redirect::Policy::none())
                .connect_timeout(options.connect_timeout)
                .read_timeout(options.idle_timeout)
                .pool_idle_timeout(Duration::from_secs(90))
                .pool_max_idle_per_host(1024)
                .tcp_nodelay(true)
                .dns_resolver(Arc::new(CheckedResolve {
                    resolver: resolver.clone(),
                    allow_private,
                }))
                .build()
        };
        Ok(Self {
            strict: client(false)?,
            permissive: client(true)?,
            first_byte_timeout: options.first_byte_timeout,
            resolver: resolver.clone(),
        })
    }
}

fn tls_config(ca_file: Option<&Path>) -> anyhow::Result<rustls::ClientConfig> {
    let mut roots = RootCertStore::empty();
    let native = rustls_native_certs::load_native_certs();
    for cert in native.certs {
        // A malformed system certificate is skipped, not fatal.
        let _ = roots.add(cert);
    }
    if let Some(path) = ca_file {
        let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
            .map_err(|e| anyhow::anyhow!("cannot read --upstream-ca-file {}: {e}", path.display()))?
            .collect::<Result<_, _>>()
            .map_err(|e| anyhow::anyhow!("--upstream-ca-file {}: {e}", path.display()))?;
        if certs.is_empty() {
            anyhow::bail!("--upstream-ca-file {} holds no certificate", path.display());
        }
        for cert in certs {
            roots
                .add(cert)
                .map_err(|e| anyhow::anyhow!("--upstream-ca-file {}: {e}", path.display()))?;
        }
    }
    if roots.is_empty() {
        tracing::warn!(
            "no trusted root certificates found: https upstreams will fail until --upstream-ca-file is given"
        );
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}
