//! `credgate grant …`

use clap::Subcommand;
use serde_json::{Value, json};
use uuid::Uuid;

use super::output;
use super::{AdminClient, CliError, ClientArgs, exit, parse_duration, query_value};

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    client: ClientArgs,
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Issue a secret to a principal.
    Issue {
        /// The secret's id.
        secret: Uuid,
        /// The principal (user, group, system or agent).
        #[arg(long)]
        principal: Uuid,
        /// Lifetime: 3600, 90s, 15m, 24h, 7d (default 30 days).
        #[arg(long, conflicts_with = "expires_at")]
        ttl: Option<String>,
        /// Absolute expiry, RFC 3339.
        #[arg(long)]
        expires_at: Option<String>,
        /// Allowed method (repeatable); all when absent.
        #[arg(long = "method")]
        methods: Vec<String>,
        /// Allowed path prefix (repeatable); all when absent.
        #[arg(long = "path-prefix")]
        path_prefixes: Vec<String>,
    },
    /// List grants.
    List {
        #[arg(long)]
        secret: Option<Uuid>,
        #[arg(long)]
        principal: Option<Uuid>,
        /// active, expired or revoked.
        #[arg(long)]
        status: Option<String>,
    },
    /// Show one grant.
    Show { grant_id: Uuid },
    /// Revoke a grant.
    Revoke { grant_id: Uuid },
}

const COLUMNS: &[(&str, &str)] = &[
    ("GRANT ID", "grant_id"),
    ("SECRET", "secret_id"),
    ("PRINCIPAL", "principal_id"),
    ("STATUS", "status"),
    ("CREATED", "created_at"),
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
        Cmd::Issue {
            secret,
            principal,
            ttl,
            expires_at,
            methods,
            path_prefixes,
        } => {
            let mut policy = json!({});
            if let Some(ttl) = ttl {
                policy["ttl_seconds"] = json!(parse_duration(&ttl).map_err(|e| CliError::new(exit::INVALID, e))?);
            }
            if let Some(at) = expires_at {
                policy["expires_at"] = json!(at);
            }
            if !methods.is_empty() {
                policy["allowed_methods"] = json!(methods);
            }
            if !path_prefixes.is_empty() {
                policy["allowed_path_prefixes"] = json!(path_prefixes);
            }
            let body = json!({"principal_id": principal, "grant_policy": policy});
            show(&api.post(&format!("/admin/v1/secrets/{secret}/grants"), &body).await?);
        }
        Cmd::List {
            secret,
            principal,
            status,
        } => {
            let mut query = Vec::new();
            if let Some(s) = secret {
                query.push(format!("secret_id={s}"));
            }
            if let Some(p) = principal {
                query.push(format!("principal_id={p}"));
            }
            if let Some(s) = status {
                query.push(format!("status={}", query_value(&s)));
            }
            let list = api.get(&format!("/admin/v1/grants?{}", query.join("&"))).await?;
            if args.client.json {
                output::json(&list["data"]);
            } else {
                let mut rows = list["data"].as_array().cloned().unwrap_or_default();
                for row in &mut rows {
                    row["expires"] = row["grant_policy"]["expires_at"].clone();
                }
                let mut columns = COLUMNS.to_vec();
                columns.push(("EXPIRES", "expires"));
                output::table(&rows, &columns);
            }
        }
        Cmd::Show { grant_id } => show(&api.get(&format!("/admin/v1/grants/{grant_id}")).await?),
        Cmd::Revoke { grant_id } => show(&api.delete(&format!("/admin/v1/grants/{grant_id}")).await?),
    }
    Ok(())
}
