//! Managed secrets: a credential's type, config and where it may go. The value itself is
//! sealed by `crypto` and never part of these types.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{Map, Value};
use utoipa::ToSchema;
use uuid::Uuid;

use super::host::HostPattern;
use crate::edit_rules::{check_header_name, check_param_name};
use crate::redact::Credential;

/// How a secret's credential is injected.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum SecretType {
    Bearer,
    ApiKey,
    Basic,
    AwsSigv4,
}

pub const NATIVE_TYPES: &[&str] = &["bearer", "api_key", "basic", "aws_sigv4"];

impl SecretType {
    pub fn parse(text: &str) -> Result<Self, String> {
        Ok(match text {
            "bearer" => Self::Bearer,
            "api_key" => Self::ApiKey,
            "basic" => Self::Basic,
            "aws_sigv4" => Self::AwsSigv4,
            // The value is not repeated: a credential pasted into the wrong field would be.
            _ => {
                return Err(format!(
                    "unknown secret type; expected one of {}",
                    NATIVE_TYPES.join(", ")
                ));
            }
        })
    }

    pub fn as_str(&self) -> &str {
        match self {
            Self::Bearer => "bearer",
            Self::ApiKey => "api_key",
            Self::Basic => "basic",
            Self::AwsSigv4 => "aws_sigv4",
        }
    }

    /// (field, required) for the credential of this type.
    fn credential_fields(&self) -> &'static [(&'static str, bool)] {
        match self {
            Self::Bearer | Self::ApiKey => &[("token", true)],
            Self::Basic => &[("username", true), ("password", true)],
            Self::AwsSigv4 => &[
                ("access_key_id", true),
                ("secret_access_key", true),
                ("session_token", false),
            ],
        }
    }

    fn config_keys(&self) -> &'static [&'static str] {
        match self {
            Self::Bearer | Self::Basic => &["base_url"],
            Self::ApiKey => &["base_url", "header", "format", "query_param"],
            Self::AwsSigv4 => &["base_url", "region", "service", "endpoint"],
        }
    }
}

/// What the admin API shows of a secret: everything but the value.
#[derive(Clone, Debug, PartialEq, Serialize, ToSchema)]
pub struct SecretMeta {
    pub id: Uuid,
    pub name: String,
    /// Unique, URL-safe form of the name.
    pub slug: String,
    #[serde(rename = "type")]
    pub secret_type: String,
    #[schema(value_type = Object)]
    pub config: Map<String, Value>,
    pub allowed_hosts: Vec<String>,
    pub allow_private_destinations: bool,
    pub allow_insecure_http: bool,
    /// Scrub the credential from response bodies too, not only from response headers.
    pub redact_responses: bool,
    /// The current version; rotation adds one.
    pub version: i64,
    /// Names of the credential's fields (never their values).
    pub credential_fields: Vec<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deleted_at: Option<DateTime<Utc>>,
}

pub const MAX_FIELD_LEN: usize = 16 * 1024;
pub const MAX_NAME_LEN: usize = 200;
pub const MAX_ALLOWED_HOSTS: usize = 64;

/// Turns a name into its slug: lower-case ASCII letters and digits joined by single dashes.
pub fn slugify(name: &str) -> Result<String, String> {
    let mut slug = String::with_capacity(name.len());
    for c in name.chars() {
        if c.is_ascii_alphanumeric() {
            slug.push(c.to_ascii_lowercase());
        } else if !slug.ends_with('-') && !slug.is_empty() {
            slug.push('-');
        }
    }
    let slug = slug.trim_end_matches('-');
    if slug.is_empty() {
        return Err("name must contain at least one ASCII letter or digit".into());
    }
    Ok(slug
        .chars()
        .take(64)
        .collect::<String>()
        .trim_end_matches('-')
        .to_owned())
}

/// Checks a credential's fields against its type: every required field present and
/// non-empty, no unknown field, values bounded. Values are never quoted in a message.
pub fn validate_credential(secret_type: &SecretType, credential: &Credential) -> Result<(), String> {
    let spec = secret_type.credential_fields();
    for name in credential.field_names() {
        if !spec.iter().any(|(f, _)| *f == name) {
            return Err(format!(
                "unknown credential field `{}` for type {}; expected {}",
                name.chars().take(64).collect::<String>(),
                secret_type.as_str(),
                spec.iter().map(|(f, _)| *f).collect::<Vec<_>>().join(", ")
            ));
        }
    }
    for (field, required) in spec {
        match credential.get(field) {
            None if *required => {
                return Err(format!(
                    "credential field `{field}` is required for type {}",
                    secret_type.as_str()
                ));
            }
            // Freshdesk-style Basic (key as username, empty password) needs an empty password.
            Some(v) if v.is_empty() && *field != "password" => {
                return Err(format!("credential field `{field}` must not be empty"));
            }
            Some(v) if v.expose().len() > MAX_FIELD_LEN => {
                return Err(format!(
                    "credential field `{field}` is longer than {MAX_FIELD_LEN} bytes"
                ));
            }
            _ => {}
        }
    }
    if *secret_type == SecretType::Basic && credential.get("username").is_some_and(|u| u.expose().contains(':')) {
        return Err("credential field `username` must not contain `:` (Basic auth joins on it)".into());
    }
    Ok(())
}

/// Checks a native type's config: known keys only, string values, and the rules of each key.
pub fn validate_config(secret_type: &SecretType, config: &Map<String, Value>) -> Result<(), String> {
    let allowed = secret_type.config_keys();
    for (key, value) in config {
        if !allowed.contains(&key.as_str()) {
            return Err(format!(
                "unknown config key `{}` for type {}; expected {}",
                key.chars().take(64).collect::<String>(),
                secret_type.as_str(),
                allowed.join(", ")
            ));
        }
        if !value.is_string() {
            return Err(format!("config `{key}` must be a string"));
        }
    }
    let get = |key: &str| config.get(key).and_then(Value::as_str);
    match secret_type {
        SecretType::ApiKey => match (get("header"), get("query_param")) {
            (Some(header), None) => {
                check_header_name(header).map_err(|e| format!("config `header`: {e}"))?;
                if let Some(format) = get("format") {
                    validate_format(format)?;
                }
            }
            (None, Some(param)) => {
                check_param_name(param).map_err(|e| format!("config `query_param`: {e}"))?;
                if config.contains_key("format") {
                    return Err("config `format` applies to `header` only".into());
                }
            }
            _ => {
                return Err("type api_key needs exactly one of config `header` or `query_param`".into());
            }
        },
        SecretType::AwsSigv4 => {
            for key in ["region", "service"] {
                if let Some(v) = get(key)
                    && (v.is_empty()
                        || v.len() > 64
                        || !v
                            .bytes()
                            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-'))
                {
                    return Err(format!(
                        "config `{key}` must be lower-case letters, digits and `-`, like `us-east-1` or `s3`"
                    ));
                }
            }
            if get("endpoint").is_some() && get("base_url").is_some() {
                return Err("give config `endpoint` or `base_url`, not both".into());
            }
        }
        SecretType::Bearer | SecretType::Basic => {}
    }
    Ok(())
}

/// An api_key header format holds `{token}` exactly once and no other placeholder.
fn validate_format(format: &str) -> Result<(), String> {
    if format.matches("{token}").count() != 1 {
        return Err("config `format` must contain `{token}` exactly once, like `Token {token}`".into());
    }
    if format.replace("{token}", "").contains(['{', '}']) {
        return Err("config `format` may use only the `{token}` placeholder".into());
    }
    if format.len() > 256 || format.chars().any(char::is_control) {
        return Err("config `format` must be at most 256 characters, without control characters".into());
    }
    Ok(())
}

/// The secret's base URL for base-URL mode, if it has one, checked and normalised.
pub fn base_url(config: &Map<String, Value>, allow_insecure_http: bool) -> Result<Option<url::Url>, String> {
    let Some(text) = config
        .get("base_url")
        .or_else(|| config.get("endpoint"))
        .and_then(Value::as_str)
    else {
        return Ok(None);
    };
    let url = url::Url::parse(text).map_err(|e| format!("config `base_url` is not a valid URL: {e}"))?;
    match url.scheme() {
        "https" => {}
        "http" if allow_insecure_http => {}
        "http" => {
            return Err("config `base_url` is http; set allow_insecure_http to allow it".into());
        }
        other => return Err(format!("config `base_url` scheme `{other}` is not http(s)")),
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("config `base_url` must not contain user info".into());
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err("config `base_url` must not have a query or fragment".into());
    }
    if url.host().is_none() {
        return Err("config `base_url` needs a host".into());
    }
    Ok(Some(url))
}

/// The allowed hosts to store: the operator's, checked and normalised, or else the base
/// URL's host. The base URL itself must be allowed, or base-URL mode could never work.
pub fn resolve_allowed_hosts(given: &[String], base_url: Option<&url::Url>) -> Result<Vec<String>, String> {
    if given.len() > MAX_ALLOWED_HOSTS {
        return Err(format!("at most {MAX_ALLOWED_HOSTS} allowed hosts"));
    }
    let mut patterns = given
        .iter()
        .map(|h| HostPattern::parse(h))
        .collect::<Result<Vec<_>, _>>()?;
    if let Some(url) = base_url {
        let host = super::host::normalise_host(&url.host().ok_or("base URL has no host")?)?;
        let port = url.port_or_known_default().unwrap_or(443);
        let default = if url.scheme() == "http" { 80 } else { 443 };
        if patterns.is_empty() {
            let text = match url.port() {
                Some(p) if host.contains(':') => format!("[{host}]:{p}"),
                Some(p) => format!("{host}:{p}"),
                None if host.contains(':') => format!("[{host}]"),
                None => host.clone(),
            };
            patterns.push(HostPattern::parse(&text)?);
        } else if !patterns.iter().any(|p| p.matches(&host, port, default)) {
            return Err(format!("the base URL's host `{host}` is not among allowed_hosts"));
        }
    }
    if patterns.is_empty() {
        return Err("allowed_hosts is empty and there is no base_url to take a host from".into());
    }
    let mut out: Vec<String> = patterns.iter().map(ToString::to_string).collect();
    out.dedup();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::redact::SecretString;

    fn cred(fields: &[(&str, &str)]) -> Credential {
        let mut c = Credential::new();
        for (k, v) in fields {
            c.insert(*k, SecretString::from(*v));
        }
        c
    }

    fn config(json: serde_json::Value) -> Map<String, Value> {
        json.as_object().unwrap().clone()
    }

    #[test]
    fn slugs() {
        assert_eq!(slugify("OpenAI prod key!").unwrap(), "openai-prod-key");
        assert_eq!(slugify("  --a__b--  ").unwrap(), "a-b");
        assert!(slugify("!!!").is_err());
        assert_eq!(slugify(&"x".repeat(100)).unwrap().len(), 64);
    }

    #[test]
    fn credential_fields_by_type() {
        validate_credential(&SecretType::Bearer, &cred(&[("token", "t")])).unwrap();
        assert!(
            validate_credential(&SecretType::Bearer, &cred(&[]))
                .unwrap_err()
                .contains("required")
        );
        assert!(
            validate_credential(&SecretType::Bearer, &cred(&[("token", "")]))
                .unwrap_err()
                .contains("empty")
        );
        let err = validate_credential(&SecretType::Bearer, &cred(&[("token", "t"), ("tokn", "x")])).unwrap_err();
        assert!(err.contains("unknown credential field `tokn`"), "{err}");
        validate_credential(&SecretType::Basic, &cred(&[("username", "key"), ("password", "")])).unwrap();
        assert!(validate_credential(&SecretType::Basic, &cred(&[("username", "a:b"), ("password", "p")])).is_err());
        validate_credential(
            &SecretType::AwsSigv4,
            &cred(&[("access_key_id", "AK"), ("secret_access_key", "s")]),
        )
        .unwrap();
    }

    #[test]
    fn api_key_config() {
        validate_config(&SecretType::ApiKey, &config(serde_json::json!({"header": "x-api-key"}))).unwrap();
        validate_config(
            &SecretType::ApiKey,
            &config(serde_json::json!({"header": "authorization", "format": "Token {token}"})),
        )
        .unwrap();
        validate_config(&SecretType::ApiKey, &config(serde_json::json!({"query_param": "key"}))).unwrap();
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
            assert!(
                validate_config(&SecretType::ApiKey, &config(bad.clone())).is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn hosts_from_base_url() {
        let url = base_url(
            &config(serde_json::json!({"base_url": "https://API.example.com/v1"})),
            false,
        )
        .unwrap();
        assert_eq!(
            resolve_allowed_hosts(&[], url.as_ref()).unwrap(),
            vec!["api.example.com"]
        );
        let url = base_url(&config(serde_json::json!({"base_url": "http://127.0.0.1:9000"})), true).unwrap();
        assert_eq!(
            resolve_allowed_hosts(&[], url.as_ref()).unwrap(),
            vec!["127.0.0.1:9000"]
        );
        assert!(base_url(&config(serde_json::json!({"base_url": "http://a.com"})), false).is_err());
        assert!(base_url(&config(serde_json::json!({"base_url": "https://u:p@a.com"})), false).is_err());
        let url = base_url(&config(serde_json::json!({"base_url": "https://a.example.com"})), false).unwrap();
        assert!(resolve_allowed_hosts(&["b.example.com".into()], url.as_ref()).is_err());
        assert!(resolve_allowed_hosts(&["*.example.com".into()], url.as_ref()).is_ok());
        assert!(resolve_allowed_hosts(&[], None).is_err());
    }
}
