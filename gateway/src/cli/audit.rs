//! `credgate audit …`

use clap::Subcommand;
use serde_json::Value;
use uuid::Uuid;

use super::output;
use super::{AdminClient, CliError, ClientArgs, exit, query_value};

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    client: ClientArgs,
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Debug, Clone, clap::Args)]
struct Filters {
    /// RFC 3339 time.
    #[arg(long)]
    since: Option<String>,
    #[arg(long)]
    until: Option<String>,
    #[arg(long)]
    principal: Option<Uuid>,
    /// Calls made for this person (the user principal their user token named).
    #[arg(long)]
    user: Option<Uuid>,
    #[arg(long)]
    grant: Option<Uuid>,
    #[arg(long)]
    secret: Option<Uuid>,
    /// `ok` or an error code.
    #[arg(long)]
    outcome: Option<String>,
    /// e.g. `grant.revoke`.
    #[arg(long)]
    action: Option<String>,
    /// Calls whose reason contains this text (any ASCII case).
    #[arg(long)]
    reason: Option<String>,
    /// Calls whose context holds this key with this value: `ticket=T-42` (repeatable).
    #[arg(long = "context", value_name = "KEY=VALUE")]
    context: Vec<String>,
}

impl Filters {
    fn query(&self) -> Vec<String> {
        let mut q = Vec::new();
        let mut add = |k: &str, v: Option<String>| {
            if let Some(v) = v {
                q.push(format!("{k}={}", query_value(&v)));
            }
        };
        add("since", self.since.clone());
        add("until", self.until.clone());
        add("principal_id", self.principal.map(|v| v.to_string()));
        add("user_principal_id", self.user.map(|v| v.to_string()));
        add("grant_id", self.grant.map(|v| v.to_string()));
        add("secret_id", self.secret.map(|v| v.to_string()));
        add("outcome", self.outcome.clone());
        add("action", self.action.clone());
        add("reason", self.reason.clone());
        for pair in &self.context {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            q.push(format!("context.{}={}", query_value(key), query_value(value)));
        }
        q
    }
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Show recent events, newest first.
    List {
        #[command(flatten)]
        filters: Filters,
        #[arg(long, default_value_t = 50)]
        limit: i64,
    },
    /// Write every matching event as JSON lines, newest first.
    Export {
        #[command(flatten)]
        filters: Filters,
    },
    /// Check the hash chain; exits 8 if it does not verify. Without --archive, the records in
    /// the database (after the newest archive checkpoint, if retention archived any).
    Verify {
        /// Continue from a checkpoint an earlier verification printed: `<head_seq>:<head_hash>`.
        /// With --archive: also check that this record (a head kept from an earlier
        /// verification) is still in the trail, archived or not, with that hash.
        #[arg(long, value_name = "SEQ:HASH")]
        from: Option<String>,
        /// Prove the whole trail end to end: every archive file in DIR against its signed
        /// checkpoint, from the first record, then the records in the database after them, and
        /// the newest head an archiving pass sealed in DIR/heads.jsonl: still in the trail with
        /// that hash.
        #[arg(long, value_name = "DIR")]
        archive: Option<std::path::PathBuf>,
        /// The signing key's public half (base64) as you kept it: refuse a gateway that signs
        /// with another. Default: the key the gateway names.
        #[arg(long, requires = "archive")]
        public_key: Option<String>,
    },
}

const COLUMNS: &[(&str, &str)] = &[
    ("SEQ", "seq"),
    ("TIME", "at"),
    ("ACTION", "action"),
    ("OUTCOME", "outcome"),
    ("ACTOR", "actor"),
    ("TARGET", "target"),
];

pub async fn run(args: Args) -> Result<(), CliError> {
    let api = AdminClient::new(&args.client)?;
    match args.command {
        Cmd::List { filters, limit } => {
            let mut q = filters.query();
            q.push(format!("limit={limit}"));
            let page = api.get(&format!("/admin/v1/audit?{}", q.join("&"))).await?;
            if args.client.json {
                output::json(&page["data"]);
            } else {
                output::table(page["data"].as_array().map(Vec::as_slice).unwrap_or_default(), COLUMNS);
            }
        }
        Cmd::Export { filters } => {
            let mut before: Option<i64> = None;
            loop {
                let mut q = filters.query();
                q.push("limit=1000".into());
                if let Some(b) = before {
                    q.push(format!("before={b}"));
                }
                let page = api.get(&format!("/admin/v1/audit?{}", q.join("&"))).await?;
                for record in page["data"].as_array().map(Vec::as_slice).unwrap_or_default() {
                    println!("{}", serde_json::to_string(record).unwrap_or_default());
                }
                match page["next_before"].as_i64() {
                    Some(next) => before = Some(next),
                    None => break,
                }
            }
        }
        Cmd::Verify {
            from,
            archive: Some(dir),
            public_key,
        } => {
            let kept = from.as_deref().map(kept_head).transpose()?;
            verify_archive(&api, &dir, public_key.as_deref(), kept, args.client.json).await?;
        }
        Cmd::Verify { from, .. } => {
            let path = match from.as_deref().map(kept_head).transpose()? {
                None => "/admin/v1/audit/verify".to_owned(),
                Some((seq, hash)) => format!("/admin/v1/audit/verify?after_seq={seq}&after_hash={hash}"),
            };
            let report = api.get(&path).await?;
            print(&report, args.client.json);
            check(&report)?;
        }
    }
    Ok(())
}

fn print(report: &Value, json: bool) {
    if json {
        output::json(report);
    } else {
        output::object(report);
    }
}

fn check(report: &Value) -> Result<(), CliError> {
    if report["ok"] == Value::Bool(true) {
        return Ok(());
    }
    Err(CliError::new(
        exit::VERIFY_FAILED,
        format!(
            "the audit chain does not verify: {}",
            report["error"].as_str().unwrap_or("unknown problem")
        ),
    ))
}

/// `--from <head_seq>:<head_hash>`.
fn kept_head(text: &str) -> Result<(i64, String), CliError> {
    text.split_once(':')
        .and_then(|(seq, hash)| Some((seq.parse().ok()?, hash.to_ascii_lowercase())))
        .ok_or_else(|| {
            CliError::new(
                exit::INVALID,
                "--from takes <head_seq>:<head_hash>, as a verification prints them",
            )
        })
}

/// The archive files against the gateway's signed checkpoints (read here, from `dir`), then the
/// database's records from where the last file ends; and a kept head, wherever it now is.
async fn verify_archive(
    api: &AdminClient,
    dir: &std::path::Path,
    pinned: Option<&str>,
    kept: Option<(i64, String)>,
    json: bool,
) -> Result<(), CliError> {
    // An archiving pass between reading the checkpoints and walking the database moves the
    // walk's start into a file: read them again once, and walk from the new end.
    let mut report = Value::Null;
    for _ in 0..2 {
        report = prove(api, dir, pinned, kept.as_ref()).await?;
        let raced = report["error"]
            .as_str()
            .is_some_and(|e| e.contains("in an archive file") && report["stage"] == "live");
        if !raced {
            break;
        }
    }
    if let Some(map) = report.as_object_mut() {
        map.remove("stage");
    }
    print(&report, json);
    check(&report)
}

async fn prove(
    api: &AdminClient,
    dir: &std::path::Path,
    pinned: Option<&str>,
    kept: Option<&(i64, String)>,
) -> Result<Value, CliError> {
    let listed = api.get("/admin/v1/audit/checkpoints").await?;
    let checkpoints: Vec<crate::audit::Checkpoint> = serde_json::from_value(listed["data"].clone()).map_err(|e| {
        CliError::new(
            exit::VERIFY_FAILED,
            format!("the gateway's checkpoints do not read: {e}"),
        )
    })?;
    let named = listed["signing_key"]["public_key"].as_str().map(str::to_owned);
    let key = match (pinned, named) {
        (Some(pinned), Some(named)) if pinned != named => {
            return Err(CliError::new(
                exit::VERIFY_FAILED,
                "the gateway signs with another key than --public-key: its checkpoints are not the ones you trust",
            ));
        }
        (Some(_), None) => {
            return Err(CliError::new(
                exit::VERIFY_FAILED,
                "the gateway names no signing key, yet you kept one (--public-key): its archive was replaced",
            ));
        }
        (_, Some(named)) => named,
        (None, None) if checkpoints.is_empty() => String::new(),
        (None, None) => {
            return Err(CliError::new(
                exit::VERIFY_FAILED,
                "the gateway lists checkpoints but names no signing key",
            ));
        }
    };
    let (owned_dir, cps) = (dir.to_owned(), checkpoints.clone());
    let anchor = kept.cloned();
    let gateway_now = gateway_time(&listed);
    let (archived, sealed) = tokio::task::spawn_blocking(move || {
        // The newest head an archiving pass sealed outside the database (none before the
        // first pass, or with no key to check it against, which the next step reports).
        let sealed = match crate::audit::head::newest(&owned_dir, &key) {
            Err(_) if key.is_empty() => Err(format!(
                "{}: it holds sealed heads, yet the gateway names no signing key",
                crate::audit::head::HEADS_FILE
            )),
            other => other,
        };
        // Checked where it is, like a kept head: a sealed head that is archived by now is
        // anchored in its file.
        let mut anchors: Vec<(i64, &str)> = anchor.iter().map(|(s, h)| (*s, h.as_str())).collect();
        if let Ok(Some(head)) = &sealed {
            anchors.push((head.seq, head.hash.as_str()));
        }
        let archived = crate::audit::archive::verify_archive_from(&owned_dir, &key, &cps, &anchors);
        (archived, sealed)
    })
    .await
    .map_err(|e| CliError::new(exit::VERIFY_FAILED, format!("the check failed: {e}")))?;
    let mut report = serde_json::json!({
        "archive_files": archived.files,
        "archived_records": archived.records,
    });
    let sealed = match sealed {
        Ok(sealed) => sealed,
        Err(why) => {
            report["ok"] = Value::Bool(false);
            report["error"] = why.into();
            report["stage"] = "archive".into();
            return Ok(report);
        }
    };
    if let Some(head) = &sealed {
        report["sealed_head_seq"] = head.seq.into();
        report["sealed_at"] = head.sealed_at.to_rfc3339().into();
    }
    if !archived.unreferenced.is_empty() {
        report["unreferenced_files"] = serde_json::json!(archived.unreferenced);
    }
    if !archived.ok {
        report["ok"] = Value::Bool(false);
        report["error"] = serde_json::json!(archived.error);
        report["stage"] = "archive".into();
        return Ok(report);
    }
    let live = api
        .get(&format!(
            "/admin/v1/audit/verify?after_seq={}&after_hash={}",
            archived.head_seq, archived.head_hash
        ))
        .await?;
    report["live_records"] = live["records"].clone();
    for field in ["head_seq", "head_hash", "ok", "error"] {
        if !live[field].is_null() {
            report[field] = live[field].clone();
        }
    }
    report["stage"] = "live".into();
    // A kept head, and the newest sealed one, past the archive: still in the database, with
    // that hash. The sealed head is what catches a live trail rewritten with every later hash
    // recomputed, which links as well as the original.
    let newest_seal = sealed.as_ref().map(|h| (h.seq, h.sealed_at));
    let sealed = sealed.map(|h| {
        let whose = format!(
            " (the head sealed at {} in {})",
            h.sealed_at.to_rfc3339(),
            crate::audit::head::HEADS_FILE
        );
        (h.seq, h.hash, whose)
    });
    let kept = kept.map(|(seq, hash)| (*seq, hash.clone(), String::new()));
    for (seq, hash, whose) in [kept, sealed].into_iter().flatten() {
        if report["ok"] != true || seq <= archived.head_seq {
            continue;
        }
        let there = api
            .get(&format!("/admin/v1/audit/verify?after_seq={seq}&after_hash={hash}"))
            .await?;
        if there["ok"] != true {
            report["ok"] = Value::Bool(false);
            report["error"] = format!("{}{whose}", there["error"].as_str().unwrap_or("unknown problem")).into();
        }
    }
    let every = listed["archive_interval_seconds"].as_i64();
    if report["ok"] == true
        && let Some(warning) = stale_seal(newest_seal, report["head_seq"].as_i64(), every, gateway_now)
    {
        report["warning"] = warning.into();
    }
    Ok(report)
}

/// The time the gateway says it is in its checkpoint listing. A seal's age is measured by the
/// gateway's clock, which stamped it; by this one's only when the gateway does not say (one
/// older than the field).
fn gateway_time(listed: &Value) -> chrono::DateTime<chrono::Utc> {
    listed["now"]
        .as_str()
        .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
        .map_or_else(crate::clock::now, |t| t.with_timezone(&chrono::Utc))
}

/// The warning for a seal older than a few passes while records were added since: no pass has
/// sealed them (archiving fails, or someone holds its lease), so they are only chained. A
/// warning, not a failure: a long pass (a large day archived, a first seal over a large trail)
/// seals late too, and nothing in the trail is wrong. `now` is the gateway's time.
fn stale_seal(
    newest_seal: Option<(i64, chrono::DateTime<chrono::Utc>)>,
    head_seq: Option<i64>,
    every: Option<i64>,
    now: chrono::DateTime<chrono::Utc>,
) -> Option<String> {
    let ((seq, at), every) = (newest_seal?, every?);
    if head_seq.is_none_or(|head| head <= seq) {
        return None;
    }
    let age = (now - at).num_seconds();
    (age > every.saturating_mul(3).saturating_add(5)).then(|| {
        format!(
            "record {seq}: the newest seal is {age} s old, more than three archiving intervals ({every} s), and records were added since: no pass has sealed them yet (a long pass, archiving failing, or its lease held)"
        )
    })
}

#[cfg(test)]
mod tests {
    use chrono::{Duration, TimeZone, Utc};

    use super::{gateway_time, stale_seal};

    #[test]
    fn a_seal_is_stale_by_the_gateways_clock_only_with_records_added_since() {
        let sealed = Utc.with_ymd_and_hms(2026, 12, 7, 12, 0, 0).unwrap();
        let seal = Some((100, sealed));
        // Three 10 s intervals and 5 s of slack: 35 s is not late, 36 s is.
        assert_eq!(
            stale_seal(seal, Some(101), Some(10), sealed + Duration::seconds(35)),
            None
        );
        let late = stale_seal(seal, Some(101), Some(10), sealed + Duration::seconds(36)).expect("late");
        assert!(late.starts_with("record 100: the newest seal is 36 s old"), "{late}");
        // Nothing added since the seal, no retention, or no seal: nothing to warn of.
        let hour = sealed + Duration::hours(1);
        assert_eq!(stale_seal(seal, Some(100), Some(10), hour), None);
        assert_eq!(stale_seal(seal, None, Some(10), hour), None);
        assert_eq!(stale_seal(seal, Some(101), None, hour), None);
        assert_eq!(stale_seal(None, Some(101), Some(10), hour), None);
    }

    #[test]
    fn the_age_is_measured_by_the_gateways_clock_not_this_ones() {
        // A gateway a day ahead of this machine: its seal of an hour ago, by its clock, is
        // stale, though by this clock it is not made yet.
        let ahead = crate::clock::now() + Duration::days(1);
        let listing = serde_json::json!({"now": ahead.to_rfc3339()});
        assert_eq!(gateway_time(&listing).timestamp(), ahead.timestamp());
        let seal = Some((7, ahead - Duration::hours(1)));
        assert!(stale_seal(seal, Some(8), Some(60), gateway_time(&listing)).is_some());
        assert!(stale_seal(seal, Some(8), Some(60), crate::clock::now()).is_none());
        // A gateway that does not say: this clock.
        let said = gateway_time(&serde_json::json!({}));
        assert!((said - crate::clock::now()).num_seconds().abs() < 60, "{said}");
    }
}
