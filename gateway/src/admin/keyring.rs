//! `/admin/v1/keyring`: the master key ring's state, rotation and re-wrapping.

use axum::Json;
use axum::extract::State;
use serde::Serialize;
use utoipa::ToSchema;

use super::extract::AdminCtx;
use crate::error::{ApiError, ErrorBody, ErrorCode};
use crate::masterkey::{self, KeyRingError, KeyRingStatus, RewrapReport};
use crate::state::AppState;

impl From<KeyRingError> for ApiError {
    fn from(e: KeyRingError) -> Self {
        match e {
            KeyRingError::NotPossible(why) => ApiError::new(ErrorCode::Conflict, why),
            other => ApiError::internal(other),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RotateReport {
    pub active_key_id: String,
    #[serde(flatten)]
    pub rewrap: RewrapReport,
}

#[utoipa::path(get, path = "/admin/v1/keyring", tag = "keyring", responses((status = 200, body = KeyRingStatus)))]
pub async fn status(State(state): State<AppState>) -> Result<Json<KeyRingStatus>, ApiError> {
    Ok(Json(masterkey::status(state.store.as_ref(), &state.keyring).await?))
}

#[utoipa::path(post, path = "/admin/v1/keyring/rotate", tag = "keyring",
    description = "Generates a new master key, makes it active (older keys stay to open older data) and re-wraps every data key under it. Only for a key ring kept in a file.",
    responses((status = 200, body = RotateReport), (status = 409, description = "the ring is not credgate's to change", body = ErrorBody)))]
pub async fn rotate(State(state): State<AppState>, ctx: AdminCtx) -> Result<Json<RotateReport>, ApiError> {
    let active_key_id = masterkey::rotate(state.store.as_ref(), &state.keyring).await?;
    let mut event = ctx.event();
    event.target = Some(active_key_id.clone());
    record(&state, event).await?;
    let rewrap = masterkey::rewrap(state.store.as_ref(), &state.keyring, None).await?;
    crate::changes::publish(&state, crate::changes::Change::All).await;
    Ok(Json(RotateReport { active_key_id, rewrap }))
}

#[utoipa::path(post, path = "/admin/v1/keyring/rewrap", tag = "keyring",
    description = "Re-wraps every data key not yet under the active master key. Safe to run again; carries on where an interrupted run stopped.",
    responses((status = 200, body = RewrapReport)))]
pub async fn rewrap(State(state): State<AppState>, ctx: AdminCtx) -> Result<Json<RewrapReport>, ApiError> {
    let report = masterkey::rewrap(state.store.as_ref(), &state.keyring, None).await?;
    crate::changes::publish(&state, crate::changes::Change::All).await;
    let mut event = ctx.event();
    event.target = Some(state.keyring.current().active().id().to_owned());
    event.message = Some(format!(
        "{} data keys re-wrapped, {} remaining",
        report.rewrapped, report.remaining
    ));
    record(&state, event).await?;
    Ok(Json(report))
}

async fn record(state: &AppState, event: crate::audit::AuditEvent) -> Result<(), ApiError> {
    state
        .audit
        .record(event)
        .await
        .map_err(|_| ApiError::new(ErrorCode::AuditUnavailable, "the audit trail cannot be written"))
}
