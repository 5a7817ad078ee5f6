//! `CONNECT host:port`: refused before any TLS unless one of the caller's grants allows the
//! host (or the operator lists it for passthrough); otherwise credgate answers `200`,
//! terminates the client's TLS with a leaf certificate for the host signed by its own CA, and
//! serves the requests inside the tunnel through the data plane.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::Request;
use axum::response::{IntoResponse, Response};
use http::StatusCode;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use tokio_rustls::TlsAcceptor;

use super::{choose, normalise, refused, with_request_id};
use crate::audit::{AuditEvent, AuditKind};
use crate::error::ApiError;
use crate::outbound::destination;
use crate::proxy::tunnel::{ProxyCredentials, Tunnel};
use crate::state::AppState;
use crate::vault::ApiKey;

/// Longest a client may take to finish its TLS handshake inside the tunnel.
const HANDSHAKE: Duration = Duration::from_secs(10);

pub async fn connect(state: AppState, mut req: Request, credentials: ProxyCredentials, key: Arc<ApiKey>) -> Response {
    let Some(authority) = req.uri().authority().cloned() else {
        return ApiError::bad_request("CONNECT needs host:port").into_response();
    };
    let host = normalise(authority.host());
    let port = authority.port_u16().unwrap_or(443);
    if state
        .settings
        .proxy_passthrough
        .iter()
        .any(|p| p.matches(&host, port, 443))
    {
        return passthrough(state, req, &key, host, port).await;
    }
    let (grant, candidates) = match choose(&state, &credentials, &key, &host, port, 443).await {
        Ok(choice) => choice,
        Err(refusal) => return refused(&state, &req, &key, &host, port, refusal),
    };
    let Some(ca) = state.authorities.signing() else {
        return ApiError::internal("no proxy CA is active").into_response();
    };
    let config = match state.leaves.server_config(&ca, &host) {
        Ok(config) => config,
        Err(e) => return ApiError::internal(format!("cannot make a certificate for the tunnel: {e}")).into_response(),
    };
    let tunnel = Arc::new(Tunnel {
        key: credentials.key,
        scheme: "https",
        host,
        port,
        grant,
        candidates,
    });
    let upgrade = hyper::upgrade::on(&mut req);
    tokio::spawn(async move {
        let upgraded = match upgrade.await {
            Ok(upgraded) => upgraded,
            Err(e) => {
                tracing::debug!(error = %e, "the CONNECT was not upgraded");
                return;
            }
        };
        let tls = match tokio::time::timeout(HANDSHAKE, TlsAcceptor::from(config).accept(TokioIo::new(upgraded))).await
        {
            Ok(Ok(tls)) => tls,
            // A client that does not trust credgate's CA ends here: nothing was sent upstream.
            Ok(Err(e)) => {
                tracing::debug!(error = %e, host = %tunnel.host, "TLS handshake in the tunnel failed");
                return;
            }
            Err(_) => return,
        };
        state.metrics.forward_tunnel();
        let app = with_request_id(move |req| crate::proxy::in_tunnel(state.clone(), req, tunnel.clone()));
        let served = auto::Builder::new(TokioExecutor::new())
            .serve_connection_with_upgrades(TokioIo::new(tls), TowerToHyperService::new(app))
            .await;
        if let Err(e) = served {
            tracing::debug!(error = %e, "a tunnel ended with an error");
        }
    });
    StatusCode::OK.into_response()
}

/// A host the operator lets through untouched: no interception, no credential. Its addresses
/// must be public, as for any destination without a secret that allows private ones.
async fn passthrough(state: AppState, mut req: Request, key: &ApiKey, host: String, port: u16) -> Response {
    let addrs = match state.upstream.resolver.lookup(&host).await {
        Ok(addrs) => addrs,
        Err(_) => {
            let error = ApiError::new(
                crate::error::ErrorCode::UpstreamUnreachable,
                format!("cannot resolve {host}"),
            );
            return refused(&state, &req, key, &host, port, error);
        }
    };
    let Some(ip) = addrs
        .iter()
        .copied()
        .find(|ip| destination::permitted(*ip, false).is_ok())
    else {
        let error = ApiError::new(
            crate::error::ErrorCode::BlockedDestination,
            format!("{host} resolves only to addresses credgate does not call"),
        );
        return refused(&state, &req, key, &host, port, error);
    };
    let mut event = AuditEvent::new(AuditKind::Proxy, "proxy.passthrough", "ok");
    event.mode = Some("forward".into());
    event.actor = Some(format!("principal:{}", key.principal_id));
    event.principal_id = Some(key.principal_id);
    event.key_id = Some(key.id);
    event.host = Some(format!("{host}:{port}"));
    state.audit.record_detached(event);
    state.metrics.forward_passthrough();
    let upgrade = hyper::upgrade::on(&mut req);
    tokio::spawn(async move {
        let Ok(upgraded) = upgrade.await else { return };
        let Ok(mut upstream) = tokio::net::TcpStream::connect((ip, port)).await else {
            return;
        };
        let mut client = TokioIo::new(upgraded);
        let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
    });
    StatusCode::OK.into_response()
}
