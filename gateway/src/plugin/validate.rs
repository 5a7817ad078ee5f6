//! Checking a new secret of a template type against its provider's description, before the
//! plugin's own `validate` runs: required fields, unknown fields, allowed values, value
//! kinds, defaults; then its base URL and default hosts completed from the config.

use serde_json::{Map, Value};

use super::bindings::Pair;
use super::template::complete;
use super::{FieldSpec, ProviderDescription};
use crate::redact::Credential;
use crate::vault::host::HostPattern;

/// A secret that fits its description.
#[derive(Debug, Clone, PartialEq)]
pub struct Checked {
    /// The config with defaults filled in.
    pub config: Map<String, Value>,
    /// The template's base URL completed from the config (unless the operator set one).
    pub base_url: Option<String>,
    /// The template's default hosts completed from the config.
    pub default_hosts: Vec<String>,
}

pub fn check_credential(description: &ProviderDescription, credential: &Credential) -> Result<(), String> {
    let id = &description.id;
    if !description.open_credential_fields {
        for name in credential.field_names() {
            if description.credential_field(name).is_none() {
                let expected: Vec<&str> = description.credential_fields.iter().map(|f| f.name.as_str()).collect();
                return Err(format!(
                    "unknown credential field `{}` for type {id}; expected {}",
                    name.chars().take(64).collect::<String>(),
                    expected.join(", ")
                ));
            }
        }
    } else if credential.is_empty() {
        return Err(format!("type {id} needs at least one credential field"));
    }
    for field in &description.credential_fields {
        match credential.get(&field.name) {
            None if field.required => {
                return Err(format!("credential field `{}` is required for type {id}", field.name));
            }
            Some(v) if field.required && v.is_empty() => {
                return Err(format!("credential field `{}` must not be empty", field.name));
            }
            Some(v) if v.expose().len() > crate::vault::secret::MAX_FIELD_LEN => {
                return Err(format!("credential field `{}` is too long", field.name));
            }
            _ => {}
        }
    }
    Ok(())
}

fn check_value(field: &FieldSpec, value: &Value) -> Result<(), String> {
    let name = &field.name;
    if field.kind == "json" {
        return Ok(());
    }
    let text = value
        .as_str()
        .ok_or_else(|| format!("config `{name}` must be a string"))?;
    if !field.allowed_values.is_empty() && !field.allowed_values.iter().any(|v| v == text) {
        return Err(format!(
            "config `{name}` must be one of {}",
            field.allowed_values.join(", ")
        ));
    }
    if text.is_empty() || text.len() > 2048 || text.chars().any(char::is_control) {
        return Err(format!(
            "config `{name}` must be 1 to 2048 characters without control characters"
        ));
    }
    match field.kind.as_str() {
        "label"
            if text.len() > 63
                || !text.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                || text.starts_with('-') =>
        {
            Err(format!(
                "config `{name}` must be one DNS label: letters, digits and `-`"
            ))
        }
        "host" => HostPattern::parse(text)
            .map(|_| ())
            .map_err(|_| format!("config `{name}` must be a host name like `example.com` (optionally `:port`)"))
            .and_then(|()| {
                if text.starts_with("*.") {
                    Err(format!("config `{name}` must be a host, not a wildcard"))
                } else {
                    Ok(())
                }
            }),
        "url" => match url::Url::parse(text) {
            Ok(u) if u.scheme() == "https" && u.host().is_some() && u.username().is_empty() => Ok(()),
            _ => Err(format!("config `{name}` must be an absolute https URL")),
        },
        _ => Ok(()),
    }
}

pub fn check_secret(
    description: &ProviderDescription,
    credential: &Credential,
    config: &Map<String, Value>,
) -> Result<Checked, String> {
    check_credential(description, credential)?;
    let id = &description.id;
    for key in config.keys() {
        if key != "base_url" && !description.config_fields.iter().any(|f| &f.name == key) {
            let expected: Vec<&str> = description
                .config_fields
                .iter()
                .map(|f| f.name.as_str())
                .chain(["base_url"])
                .collect();
            return Err(format!(
                "unknown config key `{}` for type {id}; expected {}",
                key.chars().take(64).collect::<String>(),
                expected.join(", ")
            ));
        }
    }
    let mut filled = config.clone();
    for field in &description.config_fields {
        match config.get(&field.name) {
            Some(value) => check_value(field, value)?,
            None => match &field.default_value {
                Some(default) => {
                    filled.insert(field.name.clone(), Value::String(default.clone()));
                }
                None if field.required => return Err(format!("config `{}` is required for type {id}", field.name)),
                None => {}
            },
        }
    }
    let lookup = |name: &str| filled.get(name).and_then(Value::as_str);
    let base_url = if config.contains_key("base_url") || description.base_url.is_empty() {
        None
    } else {
        Some(complete(&description.base_url, lookup)?)
    };
    let default_hosts = description
        .default_hosts
        .iter()
        .map(|h| complete(h, lookup))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Checked {
        config: filled,
        base_url,
        default_hosts,
    })
}

/// Config as the plugin receives it: strings as they are, other JSON values as JSON text.
pub fn config_pairs(config: &Map<String, Value>) -> Vec<Pair> {
    config
        .iter()
        .map(|(name, value)| Pair {
            name: name.clone(),
            value: match value {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            },
        })
        .collect()
}

/// The credential as the plugin receives it. The caller zeroes the values after the call.
pub fn credential_pairs(credential: &Credential) -> Vec<Pair> {
    credential
        .fields()
        .map(|(name, value)| Pair {
            name: name.to_owned(),
            value: value.expose().to_owned(),
        })
        .collect()
}
