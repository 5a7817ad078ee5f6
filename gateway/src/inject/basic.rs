//! `basic`: `Authorization: Basic base64(username:password)`.

use std::sync::LazyLock;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Map, Value};
use zeroize::Zeroizing;

use super::{Edits, FieldSpec, InjectError, InjectRequest, Injector, ProviderDescription, field};
use crate::redact::{Credential, SecretString};

#[derive(Debug, Default)]
pub struct BasicInjector;

static DESCRIPTION: LazyLock<ProviderDescription> = LazyLock::new(|| {
    let mut password = FieldSpec::text(
        "password",
        "Password",
        true,
        "May be empty for APIs that take the key as the username.",
    );
    password.allow_empty = true;
    ProviderDescription::native(
        "basic",
        "Basic authentication",
        vec![
            FieldSpec::text("username", "Username", true, "Must not contain `:`."),
            password,
        ],
        Vec::new(),
    )
});

/// `Basic base64(user:password)`, with the joined plaintext zeroed after encoding.
pub fn basic_value(username: &str, password: &str) -> SecretString {
    let mut joined = Zeroizing::new(String::with_capacity(username.len() + password.len() + 1));
    joined.push_str(username);
    joined.push(':');
    joined.push_str(password);
    SecretString::new(format!("Basic {}", STANDARD.encode(joined.as_bytes())))
}

#[async_trait::async_trait]
impl Injector for BasicInjector {
    fn description(&self) -> &ProviderDescription {
        &DESCRIPTION
    }

    async fn validate(&self, credential: &Credential, _: &Map<String, Value>) -> Result<(), InjectError> {
        if credential.get("username").is_some_and(|u| u.expose().contains(':')) {
            return Err(InjectError::Config(
                "credential field `username` must not contain `:` (Basic auth joins on it)".into(),
            ));
        }
        Ok(())
    }

    fn credential_headers(&self, _: &Map<String, Value>) -> Vec<String> {
        vec!["authorization".into()]
    }

    async fn inject(
        &self,
        _: &InjectRequest<'_>,
        credential: &Credential,
        _: &Map<String, Value>,
    ) -> Result<Edits, InjectError> {
        let value = basic_value(
            field(credential, "username")?.expose(),
            field(credential, "password")?.expose(),
        );
        Ok(Edits {
            set_headers: vec![("authorization".into(), value)],
            ..Default::default()
        })
    }
}
