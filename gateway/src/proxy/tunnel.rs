//! The third way in: forward-proxy mode. A client that honours `HTTPS_PROXY` opens a tunnel
//! (`CONNECT host:port`) with its app key in `Proxy-Authorization`; credgate decides here,
//! before any TLS, whether the caller may reach that host at all, and which grant its
//! requests use. Each request inside the tunnel then runs through the same phases as the
//! other modes ([`super::Mode::Forward`]).

use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use http::HeaderMap;
use uuid::Uuid;

use crate::clock::now;
use crate::redact::SecretString;
use crate::state::AppState;
use crate::vault::{ApiKey, GrantStatus};

/// An open tunnel: who opened it and where it goes.
#[derive(Debug)]
pub struct Tunnel {
    /// The app key the tunnel was opened with; every request inside is checked with it again,
    /// so a key revoked mid-tunnel stops the next request.
    pub key: SecretString,
    /// `https` for an intercepted `CONNECT`, `http` for a plain absolute-form request.
    pub scheme: &'static str,
    pub host: String,
    pub port: u16,
    /// The grant every request uses unless it names one (`X-Credgate-Grant`): the proxy user
    /// name's, or the caller's one grant that allows the host.
    pub grant: Option<Uuid>,
    /// How many of the caller's grants allow the host (more than one and none named: each
    /// request must name its grant).
    pub candidates: usize,
}

/// What `Proxy-Authorization` carries: the app key, and perhaps a grant id as user name.
#[derive(Debug)]
pub struct ProxyCredentials {
    pub key: SecretString,
    pub user: Option<String>,
}

/// Reads `Proxy-Authorization`: `Basic base64(<grant id or anything>:<app key>)` or
/// `Bearer <app key>`. `None` when there is no usable value.
pub fn proxy_credentials(headers: &HeaderMap) -> Option<ProxyCredentials> {
    let value = headers.get(http::header::PROXY_AUTHORIZATION)?.to_str().ok()?.trim();
    let (scheme, rest) = value.split_once(' ')?;
    let rest = rest.trim();
    if scheme.eq_ignore_ascii_case("bearer") {
        return (!rest.is_empty()).then(|| ProxyCredentials {
            key: SecretString::new(rest.to_owned()),
            user: None,
        });
    }
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = zeroize::Zeroizing::new(STANDARD.decode(rest).ok()?);
    let text = std::str::from_utf8(&decoded).ok()?;
    let (user, password) = text.split_once(':')?;
    if password.is_empty() {
        return None;
    }
    Some(ProxyCredentials {
        key: SecretString::new(password.to_owned()),
        user: (!user.is_empty()).then(|| user.to_owned()),
    })
}

/// The caller's active grants (its own and its groups') whose secret may be sent to
/// `host:port` (`default_port`: the scheme's), by grant id. Read when a tunnel opens, from the
/// hot cache: a new tunnel costs no database round trip once the caller's grants are known.
pub async fn grants_for_host(
    state: &AppState,
    key: &ApiKey,
    host: &str,
    port: u16,
    default_port: u16,
) -> Result<Vec<Uuid>, crate::store::StoreError> {
    let store = state.store.as_ref();
    let mut holders = vec![key.principal_id];
    holders.extend(state.cache.groups_of(store, key.principal_id).await?.iter().copied());
    let at = now();
    let mut found = Vec::new();
    for holder in holders {
        for grant_id in state.cache.grants_held(store, holder).await?.iter() {
            let Some(grant) = state.cache.grant(store, *grant_id).await? else {
                continue;
            };
            if grant.status(at) != GrantStatus::Active {
                continue;
            }
            let Some(secret) = state.cache.secret(store, grant.secret_id).await? else {
                continue;
            };
            if secret.allowed_hosts.iter().any(|p| p.matches(host, port, default_port)) {
                found.push(grant.grant_id);
            }
        }
    }
    found.sort();
    found.dedup();
    Ok(found)
}

/// Checks an app key for a tunnel: the same check every request gets.
pub async fn check_key(state: &AppState, key: &str) -> Option<Arc<ApiKey>> {
    super::authn::check(state, key).await.ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn creds(value: &str) -> Option<(String, Option<String>)> {
        let mut headers = HeaderMap::new();
        headers.insert(http::header::PROXY_AUTHORIZATION, value.parse().unwrap());
        proxy_credentials(&headers).map(|c| (c.key.expose().to_owned(), c.user))
    }

    #[test]
    fn proxy_authorization_gives_the_key_and_perhaps_a_user() {
        assert_eq!(creds("Bearer k1"), Some(("k1".into(), None)));
        let basic = |pair: &str| format!("Basic {}", STANDARD.encode(pair));
        assert_eq!(creds(&basic("grant:k2")), Some(("k2".into(), Some("grant".into()))));
        assert_eq!(creds(&basic(":k3")), Some(("k3".into(), None)));
        // A password with `:` in it stays whole.
        assert_eq!(creds(&basic("u:k:4")), Some(("k:4".into(), Some("u".into()))));
        assert_eq!(creds(&basic("user:")), None, "no key");
        assert_eq!(creds("Basic !!!"), None);
        assert_eq!(creds("Digest x"), None);
        assert_eq!(creds("Bearer "), None);
    }
}
