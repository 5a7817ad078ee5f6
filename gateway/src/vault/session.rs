//! The portal's sign-in through an OpenID Provider, as stored: an attempt in flight (between
//! the redirect to the provider and its answer), and a signed-in session.

use chrono::{DateTime, Utc};

use crate::vault::scope::Scope;

/// A sign-in in flight: what the callback needs to finish it.
#[derive(Clone, PartialEq, Eq)]
pub struct SigninAttempt {
    /// SHA-256 of the `state` sent to the provider, hex.
    pub state_hash: String,
    /// The PKCE code verifier.
    pub verifier: String,
    /// The nonce the ID token must carry.
    pub nonce: String,
    pub expires_at: DateTime<Utc>,
}

impl std::fmt::Debug for SigninAttempt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigninAttempt")
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

/// A person signed in to the portal.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PortalSession {
    /// SHA-256 of the session cookie's value, hex.
    pub id_hash: String,
    /// `oidc:<sub> (<name>)`, in every record the session causes.
    pub actor: String,
    pub scopes: Vec<Scope>,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}
