//! The portal's sign-in through the company's OpenID Provider: authorization code with PKCE
//! ([`flow`]), roles from the provider's groups claim mapped to admin scopes by configuration,
//! and a session kept in the database behind an `HttpOnly; Secure; SameSite=Strict` cookie.
//! The admin API accepts the session like a token; every change made with it must also carry
//! `X-Credgate-CSRF` (see [`session_caller`]). The admin-token sign-in stays, for bootstrap.
//!
//! Routes: `GET /portal/oidc/config` (whether the portal offers it), `GET /portal/oidc/login`
//! (to the provider), `GET /portal/oidc/callback` (back from it), `POST /portal/oidc/logout`.

pub mod flow;

use std::collections::BTreeSet;

use axum::Router;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use chrono::Duration;
use http::{HeaderMap, HeaderValue, StatusCode, header};
use serde::Deserialize;
use subtle::ConstantTimeEq;

use crate::admin_tokens::Caller;
use crate::audit::{AuditEvent, AuditKind};
use crate::clock::now;
use crate::error::{ApiError, ErrorCode};
use crate::identity::UserTokenError;
use crate::state::AppState;
use crate::vault::scope::Scope;
use crate::vault::session::{PortalSession, SigninAttempt};

/// The session cookie. `__Host-`: only ever set by this origin itself, over a secure
/// connection, for the whole origin, never for a domain.
pub const SESSION_COOKIE: &str = "__Host-credgate_session";
/// The cookie binding a sign-in in flight to the browser that began it.
const SIGNIN_COOKIE: &str = "__Secure-credgate_signin";
/// The header every change made with a session must carry.
pub const CSRF_HEADER: &str = "x-credgate-csrf";
/// How long a session lasts; signing in again starts a new one.
pub const SESSION_HOURS: i64 = 8;
/// How long a sign-in may take at the provider.
const ATTEMPT_MINUTES: i64 = 10;
const CALLBACK: &str = "/portal/oidc/callback";

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/portal/oidc/config", get(config))
        .route("/portal/oidc/login", get(login))
        .route(CALLBACK, get(callback))
        .route("/portal/oidc/logout", post(logout))
}

/// Whether the portal offers sign-in through a provider, for its sign-in page.
async fn config(State(state): State<AppState>) -> Response {
    let issuer = state.identity.portal().map(|t| t.keys.url.clone());
    axum::Json(serde_json::json!({"enabled": issuer.is_some(), "issuer": issuer})).into_response()
}

fn not_configured() -> Response {
    ApiError::new(
        ErrorCode::NotFound,
        "the portal has no identity provider to sign in through (see --oidc-client-id)",
    )
    .into_response()
}

fn redirect_uri(state: &AppState) -> String {
    format!("{}{CALLBACK}", state.public_origin())
}

/// Sign-ins begun per second at most, in this process: each is a database write, and anyone
/// may ask for one.
const STARTS_PER_SECOND: u32 = 20;

/// Whether another sign-in may begin now (a fixed one-second window).
fn may_start() -> bool {
    static WINDOW: std::sync::Mutex<Option<(std::time::Instant, u32)>> = std::sync::Mutex::new(None);
    let mut window = WINDOW.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let now = std::time::Instant::now();
    match window.as_mut() {
        Some((start, count)) if now.duration_since(*start) < std::time::Duration::from_secs(1) => {
            *count += 1;
            *count <= STARTS_PER_SECOND
        }
        _ => {
            *window = Some((now, 1));
            true
        }
    }
}

/// Sends the browser to the provider, remembering the attempt.
async fn login(State(state): State<AppState>) -> Response {
    let Some(trusted) = state.identity.portal() else {
        return not_configured();
    };
    if !may_start() {
        let mut response = page(
            StatusCode::TOO_MANY_REQUESTS,
            "Sign-in is busy",
            "too many sign-ins are beginning at once; try again in a moment",
        );
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        return response;
    }
    let endpoints = match trusted.keys.endpoints(&state.upstream).await {
        Ok(e) => e,
        Err(e) => return page(StatusCode::BAD_GATEWAY, "Sign-in is not available", &e.to_string()),
    };
    let (state_value, verifier, nonce) = (flow::random_token(), flow::random_token(), flow::random_token());
    let attempt = SigninAttempt {
        state_hash: flow::hash(&state_value),
        verifier: verifier.clone(),
        nonce: nonce.clone(),
        expires_at: now() + Duration::minutes(ATTEMPT_MINUTES),
    };
    if let Err(e) = state.store.insert_signin(&attempt).await {
        return ApiError::from(e).into_response();
    }
    let redirect = redirect_uri(&state);
    let url = flow::Authorize {
        endpoint: &endpoints.authorization,
        client_id: trusted.config.client_id.as_deref().unwrap_or_default(),
        redirect_uri: &redirect,
        scopes: &trusted.config.signin_scopes,
        state: &state_value,
        nonce: &nonce,
        verifier: &verifier,
    }
    .url();
    let Ok(url) = url else {
        return page(
            StatusCode::BAD_GATEWAY,
            "Sign-in is not available",
            "the identity provider's authorization endpoint is not a URL",
        );
    };
    // Lax, not Strict: the provider sends the browser back with a cross-site navigation.
    let cookie = format!(
        "{SIGNIN_COOKIE}={state_value}; Path=/portal/oidc; Max-Age={}; HttpOnly; Secure; SameSite=Lax",
        ATTEMPT_MINUTES * 60
    );
    let mut response = StatusCode::FOUND.into_response();
    let headers = response.headers_mut();
    if let Ok(location) = HeaderValue::from_str(url.as_str()) {
        headers.insert(header::LOCATION, location);
    }
    if let Ok(cookie) = HeaderValue::from_str(&cookie) {
        headers.insert(header::SET_COOKIE, cookie);
    }
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

#[derive(Deserialize)]
struct Callback {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
}

/// Back from the provider: the attempt is finished (once), the code exchanged, the ID token
/// verified (issuer, audience = the portal's client, nonce), the person's groups mapped to
/// scopes, and a session begun.
async fn callback(State(state): State<AppState>, headers: HeaderMap, Query(q): Query<Callback>) -> Response {
    let Some(trusted) = state.identity.portal() else {
        return not_configured();
    };
    let failed = |status, why: &str| page(status, "Sign-in failed", why);
    if let Some(error) = q.error {
        // The provider's error code is a short token (RFC 6749 4.1.2.1); shown only if it is one.
        let code = if error.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            error
        } else {
            "error".into()
        };
        return failed(
            StatusCode::FORBIDDEN,
            &format!("the identity provider answered `{code}`"),
        );
    }
    let (Some(code), Some(state_value)) = (q.code, q.state) else {
        return failed(StatusCode::BAD_REQUEST, "the answer has no code or no state");
    };
    // The state must be the one this browser was given: a sign-in cannot be finished in
    // another browser (login CSRF).
    let bound = cookie(&headers, SIGNIN_COOKIE).is_some_and(|c| bool::from(c.as_bytes().ct_eq(state_value.as_bytes())));
    if !bound {
        return failed(
            StatusCode::BAD_REQUEST,
            "this sign-in was not begun in this browser, or it took too long; sign in again",
        );
    }
    let attempt = match state.store.take_signin(&flow::hash(&state_value), now()).await {
        Ok(Some(a)) => a,
        Ok(None) => {
            return failed(
                StatusCode::BAD_REQUEST,
                "this sign-in is unknown, used or expired; sign in again",
            );
        }
        Err(e) => return ApiError::from(e).into_response(),
    };
    let client_id = trusted.config.client_id.clone().unwrap_or_default();
    let endpoints = match trusted.keys.endpoints(&state.upstream).await {
        Ok(e) => e,
        Err(e) => return failed(StatusCode::BAD_GATEWAY, &e.to_string()),
    };
    let secret = state.identity.config.client_secret.as_ref().map(|s| s.expose());
    let id_token = match flow::exchange(
        &state.upstream,
        &endpoints.token,
        &client_id,
        secret,
        &redirect_uri(&state),
        &code,
        &attempt.verifier,
    )
    .await
    {
        Ok(t) => t,
        Err(e) => return failed(StatusCode::BAD_GATEWAY, &e.to_string()),
    };
    let claims = match trusted
        .keys
        .verify_for(&state.upstream, &id_token, now().timestamp(), &client_id)
        .await
    {
        Ok(c) => c,
        Err(e) => return failed(StatusCode::FORBIDDEN, &UserTokenError::from(e).to_string()),
    };
    let nonce_ok = claims
        .get("nonce")
        .and_then(serde_json::Value::as_str)
        .is_some_and(|n| bool::from(n.as_bytes().ct_eq(attempt.nonce.as_bytes())));
    if !nonce_ok {
        return failed(StatusCode::FORBIDDEN, "the ID token is not for this sign-in (nonce)");
    }
    let user = match crate::identity::user_of(trusted, &claims) {
        Ok(u) => u,
        Err(e) => return failed(StatusCode::FORBIDDEN, &e.to_string()),
    };
    let scopes = scopes_for(&trusted.config.roles, &user.groups);
    let actor = format!("oidc:{} ({})", user.subject, user.display);
    if scopes.is_empty() {
        let mut event = AuditEvent::new(AuditKind::Admin, "portal.signin", ErrorCode::Forbidden.as_str());
        event.actor = Some(actor);
        event.message = Some("no group of theirs has a role in credgate".into());
        state.audit.record_detached(event);
        return failed(
            StatusCode::FORBIDDEN,
            "your account has no role in credgate: none of your groups is given one (--oidc-role)",
        );
    }
    let session_id = flow::random_token();
    let created = now();
    let session = PortalSession {
        id_hash: flow::hash(&session_id),
        actor: actor.clone(),
        scopes,
        created_at: created,
        expires_at: created + Duration::hours(SESSION_HOURS),
    };
    let mut event = AuditEvent::new(AuditKind::Admin, "portal.signin", "ok");
    event.actor = Some(actor);
    if let Err(e) = state.store.insert_session(&session, &event).await {
        return ApiError::from(e).into_response();
    }
    // The cookie is Strict, so the browser withholds it on this cross-site answer's own
    // navigation; the page moves on to the portal with a same-site one, which carries it.
    let mut response = page(StatusCode::OK, "Signed in", "Opening the portal…");
    let h = response.headers_mut();
    h.insert(header::REFRESH, HeaderValue::from_static("0; url=/portal/"));
    for cookie in [
        format!(
            "{SESSION_COOKIE}={session_id}; Path=/; Max-Age={}; HttpOnly; Secure; SameSite=Strict",
            SESSION_HOURS * 3600
        ),
        format!("{SIGNIN_COOKIE}=; Path=/portal/oidc; Max-Age=0; HttpOnly; Secure; SameSite=Lax"),
    ] {
        if let Ok(v) = HeaderValue::from_str(&cookie) {
            h.append(header::SET_COOKIE, v);
        }
    }
    response
}

/// The scopes the person's groups are given, together.
fn scopes_for(roles: &std::collections::BTreeMap<String, Vec<Scope>>, groups: &[String]) -> Vec<Scope> {
    let set: BTreeSet<Scope> = groups.iter().filter_map(|g| roles.get(g)).flatten().copied().collect();
    set.into_iter().collect()
}

/// Ends the session: forgotten in the database, the cookie cleared. Needs the CSRF header.
async fn logout(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let session = match session_caller(&state, &headers, &http::Method::POST).await {
        Some(Ok((caller, id_hash))) => (caller, id_hash),
        Some(Err(e)) => return e.into_response(),
        None => return ApiError::unauthenticated("no portal session to sign out of").into_response(),
    };
    let mut event = AuditEvent::new(AuditKind::Admin, "portal.signout", "ok");
    event.actor = Some(session.0.actor);
    if let Err(e) = state.store.delete_session(&session.1, &event).await {
        return ApiError::from(e).into_response();
    }
    let mut response = StatusCode::NO_CONTENT.into_response();
    if let Ok(v) = HeaderValue::from_str(&format!(
        "{SESSION_COOKIE}=; Path=/; Max-Age=0; HttpOnly; Secure; SameSite=Strict"
    )) {
        response.headers_mut().insert(header::SET_COOKIE, v);
    }
    response
}

/// The caller a session cookie stands for, and its id hash: `None` without a session cookie;
/// an error for an unknown or expired session, or a change without the right CSRF header.
pub async fn session_caller(
    state: &AppState,
    headers: &HeaderMap,
    method: &http::Method,
) -> Option<Result<(Caller, String), ApiError>> {
    let id = cookie(headers, SESSION_COOKIE)?;
    let id_hash = flow::hash(id);
    let session = match state.store.portal_session(&id_hash, now()).await {
        Ok(Some(s)) => s,
        Ok(None) => {
            return Some(Err(ApiError::unauthenticated(
                "the portal session has ended; sign in again",
            )));
        }
        Err(e) => return Some(Err(e.into())),
    };
    let safe = matches!(*method, http::Method::GET | http::Method::HEAD);
    if !safe {
        let expected = flow::csrf_of(id);
        let presented = headers.get(CSRF_HEADER).map(HeaderValue::as_bytes).unwrap_or_default();
        if !bool::from(presented.ct_eq(expected.as_bytes())) {
            return Some(Err(ApiError::new(
                ErrorCode::Forbidden,
                format!("a change made with a portal session needs its {CSRF_HEADER} header"),
            )));
        }
    }
    Some(Ok((
        Caller {
            actor: session.actor,
            scopes: session.scopes,
        },
        id_hash,
    )))
}

/// The session's CSRF value, for `whoami` to hand to the portal's script.
pub fn csrf_for(headers: &HeaderMap) -> Option<String> {
    cookie(headers, SESSION_COOKIE).map(flow::csrf_of)
}

/// One cookie's value; none when it is sent twice (a second one, set for a narrower path by
/// someone else, must not push the real one aside or be taken for it).
fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    let mut found = headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .filter(|(n, _)| *n == name)
        .map(|(_, v)| v);
    let first = found.next()?;
    (found.next().is_none() && !first.is_empty()).then_some(first)
}

/// A small page for the browser, under the portal's strict policy.
fn page(status: StatusCode, title: &str, text: &str) -> Response {
    let escape = |s: &str| {
        s.replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
            .replace('"', "&quot;")
    };
    let body = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{t} · credgate</title></head>\
         <body><h1>{t}</h1><p data-testid=\"signin-message\">{m}</p><p><a href=\"/portal/\">Back to the portal</a></p></body></html>",
        t = escape(title),
        m = escape(text)
    );
    let mut response = (status, body).into_response();
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'none'; base-uri 'none'; frame-ancestors 'none'"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_map_to_the_union_of_their_roles() {
        let roles = [
            ("eng".to_owned(), vec![Scope::SecretsRead, Scope::AuditRead]),
            ("ops".to_owned(), vec![Scope::AuditRead, Scope::ApprovalsDecide]),
        ]
        .into_iter()
        .collect();
        assert_eq!(
            scopes_for(&roles, &["eng".into(), "ops".into(), "other".into()]),
            vec![Scope::SecretsRead, Scope::AuditRead, Scope::ApprovalsDecide]
        );
        assert!(scopes_for(&roles, &["other".into()]).is_empty());
    }

    #[test]
    fn cookies_are_read_by_exact_name() {
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("x__Host-credgate_session=no; __Host-credgate_session=yes"),
        );
        assert_eq!(cookie(&h, SESSION_COOKIE), Some("yes"));
        assert_eq!(cookie(&h, SIGNIN_COOKIE), None);
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("__Host-credgate_session=planted; __Host-credgate_session=yes"),
        );
        assert_eq!(cookie(&h, SESSION_COOKIE), None, "two are none");
    }
}
