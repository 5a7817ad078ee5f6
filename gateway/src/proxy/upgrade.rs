//! WebSocket upgrades (`Connection: upgrade`, `Upgrade: websocket`, over HTTP/1.1). The
//! handshake is a request like any other: every phase runs, the credential goes on it, and it
//! is journaled before it leaves. When the upstream answers `101 Switching Protocols`, the
//! caller's connection and the upstream's are joined and frames stream both ways untouched
//! (frames are not scrubbed: the credential travels in the handshake, not in them). The call's
//! record is closed when either side ends the connection, with the bytes each way.

use http::{HeaderMap, HeaderValue, Method, Version, header};
use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// The caller's side of an upgrade, taken off its request.
#[derive(Debug)]
pub struct ClientUpgrade(OnUpgrade);

fn has_token(headers: &HeaderMap, name: header::HeaderName, token: &str) -> bool {
    headers
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| t.trim().eq_ignore_ascii_case(token))
}

/// The caller's upgrade, if the request is a WebSocket handshake.
pub fn take(parts: &mut http::request::Parts) -> Option<ClientUpgrade> {
    let handshake = parts.method == Method::GET
        && parts.version == Version::HTTP_11
        && has_token(&parts.headers, header::UPGRADE, "websocket")
        && has_token(&parts.headers, header::CONNECTION, "upgrade");
    if !handshake {
        return None;
    }
    parts.extensions.remove::<OnUpgrade>().map(ClientUpgrade)
}

/// Puts back the handshake's hop-by-hop headers, which the upstream needs to upgrade.
pub fn handshake_headers(headers: &mut HeaderMap) {
    headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
}

/// Joins the caller's connection to the upstream's once both have switched protocols, then
/// calls `done(joined, bytes from the caller, bytes to the caller)` when either side closes
/// (`joined` false: one side never switched, so nothing was relayed).
pub fn splice(client: ClientUpgrade, upstream: OnUpgrade, done: impl FnOnce(bool, u64, u64) + Send + 'static) {
    tokio::spawn(async move {
        let (caller, upstream) = match tokio::join!(client.0, upstream) {
            (Ok(caller), Ok(upstream)) => (caller, upstream),
            _ => {
                done(false, 0, 0);
                return;
            }
        };
        let (caller_read, caller_write) = tokio::io::split(TokioIo::new(caller));
        let (upstream_read, upstream_write) = tokio::io::split(TokioIo::new(upstream));
        let (sent, received) = tokio::join!(pipe(caller_read, upstream_write), pipe(upstream_read, caller_write));
        done(true, sent, received);
    });
}

/// Copies one direction until it ends, and says how many bytes went. A connection torn down
/// rather than closed ends it too: the count so far is what the record keeps.
async fn pipe(mut from: impl AsyncRead + Unpin, mut to: impl AsyncWrite + Unpin) -> u64 {
    let mut buf = vec![0u8; 16 * 1024];
    let mut total = 0u64;
    loop {
        match from.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if to.write_all(&buf[..n]).await.is_err() {
                    break;
                }
                total += n as u64;
            }
        }
    }
    let _ = to.shutdown().await;
    total
}
