//! `credgate principal …`

use clap::Subcommand;
use serde_json::json;
use uuid::Uuid;

use super::output;
use super::{AdminClient, CliError, ClientArgs};
use crate::vault::PrincipalKind;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    client: ClientArgs,
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Create a principal.
    Create {
        #[arg(long, value_parser = parse_kind)]
        kind: PrincipalKind,
        #[arg(long)]
        name: String,
        /// For a user or group of an OpenID Provider credgate trusts: the issuer, with
        /// --external-id.
        #[arg(long, requires = "external_id")]
        issuer: Option<String>,
        /// The user's `sub`, or the group's name in the token's groups claim.
        #[arg(long, requires = "issuer")]
        external_id: Option<String>,
    },
    /// List principals.
    List {
        #[arg(long, value_parser = parse_kind)]
        kind: Option<PrincipalKind>,
    },
    /// Show one principal, with its members or groups.
    Show { id: Uuid },
    /// Delete a principal: its keys and grants are revoked.
    Delete { id: Uuid },
    /// Add a user, system or agent to a group.
    AddMember { group: Uuid, member: Uuid },
    /// Remove a member from a group.
    RemoveMember { group: Uuid, member: Uuid },
}

fn parse_kind(text: &str) -> Result<PrincipalKind, String> {
    PrincipalKind::parse(text).ok_or_else(|| "kind is one of user, group, system, agent".into())
}

const COLUMNS: &[(&str, &str)] = &[
    ("ID", "id"),
    ("KIND", "kind"),
    ("NAME", "name"),
    ("EXTERNAL ID", "external_id"),
    ("CREATED", "created_at"),
];

pub async fn run(args: Args) -> Result<(), CliError> {
    let api = AdminClient::new(&args.client)?;
    let show = |v: &serde_json::Value| {
        if args.client.json {
            output::json(v)
        } else {
            output::object(v)
        }
    };
    match args.command {
        Cmd::Create {
            kind,
            name,
            issuer,
            external_id,
        } => {
            let mut body = json!({"kind": kind, "name": name});
            if let (Some(issuer), Some(external_id)) = (issuer, external_id) {
                body["issuer"] = json!(issuer);
                body["external_id"] = json!(external_id);
            }
            show(&api.post("/admin/v1/principals", &body).await?)
        }
        Cmd::List { kind } => {
            let path = match kind {
                Some(k) => format!("/admin/v1/principals?kind={}", k.as_str()),
                None => "/admin/v1/principals".into(),
            };
            let list = api.get(&path).await?;
            if args.client.json {
                output::json(&list["data"]);
            } else {
                output::table(list["data"].as_array().map(Vec::as_slice).unwrap_or_default(), COLUMNS);
            }
        }
        Cmd::Show { id } => show(&api.get(&format!("/admin/v1/principals/{id}")).await?),
        Cmd::Delete { id } => {
            api.delete(&format!("/admin/v1/principals/{id}")).await?;
            if !args.client.json {
                println!("deleted principal {id}; its keys and grants are revoked");
            }
        }
        Cmd::AddMember { group, member } => show(
            &api.post(
                &format!("/admin/v1/principals/{group}/members"),
                &json!({"member_id": member}),
            )
            .await?,
        ),
        Cmd::RemoveMember { group, member } => {
            api.delete(&format!("/admin/v1/principals/{group}/members/{member}"))
                .await?;
            if !args.client.json {
                println!("removed {member} from group {group}");
            }
        }
    }
    Ok(())
}
