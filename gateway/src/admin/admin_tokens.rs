//! `/admin/v1/admin-tokens`: operators' tokens, each named and scoped, shown once, revocable.
//! Only an `admin` token manages them (crate::vault::scope).

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::extract::{AdminCtx, ApiPath};
use crate::clock::now;
use crate::error::{ApiError, ApiJson, ErrorBody};
use crate::state::AppState;
use crate::vault::api_key::AdminToken;
use crate::vault::scope::{self, Scope};
use crate::vault::token::{self, TokenKind};

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateAdminToken {
    /// Who or what holds it (`ci`, `alice`); in every audit record it causes.
    pub name: String,
    /// What it may do: `secrets:read`, `secrets:write`, `grants:write`, `principals:write`,
    /// `providers:write`, `audit:read`, `approvals:decide`, or `admin` (everything).
    pub scopes: Vec<String>,
}

/// An admin token as listed: never its value.
#[derive(Debug, Serialize, ToSchema)]
pub struct AdminTokenView {
    pub id: Uuid,
    pub name: String,
    pub scopes: Vec<Scope>,
    pub prefix: String,
    pub created_at: DateTime<Utc>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revoked_at: Option<DateTime<Utc>>,
}

impl From<&AdminToken> for AdminTokenView {
    fn from(t: &AdminToken) -> Self {
        Self {
            id: t.id,
            name: t.name.clone(),
            scopes: t.scopes.clone(),
            prefix: t.prefix.clone(),
            created_at: t.created_at,
            revoked_at: t.revoked_at,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct IssuedAdminToken {
    #[serde(flatten)]
    pub meta: AdminTokenView,
    /// The token itself. Shown in this response only: credgate keeps just a hash.
    pub token: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AdminTokenList {
    pub data: Vec<AdminTokenView>,
}

#[utoipa::path(post, path = "/admin/v1/admin-tokens", tag = "admin-tokens", request_body = CreateAdminToken,
    responses((status = 201, body = IssuedAdminToken), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn create(
    State(state): State<AppState>,
    ctx: AdminCtx,
    ApiJson(req): ApiJson<CreateAdminToken>,
) -> Result<(StatusCode, Json<IssuedAdminToken>), ApiError> {
    crate::vault::principal::validate_name(&req.name).map_err(|e| ApiError::bad_request(format!("token {e}")))?;
    if req.scopes.is_empty() {
        return Err(ApiError::bad_request("give at least one scope"));
    }
    let mut scopes = Vec::new();
    for text in &req.scopes {
        let parsed = Scope::parse(text).ok_or_else(|| {
            ApiError::bad_request(format!(
                "unknown scope `{}`; scopes are {}",
                text.chars().take(40).collect::<String>(),
                scope::ALL.map(Scope::as_str).join(", ")
            ))
        })?;
        if !scopes.contains(&parsed) {
            scopes.push(parsed);
        }
    }
    scopes.sort();
    let issued = token::issue(TokenKind::Admin).map_err(ApiError::internal)?;
    let record = AdminToken {
        id: Uuid::new_v4(),
        name: req.name,
        scopes,
        prefix: issued.prefix,
        hash: issued.hash,
        created_at: now(),
        revoked_at: None,
    };
    let mut event = ctx.event();
    event.target = Some(record.id.to_string());
    state.store.insert_admin_token(&record, &event).await?;
    // Usable from its first call, on this replica and, by the change notice, on the others
    // (an unknown token otherwise reloads the table at most once a second).
    state.admin_auth.force_reload(state.store.as_ref()).await;
    crate::changes::publish(&state, crate::changes::Change::AdminTokens).await;
    Ok((
        StatusCode::CREATED,
        Json(IssuedAdminToken {
            meta: AdminTokenView::from(&record),
            token: issued.token.expose().to_owned(),
        }),
    ))
}

#[utoipa::path(get, path = "/admin/v1/admin-tokens", tag = "admin-tokens",
    responses((status = 200, body = AdminTokenList), (status = 403, body = ErrorBody)))]
pub async fn list(State(state): State<AppState>) -> Result<Json<AdminTokenList>, ApiError> {
    let mut tokens = state.store.admin_tokens().await?;
    tokens.sort_by_key(|t| t.created_at);
    Ok(Json(AdminTokenList {
        data: tokens.iter().map(AdminTokenView::from).collect(),
    }))
}

#[utoipa::path(delete, path = "/admin/v1/admin-tokens/{id}", tag = "admin-tokens", params(("id" = Uuid, Path)),
    responses((status = 204), (status = 404, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn revoke(
    State(state): State<AppState>,
    ctx: AdminCtx,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<StatusCode, ApiError> {
    let mut event = ctx.event();
    event.target = Some(id.to_string());
    if !state.store.revoke_admin_token(id, now(), &event).await? {
        return Err(ApiError::not_found("admin token (or it is already revoked)"));
    }
    // Refused from the next call, here and, at their next change notice, on every replica.
    state.admin_auth.force_reload(state.store.as_ref()).await;
    crate::changes::publish(&state, crate::changes::Change::AdminTokens).await;
    Ok(StatusCode::NO_CONTENT)
}
