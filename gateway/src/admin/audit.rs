//! `/admin/v1/audit`: read, export and verify the audit trail.

use axum::Json;
use axum::extract::{Query, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::audit::{AuditKind, AuditRecord, VerifyReport};
use crate::error::{ApiError, ErrorBody};
use crate::state::AppState;
use crate::store::AuditQuery;

const DEFAULT_LIMIT: i64 = 100;
const MAX_LIMIT: i64 = 10_000;
const VERIFY_PAGE: i64 = 10_000;

#[derive(Clone, Copy, Debug, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AuditFormat {
    Json,
    /// One record per line (`application/x-ndjson`).
    Jsonl,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct AuditParams {
    /// Records at or after this time (RFC 3339).
    pub since: Option<DateTime<Utc>>,
    /// Records before this time.
    pub until: Option<DateTime<Utc>>,
    /// The app's principal (whose key made the call), or the admin change's target.
    pub principal_id: Option<Uuid>,
    /// Calls made for this person: the user principal their user token named.
    pub user_principal_id: Option<Uuid>,
    pub grant_id: Option<Uuid>,
    pub secret_id: Option<Uuid>,
    /// `ok` or an error code.
    pub outcome: Option<String>,
    pub kind: Option<AuditKind>,
    /// e.g. `grant.revoke`, `proxy.request`.
    pub action: Option<String>,
    pub request_id: Option<String>,
    /// Records whose reason (`X-Credgate-Reason`) contains this text, ignoring ASCII case.
    /// Alongside, any number of `context.<key>=<value>`: records whose context
    /// (`X-Credgate-Context`) holds that key with that string or integer value.
    pub reason: Option<String>,
    /// Paging: only records older than this sequence number (take `next_before` of the
    /// previous page).
    pub before: Option<i64>,
    /// Records per page, 1 to 10000 (default 100).
    pub limit: Option<i64>,
    /// `json` (default) or `jsonl`; `Accept: application/x-ndjson` also selects JSON lines.
    pub format: Option<AuditFormat>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AuditPage {
    /// Newest first.
    pub data: Vec<AuditRecord>,
    /// Pass as `before` to get the next (older) page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_before: Option<i64>,
}

#[utoipa::path(get, path = "/admin/v1/audit", tag = "audit", params(AuditParams),
    responses((status = 200, body = AuditPage, description = "JSON, or JSON lines (`application/x-ndjson`) with `format=jsonl`"),
        (status = 400, body = ErrorBody)))]
pub async fn list(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let (p, context) = params(raw.as_deref().unwrap_or_default())?;
    let limit = p.limit.unwrap_or(DEFAULT_LIMIT);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(ApiError::bad_request(format!("limit must be from 1 to {MAX_LIMIT}")));
    }
    let jsonl = match p.format {
        Some(AuditFormat::Jsonl) => true,
        Some(AuditFormat::Json) => false,
        None => headers
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.contains("application/x-ndjson") || v.contains("application/jsonl")),
    };
    let query = AuditQuery {
        since: p.since,
        until: p.until,
        principal_id: p.principal_id,
        user_principal_id: p.user_principal_id,
        grant_id: p.grant_id,
        secret_id: p.secret_id,
        outcome: p.outcome,
        kind: p.kind,
        action: p.action,
        request_id: p.request_id,
        reason: p.reason.filter(|r| !r.is_empty()),
        context,
        before_seq: p.before,
        limit,
    };
    state.audit.settle().await;
    let rows = state.store.audit_events(&query).await?;
    let data = rows
        .iter()
        .map(|r| r.to_record())
        .collect::<Result<Vec<_>, _>>()
        .map_err(ApiError::internal)?;
    let next_before = (data.len() as i64 == limit)
        .then(|| data.last().map(|r| r.seq))
        .flatten();
    if jsonl {
        let mut body = String::new();
        for record in &data {
            body.push_str(&serde_json::to_string(record).map_err(ApiError::internal)?);
            body.push('\n');
        }
        let mut response = body.into_response();
        response
            .headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/x-ndjson"));
        if let Some(next) = next_before
            && let Ok(v) = HeaderValue::from_str(&next.to_string())
        {
            response.headers_mut().insert("x-credgate-next-before", v);
        }
        return Ok(response);
    }
    Ok(Json(AuditPage { data, next_before }).into_response())
}

/// Most `context.<key>` filters in one read.
const MAX_CONTEXT_FILTERS: usize = 8;

/// The named parameters, strictly, and the `context.<key>=<value>` filters beside them.
fn params(raw: &str) -> Result<(AuditParams, Vec<(String, String)>), ApiError> {
    let mut rest = url::form_urlencoded::Serializer::new(String::new());
    let mut context = Vec::new();
    for (name, value) in url::form_urlencoded::parse(raw.as_bytes()) {
        match name.strip_prefix("context.") {
            Some(key) => {
                let plain = !key.is_empty()
                    && key.len() <= 64
                    && key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
                if !plain {
                    return Err(ApiError::bad_request(
                        "context.<key>: the key is 1 to 64 letters, digits, `_` or `-`",
                    ));
                }
                context.push((key.to_owned(), value.into_owned()));
            }
            None => {
                rest.append_pair(&name, &value);
            }
        }
    }
    if context.len() > MAX_CONTEXT_FILTERS {
        return Err(ApiError::bad_request(format!(
            "at most {MAX_CONTEXT_FILTERS} context.<key> filters"
        )));
    }
    let uri: http::Uri = format!("/?{}", rest.finish())
        .parse()
        .map_err(|_| ApiError::bad_request("invalid query"))?;
    let Query(p) = Query::<AuditParams>::try_from_uri(&uri).map_err(|e| {
        ApiError::bad_request(format!(
            "invalid query: {}",
            e.body_text().trim_start_matches("Failed to deserialize query string: ")
        ))
    })?;
    Ok((p, context))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct VerifyParams {
    /// Continue from a checkpoint: the `head_seq` of an earlier report (with `after_hash`).
    pub after_seq: Option<i64>,
    /// The `head_hash` of that report: the walk checks the records after it link to it.
    pub after_hash: Option<String>,
}

#[utoipa::path(get, path = "/admin/v1/audit/verify", tag = "audit", params(VerifyParams),
    description = "Walks the hash chain in the database and reports the first record that does not fit: from an earlier report's head, or else from the newest archive checkpoint (its signature checked first), or else from the first record. Archived records are verified with `credgate audit verify --archive DIR`.",
    responses((status = 200, body = VerifyReport), (status = 400, body = ErrorBody)))]
pub async fn verify(
    State(state): State<AppState>,
    super::extract::ApiQuery(params): super::extract::ApiQuery<VerifyParams>,
) -> Result<Json<VerifyReport>, ApiError> {
    state.audit.settle().await;
    let mut report = match (params.after_seq, params.after_hash) {
        (None, None) => match from_newest_checkpoint(&state).await? {
            Ok(report) => report,
            Err(refused) => return Ok(Json(refused)),
        },
        (Some(seq), Some(hash)) if seq >= 0 && hash.len() == 64 && hash.bytes().all(|b| b.is_ascii_hexdigit()) => {
            let hash = hash.to_ascii_lowercase();
            match checkpoint_still_there(&state, seq, &hash).await? {
                None => VerifyReport::from_checkpoint(seq, &hash),
                Some(problem) => return Ok(Json(refusal(seq, &hash, problem))),
            }
        }
        _ => {
            return Err(ApiError::bad_request(
                "after_seq and after_hash go together: a report's head_seq and its 64-hex-digit head_hash",
            ));
        }
    };
    crate::store::walk_chain(&state.store, &mut report, VERIFY_PAGE).await?;
    // Archiving writes its own record after each checkpoint, and keeps the newest record: a
    // database with nothing after the newest checkpoint was emptied behind its back.
    if report.ok
        && let Some(newest) = state.store.audit_checkpoints().await?.last()
        && report.head_seq <= newest.last_seq
    {
        report.ok = false;
        report.error = Some(format!(
            "record {}: missing; no record follows the newest archive checkpoint (the trail was cut back)",
            newest.last_seq + 1
        ));
    }
    Ok(Json(report))
}

fn refusal(seq: i64, hash: &str, problem: String) -> VerifyReport {
    VerifyReport {
        ok: false,
        error: Some(problem),
        ..VerifyReport::from_checkpoint(seq, hash)
    }
}

/// Whether a checkpoint's record is still in the trail as it was (`None`), or what is wrong:
/// gone (the trail was cut back) or different (rewritten). A record archived since is proven
/// by its archive file's checkpoint instead.
async fn checkpoint_still_there(state: &AppState, seq: i64, hash: &str) -> Result<Option<String>, ApiError> {
    if seq == 0 {
        return Ok((hash != crate::audit::GENESIS).then(|| "record 0: the genesis hash is all zeros".to_owned()));
    }
    // Records up to the newest archive checkpoint are in files: a walk from inside them would
    // find the rest missing.
    let checkpoints = state.store.audit_checkpoints().await?;
    if checkpoints.last().is_some_and(|c| seq < c.last_seq) {
        return Ok(Some(format!(
            "record {seq}: it is in an archive file; verify from the archive (`credgate audit verify --archive DIR`) or from a later checkpoint"
        )));
    }
    let found = match state
        .store
        .audit_chain(seq - 1, 1)
        .await?
        .into_iter()
        .find(|r| r.seq == seq)
    {
        Some(r) => Some(r.hash),
        // A file's end: its checkpoint's hash, if the checkpoint is the trail's own.
        None => match checkpoints.into_iter().find(|c| c.last_seq == seq) {
            Some(c) => match signing_key(state).await {
                Ok(key) if c.signed_by(&key) => Some(c.head_hash),
                _ => {
                    return Ok(Some(format!(
                        "record {seq}: its archive checkpoint is not signed by the trail's key (it was changed)"
                    )));
                }
            },
            None => None,
        },
    };
    Ok(match found {
        None => Some(format!(
            "record {seq}: the checkpoint's record is gone (the trail was cut back)"
        )),
        Some(h) if h != hash => Some(format!(
            "record {seq}: its hash is not the checkpoint's (the trail was rewritten)"
        )),
        Some(_) => None,
    })
}

/// Where a full walk of the database starts: after the newest archive checkpoint, once its
/// signature is checked (`Err`: a report saying it is not), or at the genesis hash.
async fn from_newest_checkpoint(state: &AppState) -> Result<Result<VerifyReport, VerifyReport>, ApiError> {
    let checkpoints = state.store.audit_checkpoints().await?;
    let Some(newest) = checkpoints.last() else {
        return Ok(Ok(VerifyReport::genesis()));
    };
    let key = signing_key(state).await;
    if !key.as_ref().is_ok_and(|k| newest.signed_by(k)) {
        return Ok(Err(refusal(
            newest.last_seq,
            &newest.head_hash,
            match key {
                Err(why) => format!("record {}: {why}", newest.last_seq),
                Ok(_) => format!(
                    "record {}: the newest archive checkpoint is not signed by the trail's key (it was changed)",
                    newest.last_seq
                ),
            },
        )));
    }
    Ok(Ok(VerifyReport {
        archived_through: Some(newest.last_seq),
        ..VerifyReport::from_checkpoint(newest.last_seq, &newest.head_hash)
    }))
}

/// The public half of the trail's signing key, from its sealed private half; or why there is
/// none to check against.
async fn signing_key(state: &AppState) -> Result<String, String> {
    match crate::audit_archiver::load_signer(state.store.as_ref(), &state.keyring.current()).await {
        Ok(Some(signer)) => Ok(signer.info.public_key),
        Ok(None) => Err("the trail has no signing key, yet archive checkpoints (they were not made here)".into()),
        Err(e) => Err(format!("the trail's signing key cannot be read ({e})")),
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CheckpointList {
    /// The trail's signing key (absent until the first archive file): the key every
    /// checkpoint must be signed by.
    pub signing_key: Option<crate::audit::SigningKeyInfo>,
    /// Every archive file's checkpoint, oldest first.
    pub data: Vec<crate::audit::Checkpoint>,
    /// Seconds between this gateway's archiving passes (absent: retention is off). Each pass
    /// seals the live trail's head, so a newest seal older than a few of these, with records
    /// added since, means passes stopped.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub archive_interval_seconds: Option<u64>,
    /// The answering gateway's time. A seal's age is measured against it, not against the
    /// reader's clock: the seal was stamped by a gateway's clock, and a reader's may be off.
    pub now: DateTime<Utc>,
}

#[utoipa::path(get, path = "/admin/v1/audit/checkpoints", tag = "audit",
    description = "The archive files retention wrote (`--audit-retain-days`), as their signed checkpoints, and the public key that signs them: what `credgate audit verify --archive DIR` checks the files against.",
    responses((status = 200, body = CheckpointList)))]
pub async fn checkpoints(State(state): State<AppState>) -> Result<Json<CheckpointList>, ApiError> {
    let data = state.store.audit_checkpoints().await?;
    let signer = crate::audit_archiver::load_signer(state.store.as_ref(), &state.keyring.current())
        .await
        .map_err(ApiError::internal)?;
    Ok(Json(CheckpointList {
        signing_key: signer.map(|s| s.info),
        data,
        archive_interval_seconds: state.settings.archive_interval_seconds,
        now: crate::clock::now(),
    }))
}
