//! `basic`: `Authorization: Basic base64(username:password)`.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Map, Value};
use zeroize::Zeroizing;

use super::{Edits, InjectError, InjectRequest, Injector, field};
use crate::redact::{Credential, SecretString};

#[derive(Debug, Default)]
pub struct BasicInjector;

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
    fn id(&self) -> &str {
        "basic"
    }

    fn version(&self) -> &str {
        "native"
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
