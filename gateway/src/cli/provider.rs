//! `credgate provider …`: `new` writes a template crate to start from, `check` validates a
//! component against the contract offline and shows the request it would produce.

use std::path::PathBuf;

use clap::Subcommand;
use http::{HeaderMap, Method};
use serde_json::{Map, Value, json};

use super::output;
use super::{AdminClient, CliError, ClientArgs, exit};
use crate::inject::{self, InjectRequest, Injector, Payload, check_secret};
use crate::plugin::{Limits, LoadedPlugin, PluginEngine, PluginError, WasmInjector, config_pairs, credential_pairs};
use crate::redact::{Credential, SecretString};

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    client: ClientArgs,
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// List the types the gateway serves: native, bundled, from the plugins directory, uploaded.
    List,
    /// Show one provider: source, version, digest, fields.
    Show { id: String },
    /// Upload a component; it replaces an uploaded one with the same id.
    Add {
        file: PathBuf,
        /// Take over the id of a bundled or plugins-directory provider (audited).
        #[arg(long)]
        replace_bundled: bool,
    },
    /// Remove an uploaded component.
    Remove {
        id: String,
        /// Even though secrets use it.
        #[arg(long)]
        force: bool,
    },
    /// Stop serving a provider (any source).
    Disable {
        id: String,
        /// Even though secrets use it.
        #[arg(long)]
        force: bool,
    },
    /// Serve a disabled provider again.
    Enable { id: String },
    /// Write a new template crate that builds as it is: src/lib.rs with a test, the build
    /// flags, and the plugin SDK vendored beside it. No gateway needed.
    New {
        /// The template's id, also the secrets' type (`acme`).
        id: String,
        /// A template that signs each call (HMAC over time, method, path and body).
        #[arg(long, conflicts_with = "minting")]
        signing: bool,
        /// A template that mints an OAuth 2.0 token first (client credentials).
        #[arg(long)]
        minting: bool,
        /// Where to write it [default: ./<id>].
        #[arg(long)]
        dir: Option<PathBuf>,
    },
    /// Validate a component against the contract and, given sample values, print the request
    /// it would produce. No network, no gateway needed.
    Check {
        /// The component (`.wasm`).
        file: PathBuf,
        /// A sample credential field, `name=value` (repeatable). Use a test value: it is printed.
        #[arg(long = "credential", value_name = "NAME=VALUE")]
        credential: Vec<String>,
        /// A config value, `name=value` (repeatable); JSON values are parsed.
        #[arg(long = "config", value_name = "NAME=VALUE")]
        config: Vec<String>,
        /// The URL of the sample request [default: the template's base URL].
        #[arg(long)]
        url: Option<String>,
        /// The method of the sample request.
        #[arg(long, default_value = "GET")]
        method: String,
        /// The sample request's body, from a file (what a template that signs the body sees).
        #[arg(long, value_name = "FILE")]
        body: Option<PathBuf>,
        /// The time the plugin's clock gives (RFC 3339), so signatures come out the same on
        /// every run [default: now].
        #[arg(long, value_name = "TIME")]
        now: Option<chrono::DateTime<chrono::Utc>>,
        /// For a template that mints: the token endpoint's answer (its JSON body, status 200)
        /// that stands in for the endpoint, which is never called.
        #[arg(long, value_name = "JSON")]
        token_response: Option<String>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

fn pairs(items: &[String], what: &str) -> Result<Vec<(String, String)>, CliError> {
    items
        .iter()
        .map(|item| {
            item.split_once('=')
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .ok_or_else(|| CliError::new(exit::INVALID, format!("--{what} `{item}` is not NAME=VALUE")))
        })
        .collect()
}

/// What a minting template's token request and answer come to in a dry run.
struct DryMint {
    request: Value,
    fields: Value,
    credential: Credential,
}

/// The token request the template describes (checked against its token hosts, never sent) and,
/// with `answer` standing in for the endpoint, the fields it would mint.
async fn dry_mint(
    injector: &WasmInjector,
    sample: &Credential,
    config: &Map<String, Value>,
    answer: Option<&str>,
) -> Result<Option<DryMint>, CliError> {
    use crate::inject::mint::{TokenBody, TokenResponse};
    let invalid = |e: String| CliError::new(exit::INVALID, e);
    let Some(mint) = injector.minting() else {
        return Ok(None);
    };
    let Some(request) = mint
        .token_request(sample, config)
        .await
        .map_err(|e| invalid(e.to_string()))?
    else {
        return Ok(None);
    };
    let hosts = crate::minting::exchange::token_hosts(&injector.plugin.description.token_hosts, config)
        .map_err(|e| invalid(format!("the token hosts cannot be completed: {e}")))?;
    if !crate::minting::exchange::on_token_hosts(&request.url, &hosts) {
        return Err(invalid(format!(
            "the token request goes to `{}`, which is not among the template's token hosts: credgate would refuse it",
            request.url.host_str().unwrap_or_default()
        )));
    }
    let shown = json!({
        "method": request.method.as_str(),
        "url": request.url.as_str(),
        "headers": request.headers.iter().map(|(n, v)| format!("{n}: {}", v.expose())).collect::<Vec<_>>(),
        "body": match &request.body {
            TokenBody::None => Value::Null,
            TokenBody::Form(fields) => json!(fields.iter().map(|(n, v)| format!("{n}={}", v.expose())).collect::<Vec<_>>()),
            TokenBody::Json(text) => json!(text.expose()),
        },
    });
    let answer = answer.ok_or_else(|| {
        invalid(format!(
            "this template mints a token first ({} {}): give --token-response with the endpoint's JSON answer",
            request.method, request.url
        ))
    })?;
    let minted = mint
        .accept(
            &TokenResponse {
                status: 200,
                headers: vec![("content-type".into(), "application/json".into())],
                body: SecretString::new(answer.to_owned()),
            },
            sample,
            config,
        )
        .await
        .map_err(|e| invalid(format!("the template does not accept that answer: {e}")))?;
    let fields = json!({
        "fields": minted.fields.field_names().collect::<Vec<_>>(),
        "expires_in": minted.expires_in.as_secs(),
    });
    Ok(Some(DryMint {
        request: shown,
        fields,
        credential: minted.fields,
    }))
}

const COLUMNS: &[(&str, &str)] = &[
    ("ID", "id"),
    ("NAME", "display_name"),
    ("VERSION", "version"),
    ("SOURCE", "source"),
    ("DISABLED", "disabled"),
    ("DIGEST", "digest"),
];

pub async fn run(args: Args) -> Result<(), CliError> {
    let show = |v: &Value| {
        if args.client.json {
            output::json(v)
        } else {
            output::object(v)
        }
    };
    let force = |force: bool| if force { "?force=true" } else { "" };
    match args.command {
        Cmd::New {
            id,
            signing,
            minting,
            dir,
        } => {
            let kind = match (signing, minting) {
                (true, _) => super::scaffold::Kind::Signing,
                (_, true) => super::scaffold::Kind::Minting,
                _ => super::scaffold::Kind::Plain,
            };
            let dir = dir.unwrap_or_else(|| PathBuf::from(&id));
            let written = super::scaffold::write(&id, kind, &dir)?;
            println!("wrote {} files under {}; then:", written.len(), dir.display());
            println!("  cd {}", dir.display());
            println!("  cargo test                                    # its test, on this machine");
            println!("  cargo build --release --target wasm32-wasip2  # the component");
            println!(
                "  credgate provider check target/wasm32-wasip2/release/{}.wasm",
                id.replace('-', "_")
            );
            Ok(())
        }
        Cmd::Check {
            file,
            credential,
            config,
            url,
            method,
            body,
            now,
            token_response,
            json,
        } => {
            let sample = Sample {
                credential,
                config,
                url,
                method,
                body,
                now,
                token_response,
            };
            check(file, sample, json).await
        }
        Cmd::List => {
            let list = AdminClient::new(&args.client)?.get("/admin/v1/providers").await?;
            if args.client.json {
                output::json(&list["data"]);
            } else {
                output::table(list["data"].as_array().map(Vec::as_slice).unwrap_or_default(), COLUMNS);
            }
            Ok(())
        }
        Cmd::Show { id } => {
            show(
                &AdminClient::new(&args.client)?
                    .get(&format!("/admin/v1/providers/{}", super::query_value(&id)))
                    .await?,
            );
            Ok(())
        }
        Cmd::Add { file, replace_bundled } => {
            let bytes = std::fs::read(&file)
                .map_err(|e| CliError::new(exit::FAILURE, format!("cannot read {}: {e}", file.display())))?;
            let detail = AdminClient::new(&args.client)?
                .post_bytes(
                    if replace_bundled {
                        "/admin/v1/providers?replace_bundled=true"
                    } else {
                        "/admin/v1/providers"
                    },
                    bytes,
                    "application/wasm",
                )
                .await?;
            if args.client.json {
                output::json(&detail);
            } else {
                let mut summary = detail.clone();
                if let Some(map) = summary.as_object_mut() {
                    map.remove("description");
                }
                output::object(&summary);
            }
            Ok(())
        }
        Cmd::Remove { id, force: f } => {
            AdminClient::new(&args.client)?
                .delete(&format!("/admin/v1/providers/{}{}", super::query_value(&id), force(f)))
                .await?;
            if !args.client.json {
                println!("removed the uploaded provider {id}");
            }
            Ok(())
        }
        Cmd::Disable { id, force: f } => {
            let path = format!("/admin/v1/providers/{}/disable{}", super::query_value(&id), force(f));
            show(&AdminClient::new(&args.client)?.post(&path, &json!({})).await?);
            Ok(())
        }
        Cmd::Enable { id } => {
            let path = format!("/admin/v1/providers/{}/enable", super::query_value(&id));
            show(&AdminClient::new(&args.client)?.post(&path, &json!({})).await?);
            Ok(())
        }
    }
}

/// The sample secret and request `check` runs a template on.
struct Sample {
    credential: Vec<String>,
    config: Vec<String>,
    url: Option<String>,
    method: String,
    body: Option<PathBuf>,
    now: Option<chrono::DateTime<chrono::Utc>>,
    token_response: Option<String>,
}

async fn check(file: PathBuf, sample_args: Sample, json: bool) -> Result<(), CliError> {
    let Sample {
        credential,
        config,
        url,
        method,
        body,
        now,
        token_response,
    } = sample_args;
    let bytes = std::fs::read(&file)
        .map_err(|e| CliError::new(exit::FAILURE, format!("cannot read {}: {e}", file.display())))?;
    let fixed_clock = now.map(|t| std::time::Duration::from_micros(crate::clock::to_micros(t).max(0) as u64));
    let engine = PluginEngine::new(Limits {
        fixed_clock,
        ..Limits::default()
    })
    .map_err(|e| CliError::new(exit::FAILURE, e.to_string()))?;
    let plugin = LoadedPlugin::load(&engine, bytes)
        .await
        .map_err(|e| CliError::new(exit::INVALID, format!("{}: {e}", file.display())))?;
    let contract = plugin.contract();
    let description = serde_json::to_value(&plugin.description).unwrap_or_default();
    let mut report = json!({"file": file.display().to_string(), "digest": plugin.digest, "size": plugin.size, "contract": contract, "description": description});

    let credential_items = pairs(&credential, "credential")?;
    let mut sample = Credential::new();
    for (name, value) in credential_items {
        sample.insert(name, SecretString::new(value));
    }
    let mut config_map = Map::new();
    for (name, value) in pairs(&config, "config")? {
        let parsed = serde_json::from_str::<Value>(&value)
            .ok()
            .filter(|v| !v.is_string() && !v.is_number())
            .unwrap_or(Value::String(value));
        config_map.insert(name, parsed);
    }

    if !sample.is_empty() {
        let checked =
            check_secret(&plugin.description, &sample, &config_map).map_err(|e| CliError::new(exit::INVALID, e))?;
        let mut config_map = checked.config;
        if let Some(base) = &checked.base_url {
            config_map.insert("base_url".into(), Value::String(base.clone()));
        }
        match plugin
            .validate(&credential_pairs(&sample), &config_pairs(&config_map))
            .await
        {
            Ok(()) => {}
            Err(PluginError::Refused(m)) => {
                return Err(CliError::new(
                    exit::INVALID,
                    format!("the plugin refuses this secret: {m}"),
                ));
            }
            Err(e) => return Err(CliError::new(exit::INVALID, e.to_string())),
        }
        let target = url
            .or(checked.base_url.clone())
            .ok_or_else(|| CliError::new(exit::INVALID, "give --url: this provider has no base URL"))?;
        let mut url = url::Url::parse(&target).map_err(|e| CliError::new(exit::INVALID, format!("--url: {e}")))?;
        let method = Method::from_bytes(method.as_bytes())
            .map_err(|_| CliError::new(exit::INVALID, "--method is not a method"))?;
        let mut headers = HeaderMap::new();
        let injector = WasmInjector {
            plugin: std::sync::Arc::new(plugin),
        };
        if let Some(minted) = dry_mint(&injector, &sample, &config_map, token_response.as_deref()).await? {
            report["token_request"] = minted.request;
            report["minted"] = minted.fields;
            for (name, value) in minted.credential.fields() {
                sample.insert(name, value.clone());
            }
        }
        let body = match &body {
            Some(path) => std::fs::read(path)
                .map_err(|e| CliError::new(exit::FAILURE, format!("cannot read {}: {e}", path.display())))?,
            None => Vec::new(),
        };
        let payload = match injector.body_need(&config_map, &url) {
            inject::BodyNeed::Digest(hash) => {
                let algorithm = match hash {
                    inject::BodyHash::Sha256 => &ring::digest::SHA256,
                    inject::BodyHash::Sha512 => &ring::digest::SHA512,
                };
                Payload::Digest(ring::digest::digest(algorithm, &body).as_ref().to_vec())
            }
            inject::BodyNeed::Bytes { most } if body.len() as u64 > most => {
                return Err(CliError::new(
                    exit::INVALID,
                    format!("the body is larger than the {most} bytes this template reads: credgate would answer 413"),
                ));
            }
            inject::BodyNeed::Bytes { .. } => Payload::Bytes(body.into()),
            inject::BodyNeed::Nothing | inject::BodyNeed::Sha256 { .. } => Payload::NotNeeded,
        };
        let edits = injector
            .inject(
                &InjectRequest {
                    method: &method,
                    url: &url,
                    headers: &headers,
                    payload,
                },
                &sample,
                &config_map,
            )
            .await
            .map_err(|e| CliError::new(exit::INVALID, e.to_string()))?;
        let mut query = url.query().map(str::to_owned);
        inject::apply(edits, &mut headers, &mut query)
            .map_err(|e| CliError::new(exit::INVALID, format!("the edits are refused: {e}")))?;
        url.set_query(query.as_deref());
        let header_lines: Vec<String> = headers
            .iter()
            .map(|(n, v)| format!("{n}: {}", v.to_str().unwrap_or("<binary>")))
            .collect();
        report["request"] = json!({"method": method.as_str(), "url": url.as_str(), "headers": header_lines});
        report["base_url"] = json!(checked.base_url);
        report["default_hosts"] = json!(checked.default_hosts);
    }

    if json {
        output::json(&report);
        return Ok(());
    }
    println!("{}: implements credgate:provider@{contract}", file.display());
    output::object(&json!({
        "id": report["description"]["id"],
        "name": report["description"]["display_name"],
        "version": report["description"]["version"],
        "digest": report["digest"],
        "base_url": report["description"]["base_url"],
        "default_hosts": report["description"]["default_hosts"],
        "docs": report["description"]["docs_url"],
    }));
    for (title, key) in [
        ("credential fields", "credential_fields"),
        ("config fields", "config_fields"),
    ] {
        let rows = report["description"][key].as_array().cloned().unwrap_or_default();
        println!("\n{title}:");
        output::table(
            &rows,
            &[
                ("NAME", "name"),
                ("LABEL", "label"),
                ("REQUIRED", "required"),
                ("KIND", "kind"),
                ("ALLOWED", "allowed_values"),
                ("DEFAULT", "default_value"),
            ],
        );
    }
    if let Some(request) = report.get("token_request") {
        print_request("the token request it would make (never sent by check)", request);
        match &request["body"] {
            Value::Array(fields) => {
                println!();
                for field in fields {
                    println!("{}", field.as_str().unwrap_or(""));
                }
            }
            Value::String(text) => println!("\n{text}"),
            _ => {}
        }
        println!(
            "\nminted from --token-response: {} (for {} s)",
            report["minted"]["fields"], report["minted"]["expires_in"]
        );
    }
    if let Some(request) = report.get("request") {
        print_request("the request it would produce", request);
    }
    Ok(())
}

/// A request of the report: its title, method and URL, then one header a line.
fn print_request(title: &str, request: &Value) {
    println!(
        "\n{title}:\n\n{} {}",
        request["method"].as_str().unwrap_or(""),
        request["url"].as_str().unwrap_or("")
    );
    for line in request["headers"].as_array().map(Vec::as_slice).unwrap_or_default() {
        println!("{}", line.as_str().unwrap_or(""));
    }
}
