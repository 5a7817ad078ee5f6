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
        /// Rate limit: calls per period, `100/60s`, `10/1m`, `5000/1d` (a burst of the first
        /// number, refilled over the period).
        #[arg(long)]
        rate_limit: Option<String>,
        /// Quota: calls per calendar period (UTC), `1000/day`; period hour, day, month or
        /// total.
        #[arg(long)]
        quota: Option<String>,
        /// Calls that wait for an operator's approval (repeatable): `POST`, `POST,DELETE`,
        /// `POST:/v1/refunds` (methods, then a path prefix), `:/v1/admin` (any method), `*`
        /// (every call).
        #[arg(long = "require-approval", value_name = "RULE")]
        require_approval: Vec<String>,
        /// How long a call waits for approval, and its response is kept: 60s to 7d (1h).
        #[arg(long)]
        approval_ttl: Option<String>,
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

/// `POST,DELETE:/v1/refunds` as a rule: methods before the colon, a path prefix after; `*`
/// alone is every call.
fn approval_rule(text: &str) -> Value {
    let text = text.trim();
    if text == "*" {
        return json!({});
    }
    let (methods, prefix) = text.split_once(':').unwrap_or((text, ""));
    let mut rule = json!({});
    let methods: Vec<&str> = methods.split(',').map(str::trim).filter(|m| !m.is_empty()).collect();
    if !methods.is_empty() {
        rule["methods"] = json!(methods);
    }
    if !prefix.trim().is_empty() {
        rule["path_prefixes"] = json!([prefix.trim()]);
    }
    rule
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
            rate_limit,
            quota,
            require_approval,
            approval_ttl,
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
            let invalid = |e: String| CliError::new(exit::INVALID, e);
            if let Some(text) = rate_limit {
                let (requests, per) = text
                    .split_once('/')
                    .ok_or_else(|| invalid(format!("--rate-limit {text}: give calls/period, e.g. 100/60s")))?;
                let requests: u32 = requests
                    .trim()
                    .parse()
                    .map_err(|_| invalid(format!("--rate-limit {text}: the number of calls is a whole number")))?;
                let per_seconds =
                    parse_duration(per.trim()).map_err(|e| invalid(format!("--rate-limit {text}: {e}")))?;
                policy["rate_limit"] = json!({"requests": requests, "per_seconds": per_seconds});
            }
            if let Some(text) = quota {
                let (calls, period) = text
                    .split_once('/')
                    .ok_or_else(|| invalid(format!("--quota {text}: give calls/period, e.g. 1000/day")))?;
                let calls: u64 = calls
                    .trim()
                    .parse()
                    .map_err(|_| invalid(format!("--quota {text}: the number of calls is a whole number")))?;
                policy["quota"] = json!({"calls": calls, "period": period.trim()});
            }
            if !require_approval.is_empty() {
                policy["require_approval"] =
                    json!(require_approval.iter().map(|r| approval_rule(r)).collect::<Vec<_>>());
            }
            if let Some(ttl) = approval_ttl {
                policy["approval_ttl_seconds"] = json!(parse_duration(&ttl).map_err(invalid)?);
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
