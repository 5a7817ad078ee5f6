//! The data plane: an app's request goes in with a grant id and leaves with the credential,
//! to the right host only.
//!
//! A call is a [`Call`] carried through named phases, each in its own file, in this order,
//! every refusal before any decryption:
//! [`authn`] (the app key, then the app's [`reason`] and context, then the person it acts for:
//! [`user`]) → [`policy`] (the grant, whose it is, its lifetime, method and path) → [`destination`] → [`body`] (bounded) →
//! [`limit`] (the grant's rate limit and quota) → [`hold`] (for approval, when a rule says so)
//! → [`credential`] (decrypt, strip the caller's copies,
//! inject, validate) → [`forward`] (journal the opening durably before the credential leaves,
//! send, stream back with the credential kept out, record the outcome: the call's one record
//! in the audit chain). Each way in (explicit, base URL, forward proxy) differs only in where
//! the grant, the target and the app key are read from: see [`Mode`].

mod approval_status;
pub mod approved;
mod authn;
mod body;
mod call;
mod credential;
mod environment;
mod forward;
mod headers;
mod hold;
mod limit;
mod policy;
mod reason;
pub mod scrub;
mod target;
pub mod tunnel;
mod upgrade;
mod user;

use axum::Router;
use std::sync::Arc;

use axum::extract::{Path, Request, State};
use axum::response::Response;
use axum::routing::any;
use http::{HeaderMap, HeaderValue, header};

use crate::cache::LiveSecret;
use crate::error::{ApiError, ErrorCode};
use crate::outbound::destination;
use crate::state::AppState;

use call::{Call, Failure, refuse};
use forward::Outbound;
use target::Target;
use tunnel::Tunnel;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/proxy", any(explicit))
        .route("/v1/grants/{grant_id}", any(base_url_root))
        .route("/v1/grants/{grant_id}/", any(base_url_root))
        .route("/v1/grants/{grant_id}/{*path}", any(base_url))
        .route("/v1/approvals/{id}", axum::routing::get(approval_status::status))
        .route("/v1/environment", axum::routing::get(environment::variables))
        .route(
            "/v1/approvals/{id}/response",
            axum::routing::get(approval_status::response),
        )
}

/// Where a call comes in, which decides where its grant, target and app key are read from.
#[derive(Debug)]
enum Mode {
    /// `/v1/proxy` with `X-Credgate-Grant` and `X-Credgate-Target`.
    Explicit,
    /// `/v1/grants/<grant_id>/<path>`: the secret's base URL + path + query.
    BaseUrl { grant: String, path: String },
    /// A request inside a forward-proxy tunnel, or an absolute-form request to the proxy:
    /// the tunnel's host, the request's path.
    Forward(Arc<Tunnel>),
}

impl Mode {
    /// The grant id as sent, and whether the app key may be looked for where vendor SDKs put
    /// their own keys.
    fn grant(&self, caller: &HeaderMap) -> Result<(String, bool), Failure> {
        let named = || {
            caller
                .get(target::GRANT_HEADER)
                .and_then(|v| v.to_str().ok())
                .map(str::trim)
                .filter(|v| !v.is_empty())
                .map(str::to_owned)
        };
        Ok(match self {
            Self::Explicit => (named().unwrap_or_default(), false),
            Self::BaseUrl { grant, .. } => (grant.clone(), true),
            // The client's own credential slot may hold the app key or a placeholder.
            Self::Forward(tunnel) => match (named(), tunnel.grant) {
                (Some(grant), _) => (grant, true),
                (None, Some(grant)) => (grant.to_string(), true),
                (None, None) => {
                    return Err(refuse(
                        ErrorCode::BadRequest,
                        format!(
                            "{} of your grants allow {}: name one with X-Credgate-Grant or as the proxy user name",
                            tunnel.candidates, tunnel.host
                        ),
                    ));
                }
            },
        })
    }

    /// The app key, where the mode carries it outside the request: the one the tunnel (or the
    /// absolute-form request) was let in with, as `Bearer`.
    fn tunnel_key(&self) -> Option<HeaderValue> {
        match self {
            Self::Forward(tunnel) => {
                let mut value = HeaderValue::from_str(&format!("Bearer {}", tunnel.key.expose())).ok()?;
                value.set_sensitive(true);
                Some(value)
            }
            _ => None,
        }
    }

    /// The mode's name in the call's record.
    fn name(&self) -> &'static str {
        match self {
            Self::Explicit => "explicit",
            Self::BaseUrl { .. } => "base_url",
            Self::Forward(_) => "forward",
        }
    }

    /// The target's query, provisionally: it may hold the app key, which authentication
    /// finds and removes, in either mode.
    fn query(&self, parts: &http::request::Parts) -> Option<String> {
        match self {
            Self::BaseUrl { .. } | Self::Forward(_) => parts.uri.query().map(str::to_owned),
            Self::Explicit => target::explicit_query(&parts.headers),
        }
    }

    /// Where the call goes, with the query authentication left.
    fn target(
        &self,
        parts: &http::request::Parts,
        secret: &LiveSecret,
        query: Option<String>,
    ) -> Result<Target, Failure> {
        let caller = &parts.headers;
        Ok(match self {
            Self::Forward(tunnel) => {
                target::forward(tunnel.scheme, &tunnel.host, tunnel.port, parts.uri.path(), query)?
            }
            Self::Explicit => target::explicit(caller, query)?,
            Self::BaseUrl { path, .. } => {
                let base = secret
                    .base_url
                    .as_ref()
                    .map_err(ApiError::internal)?
                    .as_ref()
                    .ok_or_else(|| {
                        refuse(
                            ErrorCode::BadRequest,
                            "this grant's secret has no base_url; use /v1/proxy with X-Credgate-Target",
                        )
                    })?;
                target::base_url(base, path, query)?
            }
        })
    }
}

async fn explicit(State(state): State<AppState>, req: Request) -> Response {
    handle(state, req, Mode::Explicit).await
}

async fn base_url_root(State(state): State<AppState>, Path(grant): Path<String>, req: Request) -> Response {
    handle(
        state,
        req,
        Mode::BaseUrl {
            grant,
            path: String::new(),
        },
    )
    .await
}

async fn base_url(State(state): State<AppState>, req: Request) -> Response {
    // The path as sent, not as the router would decode it: `group%2Fproject` must reach the
    // upstream as one segment, `100%25.txt` as itself, and a path that does not decode to
    // UTF-8 must meet credgate's own checks rather than the router's.
    let (grant, path) = req
        .uri()
        .path()
        .strip_prefix("/v1/grants/")
        .and_then(|rest| rest.split_once('/'))
        .map(|(grant, path)| (grant.to_owned(), path.to_owned()))
        .unwrap_or_default();
    handle(state, req, Mode::BaseUrl { grant, path }).await
}

/// A request inside a forward-proxy tunnel (or an absolute-form one): see [`tunnel`].
pub async fn in_tunnel(state: AppState, req: Request, tunnel: Arc<Tunnel>) -> Response {
    handle(state, req, Mode::Forward(tunnel)).await
}

async fn handle(state: AppState, req: Request, mode: Mode) -> Response {
    let mut response = match Call::begin(state, call::About::of(&req)).await {
        Err(shed) => shed,
        Ok(mut call) => match run(&mut call, req, mode).await {
            Ok(response) => response,
            Err(failure) => call.fail(failure),
        },
    };
    headers::contain(response.headers_mut());
    response
}

/// The phases of one call, in order.
async fn run(call: &mut Call, req: Request, mode: Mode) -> Result<Response, Failure> {
    let (mut parts, body) = req.into_parts();
    let method = parts.method.clone();
    policy::forwardable(&method)?;
    let upgrade = upgrade::take(&mut parts);
    let mut headers = headers::to_upstream(&parts.headers);
    if upgrade.is_some() {
        upgrade::handshake_headers(&mut headers);
    }
    // Proxy-Authorization is hop-by-hop, so `to_upstream` dropped it; look for it where it came.
    if let Some(value) = mode
        .tunnel_key()
        .or_else(|| parts.headers.get(header::PROXY_AUTHORIZATION).cloned())
    {
        headers.insert(header::PROXY_AUTHORIZATION, value);
    }
    call.event.mode = Some(mode.name().into());
    // The grant id is read first only to know where to look for the key: nothing is looked
    // up until the key is checked.
    let (grant_id, sdk_slots) = mode.grant(&parts.headers)?;
    let mut query = mode.query(&parts);

    let key = authn::authenticate(call, &mut headers, &mut query, sdk_slots).await?;
    reason::read(call, &parts.headers)?;
    let user = user::identify(call, &parts.headers).await?;
    let grant = policy::grant(call, &grant_id).await?;
    let for_user = authn::authorise(call, &key, user.as_ref(), &grant).await?;
    policy::lifetime_and_method(&grant, &method, &parts.headers)?;
    let secret = policy::secret(call, &grant).await?;
    let injector = credential::injector(call, &secret).await?;
    let target = mode.target(&parts, &secret, query)?;
    policy::paths(call, &grant, &target, &parts.headers)?;
    let resolver = &call.state.upstream.resolver;
    destination::check(&target.url, &secret.meta, &secret.allowed_hosts, resolver).await?;
    let inbound = body::bound(call.state.settings.max_body_bytes, &parts.headers, body).await?;
    let held = hold::needed(&grant, &method, &target.path, &parts.headers)?;
    if held && upgrade.is_some() {
        return Err(call::refuse(
            ErrorCode::PolicyViolation,
            "this call needs an operator's approval, and a WebSocket handshake cannot wait for one",
        ));
    }
    limit::admit(call, &grant).await?;
    if held {
        let held = hold::Held {
            grant: &grant,
            key: &key,
            for_user,
            method,
            target,
            headers,
            inbound,
        };
        return hold::hold(call, held, &parts.headers).await;
    }
    let delivery = Delivery {
        secret,
        injector,
        method,
        target,
        headers,
        inbound,
        upgrade,
    };
    deliver(call, delivery).await
}

/// A call that passed every check, on its way out.
struct Delivery {
    secret: Arc<LiveSecret>,
    injector: Arc<dyn crate::inject::Injector>,
    method: http::Method,
    target: Target,
    headers: HeaderMap,
    inbound: body::Inbound,
    upgrade: Option<upgrade::ClientUpgrade>,
}

/// The phases after the checks: the credential goes on, the call goes out.
async fn deliver(call: &mut Call, delivery: Delivery) -> Result<Response, Failure> {
    let Delivery {
        secret,
        injector,
        method,
        mut target,
        mut headers,
        inbound,
        upgrade,
    } = delivery;
    credential::strip_callers_copies(injector.as_ref(), &secret, &mut headers, &mut target);
    let mut body = body::prepare(inbound, injector.as_ref(), &secret, &target.url, &mut headers).await?;
    let payload = std::mem::replace(&mut body.payload, crate::inject::Payload::NotNeeded);
    let needles = credential::inject(call, &injector, &secret, &method, &mut headers, &mut target, payload).await?;
    let outbound = Outbound {
        method,
        target,
        headers,
        body,
        needles,
        upgrade,
    };
    forward::send(call, &secret, injector.id(), outbound).await
}
