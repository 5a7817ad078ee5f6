//! The forward-proxy listener (`--proxy-listen`): any client that honours `HTTPS_PROXY` or
//! `HTTP_PROXY` calls through credgate unchanged.
//!
//! Every request must carry the app key in `Proxy-Authorization` (`Basic` with the key as
//! password and, optionally, a grant id as user name; or `Bearer`): without a valid one the
//! answer is `407` before anything else. A `CONNECT` is then checked against the caller's
//! grants before any TLS ([`connect`]); a plain-HTTP absolute-form request goes straight to the
//! data plane. Inside an intercepted tunnel each request runs through the same phases as the
//! other modes ([`crate::proxy::in_tunnel`]).

mod connect;

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::Request;
use axum::response::{IntoResponse, Response};
use http::{HeaderValue, Method, StatusCode, header};
use uuid::Uuid;

use crate::audit::{AuditEvent, AuditKind};
use crate::error::{ApiError, ErrorCode};
use crate::proxy::tunnel::{self, ProxyCredentials, Tunnel};
use crate::request_id;
use crate::state::AppState;
use crate::vault::ApiKey;

/// The forward-proxy listener's service: every request goes to [`entry`]. Not a router: a
/// `CONNECT` names no path to route on.
pub fn app(
    state: AppState,
) -> impl tower::Service<
    http::Request<hyper::body::Incoming>,
    Response = Response,
    Error = Infallible,
    Future: Send + 'static,
> + Clone
+ Send
+ 'static {
    with_request_id(move |req| entry(state.clone(), req))
}

/// A handler as a service, with the request id every credgate response carries and credgate's
/// errors rendered, as the main listener's middleware does.
fn with_request_id<F, Fut>(
    handler: F,
) -> impl tower::Service<
    http::Request<hyper::body::Incoming>,
    Response = Response,
    Error = Infallible,
    Future: Send + 'static,
> + Clone
+ Send
+ 'static
where
    F: Fn(Request) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Response> + Send + 'static,
{
    tower::service_fn(move |req: http::Request<hyper::body::Incoming>| {
        let handler = handler.clone();
        async move {
            let mut req = req.map(Body::new);
            let id = request_id::RequestId::new();
            req.extensions_mut().insert(id.clone());
            let mut response = handler(req).await;
            request_id::stamp(&mut response, &id.0);
            Ok::<_, Infallible>(response)
        }
    })
}

async fn entry(state: AppState, req: Request) -> Response {
    let Some(credentials) = tunnel::proxy_credentials(req.headers()) else {
        return proxy_auth_required(
            "send the app key in Proxy-Authorization (Basic with the key as password, or Bearer)",
        );
    };
    let Some(key) = tunnel::check_key(&state, credentials.key.expose()).await else {
        return proxy_auth_required("invalid, revoked or expired app key");
    };
    if req.method() == Method::CONNECT {
        return connect::connect(state, req, credentials, key).await;
    }
    // Plain HTTP through the proxy: the request names its target in absolute form.
    let Some((host, port)) = req
        .uri()
        .host()
        .filter(|_| req.uri().scheme_str() == Some("http"))
        .map(|h| (normalise(h), req.uri().port_u16().unwrap_or(80)))
    else {
        return ApiError::bad_request(
            "this is credgate's forward-proxy port: send CONNECT host:port, or an absolute http:// request",
        )
        .into_response();
    };
    match choose(&state, &credentials, &key, &host, port, 80).await {
        Ok((grant, candidates)) => {
            let tunnel = Arc::new(Tunnel {
                key: credentials.key,
                scheme: "http",
                host,
                port,
                grant,
                candidates,
            });
            crate::proxy::in_tunnel(state, req, tunnel).await
        }
        Err(refusal) => refused(&state, &req, &key, &host, port, refusal),
    }
}

/// `host` as the grant checks compare it: lower case, without IPv6 brackets.
fn normalise(host: &str) -> String {
    host.trim_start_matches('[').trim_end_matches(']').to_ascii_lowercase()
}

/// The grant a tunnel's requests use by default, and how many grants they may choose from.
/// The proxy user name may name grants (one id, or several joined by `,`; any other user name
/// is ignored): then only those, and only if they allow the host. Otherwise every grant of
/// the caller's that allows the host. None at all is a refusal, before any TLS.
async fn choose(
    state: &AppState,
    credentials: &ProxyCredentials,
    key: &ApiKey,
    host: &str,
    port: u16,
    default_port: u16,
) -> Result<(Option<Uuid>, usize), ApiError> {
    let mut allowed = tunnel::grants_for_host(state, key, host, port, default_port).await?;
    let named: Option<Vec<Uuid>> = credentials
        .user
        .as_deref()
        .and_then(|user| user.split(',').map(|g| Uuid::parse_str(g.trim()).ok()).collect());
    if let Some(named) = &named {
        allowed.retain(|g| named.contains(g));
    }
    match allowed.len() {
        0 => Err(ApiError::new(
            ErrorCode::Forbidden,
            match named {
                Some(_) => format!("no grant named as proxy user is one of yours that allows {host}:{port}"),
                None => format!("none of your grants allows {host}:{port}"),
            },
        )),
        1 => Ok((Some(allowed[0]), 1)),
        n => Ok((None, n)),
    }
}

/// A refusal at the proxy (before any request reaches the data plane), audited.
fn refused(state: &AppState, req: &Request, key: &ApiKey, host: &str, port: u16, error: ApiError) -> Response {
    let mut event = AuditEvent::new(AuditKind::Proxy, "proxy.connect", error.code.as_str());
    event.request_id = req.extensions().get::<request_id::RequestId>().map(|r| r.0.clone());
    event.mode = Some("forward".into());
    event.method = Some(req.method().as_str().to_owned());
    event.actor = Some(format!("principal:{}", key.principal_id));
    event.principal_id = Some(key.principal_id);
    event.key_id = Some(key.id);
    event.host = Some(format!("{host}:{port}"));
    event.status = Some(error.code.status().as_u16());
    event.message = Some(error.message.clone());
    state.audit.record_detached(event);
    state.metrics.forward_refused();
    error.into_response()
}

/// `407`, in credgate's error shape, asking for proxy credentials.
fn proxy_auth_required(message: &str) -> Response {
    let mut response = ApiError::new(ErrorCode::Unauthenticated, message).into_response();
    *response.status_mut() = StatusCode::PROXY_AUTHENTICATION_REQUIRED;
    response.headers_mut().insert(
        header::PROXY_AUTHENTICATE,
        HeaderValue::from_static("Basic realm=\"credgate\""),
    );
    response
}
