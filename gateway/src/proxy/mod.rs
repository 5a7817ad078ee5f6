//! The data plane: an app's request goes in with a grant id and leaves with the credential,
//! to the right host only.
//!
//! Phases, in this order, every refusal before any decryption:
//! authenticate the app key → resolve the grant → authorise the principal → check the policy
//! (revoked, expired, method, path) → check the destination → bound the body → decrypt →
//! inject → validate → journal the call's opening (durably, before the credential leaves) →
//! forward → stream back → record the outcome, the call's one record in the audit chain.

mod authn;
mod body;
pub mod client;
pub mod destination;
mod headers;
pub mod scrub;
mod target;

use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Instant;

use axum::Router;
use axum::extract::{Path, Request, State};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use bytes::Bytes;
use http::{HeaderMap, header};
use http_body_util::{BodyExt, Either, Full};
use sha2::{Digest, Sha256};
use url::Url;
use uuid::Uuid;

use crate::audit::{AuditEvent, AuditKind, OpenCall, Room};
use crate::cache::LiveSecret;
use crate::crypto::open_value;
use crate::error::{ApiError, ErrorCode};
use crate::inject::{self, BodyNeed, InjectRequest, Injector, Payload};
use crate::redact::Credential;
use crate::request_id::RequestId;
use crate::state::AppState;
use crate::vault::{ApiKey, Grant, GrantStatus, now};

use authn::Found;
use body::{LimitedBody, OutboundBody, StreamEnd, TrackedBody};

/// Bodies up to this size are hashed for S3 signatures; larger ones stream as
/// `UNSIGNED-PAYLOAD`, which S3 accepts (TLS protects their integrity on the way).
const S3_HASH_LIMIT: u64 = 1024 * 1024;

/// How long a call waits for room in a full audit backlog before it is refused with
/// `audit_unavailable`. Long enough to ride out indexing falling behind for a moment (one
/// batch takes tens of milliseconds), short enough that a database that stopped taking
/// writes turns into fast refusals.
const AUDIT_PATIENCE: std::time::Duration = std::time::Duration::from_secs(1);

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/proxy", any(explicit))
        .route("/v1/grants/{grant_id}", any(base_url_root))
        .route("/v1/grants/{grant_id}/", any(base_url_root))
        .route("/v1/grants/{grant_id}/{*path}", any(base_url))
}

enum Mode {
    /// `/v1/proxy` with `X-Credgate-Grant` and `X-Credgate-Target`.
    Explicit,
    /// `/v1/grants/<grant_id>/<path>`: the secret's base URL + path + query.
    BaseUrl { grant: String, path: String },
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

/// A refusal or failure, and whether the credential had already been sent.
struct Failure {
    error: ApiError,
    forwarded: bool,
}

impl From<ApiError> for Failure {
    fn from(error: ApiError) -> Self {
        Self {
            error,
            forwarded: false,
        }
    }
}

fn refuse(code: ErrorCode, message: impl Into<String>) -> Failure {
    ApiError::new(code, message).into()
}

async fn handle(state: AppState, req: Request, mode: Mode) -> Response {
    let mut response = answer(state, req, mode).await;
    headers::contain(response.headers_mut());
    response
}

async fn answer(state: AppState, req: Request, mode: Mode) -> Response {
    let started = Instant::now();
    // The permit is the limit itself; `crate::shed` only turns calls away earlier, before
    // routing, when none is left. A call refused here (it lost the race for the last permit)
    // has had no event, lookup, decrypt or audit write either.
    let Ok(permit) = state.in_flight.clone().try_acquire_owned() else {
        return crate::shed::overloaded(&state, started);
    };
    // Room for the call's record, waited for before any work. Not audited when refused: the
    // trail cannot take it (hence the refusal), and nothing was attempted.
    let Some(room) = state.audit.room(AUDIT_PATIENCE).await else {
        return crate::shed::audit_backlogged(&state, started);
    };
    let request_id = req
        .extensions()
        .get::<RequestId>()
        .map(|r| r.0.clone())
        .unwrap_or_default();
    // Read before authentication takes the SDK's signature away.
    let aws = crate::aws_errors::shape_of(req.headers(), req.uri().query());
    let mut event = AuditEvent::new(AuditKind::Proxy, "proxy.request", "allowed");
    event.request_id = Some(request_id);
    event.method = Some(req.method().as_str().to_owned());
    let mut provider = String::from("none");
    // Set once the call's opening is journaled: from then on its outcome goes through it, and
    // should this future be dropped mid-call, dropping it records the call as abandoned.
    let mut opened: Option<OpenCall> = None;
    match run(
        &state,
        req,
        mode,
        &mut event,
        &mut opened,
        &mut provider,
        started,
        permit,
        room,
    )
    .await
    {
        Ok(response) => response,
        Err(Failure { error, forwarded }) => {
            let elapsed = started.elapsed();
            event.action = if forwarded { "proxy.response" } else { "proxy.request" }.into();
            // Same id as the opening, if one was journaled: this outcome closes it.
            event.at = now();
            event.outcome = error.code.as_str().into();
            event.status = Some(error.code.status().as_u16());
            event.message = Some(error.message.clone());
            event.latency_ms = Some(elapsed.as_secs_f64() * 1e3);
            state.metrics.call(error.code.as_str(), &provider, elapsed);
            match opened.take() {
                Some(call) => call.close(|opening| *opening = event),
                None => state.audit.record_detached(event),
            }
            let retry = error.code == ErrorCode::AuditUnavailable;
            let mut response = error.into_response();
            if let Some(render) = response.extensions_mut().get_mut::<crate::error::ErrorRender>() {
                render.aws = aws;
            }
            if retry {
                // As when `crate::shed` refuses it: the backlog drains by itself.
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, http::HeaderValue::from_static("1"));
            }
            response
        }
    }
}

#[allow(clippy::too_many_arguments)]
async fn run(
    state: &AppState,
    req: Request,
    mode: Mode,
    event: &mut AuditEvent,
    opened: &mut Option<OpenCall>,
    provider: &mut String,
    started: Instant,
    permit: tokio::sync::OwnedSemaphorePermit,
    room: Room,
) -> Result<Response, Failure> {
    let (parts, body) = req.into_parts();
    let method = parts.method.clone();
    if never_forwarded(method.as_str()) {
        return Err(refuse(
            ErrorCode::MethodNotAllowed,
            format!("credgate never forwards {method}: it would reflect the credential or open a tunnel"),
        ));
    }
    let mut headers = headers::to_upstream(&parts.headers);
    // Proxy-Authorization is hop-by-hop, so `to_upstream` dropped it; look for it where it came.
    if let Some(value) = parts.headers.get(header::PROXY_AUTHORIZATION) {
        headers.insert(header::PROXY_AUTHORIZATION, value.clone());
    }

    // The grant id (before the key, but only to know where to look for the key: nothing is
    // looked up until the key is checked).
    let (grant_text, sdk_slots) = match &mode {
        Mode::Explicit => {
            let grant = parts
                .headers
                .get(target::GRANT_HEADER)
                .and_then(|v| v.to_str().ok())
                .map(str::trim)
                .map(str::to_owned)
                .unwrap_or_default();
            (grant, false)
        }
        Mode::BaseUrl { grant, .. } => (grant.clone(), true),
    };

    // The target's query, provisionally: it may hold the app key, which must be found and
    // removed with the rest, in either mode.
    let mut query: Option<String> = match &mode {
        Mode::BaseUrl { .. } => parts.uri.query().map(str::to_owned),
        Mode::Explicit => target::explicit_query(&parts.headers),
    };

    // 1. Authenticate.
    let key = match authn::take_app_key(&mut headers, &mut query, sdk_slots) {
        Found::One(key) => key,
        Found::None => {
            return Err(refuse(
                ErrorCode::Unauthenticated,
                "missing app key: send `Proxy-Authorization: Bearer <app key>`",
            ));
        }
        Found::Conflicting => {
            return Err(refuse(
                ErrorCode::Unauthenticated,
                "the request carries two different app keys",
            ));
        }
    };
    let api_key = authenticate(state, &key).await?;
    event.key_id = Some(api_key.id);
    event.principal_id = Some(api_key.principal_id);
    event.actor = Some(format!("principal:{}", api_key.principal_id));

    // 2. Resolve the grant.
    if grant_text.is_empty() {
        return Err(refuse(
            ErrorCode::BadRequest,
            "missing X-Credgate-Grant: the grant id to use",
        ));
    }
    let grant_id = Uuid::parse_str(&grant_text)
        .map_err(|_| refuse(ErrorCode::GrantNotFound, "no grant with that id (grant ids are UUIDs)"))?;
    event.grant_id = Some(grant_id);
    let grant = state
        .cache
        .grant(state.store.as_ref(), grant_id)
        .await
        .map_err(ApiError::from)?
        .ok_or_else(|| refuse(ErrorCode::GrantNotFound, "no grant with that id"))?;
    event.secret_id = Some(grant.secret_id);

    // 3. Authorise the principal.
    authorise(state, &api_key, &grant).await?;

    // 4. Policy: lifetime now, method and path once the target is known.
    match grant.status(now()) {
        GrantStatus::Revoked => return Err(refuse(ErrorCode::GrantRevoked, "this grant has been revoked")),
        GrantStatus::Expired => return Err(refuse(ErrorCode::GrantExpired, "this grant has expired")),
        GrantStatus::Active => {}
    }
    if !grant.grant_policy.allows_method(method.as_str()) {
        return Err(refuse(
            ErrorCode::PolicyViolation,
            format!("this grant does not allow {method}"),
        ));
    }
    // Frameworks that honour a method-override header run the method it names, so the grant
    // must allow that one too.
    for name in headers::METHOD_OVERRIDES {
        for value in parts.headers.get_all(&name) {
            let named = value.to_str().map(str::trim).unwrap_or_default().to_ascii_uppercase();
            if named.is_empty() || never_forwarded(&named) || !grant.grant_policy.allows_method(&named) {
                return Err(refuse(
                    ErrorCode::PolicyViolation,
                    format!("this grant does not allow the method named by {name}"),
                ));
            }
        }
    }
    let secret = state
        .cache
        .secret(state.store.as_ref(), grant.secret_id)
        .await
        .map_err(ApiError::from)?
        .ok_or_else(|| refuse(ErrorCode::GrantRevoked, "this grant's secret has been deleted"))?;
    event.secret_version = Some(secret.meta.version);
    let injector = injector_for(state, &secret).await?;
    *provider = injector.id().to_owned();
    event.provider = Some(injector.id().to_owned());
    event.provider_version = Some(injector.version().to_owned());

    let mut target = match &mode {
        Mode::Explicit => target::explicit(&parts.headers, query)?,
        Mode::BaseUrl { path, .. } => {
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
    };
    event.host = target.url.host_str().map(str::to_owned);
    event.path = Some(target.path.clone());
    if !grant.grant_policy.allows_path(&target.path) {
        return Err(refuse(
            ErrorCode::PolicyViolation,
            format!("this grant does not allow the path `{}`", target.path),
        ));
    }
    // An S3 copy (CopyObject, UploadPartCopy) reads the object its `x-amz-copy-source` names:
    // the grant's path limits bind that object as they bind the request's own path.
    for source in parts.headers.get_all(headers::COPY_SOURCE) {
        let named = target::copy_source_path(source.as_bytes())?;
        if !grant.grant_policy.allows_path(&named) {
            return Err(refuse(
                ErrorCode::PolicyViolation,
                format!("this grant does not allow copying from `{named}`"),
            ));
        }
    }

    // 5. Destination.
    destination::check(
        &target.url,
        &secret.meta,
        &secret.allowed_hosts,
        &state.upstream.resolver,
    )
    .await?;

    // 6. Body bound, before anything is decrypted.
    let limit = state.settings.max_body_bytes;
    let content_length = parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if content_length.is_some_and(|n| n > limit) {
        linger(body).await;
        return Err(refuse(
            ErrorCode::PayloadTooLarge,
            format!("the request body is larger than {limit} bytes"),
        ));
    }

    // The caller's own copies of the credential's headers and parameters go, so exactly one
    // credential reaches the upstream.
    for name in injector.credential_headers(&secret.meta.config) {
        headers.remove(name.as_str());
    }
    if secret.meta.redact_responses {
        // A body to be scrubbed must come as plain bytes, and whole: a compressed body hides
        // the value from the scrubber, and a range could return a value's second half alone.
        headers.insert(header::ACCEPT_ENCODING, http::HeaderValue::from_static("identity"));
        headers.remove(header::RANGE);
        headers.remove(header::IF_RANGE);
    }
    let params = injector.credential_params(&secret.meta.config);
    if !params.is_empty()
        && let Some(q) = target.query.as_deref()
    {
        let kept = crate::query::without(q, |name, _| params.iter().any(|p| p == name));
        target.set_query(kept);
    }

    // 7. The body as the injector needs it: streamed, or (to be signed) read and hashed.
    let seen = Arc::new(AtomicU64::new(0));
    let (payload, outbound_body) = prepare_body(
        injector.as_ref(),
        &secret,
        &target.url,
        &headers,
        body,
        content_length,
        limit,
        &seen,
    )
    .await?;
    if let Payload::Sha256(_) | Payload::Unsigned(_) = &payload {
        headers.remove("x-amz-content-sha256");
    }

    // 8. Decrypt and inject.
    let injection_started = Instant::now();
    let credential = decrypt(state, &secret)?;
    let edits = injector
        .inject(
            &InjectRequest {
                method: &method,
                url: &target.url,
                headers: &headers,
                payload,
            },
            &credential,
            &secret.meta.config,
        )
        .await
        .map_err(|e| {
            state.metrics.provider_failure(injector.id());
            if state.settings.log_plugin_errors {
                tracing::warn!(provider = injector.id(), error = %e, "injection failed");
            } else {
                tracing::warn!(provider = injector.id(), error = %e.summary(), "injection failed");
            }
            refuse(
                ErrorCode::ProviderError,
                format!(
                    "provider `{}` could not inject the credential: {}",
                    injector.id(),
                    e.summary()
                ),
            )
        })?;
    // What must not come back, taken while the credential is at hand.
    let needles = scrub::Needles::new(&credential, &edits);
    drop(credential);
    let mut query = target.query.take();
    let injected_params = inject::apply(edits, &mut headers, &mut query).map_err(|e| {
        if state.settings.log_plugin_errors {
            tracing::warn!(provider = injector.id(), error = %e, "injection refused");
        }
        refuse(
            ErrorCode::ProviderError,
            format!("provider `{}`'s injection was refused: {}", injector.id(), e.summary()),
        )
    })?;
    target.set_query(query);
    state.metrics.injection(injector.id(), injection_started.elapsed());
    event.path = Some(match &target.query {
        Some(q) => format!("{}?{}", target.path, crate::query::redacted(q, &injected_params)),
        None => target.path.clone(),
    });
    let uri = target.uri()?;

    // 9. Journal the call's opening, durably, before the credential leaves. Should credgate
    // stop before the outcome is recorded, the opening is chained as `interrupted`.
    event.action = "proxy.response".into();
    state.audit.open(event, opened).await.map_err(|_| {
        refuse(
            ErrorCode::AuditUnavailable,
            "the audit trail cannot be written, so the call was not made",
        )
    })?;
    // The opening now counts in the backlog itself.
    drop(room);

    // 10. Forward.
    let mut outbound = http::Request::new(outbound_body);
    *outbound.method_mut() = method;
    *outbound.uri_mut() = uri;
    *outbound.headers_mut() = headers;
    let client = state.upstream.client(secret.meta.allow_private_destinations);
    let upstream_started = Instant::now();
    let send = client.request(outbound);
    let response = match tokio::time::timeout(state.upstream.first_byte_timeout, send).await {
        Err(_) => {
            return Err(forwarded(
                ErrorCode::UpstreamTimeout,
                "the upstream did not answer in time",
            ));
        }
        Ok(Err(e)) => return Err(forwarded_error(&e)),
        Ok(Ok(response)) => response,
    };
    state.metrics.upstream(injector.id(), upstream_started.elapsed());

    // 11. Stream back, and record the result when the stream ends.
    let status = response.status();
    let (up_parts, up_body) = response.into_parts();
    let mut caller_headers = headers::to_caller(&up_parts.headers);
    needles.scrub_headers(&mut caller_headers);
    let up_body = if secret.meta.redact_responses {
        if let Some(encoding) = up_parts
            .headers
            .get(header::CONTENT_ENCODING)
            .filter(|v| !v.as_bytes().eq_ignore_ascii_case(b"identity"))
        {
            tracing::info!(encoding = ?encoding, "compressed response refused: it cannot be scrubbed");
            return Err(forwarded(
                ErrorCode::UpstreamUnreachable,
                "the upstream answered with a compressed body although asked not to; this secret's responses are scrubbed, which needs plain bytes",
            ));
        }
        scrub::ScrubbedBody::wrap(up_body, needles)
    } else {
        Either::Left(up_body)
    };
    let upstream_latency_ms = upstream_started.elapsed().as_secs_f64() * 1e3;
    let call = opened
        .take()
        .ok_or_else(|| ApiError::internal("a forwarded call has no journaled opening"))?;
    let metrics = state.clone();
    let provider_id = injector.id().to_owned();
    let tracked = TrackedBody::new(up_body, state.upstream.idle_timeout, move |bytes_out, end| {
        let outcome = match end {
            StreamEnd::Complete => "ok",
            StreamEnd::UpstreamError => "upstream_error",
            StreamEnd::Abandoned => "abandoned",
        };
        metrics.metrics.call(outcome, &provider_id, started.elapsed());
        call.close(|result| {
            result.at = now();
            result.outcome = outcome.into();
            result.status = Some(status.as_u16());
            result.upstream_latency_ms = Some(upstream_latency_ms);
            result.bytes_in = Some(seen.load(std::sync::atomic::Ordering::Relaxed));
            result.bytes_out = Some(bytes_out);
            result.latency_ms = Some(started.elapsed().as_secs_f64() * 1e3);
        });
        // The call is in flight until its response has streamed out.
        drop(permit);
    });
    let mut out = Response::new(axum::body::Body::new(tracked));
    *out.status_mut() = status;
    *out.headers_mut() = caller_headers;
    Ok(out)
}

/// Methods credgate never forwards, whatever a grant allows: `TRACE` and `TRACK` make an
/// upstream echo the request (credential included) back, `CONNECT` would open a tunnel past
/// every check.
fn never_forwarded(method: &str) -> bool {
    ["TRACE", "TRACK", "CONNECT"]
        .iter()
        .any(|m| m.eq_ignore_ascii_case(method))
}

/// Reads and discards a refused body for a little while before answering, as nginx's lingering
/// close does: a client still busy sending would otherwise see a reset connection instead of
/// the 413. Bounded in bytes and time, and the bytes go nowhere.
async fn linger(body: axum::body::Body) {
    const MAX_BYTES: usize = 256 << 20;
    const MAX_TIME: std::time::Duration = std::time::Duration::from_secs(5);
    let drain = async {
        let mut body = body;
        let mut seen = 0usize;
        while let Some(Ok(frame)) = body.frame().await {
            seen += frame.data_ref().map_or(0, Bytes::len);
            if seen > MAX_BYTES {
                break;
            }
        }
    };
    let _ = tokio::time::timeout(MAX_TIME, drain).await;
}

fn forwarded(code: ErrorCode, message: &str) -> Failure {
    Failure {
        error: ApiError::new(code, message),
        forwarded: true,
    }
}

/// Classifies a failed upstream call by where it failed.
fn forwarded_error(e: &hyper_util::client::legacy::Error) -> Failure {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    let mut timed_out = false;
    while let Some(s) = source {
        if let Some(too_large) = s.downcast_ref::<body::TooLarge>() {
            return forwarded(ErrorCode::PayloadTooLarge, &too_large.to_string());
        }
        timed_out |= s.is::<client::ConnectTimedOut>()
            || s.downcast_ref::<std::io::Error>()
                .is_some_and(|io| io.kind() == std::io::ErrorKind::TimedOut);
        source = s.source();
    }
    if timed_out {
        return forwarded(ErrorCode::UpstreamTimeout, "the upstream did not answer in time");
    }
    let detail = if e.is_connect() {
        "cannot connect to the upstream"
    } else {
        "the upstream call failed"
    };
    // The request's URL, which may carry an injected query parameter, is not part of these
    // errors: hyper's never name it.
    tracing::info!(error = %error_chain(e), "upstream call failed");
    forwarded(ErrorCode::UpstreamUnreachable, detail)
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

async fn authenticate(state: &AppState, key: &str) -> Result<Arc<ApiKey>, Failure> {
    let unauthenticated = || refuse(ErrorCode::Unauthenticated, "invalid app key");
    let prefix =
        crate::vault::token::prefix_of(crate::vault::token::TokenKind::App, key).ok_or_else(unauthenticated)?;
    let record = state
        .cache
        .api_key(state.store.as_ref(), prefix)
        .await
        .map_err(ApiError::from)?
        .ok_or_else(unauthenticated)?;
    if !crate::vault::token::verify(key, &record.hash) {
        return Err(unauthenticated());
    }
    if !record.is_usable(now()) {
        return Err(refuse(
            ErrorCode::Unauthenticated,
            "this app key has been revoked or has expired",
        ));
    }
    Ok(record)
}

/// The key's principal holds the grant, or is a member of the group that does.
async fn authorise(state: &AppState, key: &ApiKey, grant: &Grant) -> Result<(), Failure> {
    if key.principal_id == grant.principal_id {
        return Ok(());
    }
    let groups = state
        .cache
        .groups_of(state.store.as_ref(), key.principal_id)
        .await
        .map_err(ApiError::from)?;
    if groups.contains(&grant.principal_id) {
        return Ok(());
    }
    Err(refuse(ErrorCode::Forbidden, "this grant belongs to another principal"))
}

async fn injector_for(state: &AppState, secret: &LiveSecret) -> Result<Arc<dyn Injector>, Failure> {
    if let Some(native) = inject::native(&secret.meta.secret_type) {
        return Ok(native);
    }
    match state
        .providers
        .get_or_fetch(&secret.meta.secret_type, state.store.as_ref())
        .await
    {
        Some(Ok(plugin)) => Ok(Arc::new(inject::WasmInjector { plugin })),
        Some(Err(e)) => Err(refuse(
            ErrorCode::ProviderError,
            format!("provider `{}` cannot be loaded: {e}", secret.meta.secret_type),
        )),
        None => Err(refuse(
            ErrorCode::ProviderError,
            format!("no provider is loaded for type `{}`", secret.meta.secret_type),
        )),
    }
}

fn decrypt(state: &AppState, secret: &LiveSecret) -> Result<Credential, Failure> {
    let ring = state.keyring.current();
    let plaintext = open_value(&ring, &secret.meta.id.to_string(), secret.meta.version, &secret.sealed)
        .map_err(|e| ApiError::internal(format!("cannot open secret {}: {e}", secret.meta.id)))?;
    Credential::from_plaintext(&plaintext)
        .map_err(|_| ApiError::internal(format!("secret {} holds an unreadable value", secret.meta.id)).into())
}

/// Reads and hashes the body when the injector signs it, else streams it through bounded.
#[allow(clippy::too_many_arguments)]
async fn prepare_body(
    injector: &dyn Injector,
    secret: &LiveSecret,
    url: &Url,
    headers: &HeaderMap,
    body: axum::body::Body,
    content_length: Option<u64>,
    limit: u64,
    seen: &Arc<AtomicU64>,
) -> Result<(Payload, OutboundBody), Failure> {
    let stream = |body| Either::Left(LimitedBody::new(body, limit, seen.clone()));
    let BodyNeed::Sha256 { may_stream_unsigned } = injector.body_need(&secret.meta.config, url) else {
        return Ok((Payload::NotNeeded, stream(body)));
    };
    // An AWS SDK says how it sends the payload; credgate signs that declaration.
    if let Some(declared) = headers.get("x-amz-content-sha256").and_then(|v| v.to_str().ok()) {
        match declared {
            "UNSIGNED-PAYLOAD" | "STREAMING-UNSIGNED-PAYLOAD-TRAILER" => {
                return Ok((Payload::Unsigned(declared.to_owned()), stream(body)));
            }
            hash if hash.len() == 64 && hash.bytes().all(|b| b.is_ascii_hexdigit()) => {
                return Ok((Payload::Sha256(hash.to_ascii_lowercase()), stream(body)));
            }
            other if other.starts_with("STREAMING-") => {
                return Err(refuse(
                    ErrorCode::BadRequest,
                    "signed streaming uploads (STREAMING-AWS4-HMAC-SHA256-PAYLOAD) cannot be re-signed; configure the SDK for unsigned payloads",
                ));
            }
            _ => {}
        }
    }
    if may_stream_unsigned && content_length.is_none_or(|n| n > S3_HASH_LIMIT) {
        return Ok((Payload::Unsigned("UNSIGNED-PAYLOAD".into()), stream(body)));
    }
    let bytes: Bytes = http_body_util::Limited::new(body, limit as usize)
        .collect()
        .await
        .map_err(|_| {
            refuse(
                ErrorCode::PayloadTooLarge,
                format!("the request body is larger than {limit} bytes"),
            )
        })?
        .to_bytes();
    seen.store(bytes.len() as u64, std::sync::atomic::Ordering::Relaxed);
    let hash = hex::encode(Sha256::digest(&bytes));
    Ok((Payload::Sha256(hash), Either::Right(Full::new(bytes))))
}
