//! Minting (contract 0.2): a template describes a token request, credgate sends it and hands
//! the answer back, and the fields it yields reach `inject` beside the stored credential.

use alloc::borrow::ToOwned;
use alloc::string::String;
use alloc::vec::Vec;

use crate::bindings::credgate::provider::types as wit;
use crate::types::Error;

/// A request for a token, which credgate sends to one of the description's token hosts.
#[derive(Debug, Clone)]
pub struct TokenRequest {
    inner: wit::TokenRequest,
}

impl TokenRequest {
    /// A `POST` of a form (`application/x-www-form-urlencoded`), as OAuth 2.0 token endpoints
    /// take.
    pub fn post_form(url: &str) -> Self {
        Self {
            inner: wit::TokenRequest {
                method: "POST".into(),
                url: url.to_owned(),
                headers: Vec::new(),
                body: wit::TokenBody::Form(Vec::new()),
            },
        }
    }

    /// A `POST` of JSON text, or of nothing when `json` is empty.
    pub fn post_json(url: &str, json: &str) -> Self {
        Self {
            inner: wit::TokenRequest {
                method: "POST".into(),
                url: url.to_owned(),
                headers: Vec::new(),
                body: if json.is_empty() {
                    wit::TokenBody::None
                } else {
                    wit::TokenBody::Json(json.to_owned())
                },
            },
        }
    }

    /// Adds a form field (only to a form request).
    pub fn form(mut self, name: &str, value: impl Into<String>) -> Self {
        if let wit::TokenBody::Form(fields) = &mut self.inner.body {
            fields.push(wit::Pair {
                name: name.to_owned(),
                value: value.into(),
            });
        }
        self
    }

    /// Adds a header.
    pub fn header(mut self, name: &str, value: impl Into<String>) -> Self {
        self.inner.headers.push(wit::Pair {
            name: name.to_owned(),
            value: value.into(),
        });
        self
    }

    #[doc(hidden)]
    pub fn into_wit(self) -> wit::TokenRequest {
        self.inner
    }
}

/// The token endpoint's answer (a 2xx one; credgate fails the calls on any other).
#[derive(Debug, Clone)]
pub struct TokenResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl TokenResponse {
    #[doc(hidden)]
    pub fn from_wit(response: wit::TokenResponse) -> Self {
        Self {
            status: response.status,
            headers: response.headers.into_iter().map(|p| (p.name, p.value)).collect(),
            body: response.body,
        }
    }

    /// The body as a JSON object.
    pub fn json(&self) -> Result<serde_json::Map<String, serde_json::Value>, Error> {
        match serde_json::from_str(&self.body) {
            Ok(serde_json::Value::Object(object)) => Ok(object),
            _ => Err(Error::Unsupported(
                "the token endpoint's answer is not a JSON object".into(),
            )),
        }
    }

    /// A string field of the JSON body.
    pub fn json_str(&self, name: &str) -> Result<String, Error> {
        match self.json()?.get(name) {
            Some(serde_json::Value::String(value)) if !value.is_empty() => Ok(value.clone()),
            _ => Err(Error::Unsupported(alloc::format!(
                "the token endpoint's answer has no `{name}`"
            ))),
        }
    }

    /// A whole-number field of the JSON body, if there is one.
    pub fn json_u64(&self, name: &str) -> Result<Option<u64>, Error> {
        Ok(match self.json()?.get(name) {
            Some(serde_json::Value::Number(n)) => n.as_u64(),
            Some(serde_json::Value::String(s)) => s.parse().ok(),
            _ => None,
        })
    }
}

/// What a token request obtained.
#[derive(Debug, Clone)]
pub struct Minted {
    inner: wit::Minted,
}

impl Minted {
    /// Fields valid for `expires_in` seconds.
    pub fn new(expires_in: u64) -> Self {
        Self {
            inner: wit::Minted {
                fields: Vec::new(),
                expires_in,
                rotated: Vec::new(),
            },
        }
    }

    /// A field handed to `inject` beside the stored credential's.
    pub fn field(mut self, name: &str, value: impl Into<String>) -> Self {
        self.inner.fields.push(wit::Pair {
            name: name.to_owned(),
            value: value.into(),
        });
        self
    }

    /// A stored credential field to replace (a refresh token the provider rotated on use):
    /// credgate stores the secret's next version with it.
    pub fn rotated(mut self, name: &str, value: impl Into<String>) -> Self {
        self.inner.rotated.push(wit::Pair {
            name: name.to_owned(),
            value: value.into(),
        });
        self
    }

    #[doc(hidden)]
    pub fn into_wit(self) -> wit::Minted {
        self.inner
    }
}

/// A JSON Web Token signed with RS256 under a PEM private key (by the host): base64url of the
/// header and the claims, a dot, and base64url of the signature.
pub fn jwt_rs256(header_json: &str, claims_json: &str, private_key_pem: &str) -> Result<String, Error> {
    let mut token = crate::encoding::base64url(header_json.as_bytes());
    token.push('.');
    token.push_str(&crate::encoding::base64url(claims_json.as_bytes()));
    let signature = crate::crypto::sign(crate::crypto::Signature::Rs256, private_key_pem, token.as_bytes())
        .map_err(Error::InvalidCredential)?;
    token.push('.');
    token.push_str(&crate::encoding::base64url(&signature));
    Ok(token)
}
