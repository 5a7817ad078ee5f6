//! `credgate key …`

use clap::Subcommand;
use serde_json::{Value, json};
use uuid::Uuid;

use super::output;
use super::{AdminClient, CliError, ClientArgs, exit, parse_duration};

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    client: ClientArgs,
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Issue an API key to a user, system or agent. The key is printed once.
    Issue {
        principal: Uuid,
        #[arg(long)]
        name: Option<String>,
        /// Lifetime: 3600, 90s, 15m, 24h, 7d. Without it the key lives until revoked.
        #[arg(long)]
        ttl: Option<String>,
    },
    /// List API keys (metadata only).
    List {
        #[arg(long)]
        principal: Option<Uuid>,
    },
    /// Show one key's metadata.
    Show { id: Uuid },
    /// Revoke a key.
    Revoke { id: Uuid },
}

const COLUMNS: &[(&str, &str)] = &[
    ("ID", "id"),
    ("PRINCIPAL", "principal_id"),
    ("NAME", "name"),
    ("PREFIX", "prefix"),
    ("EXPIRES", "expires_at"),
    ("REVOKED", "revoked_at"),
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
        Cmd::Issue { principal, name, ttl } => {
            let mut body = json!({});
            if let Some(name) = name {
                body["name"] = json!(name);
            }
            if let Some(ttl) = ttl {
                body["ttl_seconds"] = json!(parse_duration(&ttl).map_err(|e| CliError::new(exit::INVALID, e))?);
            }
            let issued = api
                .post(&format!("/admin/v1/principals/{principal}/keys"), &body)
                .await?;
            if args.client.json {
                output::json(&issued);
            } else {
                output::object(&issued);
                eprintln!("\nThe key is shown this once; credgate keeps only its hash.");
            }
        }
        Cmd::List { principal } => {
            let path = match principal {
                Some(p) => format!("/admin/v1/keys?principal_id={p}"),
                None => "/admin/v1/keys".into(),
            };
            let list = api.get(&path).await?;
            if args.client.json {
                output::json(&list["data"]);
            } else {
                output::table(list["data"].as_array().map(Vec::as_slice).unwrap_or_default(), COLUMNS);
            }
        }
        Cmd::Show { id } => show(&api.get(&format!("/admin/v1/keys/{id}")).await?),
        Cmd::Revoke { id } => show(&api.delete(&format!("/admin/v1/keys/{id}")).await?),
    }
    Ok(())
}
