//! Friendly Rust types over the contract's WIT types.

use alloc::borrow::ToOwned;
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

use crate::bindings::credgate::provider::types as wit;

/// How credgate checks a config value before the plugin sees it.
pub use wit::ValueKind;

/// A field a provider asks the operator for.
#[derive(Debug, Clone)]
pub struct Field {
    inner: wit::Field,
}

impl Field {
    /// A required credential field whose value is secret (all credential values are).
    pub fn secret(name: &str, label: &str) -> Self {
        Self::new(name, label, ValueKind::Text, true)
    }

    /// A required config field of the given kind.
    pub fn config(name: &str, label: &str, kind: ValueKind) -> Self {
        Self::new(name, label, kind, true)
    }

    fn new(name: &str, label: &str, kind: ValueKind, required: bool) -> Self {
        Self {
            inner: wit::Field {
                name: name.to_owned(),
                label: label.to_owned(),
                help: String::new(),
                required,
                kind,
                allowed_values: Vec::new(),
                default_value: None,
            },
        }
    }

    /// Makes the field optional.
    pub fn optional(mut self) -> Self {
        self.inner.required = false;
        self
    }

    /// One sentence of help.
    pub fn help(mut self, help: &str) -> Self {
        self.inner.help = help.to_owned();
        self
    }

    /// Restricts the value to one of `values`.
    pub fn one_of(mut self, values: &[&str]) -> Self {
        self.inner.allowed_values = values.iter().map(|v| (*v).to_owned()).collect();
        self
    }

    /// The value used when the operator gives none (makes the field optional).
    pub fn default_value(mut self, value: &str) -> Self {
        self.inner.default_value = Some(value.to_owned());
        self.inner.required = false;
        self
    }
}

/// What a provider is.
#[derive(Debug, Clone)]
pub struct Description {
    inner: wit::Description,
}

impl Description {
    /// `id` is also the secret type that selects the provider (`openai`).
    pub fn new(id: &str, display_name: &str, version: &str) -> Self {
        Self {
            inner: wit::Description {
                id: id.to_owned(),
                display_name: display_name.to_owned(),
                version: version.to_owned(),
                credential_fields: Vec::new(),
                open_credential_fields: false,
                config_fields: Vec::new(),
                base_url: String::new(),
                default_hosts: Vec::new(),
                docs_url: String::new(),
                body: wit::BodyAccess::None,
                env: Vec::new(),
                token_hosts: Vec::new(),
            },
        }
    }

    /// An environment variable the provider's SDKs read the key from (`OPENAI_API_KEY`):
    /// `credgate run` sets it to a placeholder that credgate replaces on the way out.
    pub fn env(mut self, name: &str) -> Self {
        self.inner.env.push(name.to_owned());
        self
    }

    /// A host `mint`'s token requests may go to (`name`, `name:port`, `*.suffix`; `{name}`
    /// from config). Fixed at load: a token request elsewhere is refused.
    pub fn token_host(mut self, host: &str) -> Self {
        self.inner.token_hosts.push(host.to_owned());
        self
    }

    /// Asks for the request body's digest, which [`Request::body`] then holds: credgate
    /// buffers the body (within its own body limit) to compute it.
    pub fn body_digest(mut self, algorithm: Hash) -> Self {
        self.inner.body = wit::BodyAccess::Digest(algorithm);
        self
    }

    /// Asks for the request body itself, up to `most` bytes (larger bodies are refused with
    /// `payload_too_large`), which [`Request::body`] then holds.
    pub fn body_bytes(mut self, most: u32) -> Self {
        self.inner.body = wit::BodyAccess::Bytes(most);
        self
    }

    /// The API's base URL; `{name}` is completed from the config field `name`.
    pub fn base_url(mut self, url: &str) -> Self {
        self.inner.base_url = url.to_owned();
        self
    }

    /// A default allowed host (`name`, `name:port`, `*.suffix`; `{name}` from config).
    pub fn host(mut self, host: &str) -> Self {
        self.inner.default_hosts.push(host.to_owned());
        self
    }

    /// Where the API documents its authentication.
    pub fn docs(mut self, url: &str) -> Self {
        self.inner.docs_url = url.to_owned();
        self
    }

    /// Adds a credential field.
    pub fn credential(mut self, field: Field) -> Self {
        self.inner.credential_fields.push(field.inner);
        self
    }

    /// Accepts credential fields besides the declared ones.
    pub fn open_credential(mut self) -> Self {
        self.inner.open_credential_fields = true;
        self
    }

    /// Adds a config field.
    pub fn config(mut self, field: Field) -> Self {
        self.inner.config_fields.push(field.inner);
        self
    }

    #[doc(hidden)]
    pub fn into_wit(self) -> wit::Description {
        self.inner
    }
}

/// Why a plugin refused. Messages must never contain credential values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// The secret's config is wrong.
    InvalidConfig(String),
    /// The credential is wrong or incomplete.
    InvalidCredential(String),
    /// This request cannot be served.
    Unsupported(String),
}

impl Error {
    #[doc(hidden)]
    pub fn into_wit(self) -> wit::Error {
        match self {
            Self::InvalidConfig(m) => wit::Error::InvalidConfig(m),
            Self::InvalidCredential(m) => wit::Error::InvalidCredential(m),
            Self::Unsupported(m) => wit::Error::Unsupported(m),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::InvalidConfig(m) => write!(f, "invalid config: {m}"),
            Self::InvalidCredential(m) => write!(f, "invalid credential: {m}"),
            Self::Unsupported(m) => write!(f, "unsupported: {m}"),
        }
    }
}

fn find<'a>(pairs: &'a [wit::Pair], name: &str) -> Option<&'a str> {
    pairs.iter().find(|p| p.name == name).map(|p| p.value.as_str())
}

/// The credential's fields. Values are secret.
#[derive(Clone)]
pub struct Credential {
    pairs: Vec<wit::Pair>,
}

impl fmt::Debug for Credential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.pairs.iter().map(|p| &p.name)).finish()
    }
}

impl Credential {
    /// A field's value; an `InvalidCredential` error names the missing field.
    pub fn get(&self, name: &str) -> Result<&str, Error> {
        find(&self.pairs, name).ok_or_else(|| Error::InvalidCredential(format!("the credential has no `{name}` field")))
    }

    /// A field's value, if present.
    pub fn find(&self, name: &str) -> Option<&str> {
        find(&self.pairs, name)
    }

    /// Every field name (never the values).
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.pairs.iter().map(|p| p.name.as_str())
    }

    #[doc(hidden)]
    pub fn from_wit(pairs: Vec<wit::Pair>) -> Self {
        Self { pairs }
    }
}

/// The secret's config. Values are not secret; non-string config values arrive as JSON text.
#[derive(Debug, Clone)]
pub struct Config {
    pairs: Vec<wit::Pair>,
}

impl Config {
    /// A config value, if present.
    pub fn get(&self, name: &str) -> Option<&str> {
        find(&self.pairs, name)
    }

    /// A config value that must be present.
    pub fn require(&self, name: &str) -> Result<&str, Error> {
        self.get(name)
            .ok_or_else(|| Error::InvalidConfig(format!("config `{name}` is required")))
    }

    #[doc(hidden)]
    pub fn from_wit(pairs: Vec<wit::Pair>) -> Self {
        Self { pairs }
    }
}

/// A hash function, for [`Description::body_digest`] and [`crate::crypto`].
pub use wit::HashAlgorithm as Hash;

/// The request body as the plugin sees it: only what the description asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Body {
    /// Not asked for.
    None,
    /// Its digest ([`Description::body_digest`]); of no bytes when there is no body.
    Digest(Vec<u8>),
    /// The bytes ([`Description::body_bytes`]); empty when there is no body.
    Bytes(Vec<u8>),
}

/// The request as the plugin sees it.
#[derive(Debug, Clone)]
pub struct Request {
    /// `GET`, `POST`, …
    pub method: String,
    /// The absolute URL, with its query exactly as it will be sent.
    pub url: String,
    /// The headers that will be sent, names in lower case.
    pub headers: Vec<(String, String)>,
    /// The body, as the description asked.
    pub body: Body,
}

impl Request {
    /// The path, as sent (`/api/v3/order`).
    pub fn path(&self) -> &str {
        let after_scheme = self.url.split_once("://").map_or(self.url.as_str(), |(_, rest)| rest);
        let path = after_scheme.find('/').map_or("/", |i| &after_scheme[i..]);
        path.split(['?', '#']).next().unwrap_or("/")
    }

    /// The query, as sent, without the `?` (empty when there is none).
    pub fn query(&self) -> &str {
        let without_fragment = self.url.split('#').next().unwrap_or("");
        without_fragment.split_once('?').map_or("", |(_, q)| q)
    }

    /// The query without the parameters named in `names`, as credgate leaves it when the
    /// plugin sets those parameters: what a signature over the final query starts from.
    pub fn query_without(&self, names: &[&str]) -> String {
        let mut kept = String::new();
        for pair in self.query().split('&').filter(|p| !p.is_empty()) {
            let name = pair.split_once('=').map_or(pair, |(n, _)| n);
            if names.contains(&name) {
                continue;
            }
            if !kept.is_empty() {
                kept.push('&');
            }
            kept.push_str(pair);
        }
        kept
    }

    /// The body's bytes, or nothing when they were not asked for.
    pub fn body_bytes(&self) -> &[u8] {
        match &self.body {
            Body::Bytes(bytes) => bytes,
            _ => &[],
        }
    }

    /// The first value of a header (name compared case-insensitively).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    #[doc(hidden)]
    pub fn from_wit(request: wit::Request) -> Self {
        Self {
            method: request.method,
            url: request.url,
            headers: request.headers.into_iter().map(|p| (p.name, p.value)).collect(),
            body: match request.body {
                wit::Body::None => Body::None,
                wit::Body::Digest(digest) => Body::Digest(digest),
                wit::Body::Bytes(bytes) => Body::Bytes(bytes),
            },
        }
    }
}

/// The changes to make to the request.
#[derive(Debug, Clone, Default)]
pub struct Edits {
    inner: wit::Edits,
}

// The record is generated, so it cannot carry a derive of its own.
#[allow(clippy::derivable_impls)]
impl Default for wit::Edits {
    fn default() -> Self {
        Self {
            set_headers: Vec::new(),
            remove_headers: Vec::new(),
            set_query: Vec::new(),
        }
    }
}

impl Edits {
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets a header, replacing any the caller sent.
    pub fn set_header(mut self, name: &str, value: impl Into<String>) -> Self {
        self.inner.set_headers.push(wit::Pair {
            name: name.to_owned(),
            value: value.into(),
        });
        self
    }

    /// Removes a header.
    pub fn remove_header(mut self, name: &str) -> Self {
        self.inner.remove_headers.push(name.to_owned());
        self
    }

    /// Sets a query parameter: any the caller sent under the name is removed, and this one is
    /// appended after the others set, percent-encoded except for unreserved characters.
    pub fn set_query(mut self, name: &str, value: impl Into<String>) -> Self {
        self.inner.set_query.push(wit::Pair {
            name: name.to_owned(),
            value: value.into(),
        });
        self
    }

    #[doc(hidden)]
    pub fn into_wit(self) -> wit::Edits {
        self.inner
    }
}
