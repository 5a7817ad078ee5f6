//! `api_key`: the token in an operator-chosen header (with an optional format such as
//! `Token {token}`) or query parameter.

use std::sync::LazyLock;

use serde_json::{Map, Value};

use super::{Edits, FieldSpec, InjectError, InjectRequest, Injector, ProviderDescription, field, format_token};
use crate::edit_rules::{check_header_name, check_param_name};
use crate::redact::Credential;

#[derive(Debug, Default)]
pub struct ApiKeyInjector;

static DESCRIPTION: LazyLock<ProviderDescription> = LazyLock::new(|| {
    ProviderDescription::native(
        "api_key",
        "API key (header or query parameter)",
        vec![FieldSpec::text("token", "API key", true, "")],
        vec![
            FieldSpec::text(
                "header",
                "Header name",
                false,
                "The header that carries the key. Give this or `query_param`.",
            ),
            FieldSpec::text(
                "format",
                "Format",
                false,
                "The header's value, with `{token}` once, like `Token {token}`. Default: `{token}`.",
            ),
            FieldSpec::text(
                "query_param",
                "Query parameter",
                false,
                "The query parameter that carries the key (redacted in the audit trail). Give this or `header`.",
            ),
        ],
    )
});

/// A header format holds `{token}` exactly once and no other placeholder.
fn check_format(format: &str) -> Result<(), String> {
    if format.matches("{token}").count() != 1 {
        return Err("config `format` must contain `{token}` exactly once, like `Token {token}`".into());
    }
    if format.replace("{token}", "").contains(['{', '}']) {
        return Err("config `format` may use only the `{token}` placeholder".into());
    }
    if format.len() > 256 {
        return Err("config `format` must be at most 256 characters".into());
    }
    Ok(())
}

fn check_config(config: &Map<String, Value>) -> Result<(), String> {
    match (get(config, "header"), get(config, "query_param")) {
        (Some(header), None) => {
            check_header_name(header).map_err(|e| format!("config `header`: {e}"))?;
            get(config, "format").map_or(Ok(()), check_format)
        }
        (None, Some(param)) => {
            check_param_name(param).map_err(|e| format!("config `query_param`: {e}"))?;
            if config.contains_key("format") {
                return Err("config `format` applies to `header` only".into());
            }
            Ok(())
        }
        _ => Err("type api_key needs exactly one of config `header` or `query_param`".into()),
    }
}

fn get<'a>(config: &'a Map<String, Value>, key: &str) -> Option<&'a str> {
    config.get(key).and_then(Value::as_str)
}

#[async_trait::async_trait]
impl Injector for ApiKeyInjector {
    fn description(&self) -> &ProviderDescription {
        &DESCRIPTION
    }

    async fn validate(&self, _: &Credential, config: &Map<String, Value>) -> Result<(), InjectError> {
        check_config(config).map_err(InjectError::Config)
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inject::check_secret;

    /// The description's checks, then the type's own, as the admin API runs them.
    fn check(json: serde_json::Value) -> Result<(), String> {
        let mut credential = Credential::new();
        credential.insert("token", crate::redact::SecretString::from("t"));
        let checked = check_secret(&DESCRIPTION, &credential, json.as_object().unwrap())?;
        check_config(&checked.config)
    }

    #[test]
    fn a_key_goes_in_exactly_one_header_or_query_parameter() {
        check(serde_json::json!({"header": "x-api-key"})).unwrap();
        check(serde_json::json!({"header": "authorization", "format": "Token {token}"})).unwrap();
        check(serde_json::json!({"query_param": "key"})).unwrap();
        for bad in [
            serde_json::json!({}),
            serde_json::json!({"header": "a", "query_param": "b"}),
            serde_json::json!({"header": "host"}),
            serde_json::json!({"header": "x", "format": "no placeholder"}),
            serde_json::json!({"header": "x", "format": "{token} {token}"}),
            serde_json::json!({"header": "x", "format": "{token:.4}"}),
            serde_json::json!({"header": "x", "format": "{token} {other}"}),
            serde_json::json!({"query_param": "k", "format": "{token}"}),
            serde_json::json!({"header": 5}),
            serde_json::json!({"headr": "x"}),
        ] {
            assert!(check(bad.clone()).is_err(), "{bad}");
        }
    }
}
