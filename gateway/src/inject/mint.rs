//! Minting: a type that obtains short-lived fields (an OAuth 2.0 access token, an installation
//! token) from its stored credential. The type describes the token request and reads the
//! answer; credgate (crate::minting) sends it, caches what it yields and refreshes it.

use std::time::Duration;

use http::Method;
use serde_json::{Map, Value};

use super::InjectError;
use crate::redact::{Credential, SecretString};

/// A token request, as a type describes it. Values may be credential material (a client
/// secret, a signed assertion).
#[derive(Debug)]
pub struct TokenRequest {
    pub method: Method,
    pub url: url::Url,
    pub headers: Vec<(String, SecretString)>,
    pub body: TokenBody,
}

#[derive(Debug)]
pub enum TokenBody {
    None,
    Form(Vec<(String, SecretString)>),
    Json(SecretString),
}

/// The token endpoint's 2xx answer. Its body holds the token.
#[derive(Debug)]
pub struct TokenResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: SecretString,
}

/// What a token request obtained.
#[derive(Debug)]
pub struct Minted {
    /// Handed to the injector beside the stored credential.
    pub fields: Credential,
    pub expires_in: Duration,
    /// Stored credential fields the provider replaced (a refresh token rotated on use).
    pub rotated: Credential,
}

#[async_trait::async_trait]
pub trait Mint: Send + Sync {
    /// The token request for this credential, or `None` when there is nothing to mint.
    async fn token_request(
        &self,
        credential: &Credential,
        config: &Map<String, Value>,
    ) -> Result<Option<TokenRequest>, InjectError>;

    /// Reads the answer to that request.
    async fn accept(
        &self,
        response: &TokenResponse,
        credential: &Credential,
        config: &Map<String, Value>,
    ) -> Result<Minted, InjectError>;
}
