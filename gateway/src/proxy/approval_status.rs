//! The app's view of its held calls: `GET /v1/approvals/{id}` (the status, `?wait=N` to wait
//! for it to settle) and `GET /v1/approvals/{id}/response` (the upstream's response, once the
//! call is made). Only the principal whose app key made the call sees it; to anyone else it
//! does not exist.

use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, header};
use serde::Deserialize;
use serde_json::{Value, json};
use uuid::Uuid;

use super::authn;
use super::hold::{self, MAX_WAIT_SECONDS};
use crate::approvals::{Approval, ApprovalStatus};
use crate::clock::now;
use crate::error::{ApiError, ErrorCode};
use crate::state::AppState;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatusQuery {
    /// Seconds to wait for the approval to settle, at most 60.
    wait: Option<u64>,
}

/// The approval as its app sees it.
pub fn view(state: &AppState, approval: &Approval) -> Value {
    let status = approval.status_at(now());
    let mut view = json!({
        "id": approval.id,
        "status": status,
        "grant_id": approval.grant_id,
        "method": approval.method,
        "host": approval.host,
        "path": approval.path,
        "created_at": approval.created_at,
        "expires_at": approval.expires_at,
        "approval_url": hold::approval_url(state, approval.id),
    });
    for (name, value) in [
        ("reason", approval.reason.as_ref().map(|r| json!(r))),
        ("context", approval.context.as_ref().map(|c| json!(c))),
        ("decided_at", approval.decided_at.map(|at| json!(at))),
        ("note", approval.note.as_ref().map(|n| json!(n))),
        ("finished_at", approval.finished_at.map(|at| json!(at))),
        ("failure", approval.failure.as_ref().map(|f| json!(f))),
    ] {
        if let Some(value) = value {
            view[name] = value;
        }
    }
    if status == ApprovalStatus::Executed {
        view["response"] = json!({
            "status": approval.response_status,
            "kept": approval.response.is_some(),
            "url": format!("/v1/approvals/{}/response", approval.id),
        });
    }
    view
}

/// `GET /v1/approvals/{id}`.
pub async fn status(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(query): Query<StatusQuery>,
    headers: HeaderMap,
) -> Response {
    match read(&state, &id, &headers, query.wait.unwrap_or(0)).await {
        Ok(approval) => axum::Json(json!({"approval": view(&state, &approval)})).into_response(),
        Err(error) => error.into_response(),
    }
}

/// `GET /v1/approvals/{id}/response`.
pub async fn response(State(state): State<AppState>, Path(id): Path<String>, headers: HeaderMap) -> Response {
    let approval = match read(&state, &id, &headers, 0).await {
        Ok(approval) => approval,
        Err(error) => return error.into_response(),
    };
    match approval.status_at(now()) {
        ApprovalStatus::Executed => match hold::kept_response(&state, &approval) {
            Ok(mut response) => {
                super::headers::contain(response.headers_mut());
                response
            }
            Err(error) => error.into_response(),
        },
        ApprovalStatus::Pending | ApprovalStatus::Executing => ApiError::new(
            ErrorCode::Conflict,
            "this call has not been made yet; GET /v1/approvals/{id}?wait=N waits for it",
        )
        .into_response(),
        _ => hold::final_answer(&state, &approval).unwrap_or_else(|| ApiError::not_found("approval").into_response()),
    }
}

/// The approval, for the principal whose key made the call, after waiting up to `wait`
/// seconds for it to settle.
async fn read(state: &AppState, id: &str, headers: &HeaderMap, wait: u64) -> Result<Approval, ApiError> {
    let key = bearer(headers).ok_or_else(|| {
        ApiError::unauthenticated("send the app key that made the call: `Authorization: Bearer <app key>`")
    })?;
    let key = authn::check(state, key).await.map_err(|f| f.error)?;
    let unknown = || ApiError::new(ErrorCode::NotFound, "no approval with that id");
    let id = Uuid::parse_str(id).map_err(|_| unknown())?;
    let approval = state.store.approval(id).await?.ok_or_else(unknown)?;
    if approval.principal_id != key.principal_id {
        return Err(unknown());
    }
    if wait == 0 {
        return Ok(approval);
    }
    let wait = Duration::from_secs(wait.min(MAX_WAIT_SECONDS));
    hold::settle(state, id, wait).await?.ok_or_else(unknown)
}

/// The app key, from `Proxy-Authorization` or `Authorization`, as `Bearer`.
pub(super) fn bearer(headers: &HeaderMap) -> Option<&str> {
    [header::PROXY_AUTHORIZATION, header::AUTHORIZATION]
        .iter()
        .filter_map(|name| headers.get(name)?.to_str().ok())
        .find_map(|value| {
            let value = value.trim();
            value
                .strip_prefix("Bearer ")
                .or_else(|| value.strip_prefix("bearer "))
                .map(str::trim)
        })
}
