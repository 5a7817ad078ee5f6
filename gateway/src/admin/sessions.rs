//! `/admin/v1/sessions`: the portal's sign-ins through the identity provider, listed and ended
//! by an operator (someone who left, a lost laptop). A session's id is the hash of its cookie:
//! it names the session without being able to act as it.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Serialize;
use utoipa::ToSchema;

use super::extract::{AdminCtx, ApiPath};
use crate::clock::now;
use crate::error::{ApiError, ErrorBody};
use crate::state::AppState;
use crate::vault::scope::Scope;

#[derive(Debug, Serialize, ToSchema)]
pub struct SessionView {
    /// The SHA-256 of the session's cookie, hex.
    pub id: String,
    /// `oidc:<sub> (<name>)`, as the records it causes name it.
    pub actor: String,
    pub scopes: Vec<Scope>,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub expires_at: chrono::DateTime<chrono::Utc>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SessionList {
    pub data: Vec<SessionView>,
}

#[utoipa::path(get, path = "/admin/v1/sessions", tag = "sessions",
    responses((status = 200, body = SessionList), (status = 403, body = ErrorBody)))]
pub async fn list(State(state): State<AppState>) -> Result<Json<SessionList>, ApiError> {
    let sessions = state.store.portal_sessions(now()).await?;
    Ok(Json(SessionList {
        data: sessions
            .into_iter()
            .map(|s| SessionView {
                id: s.id_hash,
                actor: s.actor,
                scopes: s.scopes,
                created_at: s.created_at,
                expires_at: s.expires_at,
            })
            .collect(),
    }))
}

#[utoipa::path(delete, path = "/admin/v1/sessions/{id}", tag = "sessions", params(("id" = String, Path)),
    responses((status = 204), (status = 404, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn end(
    State(state): State<AppState>,
    ctx: AdminCtx,
    ApiPath(id): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    if id.len() != 64 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(ApiError::not_found("session"));
    }
    let mut event = ctx.event();
    event.target = Some(id.clone());
    // Sessions are read from the database on every call: ended here, ended everywhere.
    if !state.store.delete_session(&id.to_ascii_lowercase(), &event).await? {
        return Err(ApiError::not_found("session"));
    }
    Ok(StatusCode::NO_CONTENT)
}
