//! Checking a new secret against its type's description, before the type's own
//! [`Injector::validate`](super::Injector::validate) runs: required fields, unknown fields,
//! allowed values, value kinds, defaults; then its base URL and default hosts completed from
//! the config. The same checks for native types and templates. Values are never quoted in a
//! message: a credential pasted into the wrong field would be.

use serde_json::{Map, Value};

use super::description::{FieldSpec, ProviderDescription};
use super::placeholders::complete;
use crate::redact::Credential;
use crate::vault::host::HostPattern;
use crate::vault::secret::MAX_FIELD_LEN;

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
            Some(v) if field.required && !field.allow_empty && v.is_empty() => {
                return Err(format!("credential field `{}` must not be empty", field.name));
            }
            Some(v) if v.expose().len() > MAX_FIELD_LEN => {
                return Err(format!(
                    "credential field `{}` is longer than {MAX_FIELD_LEN} bytes",
                    field.name
                ));
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
        // http only for a secret that allows it, which the admin API checks beside this; every
        // request to such a URL is checked against the secret's rules again when it is sent.
        "url" => match url::Url::parse(text) {
            Ok(u) if matches!(u.scheme(), "https" | "http") && u.host().is_some() && u.username().is_empty() => Ok(()),
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inject::native;
    use crate::redact::SecretString;

    fn cred(fields: &[(&str, &str)]) -> Credential {
        let mut c = Credential::new();
        for (k, v) in fields {
            c.insert(*k, SecretString::from(*v));
        }
        c
    }

    fn check(type_id: &str, fields: &[(&str, &str)]) -> Result<(), String> {
        check_credential(native(type_id).unwrap().description(), &cred(fields))
    }

    #[test]
    fn a_native_credential_has_its_types_fields_and_no_others() {
        check("bearer", &[("token", "t")]).unwrap();
        assert!(check("bearer", &[]).unwrap_err().contains("required"));
        assert!(check("bearer", &[("token", "")]).unwrap_err().contains("empty"));
        let err = check("bearer", &[("token", "t"), ("tokn", "x")]).unwrap_err();
        assert!(err.contains("unknown credential field `tokn`"), "{err}");
        let long = "v".repeat(MAX_FIELD_LEN + 1);
        assert!(
            check("bearer", &[("token", &long)])
                .unwrap_err()
                .contains("longer than")
        );
        // Freshdesk-style Basic: the key as username, an empty password.
        check("basic", &[("username", "key"), ("password", "")]).unwrap();
        assert!(
            check("basic", &[("username", "key")])
                .unwrap_err()
                .contains("`password` is required")
        );
        check("aws_sigv4", &[("access_key_id", "AK"), ("secret_access_key", "s")]).unwrap();
        assert!(check("aws_sigv4", &[("access_key_id", "AK")]).is_err());
    }

    #[tokio::test]
    async fn basic_refuses_a_username_with_a_colon() {
        let basic = native("basic").unwrap();
        let refused = basic
            .validate(&cred(&[("username", "a:b"), ("password", "p")]), &Map::new())
            .await
            .unwrap_err();
        assert!(refused.summary().contains("must not contain `:`"), "{refused}");
        basic
            .validate(&cred(&[("username", "ab"), ("password", "p")]), &Map::new())
            .await
            .unwrap();
    }

    #[test]
    fn a_native_config_takes_only_its_keys_and_base_url() {
        let sigv4 = native("aws_sigv4").unwrap();
        let credential = cred(&[("access_key_id", "AK"), ("secret_access_key", "s")]);
        let ok = serde_json::json!({"region": "eu-west-1", "service": "s3", "base_url": "https://x.example"});
        check_secret(sigv4.description(), &credential, ok.as_object().unwrap()).unwrap();
        let bad = serde_json::json!({"regoin": "eu-west-1"});
        let err = check_secret(sigv4.description(), &credential, bad.as_object().unwrap()).unwrap_err();
        assert!(
            err.contains("unknown config key `regoin`") && err.contains("region"),
            "{err}"
        );
    }
}
