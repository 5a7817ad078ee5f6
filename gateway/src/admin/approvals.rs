//! Approvals: the calls waiting for an operator, and the decision. Approving makes the call
//! (on this replica, at once); denying drops it. Each decision is audited with who made it.

use std::time::Duration;

use axum::Json;
use axum::extract::State;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::extract::{AdminCtx, ApiPath, ApiQuery};
use crate::approvals::held::{HeldRequest, preview};
use crate::approvals::{Approval, ApprovalStatus};
use crate::clock::now;
use crate::error::{ApiError, ApiJsonOrEmpty, ErrorBody, ErrorCode};
use crate::state::AppState;

/// How long approving waits for the call it makes, before answering with it still executing.
const APPROVE_WAITS: Duration = Duration::from_secs(10);

#[derive(Debug, Serialize, ToSchema)]
pub struct ApprovalView {
    pub id: Uuid,
    pub status: ApprovalStatus,
    pub grant_id: Uuid,
    pub secret_id: Uuid,
    /// The principal whose app key made the call.
    pub principal_id: Uuid,
    /// The person the app acted for (its user token), when the grant is theirs or their group's.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_principal_id: Option<Uuid>,
    pub key_id: Uuid,
    /// The request id of the held call (its audit record).
    pub request_id: String,
    pub method: String,
    pub host: String,
    pub path: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub context: Option<serde_json::Map<String, serde_json::Value>>,
    pub body_bytes: i64,
    /// The start of the body, as text (while the call is held).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub body_preview: Option<String>,
    pub created_at: chrono::DateTime<chrono::Utc>,
    /// Pending until then; once made, the response is kept until then.
    pub expires_at: chrono::DateTime<chrono::Utc>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decided_at: Option<chrono::DateTime<chrono::Utc>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decided_by: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<chrono::DateTime<chrono::Utc>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure: Option<String>,
    /// The upstream's status, once made.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub response_status: Option<u16>,
}

impl ApprovalView {
    fn of(state: &AppState, approval: Approval) -> Self {
        // The body is the app's data: shown to the operator who decides, while it is held.
        let body_preview = approval
            .request
            .as_ref()
            .filter(|_| approval.status == ApprovalStatus::Pending)
            .and_then(|sealed| HeldRequest::open(&state.keyring.current(), approval.id, sealed).ok())
            .map(|held| preview(&held.body));
        Self {
            id: approval.id,
            status: approval.status_at(now()),
            grant_id: approval.grant_id,
            secret_id: approval.secret_id,
            principal_id: approval.principal_id,
            user_principal_id: approval.user_principal_id,
            key_id: approval.key_id,
            request_id: approval.request_id,
            method: approval.method,
            host: approval.host,
            path: approval.path,
            reason: approval.reason,
            context: approval.context,
            body_bytes: approval.body_bytes,
            body_preview,
            created_at: approval.created_at,
            expires_at: approval.expires_at,
            decided_at: approval.decided_at,
            decided_by: approval.decided_by,
            note: approval.note,
            finished_at: approval.finished_at,
            failure: approval.failure,
            response_status: approval.response_status,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ApprovalList {
    /// Newest first.
    pub data: Vec<ApprovalView>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ListApprovals {
    /// `pending`, `executing`, `executed`, `failed`, `denied` or `expired`.
    pub status: Option<ApprovalStatus>,
    /// 1 to 500 (default 100).
    pub limit: Option<i64>,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Decision {
    /// Shown with the approval, to the app too; at most 1000 characters.
    pub note: Option<String>,
}

#[utoipa::path(get, path = "/admin/v1/approvals", tag = "approvals", params(ListApprovals),
    responses((status = 200, body = ApprovalList), (status = 400, body = ErrorBody)))]
pub async fn list(
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<ListApprovals>,
) -> Result<Json<ApprovalList>, ApiError> {
    let limit = q.limit.unwrap_or(100);
    if !(1..=500).contains(&limit) {
        return Err(ApiError::bad_request("limit must be from 1 to 500"));
    }
    // Expired ones may not be swept yet: a pending list shows what can still be decided.
    let rows = state.store.approvals(q.status, limit).await?;
    let data = rows
        .into_iter()
        .map(|a| ApprovalView::of(&state, a))
        .filter(|v| q.status.is_none_or(|s| v.status == s))
        .collect();
    Ok(Json(ApprovalList { data }))
}

#[utoipa::path(get, path = "/admin/v1/approvals/{id}", tag = "approvals", params(("id" = Uuid, Path)),
    responses((status = 200, body = ApprovalView), (status = 404, body = ErrorBody)))]
pub async fn get(State(state): State<AppState>, ApiPath(id): ApiPath<Uuid>) -> Result<Json<ApprovalView>, ApiError> {
    let approval = state
        .store
        .approval(id)
        .await?
        .ok_or_else(|| ApiError::not_found("approval"))?;
    Ok(Json(ApprovalView::of(&state, approval)))
}

#[utoipa::path(post, path = "/admin/v1/approvals/{id}/approve", tag = "approvals", params(("id" = Uuid, Path)),
    request_body(content = Option<Decision>),
    description = "Approves a pending call: credgate makes it at once (the grant checked again) and keeps the response for the app. Answers once the call is made, or after 10 s with it still executing. 409 when the approval is no longer pending (decided elsewhere, or expired).",
    responses((status = 200, body = ApprovalView), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn approve(
    State(state): State<AppState>,
    ctx: AdminCtx,
    ApiPath(id): ApiPath<Uuid>,
    ApiJsonOrEmpty(decision): ApiJsonOrEmpty<Decision>,
) -> Result<Json<ApprovalView>, ApiError> {
    decide(state, ctx, id, ApprovalStatus::Executing, decision).await
}

#[utoipa::path(post, path = "/admin/v1/approvals/{id}/deny", tag = "approvals", params(("id" = Uuid, Path)),
    request_body(content = Option<Decision>),
    description = "Denies a pending call: it is never made. 409 when the approval is no longer pending.",
    responses((status = 200, body = ApprovalView), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn deny(
    State(state): State<AppState>,
    ctx: AdminCtx,
    ApiPath(id): ApiPath<Uuid>,
    ApiJsonOrEmpty(decision): ApiJsonOrEmpty<Decision>,
) -> Result<Json<ApprovalView>, ApiError> {
    decide(state, ctx, id, ApprovalStatus::Denied, decision).await
}

async fn decide(
    state: AppState,
    ctx: AdminCtx,
    id: Uuid,
    to: ApprovalStatus,
    decision: Decision,
) -> Result<Json<ApprovalView>, ApiError> {
    let note = decision.note.map(|n| n.trim().to_owned()).filter(|n| !n.is_empty());
    if note.as_ref().is_some_and(|n| n.chars().count() > 1000) {
        return Err(ApiError::bad_request("note must be at most 1000 characters"));
    }
    let approval = state
        .store
        .approval(id)
        .await?
        .ok_or_else(|| ApiError::not_found("approval"))?;
    let mut event = ctx.event();
    event.target = Some(id.to_string());
    event.grant_id = Some(approval.grant_id);
    event.secret_id = Some(approval.secret_id);
    event.principal_id = Some(approval.principal_id);
    event.message = note.clone();
    let at = now();
    let won = state
        .store
        .decide_approval(id, to, &ctx.actor, note.as_deref(), at, &event)
        .await?;
    if !won {
        let status = approval.status_at(at);
        let current = match state.store.approval(id).await? {
            Some(latest) => latest.status_at(at),
            None => status,
        };
        return Err(ApiError::new(
            ErrorCode::Conflict,
            format!("this approval is {} and can no longer be decided", current.as_str()),
        ));
    }
    if to == ApprovalStatus::Executing {
        state.metrics.approval("approved");
        let decided = Approval {
            status: ApprovalStatus::Executing,
            decided_at: Some(at),
            decided_by: Some(ctx.actor.clone()),
            note,
            ..approval
        };
        let making = tokio::spawn(crate::proxy::approved::execute(state.clone(), decided));
        // The call is made whether or not this request waits for it.
        let _ = tokio::time::timeout(APPROVE_WAITS, making).await;
    } else {
        state.metrics.approval("denied");
    }
    let latest = state
        .store
        .approval(id)
        .await?
        .ok_or_else(|| ApiError::not_found("approval"))?;
    Ok(Json(ApprovalView::of(&state, latest)))
}
