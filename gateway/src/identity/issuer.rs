//! One trusted OpenID Provider: its discovery document and published keys, fetched through
//! credgate's outbound client and cached. A token naming a key not in the cache makes the keys
//! be read again (the provider rotated them), at most once per [`REFETCH_FLOOR`], so a flood of
//! tokens with made-up key ids costs the provider nothing.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Either, Full};
use serde_json::{Map, Value};

use super::jwt::{self, Expect, Jwk, JwkSet, JwtError};
use crate::outbound::client::Upstream;

/// The keys are read again at most this often for unknown key ids...
pub const REFETCH_FLOOR: Duration = Duration::from_secs(10);
/// ...and anyway this often.
const KEYS_MAX_AGE: Duration = Duration::from_secs(3600);
const TIMEOUT: Duration = Duration::from_secs(10);
/// Largest discovery document or key set read.
const MAX_DOCUMENT: usize = 256 * 1024;

/// Why a token from this issuer was not accepted.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum IssuerError {
    #[error("{0}")]
    Token(#[from] JwtError),
    /// The provider's keys could not be read: the token cannot be checked now.
    #[error("the identity provider's keys cannot be read: {0}")]
    Keys(&'static str),
}

/// Where a browser signs in and where a code is exchanged, from the discovery document.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Endpoints {
    pub authorization: String,
    pub token: String,
}

#[derive(Debug, Default)]
struct Cached {
    keys: Vec<Jwk>,
    /// `issuer` exactly as the discovery document gives it.
    issuer: Option<String>,
    /// After a failed read: not before then.
    retry_at: Option<Instant>,
    endpoints: Option<Endpoints>,
    fetched: Option<Instant>,
    /// How many times the keys were read (for tests and metrics).
    fetches: u64,
    /// How many times a read found a key gone that was there before: tokens verified with the
    /// keys of an earlier generation are checked again.
    generation: u64,
}

#[derive(Debug)]
pub struct Issuer {
    /// Where discovery starts, without a trailing slash: how credgate names the issuer.
    pub url: String,
    /// As the operator wrote it, until discovery says exactly how tokens name it.
    iss: String,
    pub audience: String,
    /// Unknown key ids make the keys be read again at most this often.
    refetch_floor: Duration,
    cached: Mutex<Cached>,
    /// One fetch at a time.
    fetching: tokio::sync::Mutex<()>,
}

impl Issuer {
    pub fn new(url: &str, audience: &str) -> Self {
        Self {
            url: url.trim_end_matches('/').to_owned(),
            iss: url.to_owned(),
            audience: audience.to_owned(),
            refetch_floor: REFETCH_FLOOR,
            cached: Mutex::default(),
            fetching: tokio::sync::Mutex::new(()),
        }
    }

    /// The same, reading the keys again for unknown key ids at most every `floor`.
    pub fn with_refetch_floor(mut self, floor: Duration) -> Self {
        self.refetch_floor = floor;
        self
    }

    /// The claims of `token`, verified against the issuer's current keys at `now` (seconds).
    pub async fn verify(&self, upstream: &Upstream, token: &str, now: i64) -> Result<Map<String, Value>, IssuerError> {
        self.verify_for(upstream, token, now, &self.audience).await
    }

    /// The same, for tokens issued to `audience` (the portal's own client id).
    pub async fn verify_for(
        &self,
        upstream: &Upstream,
        token: &str,
        now: i64,
        audience: &str,
    ) -> Result<Map<String, Value>, IssuerError> {
        let (keys, fresh) = self.keys(upstream, false).await?;
        // Tokens name the issuer exactly as its discovery document does (OpenID Connect
        // Discovery 4.3), a trailing `/` included (Auth0), whatever the operator typed.
        let issuer = lock(&self.cached).issuer.clone().unwrap_or_else(|| self.iss.clone());
        let expect = Expect {
            issuer: &issuer,
            audience,
            now,
        };
        match jwt::verify(token, &keys, &expect) {
            Err(JwtError::UnknownKey) if !fresh => {
                let (keys, _) = self.keys(upstream, true).await?;
                Ok(jwt::verify(token, &keys, &expect)?)
            }
            other => Ok(other?),
        }
    }

    /// The provider's sign-in and token endpoints (read with the keys).
    pub async fn endpoints(&self, upstream: &Upstream) -> Result<Endpoints, IssuerError> {
        if let Some(endpoints) = lock(&self.cached).endpoints.clone() {
            return Ok(endpoints);
        }
        self.keys(upstream, false).await?;
        lock(&self.cached).endpoints.clone().ok_or(IssuerError::Keys(
            "the discovery document names no authorization and token endpoints",
        ))
    }

    /// Bumped each time a key the provider published is gone from what it publishes now.
    pub fn generation(&self) -> u64 {
        lock(&self.cached).generation
    }

    /// Times the keys were read.
    pub fn fetches(&self) -> u64 {
        lock(&self.cached).fetches
    }

    /// The cached keys, read first if there are none or they are old, or again if `unknown`
    /// named a key they lack and the floor allows; and whether they were read just now.
    async fn keys(&self, upstream: &Upstream, unknown: bool) -> Result<(Vec<Jwk>, bool), IssuerError> {
        let due = |c: &Cached| match (c.fetched, c.retry_at) {
            (None, _) => true,
            (Some(_), Some(retry)) if Instant::now() < retry => false,
            (Some(at), _) => at.elapsed() > KEYS_MAX_AGE || (unknown && at.elapsed() > self.refetch_floor),
        };
        {
            let cached = lock(&self.cached);
            if !due(&cached) {
                return Ok((cached.keys.clone(), false));
            }
        }
        let _fetching = self.fetching.lock().await;
        if !due(&lock(&self.cached)) {
            return Ok((lock(&self.cached).keys.clone(), true));
        }
        match self.read(upstream).await {
            Ok((keys, endpoints, issuer)) => {
                let mut cached = lock(&self.cached);
                if cached.keys.iter().any(|old| !keys.contains(old)) {
                    cached.generation += 1;
                }
                cached.keys = keys;
                cached.endpoints = endpoints;
                cached.issuer = Some(issuer);
                cached.fetched = Some(Instant::now());
                cached.retry_at = None;
                cached.fetches += 1;
                Ok((cached.keys.clone(), true))
            }
            Err(e) => {
                let mut cached = lock(&self.cached);
                if cached.fetched.is_none() {
                    return Err(e);
                }
                // The provider is down or broken: the keys read before still check tokens
                // (a rotation waits for it to come back), and it is asked again only after
                // the floor, so users' calls do not each wait for its timeout meanwhile.
                tracing::warn!(issuer = %self.url, error = %e, "cannot read the identity provider's keys; using the ones read before");
                cached.retry_at = Some(Instant::now() + self.refetch_floor);
                Ok((cached.keys.clone(), true))
            }
        }
    }

    /// The discovery document and the key set, read now.
    async fn read(&self, upstream: &Upstream) -> Result<(Vec<Jwk>, Option<Endpoints>, String), IssuerError> {
        let discovery = get_json(upstream, &format!("{}/.well-known/openid-configuration", self.url)).await?;
        let issuer = discovery
            .get("issuer")
            .and_then(Value::as_str)
            .filter(|i| i.trim_end_matches('/') == self.url)
            .ok_or(IssuerError::Keys("the discovery document names another issuer"))?
            .to_owned();
        let jwks_uri = discovery
            .get("jwks_uri")
            .and_then(Value::as_str)
            .ok_or(IssuerError::Keys("the discovery document has no jwks_uri"))?
            .to_owned();
        let endpoint = |name: &str| discovery.get(name).and_then(Value::as_str).map(str::to_owned);
        let endpoints = endpoint("authorization_endpoint")
            .zip(endpoint("token_endpoint"))
            .map(|(authorization, token)| Endpoints { authorization, token });
        let set: JwkSet = serde_json::from_value(get_json(upstream, &jwks_uri).await?)
            .map_err(|_| IssuerError::Keys("the key set is not a JWKS"))?;
        Ok((set.keys, endpoints, issuer))
    }
}

/// A JSON document from the provider. Its address is the operator's configuration (or the
/// provider's own discovery document), so private addresses are allowed.
async fn get_json(upstream: &Upstream, url: &str) -> Result<Value, IssuerError> {
    let request = http::Request::get(url)
        .header(http::header::ACCEPT, "application/json")
        .body(Either::Right(Full::new(Bytes::new())))
        .map_err(|_| IssuerError::Keys("its address is not a URL"))?;
    let response = tokio::time::timeout(TIMEOUT, upstream.client(true).request(request))
        .await
        .map_err(|_| IssuerError::Keys("no answer in time"))?
        .map_err(|_| IssuerError::Keys("it cannot be reached"))?;
    if !response.status().is_success() {
        return Err(IssuerError::Keys("it answered with an error status"));
    }
    let body = tokio::time::timeout(
        TIMEOUT,
        http_body_util::Limited::new(response.into_body(), MAX_DOCUMENT).collect(),
    )
    .await
    .map_err(|_| IssuerError::Keys("the answer did not arrive in time"))?
    .map_err(|_| IssuerError::Keys("the answer is too large, or broken"))?
    .to_bytes();
    serde_json::from_slice(&body).map_err(|_| IssuerError::Keys("the answer is not JSON"))
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}
