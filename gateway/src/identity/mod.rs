//! Identity from a company's OpenID Provider: which issuers credgate trusts ([`config`]), their
//! keys ([`issuer`]), the tokens they sign ([`jwt`]), and the principals those tokens name
//! ([`directory`]). An app acting for a person sends the person's ID token on the data plane;
//! the portal signs operators in through the same provider.

pub mod config;
pub mod directory;
pub mod issuer;
pub mod jwt;
pub mod verified;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::Value;

use crate::outbound::client::Upstream;
use config::{IdentityConfig, IssuerConfig, MAX_GROUPS};
use issuer::{Issuer, IssuerError};
use jwt::JwtError;

/// The longest token read; an ID token is a few kilobytes.
pub const MAX_TOKEN_LEN: usize = 16 * 1024;

/// Why a user token was not accepted. Fixed texts: a token's content is never echoed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum UserTokenError {
    #[error("credgate trusts no identity provider")]
    NoIssuers,
    #[error("the token's issuer is not one credgate trusts")]
    Untrusted,
    #[error("{0}")]
    Token(JwtError),
    #[error("the token has no subject (`sub`)")]
    NoSubject,
    #[error("the token's groups claim is not a list of names")]
    Groups,
    #[error("the token names more than {MAX_GROUPS} groups")]
    TooManyGroups,
    /// Not the token's fault: the provider's keys cannot be read now.
    #[error("the identity provider's keys cannot be read: {0}")]
    Keys(&'static str),
}

impl From<IssuerError> for UserTokenError {
    fn from(e: IssuerError) -> Self {
        match e {
            IssuerError::Token(e) => Self::Token(e),
            IssuerError::Keys(why) => Self::Keys(why),
        }
    }
}

/// A trusted issuer: what the operator configured, and its keys.
#[derive(Debug)]
pub struct Trusted {
    pub config: IssuerConfig,
    pub keys: Issuer,
}

/// A person, as a verified token describes them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct User {
    /// The issuer, as configured (no trailing slash).
    pub issuer: String,
    pub subject: String,
    /// What to call them: `email` (verified), else `preferred_username`, else `sub`.
    pub display: String,
    /// The names in the issuer's groups claim.
    pub groups: Vec<String>,
    /// The token's `exp`, in seconds.
    pub expires: i64,
}

/// Every trusted issuer.
#[derive(Debug, Default)]
pub struct Identity {
    issuers: Vec<Trusted>,
    pub config: IdentityConfig,
    /// Tokens verified before, until they expire.
    verified: verified::Verified,
}

impl Identity {
    pub fn new(config: IdentityConfig) -> Self {
        let issuers = config
            .issuers
            .iter()
            .map(|c| Trusted {
                keys: Issuer::new(&c.issuer, &c.audience),
                config: c.clone(),
            })
            .collect();
        Self {
            issuers,
            config,
            verified: verified::Verified::default(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.issuers.is_empty()
    }

    /// The trusted issuer named `url`.
    pub fn trusted(&self, url: &str) -> Option<&Trusted> {
        let url = url.trim_end_matches('/');
        self.issuers.iter().find(|t| t.keys.url == url)
    }

    /// The issuer the portal signs in through.
    pub fn portal(&self) -> Option<&Trusted> {
        self.issuers.iter().find(|t| t.config.client_id.is_some())
    }

    /// The person `token` vouches for: the issuer it names must be trusted, and the token must
    /// verify against that issuer's keys, audience and clock.
    pub async fn verify(&self, upstream: &Upstream, token: &str, now: i64) -> Result<User, UserTokenError> {
        if self.issuers.is_empty() {
            return Err(UserTokenError::NoIssuers);
        }
        if token.len() > MAX_TOKEN_LEN {
            return Err(UserTokenError::Token(JwtError::Malformed));
        }
        let generation = |issuer: &str| self.trusted(issuer).map_or(u64::MAX, |t| t.keys.generation());
        if let Some(user) = self.verified.get(token, now, generation) {
            return Ok(user);
        }
        // Unverified, only to choose whose keys to verify with; the verified claims must name
        // the same issuer.
        let named = unverified_issuer(token).ok_or(UserTokenError::Token(JwtError::Malformed))?;
        let trusted = self.trusted(&named).ok_or(UserTokenError::Untrusted)?;
        // Read before verifying: a retirement while this one verifies makes it check again.
        let generation = trusted.keys.generation();
        let claims = trusted.keys.verify(upstream, token, now).await?;
        let user = user_of(trusted, &claims)?;
        self.verified.put(token, &user, generation);
        Ok(user)
    }
}

/// The person verified claims describe, as `trusted` names their groups.
pub fn user_of(trusted: &Trusted, claims: &serde_json::Map<String, Value>) -> Result<User, UserTokenError> {
    let subject = claims
        .get("sub")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty() && s.len() <= crate::vault::principal::MAX_EXTERNAL_ID_LEN)
        .ok_or(UserTokenError::NoSubject)?
        .to_owned();
    let groups = match claims.get(&trusted.config.groups_claim) {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) => {
            if items.len() > MAX_GROUPS {
                return Err(UserTokenError::TooManyGroups);
            }
            items
                .iter()
                .map(|g| g.as_str().map(str::to_owned).ok_or(UserTokenError::Groups))
                .collect::<Result<_, _>>()?
        }
        // Some providers send a single group as a string.
        Some(Value::String(one)) => vec![one.clone()],
        Some(_) => return Err(UserTokenError::Groups),
    };
    // An address the provider has not verified is whatever the person typed: not a name.
    let email = claims
        .get("email")
        .and_then(Value::as_str)
        .filter(|_| claims.get("email_verified").and_then(Value::as_bool) == Some(true));
    let display = [email, claims.get("preferred_username").and_then(Value::as_str)]
        .into_iter()
        .flatten()
        .find(|n| crate::vault::principal::validate_name(n).is_ok())
        .unwrap_or(&subject)
        .to_owned();
    Ok(User {
        issuer: trusted.keys.url.clone(),
        subject,
        display,
        groups,
        expires: claims.get("exp").and_then(Value::as_i64).unwrap_or_default(),
    })
}

/// The `iss` a token claims, before anything about it is checked.
fn unverified_issuer(token: &str) -> Option<String> {
    let body = token.split('.').nth(1)?;
    let claims: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(body).ok()?).ok()?;
    claims.get("iss")?.as_str().map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn trusted() -> Trusted {
        let config = IssuerConfig {
            issuer: "https://idp.example".into(),
            audience: "credgate".into(),
            groups_claim: "groups".into(),
            provision_users: true,
            client_id: None,
            signin_scopes: "openid".into(),
            roles: Default::default(),
        };
        Trusted {
            keys: Issuer::new(&config.issuer, &config.audience),
            config,
        }
    }

    fn claims(v: Value) -> serde_json::Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn a_user_is_named_by_email_and_their_groups_are_read() {
        let t = trusted();
        let u = user_of(
            &t,
            &claims(json!({"sub": "u1", "email": "a@example.test", "email_verified": true,
                "groups": ["eng", "ops"], "exp": 5})),
        )
        .unwrap();
        assert_eq!(u.display, "a@example.test");
        assert_eq!(u.groups, ["eng", "ops"]);
        let u = user_of(
            &t,
            &claims(json!({"sub": "u1", "email": "ceo@example.test", "preferred_username": "mallory"})),
        )
        .unwrap();
        assert_eq!(u.display, "mallory", "an unverified address is not a name");
        let u = user_of(&t, &claims(json!({"sub": "u1", "email": " bad name "}))).unwrap();
        assert_eq!(u.display, "u1", "a name that is not a valid principal name is not used");
        assert!(u.groups.is_empty());
    }

    #[test]
    fn bad_claims_are_refused_with_fixed_texts() {
        let t = trusted();
        assert_eq!(user_of(&t, &claims(json!({}))), Err(UserTokenError::NoSubject));
        assert_eq!(
            user_of(&t, &claims(json!({"sub": "u", "groups": [1]}))),
            Err(UserTokenError::Groups)
        );
        let many: Vec<String> = (0..=MAX_GROUPS).map(|i| i.to_string()).collect();
        assert_eq!(
            user_of(&t, &claims(json!({"sub": "u", "groups": many}))),
            Err(UserTokenError::TooManyGroups)
        );
    }

    #[test]
    fn the_issuer_is_read_only_to_choose_keys() {
        let body = URL_SAFE_NO_PAD.encode(json!({"iss": "https://idp.example"}).to_string());
        assert_eq!(
            unverified_issuer(&format!("e30.{body}.x")).as_deref(),
            Some("https://idp.example")
        );
        assert_eq!(unverified_issuer("garbage"), None);
    }
}
