//! Grants: issue a secret to a principal under a policy; list, show, revoke.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::extract::{AdminCtx, ApiPath, ApiQuery};
use crate::clock::now;
use crate::error::{ApiError, ApiJson, ErrorBody};
use crate::limits::Usage;
use crate::state::AppState;
use crate::store::GrantFilter;
use crate::vault::grant::GrantPolicyInput;
use crate::vault::{Grant, GrantStatus};

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct IssueGrant {
    /// A user, group, system or agent. A group's grant is usable by its members.
    pub principal_id: Uuid,
    #[serde(default)]
    pub grant_policy: GrantPolicyInput,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct GrantView {
    #[serde(flatten)]
    pub grant: Grant,
    pub status: GrantStatus,
    /// How much of its rate limit and quota the grant has used (reading one grant only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub usage: Option<Usage>,
}

impl From<Grant> for GrantView {
    fn from(grant: Grant) -> Self {
        let status = grant.status(now());
        Self {
            grant,
            status,
            usage: None,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct GrantList {
    pub data: Vec<GrantView>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ListGrants {
    pub secret_id: Option<Uuid>,
    pub principal_id: Option<Uuid>,
    /// `active`, `expired` or `revoked`.
    pub status: Option<GrantStatus>,
}

#[utoipa::path(post, path = "/admin/v1/secrets/{id}/grants", tag = "grants", params(("id" = Uuid, Path, description = "the secret")),
    request_body = IssueGrant,
    responses((status = 201, body = GrantView), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn issue(
    State(state): State<AppState>,
    ctx: AdminCtx,
    ApiPath(secret_id): ApiPath<Uuid>,
    ApiJson(req): ApiJson<IssueGrant>,
) -> Result<(StatusCode, Json<GrantView>), ApiError> {
    state
        .store
        .secret(secret_id)
        .await?
        .ok_or_else(|| ApiError::not_found("secret"))?;
    state
        .store
        .principal(req.principal_id)
        .await?
        .ok_or_else(|| ApiError::not_found("principal"))?;
    let created_at = now();
    let grant_policy = req.grant_policy.resolve(created_at).map_err(ApiError::bad_request)?;
    let grant = Grant {
        grant_id: Uuid::new_v4(),
        secret_id,
        principal_id: req.principal_id,
        grant_policy,
        created_at,
        revoked_at: None,
        revoked_reason: None,
    };
    let mut event = ctx.event();
    event.target = Some(grant.grant_id.to_string());
    event.grant_id = Some(grant.grant_id);
    event.secret_id = Some(secret_id);
    event.principal_id = Some(req.principal_id);
    state.store.insert_grant(&grant, &event).await?;
    crate::changes::publish(&state, crate::changes::Change::Grant { id: grant.grant_id }).await;
    Ok((StatusCode::CREATED, Json(grant.into())))
}

#[utoipa::path(get, path = "/admin/v1/grants", tag = "grants", params(ListGrants), responses((status = 200, body = GrantList)))]
pub async fn list(
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<ListGrants>,
) -> Result<Json<GrantList>, ApiError> {
    let filter = GrantFilter {
        secret_id: q.secret_id,
        principal_id: q.principal_id,
        status: q.status,
    };
    let data = state
        .store
        .grants(&filter, now())
        .await?
        .into_iter()
        .map(GrantView::from)
        .collect();
    Ok(Json(GrantList { data }))
}

#[utoipa::path(get, path = "/admin/v1/secrets/{id}/grants", tag = "grants", params(("id" = Uuid, Path, description = "the secret")),
    responses((status = 200, body = GrantList), (status = 404, body = ErrorBody)))]
pub async fn list_for_secret(
    State(state): State<AppState>,
    ApiPath(secret_id): ApiPath<Uuid>,
) -> Result<Json<GrantList>, ApiError> {
    state
        .store
        .secret(secret_id)
        .await?
        .ok_or_else(|| ApiError::not_found("secret"))?;
    let filter = GrantFilter {
        secret_id: Some(secret_id),
        ..Default::default()
    };
    let data = state
        .store
        .grants(&filter, now())
        .await?
        .into_iter()
        .map(GrantView::from)
        .collect();
    Ok(Json(GrantList { data }))
}

#[utoipa::path(get, path = "/admin/v1/grants/{grant_id}", tag = "grants", params(("grant_id" = Uuid, Path)),
    responses((status = 200, body = GrantView), (status = 404, body = ErrorBody)))]
pub async fn get(State(state): State<AppState>, ApiPath(id): ApiPath<Uuid>) -> Result<Json<GrantView>, ApiError> {
    let grant = state
        .store
        .grant(id)
        .await?
        .ok_or_else(|| ApiError::not_found("grant"))?;
    let usage = if grant.grant_policy.is_limited() {
        Some(state.limits.usage(&grant).await?)
    } else {
        None
    };
    Ok(Json(GrantView { usage, ..grant.into() }))
}

#[utoipa::path(delete, path = "/admin/v1/grants/{grant_id}", tag = "grants", params(("grant_id" = Uuid, Path)),
    description = "Revokes the grant; it fails from the next request. Revoking a revoked grant changes nothing.",
    responses((status = 200, body = GrantView), (status = 404, body = ErrorBody)))]
pub async fn revoke(
    State(state): State<AppState>,
    ctx: AdminCtx,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Json<GrantView>, ApiError> {
    let grant = state
        .store
        .grant(id)
        .await?
        .ok_or_else(|| ApiError::not_found("grant"))?;
    let mut event = ctx.event();
    event.target = Some(id.to_string());
    event.grant_id = Some(id);
    event.secret_id = Some(grant.secret_id);
    event.principal_id = Some(grant.principal_id);
    state.store.revoke_grant(id, now(), "revoked", &event).await?;
    crate::changes::publish(&state, crate::changes::Change::Grant { id }).await;
    Ok(Json(
        state
            .store
            .grant(id)
            .await?
            .ok_or_else(|| ApiError::not_found("grant"))?
            .into(),
    ))
}
