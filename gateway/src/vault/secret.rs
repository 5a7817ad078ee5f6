//! Managed secrets: a credential's type, config and where it may go. The value itself is
//! sealed by `crypto` and never part of these types.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{Map, Value};
use utoipa::ToSchema;
use uuid::Uuid;

use super::host::HostPattern;

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
