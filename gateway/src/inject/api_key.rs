//! `api_key`: the token in an operator-chosen header (with an optional format such as
//! `Token {token}`) or query parameter.

use serde_json::{Map, Value};

use super::{Edits, InjectError, InjectRequest, Injector, field, format_token};
use crate::redact::Credential;

#[derive(Debug, Default)]
pub struct ApiKeyInjector;

fn get<'a>(config: &'a Map<String, Value>, key: &str) -> Option<&'a str> {
    config.get(key).and_then(Value::as_str)
}

#[async_trait::async_trait]
impl Injector for ApiKeyInjector {
    fn id(&self) -> &str {
        "api_key"
    }

    fn version(&self) -> &str {
        "native"
    }

    fn credential_headers(&self, config: &Map<String, Value>) -> Vec<String> {
        get(config, "header")
            .map(|h| vec![h.to_ascii_lowercase()])
            .unwrap_or_default()
    }

    fn credential_params(&self, config: &Map<String, Value>) -> Vec<String> {
        get(config, "query_param")
            .map(|p| vec![p.to_owned()])
            .unwrap_or_default()
    }

    async fn inject(
        &self,
        _: &InjectRequest<'_>,
        credential: &Credential,
        config: &Map<String, Value>,
    ) -> Result<Edits, InjectError> {
        if let Some(header) = get(config, "header") {
            let value = format_token(get(config, "format").unwrap_or("{token}"), credential)?;
            return Ok(Edits {
                set_headers: vec![(header.to_owned(), value)],
                ..Default::default()
            });
        }
        if let Some(param) = get(config, "query_param") {
            return Ok(Edits {
                set_query: vec![(param.to_owned(), field(credential, "token")?.clone())],
                ..Default::default()
            });
        }
        Err(InjectError::Config(
            "api_key secret has neither `header` nor `query_param` configured".into(),
        ))
    }
}
