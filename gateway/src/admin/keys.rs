//! API keys: issued to a user, system or agent; shown once; revocable.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::extract::{AdminCtx, ApiPath, ApiQuery};
use crate::clock::now;
use crate::error::{ApiError, ApiJsonOrEmpty, ErrorBody};
use crate::state::AppState;
use crate::vault::ApiKey;
use crate::vault::grant::MAX_TTL_SECONDS;
use crate::vault::token::{self, TokenKind};

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct IssueKey {
    /// A label to recognise the key by (e.g. the service that holds it).
    pub name: Option<String>,
    /// The key stops working at this time. Give this or `ttl_seconds`, or neither for a key
    /// that lives until revoked.
    pub expires_at: Option<DateTime<Utc>>,
    pub ttl_seconds: Option<i64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct IssuedKey {
    #[serde(flatten)]
    pub meta: ApiKey,
    /// The key itself. Shown in this response only: credgate keeps just a hash.
    pub key: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct KeyList {
    pub data: Vec<ApiKey>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ListKeys {
    pub principal_id: Option<Uuid>,
}

#[utoipa::path(post, path = "/admin/v1/principals/{id}/keys", tag = "keys", params(("id" = Uuid, Path)),
    request_body(content = IssueKey, description = "optional; `{}` or no body for an unnamed key without expiry"),
    responses((status = 201, body = IssuedKey), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn issue(
    State(state): State<AppState>,
    ctx: AdminCtx,
    ApiPath(principal_id): ApiPath<Uuid>,
    ApiJsonOrEmpty(req): ApiJsonOrEmpty<IssueKey>,
) -> Result<(StatusCode, Json<IssuedKey>), ApiError> {
    let principal = state
        .store
        .principal(principal_id)
        .await?
        .ok_or_else(|| ApiError::not_found("principal"))?;
    if !principal.kind.can_hold_keys() {
        return Err(ApiError::bad_request(
            "groups cannot hold API keys; issue keys to their members",
        ));
    }
    if let Some(name) = &req.name {
        crate::vault::principal::validate_name(name).map_err(|e| ApiError::bad_request(format!("key {e}")))?;
    }
    let created_at = now();
    let expires_at = match (req.expires_at, req.ttl_seconds) {
        (Some(_), Some(_)) => {
            return Err(ApiError::bad_request("give expires_at or ttl_seconds, not both"));
        }
        (Some(at), None) if at <= created_at => {
            return Err(ApiError::bad_request("expires_at must be in the future"));
        }
        (Some(at), None) => Some(at),
        (None, Some(ttl)) if !(1..=MAX_TTL_SECONDS).contains(&ttl) => {
            return Err(ApiError::bad_request(format!(
                "ttl_seconds must be from 1 to {MAX_TTL_SECONDS}"
            )));
        }
        (None, Some(ttl)) => Some(created_at + Duration::seconds(ttl)),
        (None, None) => None,
    };
    let issued = token::issue(TokenKind::App).map_err(ApiError::internal)?;
    let meta = ApiKey {
        id: Uuid::new_v4(),
        principal_id,
        name: req.name,
        prefix: issued.prefix,
        hash: issued.hash,
        created_at,
        expires_at,
        revoked_at: None,
    };
    let mut event = ctx.event();
    event.target = Some(meta.id.to_string());
    event.key_id = Some(meta.id);
    event.principal_id = Some(principal_id);
    state.store.insert_api_key(&meta, &event).await?;
    crate::changes::publish(
        &state,
        crate::changes::Change::Key {
            prefix: meta.prefix.clone(),
        },
    )
    .await;
    Ok((
        StatusCode::CREATED,
        Json(IssuedKey {
            meta,
            key: issued.token.expose().to_owned(),
        }),
    ))
}

#[utoipa::path(get, path = "/admin/v1/keys", tag = "keys", params(ListKeys), responses((status = 200, body = KeyList)))]
pub async fn list(State(state): State<AppState>, ApiQuery(q): ApiQuery<ListKeys>) -> Result<Json<KeyList>, ApiError> {
    Ok(Json(KeyList {
        data: state.store.api_keys(q.principal_id).await?,
    }))
}

#[utoipa::path(get, path = "/admin/v1/principals/{id}/keys", tag = "keys", params(("id" = Uuid, Path)),
    responses((status = 200, body = KeyList), (status = 404, body = ErrorBody)))]
pub async fn list_for_principal(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Json<KeyList>, ApiError> {
    state
        .store
        .principal(id)
        .await?
        .ok_or_else(|| ApiError::not_found("principal"))?;
    Ok(Json(KeyList {
        data: state.store.api_keys(Some(id)).await?,
    }))
}

#[utoipa::path(get, path = "/admin/v1/keys/{id}", tag = "keys", params(("id" = Uuid, Path)),
    responses((status = 200, body = ApiKey), (status = 404, body = ErrorBody)))]
pub async fn get(State(state): State<AppState>, ApiPath(id): ApiPath<Uuid>) -> Result<Json<ApiKey>, ApiError> {
    Ok(Json(
        state
            .store
            .api_key(id)
            .await?
            .ok_or_else(|| ApiError::not_found("API key"))?,
    ))
}

#[utoipa::path(delete, path = "/admin/v1/keys/{id}", tag = "keys", params(("id" = Uuid, Path)),
    description = "Revokes the key; it fails from the next request. Revoking a revoked key changes nothing.",
    responses((status = 200, body = ApiKey), (status = 404, body = ErrorBody)))]
pub async fn revoke(
    State(state): State<AppState>,
    ctx: AdminCtx,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Json<ApiKey>, ApiError> {
    let key = state
        .store
        .api_key(id)
        .await?
        .ok_or_else(|| ApiError::not_found("API key"))?;
    let mut event = ctx.event();
    event.target = Some(id.to_string());
    event.key_id = Some(id);
    event.principal_id = Some(key.principal_id);
    state.store.revoke_api_key(id, now(), &event).await?;
    crate::changes::publish(
        &state,
        crate::changes::Change::Key {
            prefix: key.prefix.clone(),
        },
    )
    .await;
    Ok(Json(
        state
            .store
            .api_key(id)
            .await?
            .ok_or_else(|| ApiError::not_found("API key"))?,
    ))
}
