//! `credgate admin-token …`: operators' tokens, named and scoped.

use clap::Subcommand;
use serde_json::{Value, json};
use uuid::Uuid;

use super::output;
use super::{AdminClient, CliError, ClientArgs};

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    client: ClientArgs,
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Create a token. It is printed once.
    Create {
        /// Who or what holds it; in every audit record it causes.
        #[arg(long)]
        name: String,
        /// What it may do (repeatable): secrets:read, secrets:write, grants:write,
        /// principals:write, providers:write, audit:read, approvals:decide, admin.
        #[arg(long = "scope", required = true)]
        scopes: Vec<String>,
    },
    /// List the tokens (never their values).
    List,
    /// Revoke a token: refused from the next call, on every replica.
    Revoke { id: Uuid },
}

const COLUMNS: &[(&str, &str)] = &[
    ("ID", "id"),
    ("NAME", "name"),
    ("SCOPES", "scopes"),
    ("PREFIX", "prefix"),
    ("CREATED", "created_at"),
    ("REVOKED", "revoked_at"),
];

pub async fn run(args: Args) -> Result<(), CliError> {
    let api = AdminClient::new(&args.client)?;
    match args.command {
        Cmd::Create { name, scopes } => {
            let issued = api
                .post("/admin/v1/admin-tokens", &json!({"name": name, "scopes": scopes}))
                .await?;
            if args.client.json {
                output::json(&issued);
            } else {
                output::object(&issued);
                eprintln!("\nThe token is shown this once; credgate keeps only its hash.");
            }
        }
        Cmd::List => {
            let list: Value = api.get("/admin/v1/admin-tokens").await?;
            if args.client.json {
                output::json(&list["data"]);
            } else {
                output::table(list["data"].as_array().map(Vec::as_slice).unwrap_or_default(), COLUMNS);
            }
        }
        Cmd::Revoke { id } => {
            api.delete(&format!("/admin/v1/admin-tokens/{id}")).await?;
            println!("admin token {id} revoked");
        }
    }
    Ok(())
}
