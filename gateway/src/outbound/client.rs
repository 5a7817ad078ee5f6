//! The outbound HTTP clients, built once: connection pooling, timeouts, no system proxy, no
//! redirects, TLS verified against the system roots plus an optional extra CA file.
//!
//! There are two, identical but for their resolver: one refuses private addresses at
//! connect time, the other (for secrets that allow private destinations) does not. A request
//! picks one by its secret, so the rule checked before decryption is the rule enforced when
//! the connection is made.

use std::future::Future;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use http::Uri;
use hyper_rustls::{HttpsConnector, HttpsConnectorBuilder};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use rustls::RootCertStore;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;

use super::body::OutboundBody;
use super::destination::{CheckedResolve, Resolver};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// hyper's own pooled client: reqwest (built on it) costs several microseconds more per call
/// for conveniences the data plane does not use (URL parsing, default headers, its own body
/// and error types), and every call pays them.
pub type HttpClient = Client<ConnectTimeout<HttpsConnector<HttpConnector<CheckedResolve>>>, OutboundBody>;

#[derive(Debug, Clone)]
pub struct UpstreamOptions {
    pub connect_timeout: Duration,
    /// From the request being sent to the response's headers arriving.
    pub first_byte_timeout: Duration,
    /// Longest pause between two reads of a response body.
    pub idle_timeout: Duration,
    pub ca_file: Option<std::path::PathBuf>,
}

#[derive(Clone)]
pub struct Upstream {
    strict: HttpClient,
    permissive: HttpClient,
    /// HTTP/1.1 only (no `h2` offered), for WebSocket handshakes: an h2 connection cannot
    /// switch protocols.
    strict_http1: HttpClient,
    permissive_http1: HttpClient,
    pub first_byte_timeout: Duration,
    pub idle_timeout: Duration,
    pub resolver: Arc<Resolver>,
}

impl std::fmt::Debug for Upstream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Upstream")
            .field("first_byte_timeout", &self.first_byte_timeout)
            .field("idle_timeout", &self.idle_timeout)
            .finish_non_exhaustive()
    }
}

impl Upstream {
    pub fn client(&self, allow_private: bool) -> &HttpClient {
        if allow_private { &self.permissive } else { &self.strict }
    }

    pub fn http1_client(&self, allow_private: bool) -> &HttpClient {
        if allow_private {
            &self.permissive_http1
        } else {
            &self.strict_http1
        }
    }

    pub fn build(options: &UpstreamOptions) -> anyhow::Result<Self> {
        let tls = tls_config(options.ca_file.as_deref())?;
        let resolver = Arc::new(Resolver::default());
        let client = |allow_private: bool, http2: bool| {
            let mut tcp = HttpConnector::new_with_resolver(CheckedResolve {
                resolver: resolver.clone(),
                allow_private,
            });
            // The scheme is checked per secret before anything is sent; https is wrapped below.
            tcp.enforce_http(false);
            tcp.set_nodelay(true);
            // Shared out among a host's addresses, so one that drops packets leaves time for
            // the next; `ConnectTimeout` below bounds the whole, TLS included.
            tcp.set_connect_timeout(Some(options.connect_timeout));
            // A pooled connection whose peer vanished (a NAT entry expired, a host died) is
            // found out by the kernel, not by a call waiting out its first-byte timeout.
            tcp.set_keepalive(Some(Duration::from_secs(15)));
            tcp.set_keepalive_interval(Some(Duration::from_secs(15)));
            tcp.set_keepalive_retries(Some(3));
            tcp.set_tcp_user_timeout(Some(Duration::from_secs(30)));
            let https = HttpsConnectorBuilder::new()
                .with_tls_config(tls.clone())
                .https_or_http()
                .enable_http1();
            let https = if http2 {
                https.enable_http2().wrap_connector(tcp)
            } else {
                https.wrap_connector(tcp)
            };
            // No redirects are followed and no system proxy is used: hyper's client does
            // neither. The timeout covers the TCP and the TLS handshake together.
            Client::builder(TokioExecutor::new())
                .pool_timer(TokioTimer::new())
                .pool_idle_timeout(Duration::from_secs(90))
                .pool_max_idle_per_host(1024)
                .build(ConnectTimeout {
                    inner: https,
                    timeout: options.connect_timeout,
                })
        };
        Ok(Self {
            strict: client(false, true),
            permissive: client(true, true),
            strict_http1: client(false, false),
            permissive_http1: client(true, false),
            first_byte_timeout: options.first_byte_timeout,
            idle_timeout: options.idle_timeout,
            resolver: resolver.clone(),
        })
    }
}

/// A connection (TCP and TLS) that is not up within `timeout` fails with [`ConnectTimedOut`].
#[derive(Debug, Clone)]
pub struct ConnectTimeout<C> {
    inner: C,
    timeout: Duration,
}

/// The upstream did not accept a connection in time.
#[derive(Debug, thiserror::Error)]
#[error("connecting to the upstream timed out")]
pub struct ConnectTimedOut;

impl<C> tower::Service<Uri> for ConnectTimeout<C>
where
    C: tower::Service<Uri>,
    C::Error: Into<BoxError>,
    C::Future: Send + 'static,
{
    type Response = C::Response;
    type Error = BoxError;
    // Boxed: paid once per new connection, not per call.
    type Future = Pin<Box<dyn Future<Output = Result<C::Response, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        let connecting = self.inner.call(uri);
        let timeout = self.timeout;
        Box::pin(async move {
            match tokio::time::timeout(timeout, connecting).await {
                Ok(result) => result.map_err(Into::into),
                Err(_) => Err(Box::new(ConnectTimedOut) as BoxError),
            }
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
    // No ALPN here: the connector offers h2 and http/1.1 itself, and uses what was agreed.
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth())
}
