//! The OpenID Connect authorization-code flow with PKCE, as the portal's relying party: the
//! request that sends a browser to the provider, and the code exchanged for an ID token.

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use bytes::Bytes;
use http_body_util::{BodyExt, Either, Full};
use sha2::{Digest, Sha256};

use crate::outbound::client::Upstream;

const TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);
const MAX_ANSWER: usize = 256 * 1024;

/// A fresh random value, base64url: `state`, the PKCE verifier, the nonce, a session id.
pub fn random_token() -> String {
    // The operating system's generator failing is not something to carry on from.
    let bytes: [u8; 32] = crate::crypto::random_bytes().unwrap_or_else(|_| std::process::abort());
    URL_SAFE_NO_PAD.encode(bytes)
}

/// SHA-256, hex: how a state or a session id is stored and found.
pub fn hash(text: &str) -> String {
    hex::encode(Sha256::digest(text.as_bytes()))
}

/// What the portal's CSRF header must carry for a session: derived from the session's secret
/// cookie, so it needs no storage, and it does not reveal the cookie.
pub fn csrf_of(session: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(format!("credgate csrf\n{session}").as_bytes()))
}

/// The provider's authorization URL for one sign-in.
pub struct Authorize<'a> {
    pub endpoint: &'a str,
    pub client_id: &'a str,
    pub redirect_uri: &'a str,
    pub scopes: &'a str,
    pub state: &'a str,
    pub nonce: &'a str,
    pub verifier: &'a str,
}

impl std::fmt::Debug for Authorize<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The state, nonce and verifier are the sign-in's secrets.
        f.debug_struct("Authorize")
            .field("endpoint", &self.endpoint)
            .field("client_id", &self.client_id)
            .finish_non_exhaustive()
    }
}

impl Authorize<'_> {
    pub fn url(&self) -> Result<url::Url, url::ParseError> {
        let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(self.verifier.as_bytes()));
        let mut url = url::Url::parse(self.endpoint)?;
        url.query_pairs_mut()
            .append_pair("response_type", "code")
            .append_pair("client_id", self.client_id)
            .append_pair("redirect_uri", self.redirect_uri)
            .append_pair("scope", self.scopes)
            .append_pair("state", self.state)
            .append_pair("nonce", self.nonce)
            .append_pair("code_challenge", &challenge)
            .append_pair("code_challenge_method", "S256");
        Ok(url)
    }
}

/// Why the code could not be exchanged. Fixed texts: the provider's answer is not repeated.
#[derive(Debug, thiserror::Error)]
pub enum ExchangeError {
    #[error("the identity provider cannot be reached")]
    Unreachable,
    #[error("the identity provider refused the sign-in code")]
    Refused,
    #[error("the identity provider's answer has no ID token")]
    NoIdToken,
}

/// The code and the verifier, exchanged at the token endpoint for an ID token. A confidential
/// client authenticates with `client_secret_basic`.
pub async fn exchange(
    upstream: &Upstream,
    token_endpoint: &str,
    client_id: &str,
    client_secret: Option<&str>,
    redirect_uri: &str,
    code: &str,
    verifier: &str,
) -> Result<String, ExchangeError> {
    let form = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("grant_type", "authorization_code")
        .append_pair("code", code)
        .append_pair("redirect_uri", redirect_uri)
        .append_pair("code_verifier", verifier)
        .append_pair("client_id", client_id)
        .finish();
    let mut request = http::Request::post(token_endpoint)
        .header(http::header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header(http::header::ACCEPT, "application/json");
    if let Some(secret) = client_secret {
        // RFC 6749 2.3.1: each part form-encoded before the pair is base64-encoded.
        let enc = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
        let mut value = http::HeaderValue::from_str(&format!(
            "Basic {}",
            STANDARD.encode(format!("{}:{}", enc(client_id), enc(secret)))
        ))
        .map_err(|_| ExchangeError::Refused)?;
        value.set_sensitive(true);
        request = request.header(http::header::AUTHORIZATION, value);
    }
    let request = request
        .body(Either::Right(Full::new(Bytes::from(form))))
        .map_err(|_| ExchangeError::Unreachable)?;
    let response = tokio::time::timeout(TIMEOUT, upstream.client(true).request(request))
        .await
        .map_err(|_| ExchangeError::Unreachable)?
        .map_err(|_| ExchangeError::Unreachable)?;
    let ok = response.status().is_success();
    let body = tokio::time::timeout(
        TIMEOUT,
        http_body_util::Limited::new(response.into_body(), MAX_ANSWER).collect(),
    )
    .await
    .map_err(|_| ExchangeError::Unreachable)?
    .map_err(|_| ExchangeError::Unreachable)?
    .to_bytes();
    if !ok {
        return Err(ExchangeError::Refused);
    }
    let answer: serde_json::Value = serde_json::from_slice(&body).map_err(|_| ExchangeError::NoIdToken)?;
    answer
        .get("id_token")
        .and_then(serde_json::Value::as_str)
        .map(str::to_owned)
        .ok_or(ExchangeError::NoIdToken)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_authorization_url_carries_an_s256_challenge_of_the_verifier() {
        let url = Authorize {
            endpoint: "https://idp.example/auth?tenant=x",
            client_id: "portal",
            redirect_uri: "https://gw.example/portal/oidc/callback",
            scopes: "openid email",
            state: "s",
            nonce: "n",
            verifier: "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk",
        }
        .url()
        .unwrap();
        let q: std::collections::HashMap<_, _> = url.query_pairs().into_owned().collect();
        // RFC 7636, appendix B.
        assert_eq!(q["code_challenge"], "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM");
        assert_eq!(q["code_challenge_method"], "S256");
        assert_eq!(q["tenant"], "x", "the endpoint's own query is kept");
        assert_eq!(q["redirect_uri"], "https://gw.example/portal/oidc/callback");
    }

    #[test]
    fn the_csrf_value_is_bound_to_the_session_and_does_not_reveal_it() {
        let a = random_token();
        let b = random_token();
        assert_ne!(a, b);
        assert_eq!(csrf_of(&a), csrf_of(&a));
        assert_ne!(csrf_of(&a), csrf_of(&b));
        assert!(!csrf_of(&a).contains(&a));
    }
}
