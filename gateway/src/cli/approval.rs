//! `credgate approval …`: calls waiting for an operator, and the decision.

use clap::Subcommand;
use serde_json::{Value, json};
use uuid::Uuid;

use super::output;
use super::{AdminClient, CliError, ClientArgs, query_value};

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    client: ClientArgs,
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Calls held for approval, newest first (pending ones by default).
    List {
        /// pending, executing, executed, failed, denied, expired, or all.
        #[arg(long, default_value = "pending")]
        status: String,
        #[arg(long, default_value_t = 100)]
        limit: i64,
    },
    /// One held call: who, what, why, a preview of its body, and what became of it.
    Show { id: Uuid },
    /// Approve: credgate makes the call now and keeps the response for the app.
    Approve {
        id: Uuid,
        /// Shown with the approval, to the app too.
        #[arg(long)]
        note: Option<String>,
    },
    /// Deny: the call is never made.
    Deny {
        id: Uuid,
        #[arg(long)]
        note: Option<String>,
    },
}

const COLUMNS: &[(&str, &str)] = &[
    ("APPROVAL ID", "id"),
    ("STATUS", "status"),
    ("CALL", "call"),
    ("REASON", "reason"),
    ("PRINCIPAL", "principal_id"),
    ("CREATED", "created_at"),
    ("EXPIRES", "expires_at"),
];

pub async fn run(args: Args) -> Result<(), CliError> {
    let api = AdminClient::new(&args.client)?;
    let one = match args.command {
        Cmd::List { status, limit } => {
            let mut path = format!("/admin/v1/approvals?limit={limit}");
            if status != "all" {
                path.push_str(&format!("&status={}", query_value(&status)));
            }
            let list = api.get(&path).await?;
            if args.client.json {
                output::json(&list["data"]);
            } else {
                let mut rows = list["data"].as_array().cloned().unwrap_or_default();
                for row in &mut rows {
                    row["call"] = json!(call(row));
                }
                output::table(&rows, COLUMNS);
            }
            return Ok(());
        }
        Cmd::Show { id } => api.get(&format!("/admin/v1/approvals/{id}")).await?,
        Cmd::Approve { id, note } => {
            api.post(&format!("/admin/v1/approvals/{id}/approve"), &json!({"note": note}))
                .await?
        }
        Cmd::Deny { id, note } => {
            api.post(&format!("/admin/v1/approvals/{id}/deny"), &json!({"note": note}))
                .await?
        }
    };
    if args.client.json {
        output::json(&one);
    } else {
        output::object(&one);
    }
    Ok(())
}

/// `POST api.example.com/v1/refunds`.
fn call(row: &Value) -> String {
    format!(
        "{} {}{}",
        row["method"].as_str().unwrap_or_default(),
        row["host"].as_str().unwrap_or_default(),
        row["path"].as_str().unwrap_or_default()
    )
}
