//! Who is calling: the app key, and whether its principal may use the grant.
//!
//! The key comes in `Proxy-Authorization: Bearer <app key>`. In base-URL mode, where an
//! unmodified vendor SDK only knows how to send its own API key, credgate also finds the app
//! key wherever such an SDK puts one: an `Authorization` bearer, a Basic pair, the
//! `Credential=` of an AWS signature, a custom header such as `x-api-key`, or one of the query
//! parameters vendor SDKs put a key in ([`QUERY_SLOTS`]). Wherever an app key is found, under
//! any name, it is removed, so it never reaches the upstream.

use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use http::{HeaderMap, HeaderName, header};

use super::call::{Call, Failure, refuse};
use crate::clock::now;
use crate::error::{ApiError, ErrorCode};
use crate::identity::directory::Resolved;
use crate::state::AppState;
use crate::vault::token::{self, TokenKind};
use crate::vault::{ApiKey, Grant};

/// The phase: finds the app key (removing every copy of it from the request), checks it, and
/// names the caller in the call's record.
pub async fn authenticate(
    call: &mut Call,
    headers: &mut HeaderMap,
    query: &mut Option<String>,
    sdk_slots: bool,
) -> Result<Arc<ApiKey>, Failure> {
    let key = match take_app_key(headers, query, sdk_slots) {
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
    let api_key = check(&call.state, &key).await?;
    call.event.key_id = Some(api_key.id);
    call.event.principal_id = Some(api_key.principal_id);
    call.event.actor = Some(format!("principal:{}", api_key.principal_id));
    Ok(api_key)
}

pub(super) async fn check(state: &AppState, key: &str) -> Result<Arc<ApiKey>, Failure> {
    let unauthenticated = || refuse(ErrorCode::Unauthenticated, "invalid app key");
    let prefix = token::prefix_of(TokenKind::App, key).ok_or_else(unauthenticated)?;
    let record = state
        .cache
        .api_key(state.store.as_ref(), prefix)
        .await
        .map_err(ApiError::from)?
        .ok_or_else(unauthenticated)?;
    if !token::verify(key, &record.hash) {
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

/// How a principal holds a grant.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Through {
    Directly,
    Group(uuid::Uuid),
}

/// The phase: whose grant this is. The app key's principal's (its own, or a group's it is a
/// member of), or, with a user token, the person's: their own, a group's the token names, or a
/// group's credgate knows them to be in. The call's record names the group it applied through.
/// Answers the person when the grant applied through them rather than the app.
pub async fn authorise(
    call: &mut Call,
    key: &ApiKey,
    user: Option<&Resolved>,
    grant: &Grant,
) -> Result<Option<uuid::Uuid>, Failure> {
    let mut through = holds(&call.state, key.principal_id, grant).await?;
    let mut for_user = None;
    if through.is_none()
        && let Some(user) = user
    {
        for_user = Some(user.user.id);
        through = match holds(&call.state, user.user.id, grant).await? {
            Some(t) => Some(t),
            None => user
                .groups
                .iter()
                .find(|g| g.id == grant.principal_id)
                .map(|g| Through::Group(g.id)),
        };
    }
    match through {
        Some(Through::Group(group)) => {
            call.event.via_group_id = Some(group);
            Ok(for_user)
        }
        Some(Through::Directly) => Ok(for_user),
        None if user.is_some() => Err(refuse(
            ErrorCode::Forbidden,
            "this grant belongs neither to the app's principal nor to the user (or a group of theirs)",
        )),
        None => Err(refuse(
            ErrorCode::Forbidden,
            "this grant belongs to another principal (a grant to a person or their group needs their token in X-Credgate-User-Token)",
        )),
    }
}

/// For a call made after approval: `principal` (whose key made it) holds the grant as above,
/// or the grant applied through `user` when the call was held, and they still exist. Groups a
/// user token named cannot be read again (the token may have expired); the operator approved
/// the call for that person.
pub async fn authorise_held(
    state: &AppState,
    principal: uuid::Uuid,
    user: Option<uuid::Uuid>,
    grant: &Grant,
) -> Result<(), Failure> {
    if holds(state, principal, grant).await?.is_some() {
        return Ok(());
    }
    if let Some(user) = user
        && state.store.principal(user).await.map_err(ApiError::from)?.is_some()
    {
        return Ok(());
    }
    Err(refuse(ErrorCode::Forbidden, "this grant belongs to another principal"))
}

/// Whether `principal` holds the grant, or is a member of the group that does.
async fn holds(state: &AppState, principal: uuid::Uuid, grant: &Grant) -> Result<Option<Through>, Failure> {
    if principal == grant.principal_id {
        return Ok(Some(Through::Directly));
    }
    let groups = state
        .cache
        .groups_of(state.store.as_ref(), principal)
        .await
        .map_err(ApiError::from)?;
    Ok(groups
        .contains(&grant.principal_id)
        .then_some(Through::Group(grant.principal_id)))
}

/// Finds app keys in `text`: every `cg_app_…` run, and the user and password of a Basic value.
fn keys_in(text: &str, found: &mut Vec<String>) {
    let mut rest = text;
    while let Some(i) = rest.find("cg_app_") {
        let candidate: String = rest[i..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '-')
            .collect();
        // The secret part may itself hold `_`; trim to the token's exact shape.
        if let Some(key) = exact_key(&candidate) {
            found.push(key);
        }
        rest = &rest[i + 7..];
    }
    if let Some(encoded) = text.strip_prefix("Basic ").or_else(|| text.strip_prefix("basic "))
        && let Ok(decoded) = STANDARD.decode(encoded.trim())
        && let Ok(pair) = String::from_utf8(decoded)
    {
        let (user, password) = pair.split_once(':').unwrap_or((&pair, ""));
        for part in [user, password] {
            if let Some(key) = exact_key(part) {
                found.push(key);
            }
        }
    }
}

fn exact_key(candidate: &str) -> Option<String> {
    // `cg_app_` + 12-character prefix + `_` + 43-character secret.
    let len = "cg_app_".len() + 12 + 1 + 43;
    let key = candidate.get(..len)?;
    token::looks_like(TokenKind::App, key).then(|| key.to_owned())
}

/// Query parameters an app key is accepted from in base-URL mode: the names vendor SDKs send
/// their API key under. Elsewhere in a query a key is removed but not accepted, so that a
/// plain link (`?anything=<key>`) is not enough to make a call.
pub const QUERY_SLOTS: &[&str] = &[
    "key",
    "api_key",
    "apikey",
    "api-key",
    "api_token",
    "access_token",
    "auth_token",
    "token",
    "app_key",
    "AWSAccessKeyId",
    "X-Amz-Credential",
];

/// The outcome of looking for the app key.
#[derive(Debug, PartialEq, Eq)]
pub enum Found {
    None,
    One(String),
    /// Different keys in different places: refused rather than guessed.
    Conflicting,
}

/// Looks for the app key and removes every header and query parameter holding one.
/// `Proxy-Authorization` always counts; other places only when `sdk_slots` is set, and in the
/// query only under the names of [`QUERY_SLOTS`].
pub fn take_app_key(headers: &mut HeaderMap, query: &mut Option<String>, sdk_slots: bool) -> Found {
    let mut from_proxy = Vec::new();
    if let Some(value) = headers.get(header::PROXY_AUTHORIZATION).and_then(|v| v.to_str().ok()) {
        let value = value.trim();
        let bearer = value
            .strip_prefix("Bearer ")
            .or_else(|| value.strip_prefix("bearer "))
            .unwrap_or(value);
        if let Some(key) = exact_key(bearer.trim()) {
            from_proxy.push(key);
        }
    }
    headers.remove(header::PROXY_AUTHORIZATION);

    let mut elsewhere = Vec::new();
    let mut holding: Vec<HeaderName> = Vec::new();
    for (name, value) in headers.iter() {
        let Ok(text) = value.to_str() else { continue };
        let before = elsewhere.len();
        keys_in(text, &mut elsewhere);
        if elsewhere.len() > before {
            holding.push(name.clone());
        }
    }
    for name in holding {
        headers.remove(name);
    }
    if let Some(q) = query.as_deref() {
        *query = crate::query::without(q, |name, value| {
            let mut here = Vec::new();
            keys_in(value, &mut here);
            keys_in(name, &mut here);
            let held = !here.is_empty();
            if QUERY_SLOTS.iter().any(|slot| slot.eq_ignore_ascii_case(name)) {
                elsewhere.extend(here);
            }
            held
        });
    }

    // Keys found elsewhere count in base-URL mode, and, in either mode, conflict with a
    // different key in Proxy-Authorization.
    let mut candidates = from_proxy;
    if sdk_slots || !candidates.is_empty() {
        candidates.extend(elsewhere);
    }
    candidates.sort();
    candidates.dedup();
    match candidates.len() {
        0 => Found::None,
        1 => candidates.pop().map_or(Found::None, Found::One),
        _ => Found::Conflicting,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn key() -> String {
        token::issue(TokenKind::App).unwrap().token.expose().to_owned()
    }

    #[test]
    fn proxy_authorization() {
        let k = key();
        let mut h = HeaderMap::new();
        h.insert(
            "proxy-authorization",
            HeaderValue::from_str(&format!("Bearer {k}")).unwrap(),
        );
        h.insert(
            "authorization",
            HeaderValue::from_static("Bearer upstream-token-from-app"),
        );
        assert_eq!(take_app_key(&mut h, &mut None, false), Found::One(k));
        assert!(h.get("proxy-authorization").is_none());
        assert!(h.get("authorization").is_some(), "an unrelated header is left alone");
    }

    #[test]
    fn sdk_slots_in_base_url_mode() {
        let k = key();
        let basic = format!("Basic {}", STANDARD.encode(format!("AC123:{k}")));
        let aws = format!(
            "AWS4-HMAC-SHA256 Credential={k}/20260101/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=abc"
        );
        for (name, value) in [
            ("authorization", format!("Bearer {k}")),
            ("x-api-key", k.clone()),
            ("authorization", basic),
            ("authorization", aws),
            ("authorization", format!("Token token={k}")),
        ] {
            let mut h = HeaderMap::new();
            h.insert(HeaderName::from_static(name), HeaderValue::from_str(&value).unwrap());
            assert_eq!(
                take_app_key(&mut h, &mut None, true),
                Found::One(k.clone()),
                "{name}: {value}"
            );
            assert!(h.is_empty(), "the slot is cleared");
        }
        let mut query = Some(format!("key={k}&q=%2f"));
        assert_eq!(
            take_app_key(&mut HeaderMap::new(), &mut query, true),
            Found::One(k.clone())
        );
        assert_eq!(query.as_deref(), Some("q=%2f"));
        // Under a name no SDK uses, the key is removed but does not count.
        let mut query = Some(format!("next=/x&k={k}"));
        assert_eq!(take_app_key(&mut HeaderMap::new(), &mut query, true), Found::None);
        assert_eq!(query.as_deref(), Some("next=/x"));
    }

    #[test]
    fn explicit_mode_only_trusts_proxy_authorization_but_scrubs_everything() {
        let k = key();
        let mut h = HeaderMap::new();
        h.insert("x-api-key", HeaderValue::from_str(&k).unwrap());
        assert_eq!(take_app_key(&mut h, &mut None, false), Found::None);
        assert!(h.is_empty(), "an app key never goes upstream");
    }

    #[test]
    fn two_different_keys_conflict() {
        let mut h = HeaderMap::new();
        h.insert(
            "authorization",
            HeaderValue::from_str(&format!("Bearer {}", key())).unwrap(),
        );
        h.insert("x-api-key", HeaderValue::from_str(&key()).unwrap());
        assert_eq!(take_app_key(&mut h, &mut None, true), Found::Conflicting);
    }
}
