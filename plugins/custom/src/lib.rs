//! Custom: the operator configures the injections.
//!
//! Config:
//! - `headers`: a JSON list of `{"name": "x-api-key", "format": "{token}"}`
//! - `query`: a JSON list of `{"name": "api_key", "format": "{token}"}`
//!
//! A format is text with placeholders: `{field}` is a credential field's whole value,
//! `{base64:a:b}` is base64 of `a:b` for Basic-style schemes (`Basic {base64:user:password}`).
//! There is no slicing or padding, so no format can reveal part of a secret. Every format is
//! checked, and every placeholder must name a credential field, when the secret is created.

#![no_std]

use credgate_plugin_sdk::prelude::*;
use credgate_plugin_sdk::{Placeholder, expand, parse};
use serde_json::Value;

struct Custom;

/// One configured injection: a header or query parameter name and its format.
struct Rule {
    name: String,
    format: String,
}

const MAX_RULES: usize = 16;

fn rules(config: &Config, key: &str) -> Result<Vec<Rule>, Error> {
    let Some(text) = config.get(key) else {
        return Ok(Vec::new());
    };
    let list: Value =
        serde_json::from_str(text).map_err(|_| Error::InvalidConfig(format!("`{key}` must be a JSON list")))?;
    let items = list
        .as_array()
        .ok_or_else(|| Error::InvalidConfig(format!("`{key}` must be a list of {{\"name\", \"format\"}}")))?;
    if items.len() > MAX_RULES {
        return Err(Error::InvalidConfig(format!(
            "`{key}` has more than {MAX_RULES} entries"
        )));
    }
    items
        .iter()
        .enumerate()
        .map(|(i, item)| {
            let object = item
                .as_object()
                .ok_or_else(|| Error::InvalidConfig(format!("`{key}[{i}]` must be an object")))?;
            if let Some(extra) = object.keys().find(|k| *k != "name" && *k != "format") {
                return Err(Error::InvalidConfig(format!(
                    "`{key}[{i}]` has an unknown field `{extra}`; expected name, format"
                )));
            }
            let text = |field: &str| {
                object
                    .get(field)
                    .and_then(Value::as_str)
                    .filter(|v| !v.is_empty())
                    .map(str::to_owned)
                    .ok_or_else(|| Error::InvalidConfig(format!("`{key}[{i}].{field}` must be a non-empty string")))
            };
            Ok(Rule {
                name: text("name")?,
                format: text("format")?,
            })
        })
        .collect()
}

fn all_rules(config: &Config) -> Result<(Vec<Rule>, Vec<Rule>), Error> {
    let headers = rules(config, "headers")?;
    let query = rules(config, "query")?;
    if headers.is_empty() && query.is_empty() {
        return Err(Error::InvalidConfig(
            "configure at least one of `headers` or `query`".into(),
        ));
    }
    Ok((headers, query))
}

impl Provider for Custom {
    fn describe() -> Description {
        Description::new("custom", "Custom", env!("CARGO_PKG_VERSION"))
            .docs("https://github.com/credgate/credgate#custom")
            .open_credential()
            .config(
                Field::config("headers", "Headers", ValueKind::Json)
                    .optional()
                    .help("JSON list of {\"name\": header, \"format\": \"Bearer {token}\"}"),
            )
            .config(
                Field::config("query", "Query parameters", ValueKind::Json)
                    .optional()
                    .help("JSON list of {\"name\": parameter, \"format\": \"{token}\"}"),
            )
    }

    fn validate(credential: &Credential, config: &Config) -> Result<(), Error> {
        let (headers, query) = all_rules(config)?;
        for (kind, rule) in headers
            .iter()
            .map(|r| ("header", r))
            .chain(query.iter().map(|r| ("query parameter", r)))
        {
            let placeholders =
                parse(&rule.format).map_err(|e| Error::InvalidConfig(format!("{kind} `{}`: {e}", rule.name)))?;
            if placeholders.is_empty() {
                return Err(Error::InvalidConfig(format!(
                    "{kind} `{}`: the format uses no credential field",
                    rule.name
                )));
            }
            for placeholder in placeholders {
                let names = match &placeholder {
                    Placeholder::Field(name) => vec![name.as_str()],
                    Placeholder::Base64(a, b) => vec![a.as_str(), b.as_str()],
                };
                for name in names {
                    if credential.find(name).is_none() {
                        return Err(Error::InvalidConfig(format!(
                            "{kind} `{}`: the format uses `{name}`, which is not a field of the credential",
                            rule.name
                        )));
                    }
                }
            }
        }
        Ok(())
    }

    fn inject(_: &Request, credential: &Credential, config: &Config) -> Result<Edits, Error> {
        let (headers, query) = all_rules(config)?;
        let value = |rule: &Rule| {
            expand(&rule.format, |name| credential.find(name)).map_err(|e| Error::InvalidConfig(e.to_string()))
        };
        let mut edits = Edits::new();
        for rule in &headers {
            edits = edits.set_header(&rule.name, value(rule)?);
        }
        for rule in &query {
            edits = edits.set_query(&rule.name, value(rule)?);
        }
        Ok(edits)
    }
}

provider!(Custom);
