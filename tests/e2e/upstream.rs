//! Real upstream servers on loopback for the data-plane tests: an echo server (plain or TLS
//! with a test CA) that records every request it receives, with routes for streaming,
//! slowness, redirects and status codes.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use http_body_util::BodyExt;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tokio::sync::{Notify, watch};

/// One request as the upstream received it.
#[derive(Clone, Debug)]
pub struct Seen {
    pub method: String,
    pub path: String,
    pub query: Option<String>,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl Seen {
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .map(|v| v.to_str().unwrap_or("<binary>").to_owned())
    }

    pub fn header_count(&self, name: &str) -> usize {
        self.headers.get_all(name).iter().count()
    }
}

#[derive(Default)]
struct Shared {
    seen: Mutex<Vec<Seen>>,
    /// Released by the test to let `/sse-gated` send the rest of its events.
    gate: Notify,
}

pub struct Upstream {
    /// `http://127.0.0.1:<port>` or `https://localhost:<port>`.
    pub url: String,
    shared: Arc<Shared>,
    stop: watch::Sender<bool>,
}

impl Drop for Upstream {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

/// A test certificate authority and a server certificate for `localhost` and `127.0.0.1`.
pub struct TestCa {
    pub ca_file: PathBuf,
    pub cert_file: PathBuf,
    pub key_file: PathBuf,
    _dir: tempfile::TempDir,
}

impl TestCa {
    pub fn new() -> Self {
        use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
        let dir = tempfile::tempdir().unwrap();
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "credgate test CA");
        let ca_key = KeyPair::generate().unwrap();
        let ca_cert = ca_params.self_signed(&ca_key).unwrap();
        let issuer = Issuer::new(ca_params, ca_key);
        let leaf_params = CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()]).unwrap();
        let leaf_key = KeyPair::generate().unwrap();
        let leaf = leaf_params.signed_by(&leaf_key, &issuer).unwrap();
        let ca_file = dir.path().join("ca.pem");
        let cert_file = dir.path().join("server.pem");
        let key_file = dir.path().join("server.key");
        std::fs::write(&ca_file, ca_cert.pem()).unwrap();
        std::fs::write(&cert_file, leaf.pem()).unwrap();
        std::fs::write(&key_file, leaf_key.serialize_pem()).unwrap();
        Self {
            ca_file,
            cert_file,
            key_file,
            _dir: dir,
        }
    }
}

impl Upstream {
    pub async fn start() -> Self {
        Self::serve(None).await
    }

    pub async fn start_tls(ca: &TestCa) -> Self {
        crate::support::init();
        let acceptor = credgate::listener::tls_acceptor(&ca.cert_file, &ca.key_file).unwrap();
        Self::serve(Some(acceptor)).await
    }

    async fn serve(tls: Option<tokio_rustls::TlsAcceptor>) -> Self {
        let shared = Arc::new(Shared::default());
        let app = Router::new().fallback(handle).with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let url = match tls {
            Some(_) => format!("https://localhost:{}", addr.port()),
            None => format!("http://127.0.0.1:{}", addr.port()),
        };
        let (stop, stop_rx) = watch::channel(false);
        tokio::spawn(credgate::listener::serve(listener, app, tls, stop_rx));
        Self { url, shared, stop }
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.shared.seen.lock().unwrap().clone()
    }

    pub fn count(&self) -> usize {
        self.shared.seen.lock().unwrap().len()
    }

    pub fn last(&self) -> Seen {
        self.seen().pop().expect("the upstream received a request")
    }

    /// Lets a waiting `/sse-gated` stream continue.
    pub fn open_gate(&self) {
        self.shared.gate.notify_one();
    }

    /// `host:port` as an allowed-hosts entry.
    pub fn host_port(&self) -> String {
        let authority = self.url.split("://").nth(1).unwrap();
        authority.to_owned()
    }
}

fn query_param(query: &Option<String>, name: &str) -> Option<String> {
    url::form_urlencoded::parse(query.as_deref().unwrap_or("").as_bytes())
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

async fn handle(State(shared): State<Arc<Shared>>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let path = parts.uri.path().to_owned();
    let query = parts.uri.query().map(str::to_owned);
    // `/drain` reads its body as it arrives without keeping it (for very large uploads).
    let body = if path == "/drain" {
        let mut body = body;
        let mut n = 0usize;
        while let Some(Ok(frame)) = body.frame().await {
            n += frame.data_ref().map_or(0, Bytes::len);
        }
        n.to_string().into_bytes()
    } else {
        body.collect().await.map(|b| b.to_bytes().to_vec()).unwrap_or_default()
    };
    let seen = Seen {
        method: parts.method.to_string(),
        path: path.clone(),
        query: query.clone(),
        headers: parts.headers.clone(),
        body,
    };
    shared.seen.lock().unwrap().push(seen.clone());

    let n = |name: &str, default: u64| {
        query_param(&query, name)
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    };
    match path.as_str() {
        "/slow" => {
            tokio::time::sleep(Duration::from_millis(n("ms", 2000))).await;
            echo(&seen)
        }
        "/reflect" => {
            // What a careless upstream does: builds response headers from the request.
            let q = query.clone().unwrap_or_default();
            let auth = seen.header("authorization").unwrap_or_default();
            Response::builder()
                .status(StatusCode::MOVED_PERMANENTLY)
                .header(header::LOCATION, format!("/docs/?{q}"))
                .header(header::CONTENT_LOCATION, format!("/reflect?{q}"))
                .header(header::LINK, format!("</next?{q}>; rel=\"next\""))
                .header("refresh", format!("0; url=/again?{q}"))
                .header(header::SET_COOKIE, format!("auth={auth}; Path=/"))
                .header("x-debug-auth", auth)
                .body(Body::from("moved"))
                .unwrap()
        }
        "/set-cookies" => {
            // A hostile upstream planting cookies under credgate's own names, on its origin.
            Response::builder()
                .header(
                    header::SET_COOKIE,
                    "__Secure-credgate_signin=planted; Path=/portal/oidc; Secure",
                )
                .header(header::SET_COOKIE, "__Host-credgate_session=junk; Path=/; Secure")
                .header(header::SET_COOKIE, "credgate_session=junk; Path=/admin/v1")
                .header(header::SET_COOKIE, "upstream=1; Path=/")
                .body(Body::from("{}"))
                .unwrap()
        }
        "/drip" => {
            // The request echoed back three bytes at a time, so any value in it is split
            // across many chunks.
            let body = echo_json(&seen).into_bytes();
            let chunks: Vec<Result<Bytes, std::io::Error>> =
                body.chunks(3).map(|c| Ok(Bytes::copy_from_slice(c))).collect();
            Response::builder()
                .header(header::CONTENT_TYPE, "application/json")
                .header(header::CONTENT_LENGTH, body.len())
                .body(Body::from_stream(futures_util::stream::iter(chunks)))
                .unwrap()
        }
        "/gzip" => Response::builder()
            .header(header::CONTENT_ENCODING, "gzip")
            .body(Body::from(vec![
                0x1f, 0x8b, 0x08, 0, 0, 0, 0, 0, 0, 0x03, 0x03, 0, 0, 0, 0, 0, 0, 0, 0, 0,
            ]))
            .unwrap(),
        "/html" => (
            [(header::CONTENT_TYPE, "text/html")],
            "<html><script>fetch('/admin/v1/secrets')</script></html>",
        )
            .into_response(),
        "/redirect" => {
            let to = query_param(&query, "to").unwrap_or_default();
            (StatusCode::FOUND, [(header::LOCATION, to)], "redirecting").into_response()
        }
        "/bytes" => {
            let total = n("n", 1024);
            let chunk = Bytes::from(vec![b'x'; 64 * 1024]);
            let stream = futures_util::stream::unfold(total, move |left| {
                let chunk = chunk.clone();
                async move {
                    if left == 0 {
                        return None;
                    }
                    let take = left.min(chunk.len() as u64);
                    Some((Ok::<_, std::io::Error>(chunk.slice(..take as usize)), left - take))
                }
            });
            Response::builder()
                .header(header::CONTENT_TYPE, "application/octet-stream")
                .header(header::CONTENT_LENGTH, total)
                .body(Body::from_stream(stream))
                .unwrap()
        }
        "/sse-gated" => {
            // One event now, the rest only after the test saw the first one arrive: a gateway
            // that buffered the stream would never deliver the first.
            let shared = shared.clone();
            let stream = async_stream(shared);
            Response::builder()
                .header(header::CONTENT_TYPE, "text/event-stream")
                .header(header::CACHE_CONTROL, "no-cache")
                .body(Body::from_stream(stream))
                .unwrap()
        }
        p if p.starts_with("/status/") => {
            let code = p.trim_start_matches("/status/").parse().unwrap_or(500);
            (
                StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
                [(header::CONTENT_TYPE, "application/json")],
                r#"{"upstream":"error"}"#,
            )
                .into_response()
        }
        _ => echo(&seen),
    }
}

fn async_stream(shared: Arc<Shared>) -> impl futures_util::Stream<Item = Result<Bytes, std::io::Error>> {
    futures_util::stream::unfold(0u32, move |i| {
        let shared = shared.clone();
        async move {
            match i {
                0 => Some((Ok(Bytes::from_static(b"data: first\n\n")), 1)),
                1 => {
                    shared.gate.notified().await;
                    Some((Ok(Bytes::from_static(b"data: second\n\n")), 2))
                }
                2 => Some((Ok(Bytes::from_static(b"data: [DONE]\n\n")), 3)),
                _ => None,
            }
        }
    })
}

fn echo(seen: &Seen) -> Response {
    ([(header::CONTENT_TYPE, "application/json")], echo_json(seen)).into_response()
}

fn echo_json(seen: &Seen) -> String {
    let mut headers = serde_json::Map::new();
    for (name, value) in &seen.headers {
        let entry = headers
            .entry(name.as_str().to_owned())
            .or_insert_with(|| Value::Array(Vec::new()));
        if let Value::Array(values) = entry {
            values.push(Value::String(value.to_str().unwrap_or("<binary>").to_owned()));
        }
    }
    let body = json!({
        "method": seen.method,
        "path": seen.path,
        "query": seen.query,
        "headers": headers,
        "body": String::from_utf8_lossy(&seen.body),
        "body_base64": base64::engine::general_purpose::STANDARD.encode(&seen.body),
        "body_sha256": hex::encode(Sha256::digest(&seen.body)),
    });
    body.to_string()
}

/// A TLS front for a plain-HTTP server on loopback (s3s-fs, say): `https://localhost:<port>`
/// with the test CA's server certificate, each connection piped to the backend. HTTP/1.1
/// only, as the backends speak it.
pub struct TlsFront {
    pub url: String,
    stop: watch::Sender<bool>,
}

impl Drop for TlsFront {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

impl TlsFront {
    pub async fn start(ca: &TestCa, backend: &str) -> Self {
        use rustls::pki_types::pem::PemObject;
        use rustls::pki_types::{CertificateDer, PrivateKeyDer};
        crate::support::init();
        let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&ca.cert_file)
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        let key = PrivateKeyDer::from_pem_file(&ca.key_file).unwrap();
        let mut config = rustls::ServerConfig::builder()
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .unwrap();
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let backend = backend.trim_start_matches("http://").to_owned();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let (stop, mut stopped) = watch::channel(false);
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    accepted = listener.accept() => {
                        let Ok((stream, _)) = accepted else { continue };
                        let acceptor = acceptor.clone();
                        let backend = backend.clone();
                        tokio::spawn(async move {
                            let Ok(mut tls) = acceptor.accept(stream).await else { return };
                            let Ok(mut plain) = tokio::net::TcpStream::connect(&backend).await else { return };
                            let _ = tokio::io::copy_bidirectional(&mut tls, &mut plain).await;
                        });
                    }
                    _ = stopped.changed() => return,
                }
            }
        });
        Self {
            url: format!("https://localhost:{port}"),
            stop,
        }
    }
}
