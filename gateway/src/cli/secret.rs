//! `credgate secret …`. Values come from a file, stdin or a hidden prompt, never from argv
//! (where `ps` and shell history would see them).

use std::io::{IsTerminal, Read};
use std::path::PathBuf;

use clap::Subcommand;
use serde_json::{Map, Value, json};
use uuid::Uuid;
use zeroize::Zeroizing;

use super::output;
use super::{AdminClient, CliError, ClientArgs, exit};

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    client: ClientArgs,
    #[command(subcommand)]
    command: Cmd,
}

/// Where the credential comes from. With neither flag: a hidden prompt on a terminal, else
/// standard input. The text is a JSON object of fields (`{"username": …, "password": …}`) or,
/// for single-value types, the token itself.
#[derive(Debug, Clone, clap::Args)]
struct ValueSource {
    /// Read the credential from this file (`-` for standard input).
    #[arg(long, value_name = "PATH")]
    from_file: Option<PathBuf>,
    /// Read the credential from standard input.
    #[arg(long, conflicts_with = "from_file")]
    from_stdin: bool,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Store a credential.
    Create {
        #[arg(long)]
        name: String,
        /// A native type or a provider id (`credgate provider list` shows them).
        #[arg(long = "type")]
        secret_type: String,
        /// A config value, `key=value` (repeatable), e.g. `--config header=x-api-key`.
        #[arg(long = "config", value_name = "KEY=VALUE")]
        config: Vec<String>,
        /// Config as a JSON object (merged under the `--config` values).
        #[arg(long, value_name = "JSON")]
        config_json: Option<String>,
        /// A host the credential may be sent to (repeatable): `name`, `name:port`, `*.suffix`.
        #[arg(long = "allowed-host", value_name = "HOST")]
        allowed_hosts: Vec<String>,
        /// Allow loopback and private destinations.
        #[arg(long)]
        allow_private_destinations: bool,
        /// Allow plain http.
        #[arg(long)]
        allow_insecure_http: bool,
        /// Scrub the credential from response bodies too (for upstreams that echo requests).
        #[arg(long)]
        redact_responses: bool,
        #[command(flatten)]
        source: ValueSource,
    },
    /// List secrets (metadata only).
    List,
    /// Show one secret's metadata.
    Show { id: Uuid },
    /// Replace the value with a new version; grants keep working.
    Rotate {
        id: Uuid,
        #[command(flatten)]
        source: ValueSource,
    },
    /// Delete a secret: its value is destroyed and its grants revoked.
    Delete { id: Uuid },
}

const COLUMNS: &[(&str, &str)] = &[
    ("ID", "id"),
    ("NAME", "name"),
    ("TYPE", "type"),
    ("VERSION", "version"),
    ("ALLOWED HOSTS", "allowed_hosts"),
    ("GRANTS", "active_grants"),
    ("UPDATED", "updated_at"),
];

pub async fn run(args: Args) -> Result<(), CliError> {
    let api = AdminClient::new(&args.client)?;
    let show = |v: &Value| {
        if args.client.json {
            output::json(v)
        } else {
            output::object(v)
        }
    };
    match args.command {
        Cmd::Create {
            name,
            secret_type,
            config,
            config_json,
            allowed_hosts,
            allow_private_destinations,
            allow_insecure_http,
            redact_responses,
            source,
        } => {
            let config = parse_config(&config, config_json.as_deref())?;
            let credential = read_credential(&api, &source, &secret_type).await?;
            let body = json!({
                "name": name,
                "type": secret_type,
                "credential": credential,
                "config": config,
                "allowed_hosts": allowed_hosts,
                "allow_private_destinations": allow_private_destinations,
                "allow_insecure_http": allow_insecure_http,
                "redact_responses": redact_responses,
            });
            show(&api.post("/admin/v1/secrets", &body).await?);
        }
        Cmd::List => {
            let list = api.get("/admin/v1/secrets").await?;
            if args.client.json {
                output::json(&list["data"]);
            } else {
                output::table(list["data"].as_array().map(Vec::as_slice).unwrap_or_default(), COLUMNS);
            }
        }
        Cmd::Show { id } => show(&api.get(&format!("/admin/v1/secrets/{id}")).await?),
        Cmd::Rotate { id, source } => {
            let current = api.get(&format!("/admin/v1/secrets/{id}")).await?;
            let secret_type = current["type"]
                .as_str()
                .ok_or_else(|| CliError::new(exit::FAILURE, "the gateway did not say the secret's type"))?
                .to_owned();
            let credential = read_credential(&api, &source, &secret_type).await?;
            show(
                &api.post(
                    &format!("/admin/v1/secrets/{id}/rotate"),
                    &json!({"credential": credential}),
                )
                .await?,
            );
        }
        Cmd::Delete { id } => {
            api.delete(&format!("/admin/v1/secrets/{id}")).await?;
            if !args.client.json {
                println!("deleted secret {id}; its value is destroyed and its grants revoked");
            }
        }
    }
    Ok(())
}

fn parse_config(pairs: &[String], json_text: Option<&str>) -> Result<Map<String, Value>, CliError> {
    let mut config = match json_text {
        Some(text) => match serde_json::from_str::<Value>(text) {
            Ok(Value::Object(map)) => map,
            _ => {
                return Err(CliError::new(exit::INVALID, "--config-json must be a JSON object"));
            }
        },
        None => Map::new(),
    };
    for pair in pairs {
        let (key, value) = pair
            .split_once('=')
            .ok_or_else(|| CliError::new(exit::INVALID, format!("--config `{pair}` is not KEY=VALUE")))?;
        config.insert(key.to_owned(), Value::String(value.to_owned()));
    }
    Ok(config)
}

async fn read_credential(api: &AdminClient, source: &ValueSource, secret_type: &str) -> Result<Value, CliError> {
    let io = |e: std::io::Error| CliError::new(exit::FAILURE, format!("cannot read the credential: {e}"));
    let text = match (&source.from_file, source.from_stdin) {
        (Some(path), _) if path.as_os_str() != "-" => Zeroizing::new(std::fs::read_to_string(path).map_err(io)?),
        (Some(_), _) | (None, true) => read_stdin()?,
        (None, false) if std::io::stdin().is_terminal() => return prompt(api, secret_type).await,
        (None, false) => read_stdin()?,
    };
    parse_credential(&text)
}

fn read_stdin() -> Result<Zeroizing<String>, CliError> {
    let mut text = Zeroizing::new(String::new());
    std::io::stdin()
        .read_to_string(&mut text)
        .map_err(|e| CliError::new(exit::FAILURE, format!("cannot read standard input: {e}")))?;
    Ok(text)
}

/// A JSON object of string fields, or else the whole text (one trailing newline dropped) as
/// the `token`.
fn parse_credential(text: &str) -> Result<Value, CliError> {
    if text.trim_start().starts_with('{') {
        return match serde_json::from_str::<Value>(text) {
            Ok(Value::Object(map)) if map.values().all(Value::is_string) => Ok(Value::Object(map)),
            // The text is likely the credential: the message must not quote it.
            _ => Err(CliError::new(
                exit::INVALID,
                "the credential looks like JSON but is not an object of string fields",
            )),
        };
    }
    let value = text
        .strip_suffix('\n')
        .map(|t| t.strip_suffix('\r').unwrap_or(t))
        .unwrap_or(text);
    if value.is_empty() {
        return Err(CliError::new(exit::INVALID, "the credential is empty"));
    }
    Ok(json!({"token": value}))
}

/// Asks for each credential field the type describes (`GET /admin/v1/providers/{type}`), with
/// echo off for all of them: a description does not say which fields are public, and echoing a
/// secret is worse than not echoing a user name.
async fn prompt(api: &AdminClient, secret_type: &str) -> Result<Value, CliError> {
    let detail = api
        .get(&format!("/admin/v1/providers/{}", super::query_value(secret_type)))
        .await?;
    let fields = detail["description"]["credential_fields"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    if fields.is_empty() {
        return Err(CliError::new(
            exit::INVALID,
            format!(
                "type {secret_type} takes fields you name: give them as a JSON object with --from-file or on standard input"
            ),
        ));
    }
    let mut map = Map::new();
    for field in &fields {
        let Some(name) = field["name"].as_str() else { continue };
        let required = field["required"].as_bool().unwrap_or(true);
        let may_be_empty = field["allow_empty"].as_bool().unwrap_or(false);
        let label = match field["label"].as_str().filter(|l| !l.is_empty() && *l != name) {
            Some(label) => format!("{label} ({name})"),
            None => name.to_owned(),
        };
        let label = if required {
            format!("{label}: ")
        } else {
            format!("{label} (optional, Enter to skip): ")
        };
        let value = Zeroizing::new(
            rpassword::prompt_password(&label).map_err(|e| CliError::new(exit::FAILURE, e.to_string()))?,
        );
        if value.is_empty() && !(required && may_be_empty) {
            if required {
                return Err(CliError::new(
                    exit::INVALID,
                    format!("credential field `{name}` is required"),
                ));
            }
            continue;
        }
        map.insert(name.to_owned(), Value::String(value.to_string()));
    }
    Ok(Value::Object(map))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credential_text() {
        assert_eq!(parse_credential("sk-123\n").unwrap(), json!({"token": "sk-123"}));
        assert_eq!(
            parse_credential(r#"{"username":"u","password":"p"}"#).unwrap(),
            json!({"username": "u", "password": "p"})
        );
        let err = parse_credential("{not json canary").unwrap_err();
        assert!(!err.message.contains("canary"));
        assert!(parse_credential("\n").is_err());
    }
}
