//! `credgate keyring …`

use clap::Subcommand;
use serde_json::json;

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
    /// Show the master keys and how many data keys each wraps.
    Status,
    /// Add a new active master key and re-wrap every data key under it (file-based rings).
    Rotate,
    /// Re-wrap data keys still under an older master key (resumes an interrupted rotation).
    Rewrap,
}

pub async fn run(args: Args) -> Result<(), CliError> {
    let api = AdminClient::new(&args.client)?;
    let value = match args.command {
        Cmd::Status => api.get("/admin/v1/keyring").await?,
        Cmd::Rotate => api.post("/admin/v1/keyring/rotate", &json!({})).await?,
        Cmd::Rewrap => api.post("/admin/v1/keyring/rewrap", &json!({})).await?,
    };
    if args.client.json {
        output::json(&value);
    } else if let Some(keys) = value["keys"].as_array() {
        output::object(&json!({
            "active_key_id": value["active_key_id"],
            "source": value["source"],
            "pending_rewrap": value["pending_rewrap"],
        }));
        println!();
        output::table(
            keys,
            &[("KEY ID", "id"), ("ACTIVE", "active"), ("DATA KEYS", "data_keys")],
        );
    } else {
        output::object(&value);
    }
    Ok(())
}
