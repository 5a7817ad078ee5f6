//! `credgate ca …`: the forward-proxy CA. `show` and `export` print certificates, never a key.

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
    /// The CA signing now and any that will sign after a rotation: id, fingerprint, dates.
    Show,
    /// The trust bundle as PEM on stdout: install it where clients look for CAs.
    Export,
    /// Make a new CA. It joins the bundle now and signs once the grace period is over.
    Rotate {
        /// Seconds until the new CA signs (default 86400); 0 switches at once.
        #[arg(long)]
        grace_seconds: Option<u32>,
    },
}

const COLUMNS: &[(&str, &str)] = &[
    ("ID", "id"),
    ("ACTIVE", "active"),
    ("SIGNS FROM", "activates_at"),
    ("VALID UNTIL", "not_after"),
    ("SHA-256", "fingerprint_sha256"),
];

pub async fn run(args: Args) -> Result<(), CliError> {
    let api = AdminClient::new(&args.client)?;
    let value = match args.command {
        Cmd::Show => api.get("/admin/v1/proxy-ca").await?,
        Cmd::Export => {
            let value = api.get("/admin/v1/proxy-ca").await?;
            print!("{}", value["bundle_pem"].as_str().unwrap_or_default());
            return Ok(());
        }
        Cmd::Rotate { grace_seconds } => {
            let path = match grace_seconds {
                Some(s) => format!("/admin/v1/proxy-ca/rotate?grace_seconds={s}"),
                None => "/admin/v1/proxy-ca/rotate".to_owned(),
            };
            api.post(&path, &json!({})).await?
        }
    };
    if args.client.json {
        output::json(&value);
    } else {
        output::table(value["data"].as_array().map(Vec::as_slice).unwrap_or_default(), COLUMNS);
    }
    Ok(())
}
