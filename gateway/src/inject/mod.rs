//! Credential injection: from a request and a credential, the edits that put the credential
//! on the request.
//!
//! Every injector, native or WebAssembly, implements [`Injector`] and returns [`Edits`]; the
//! data plane applies them through [`apply`], which checks each edit by the rules in
//! [`crate::edit_rules`] the same way whoever produced it. An injector never sees the body
//! (SigV4 gets the body's hash) and cannot change the method, scheme, host or path.
//!
//! Every injector also describes its type ([`ProviderDescription`]): the fields a secret of
//! it takes. A new secret is checked against that description ([`check_secret`]) and then by
//! the injector's own [`Injector::validate`], the same way for native types (listed once, in
//! [`native`]) and for provider templates (the plugin host implements this trait).

mod api_key;
mod basic;
mod bearer;
mod description;
pub mod mint;
mod native;
mod placeholders;
mod secret_check;
pub mod sigv4;

use http::{HeaderMap, HeaderName, HeaderValue, Method};
use serde_json::{Map, Value};
use url::Url;

use crate::edit_rules::{self, EditError, MAX_EDITS, MAX_TOTAL_BYTES};
use crate::redact::{Credential, SecretString};

pub use api_key::ApiKeyInjector;
pub use basic::BasicInjector;
pub use bearer::BearerInjector;
pub use description::{BodyAccess, BodyHash, FieldSpec, ProviderDescription};
pub use native::{NATIVE_VERSION, is_native, native, natives};
pub use placeholders::{complete as complete_placeholders, placeholders};

/// Environment variables no type may declare for its SDKs (`ProviderDescription::env`): the
/// ones `credgate run` sets itself (the proxy, the CA bundle) and ones a shell, a loader or a
/// runtime reads as code or search paths, which a placeholder would break or subvert.
pub fn reserved_env(name: &str) -> bool {
    const NAMES: &[&str] = &[
        "PATH",
        "HOME",
        "SHELL",
        "USER",
        "ENV",
        "BASH_ENV",
        "IFS",
        "PS4",
        "PYTHONPATH",
        "PYTHONHOME",
        "PYTHONSTARTUP",
        "NODE_OPTIONS",
        "NODE_PATH",
        "RUBYOPT",
        "PERL5OPT",
        "JAVA_TOOL_OPTIONS",
        "HTTPS_PROXY",
        "HTTP_PROXY",
        "ALL_PROXY",
        "NO_PROXY",
        "SSL_CERT_FILE",
        "SSL_CERT_DIR",
        "REQUESTS_CA_BUNDLE",
        "CURL_CA_BUNDLE",
        "NODE_EXTRA_CA_CERTS",
        "AWS_CA_BUNDLE",
        "GIT_SSL_CAINFO",
        "NODE_USE_ENV_PROXY",
        "AWS_SESSION_TOKEN",
        "AWS_PROFILE",
        "AWS_SHARED_CREDENTIALS_FILE",
    ];
    const PREFIXES: &[&str] = &["LD_", "DYLD_", "CREDGATE_", "GIT_"];
    NAMES.contains(&name) || PREFIXES.iter().any(|p| name.starts_with(p))
}

#[cfg(test)]
mod env_tests {
    use super::reserved_env;

    #[test]
    fn only_key_variables_may_be_declared() {
        for name in [
            "PATH",
            "LD_PRELOAD",
            "HTTPS_PROXY",
            "SSL_CERT_FILE",
            "CREDGATE_APP_KEY",
            "BASH_ENV",
        ] {
            assert!(reserved_env(name), "{name}");
        }
        for name in ["OPENAI_API_KEY", "HF_TOKEN", "AWS_ACCESS_KEY_ID"] {
            assert!(!reserved_env(name), "{name}");
        }
    }
}
pub use secret_check::{Checked, check_credential, check_secret};
pub use sigv4::SigV4Injector;

/// What an injector may look at.
#[derive(Debug)]
pub struct InjectRequest<'a> {
    pub method: &'a Method,
    pub url: &'a Url,
    /// The headers that will be forwarded (the caller's, already filtered).
    pub headers: &'a HeaderMap,
    /// The body, or what of it the injector asked for ([`Injector::body_need`]).
    pub payload: Payload,
}

/// How the body is described to an injector that signs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Payload {
    /// Not needed by this injector.
    NotNeeded,
    /// Lower-case hex SHA-256 of the whole body.
    Sha256(String),
    /// The body streams unsigned (`UNSIGNED-PAYLOAD` or a streaming-unsigned variant named by
    /// the caller's `x-amz-content-sha256`).
    Unsigned(String),
    /// The body's digest, as [`BodyNeed::Digest`] asked.
    Digest(Vec<u8>),
    /// The whole body, as [`BodyNeed::Bytes`] asked.
    Bytes(bytes::Bytes),
}

/// What an injector needs of the body before it can run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyNeed {
    Nothing,
    /// The body's SHA-256 (the data plane buffers bounded bodies to compute it), unless the
    /// request already says its payload is unsigned.
    Sha256 {
        may_stream_unsigned: bool,
    },
    /// The body's digest (a template's declared body access).
    Digest(BodyHash),
    /// The body itself, refused past `most` bytes.
    Bytes {
        most: u64,
    },
}

/// Changes to make to the request. Values are credential material.
#[derive(Debug, Default)]
pub struct Edits {
    pub set_headers: Vec<(String, SecretString)>,
    pub remove_headers: Vec<String>,
    pub set_query: Vec<(String, SecretString)>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum InjectError {
    /// The secret's config or credential cannot be used (said without quoting a value). From
    /// [`Injector::validate`] it may be a template's own refusal, which goes to the operator
    /// who sent the secret; on the data plane only native injectors return it.
    #[error("{0}")]
    Config(String),
    /// The injector produced something the rules refuse.
    #[error("{0}")]
    Edit(#[from] EditError),
    /// The injector failed (a Wasm trap, a timeout, a refusal). `summary` is fixed text, safe
    /// for the app and the audit trail; `detail` may hold text a plugin produced, which may
    /// carry the credential in a form no redaction recognises: it goes to the log only, and
    /// only when the operator asks (`--log-plugin-errors`).
    #[error("{summary}: {detail}")]
    Failed { summary: &'static str, detail: String },
}

impl InjectError {
    /// What the app and the audit trail are told: never text an injector's plugin produced
    /// while injecting. `Config` messages on the data plane are credgate's own and quote no
    /// value.
    pub fn summary(&self) -> std::borrow::Cow<'static, str> {
        match self {
            Self::Config(m) => std::borrow::Cow::Owned(m.clone()),
            Self::Edit(e) => std::borrow::Cow::Borrowed(e.summary()),
            Self::Failed { summary, .. } => std::borrow::Cow::Borrowed(summary),
        }
    }
}

#[async_trait::async_trait]
pub trait Injector: Send + Sync + std::fmt::Debug {
    /// The type this injector serves: its id, version and the fields its secrets take.
    fn description(&self) -> &ProviderDescription;
    /// The provider id recorded in the audit trail (`bearer`, `aws_sigv4`, `openai`, …).
    fn id(&self) -> &str {
        &self.description().id
    }
    fn version(&self) -> &str {
        &self.description().version
    }
    /// The type's own checks of a new secret (or a rotated credential), after
    /// [`check_secret`]: rules a field list cannot say, such as "exactly one of two keys".
    /// [`InjectError::Config`] is the operator's to fix.
    async fn validate(&self, _credential: &Credential, _config: &Map<String, Value>) -> Result<(), InjectError> {
        Ok(())
    }
    /// Checks that a secret with this config can be sent to each of its allowed hosts.
    fn check_hosts(&self, _config: &Map<String, Value>, _hosts: &[String]) -> Result<(), String> {
        Ok(())
    }
    fn body_need(&self, _config: &Map<String, Value>, _url: &Url) -> BodyNeed {
        BodyNeed::Nothing
    }
    /// For a type that mints short-lived fields before it injects (crate::minting).
    fn minting(&self) -> Option<&dyn mint::Mint> {
        None
    }
    /// Headers that carry this provider's credential, which the caller's request must not
    /// keep (so exactly one credential reaches the upstream), besides the ones it sets.
    fn credential_headers(&self, _config: &Map<String, Value>) -> Vec<String> {
        Vec::new()
    }
    /// Query parameters that carry the credential, likewise removed from the caller's URL.
    fn credential_params(&self, _config: &Map<String, Value>) -> Vec<String> {
        Vec::new()
    }
    async fn inject(
        &self,
        request: &InjectRequest<'_>,
        credential: &Credential,
        config: &Map<String, Value>,
    ) -> Result<Edits, InjectError>;
}

/// Checks every edit and applies it: removes, then sets (replacing any value the caller
/// sent), then query parameters (replacing the caller's of the same name, every other byte of
/// the query left as sent). Returns the names of injected query parameters, which the audit
/// trail redacts.
pub fn apply(edits: Edits, headers: &mut HeaderMap, query: &mut Option<String>) -> Result<Vec<String>, EditError> {
    if edits.set_headers.len() + edits.remove_headers.len() + edits.set_query.len() > MAX_EDITS {
        return Err(EditError::TooMany);
    }
    let mut total = 0usize;
    let mut checked: Vec<(HeaderName, HeaderValue)> = Vec::with_capacity(edits.set_headers.len());
    for (name, value) in &edits.set_headers {
        edit_rules::check_header_name(name)?;
        edit_rules::check_header_value(name, value.expose().as_bytes())?;
        total += name.len() + value.expose().len();
        let header_name = HeaderName::from_bytes(name.as_bytes()).map_err(|_| EditError::BadName(name.clone()))?;
        let mut header_value = HeaderValue::from_bytes(value.expose().as_bytes())
            .map_err(|_| EditError::ControlCharacter(name.clone()))?;
        // Keeps the value out of any debug output of the header map.
        header_value.set_sensitive(true);
        checked.push((header_name, header_value));
    }
    let mut removals = Vec::with_capacity(edits.remove_headers.len());
    for name in &edits.remove_headers {
        edit_rules::check_header_name(name)?;
        removals.push(HeaderName::from_bytes(name.as_bytes()).map_err(|_| EditError::BadName(name.clone()))?);
    }
    for (name, value) in &edits.set_query {
        edit_rules::check_param_name(name)?;
        edit_rules::check_param_value(name, value.expose().as_bytes())?;
        total += name.len() + value.expose().len();
    }
    if total > MAX_TOTAL_BYTES {
        return Err(EditError::TooLarge);
    }
    for name in removals {
        headers.remove(name);
    }
    for (name, value) in checked {
        headers.insert(name, value);
    }
    let mut injected_params = Vec::new();
    if !edits.set_query.is_empty() {
        let names: Vec<&str> = edits.set_query.iter().map(|(n, _)| n.as_str()).collect();
        let mut edited = query
            .as_deref()
            .and_then(|q| crate::query::without(q, |name, _| names.contains(&name)));
        for (name, value) in &edits.set_query {
            edited = Some(crate::query::with(edited.as_deref(), name, value.expose()));
            injected_params.push(name.clone());
        }
        *query = edited;
    }
    Ok(injected_params)
}

/// Expands a format such as `Token {token}` with the credential's `token`.
pub(crate) fn format_token(format: &str, credential: &Credential) -> Result<SecretString, InjectError> {
    let token = field(credential, "token")?;
    Ok(SecretString::new(format.replacen("{token}", token.expose(), 1)))
}

pub(crate) fn field<'a>(credential: &'a Credential, name: &str) -> Result<&'a SecretString, InjectError> {
    credential
        .get(name)
        .ok_or_else(|| InjectError::Config(format!("the credential has no `{name}` field")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn edits(headers: &[(&str, &str)]) -> Edits {
        Edits {
            set_headers: headers
                .iter()
                .map(|(k, v)| ((*k).into(), SecretString::from(*v)))
                .collect(),
            ..Default::default()
        }
    }

    #[test]
    fn set_replaces_and_validates() {
        let mut headers = HeaderMap::new();
        headers.insert("authorization", HeaderValue::from_static("Bearer app-supplied"));
        let mut url = Some("q=1".to_owned());
        apply(edits(&[("Authorization", "Bearer real")]), &mut headers, &mut url).unwrap();
        assert_eq!(headers.get_all("authorization").iter().count(), 1);
        assert_eq!(headers["authorization"], "Bearer real");
        assert!(format!("{headers:?}").contains("Sensitive"));
        assert_eq!(
            apply(edits(&[("host", "x")]), &mut headers, &mut url),
            Err(EditError::ForbiddenName("host".into()))
        );
        assert!(matches!(
            apply(edits(&[("x-a", "a\r\nb")]), &mut headers, &mut url),
            Err(EditError::ControlCharacter(_))
        ));
        let many: Vec<(String, String)> = (0..40).map(|i| (format!("x-{i}"), "v".to_owned())).collect();
        let many: Vec<(&str, &str)> = many.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
        assert_eq!(apply(edits(&many), &mut headers, &mut url), Err(EditError::TooMany));
        let big = "v".repeat(12_000);
        assert_eq!(
            apply(
                edits(&[("x-a", &big), ("x-b", &big), ("x-c", &big)]),
                &mut headers,
                &mut url
            ),
            Err(EditError::TooLarge)
        );
    }

    #[test]
    fn query_params_replace_the_callers() {
        let mut headers = HeaderMap::new();
        let mut query = Some("key=app&q=%2f&flag".to_owned());
        let e = Edits {
            set_query: vec![("key".into(), SecretString::from("real key"))],
            ..Default::default()
        };
        assert_eq!(apply(e, &mut headers, &mut query).unwrap(), vec!["key".to_owned()]);
        assert_eq!(query.as_deref(), Some("q=%2f&flag&key=real%20key"));
    }
}
