//! `/admin/v1/proxy-ca`: credgate's forward-proxy CA. Its certificates (never its key) and
//! the trust bundle clients install; rotation.

use axum::Json;
use axum::extract::State;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::extract::{AdminCtx, ApiQuery};
use crate::ca::{AuthorityView, DEFAULT_ROTATION_GRACE};
use crate::error::{ApiError, ErrorBody};
use crate::state::AppState;

#[derive(Debug, Serialize, ToSchema)]
pub struct ProxyCa {
    /// The CA signing now, then any that will sign after a rotation's grace period.
    pub data: Vec<AuthorityView>,
    /// Every certificate in `data`, as one PEM bundle: what a client should trust.
    pub bundle_pem: String,
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct Rotate {
    /// Seconds until the new CA starts signing (default 86400). Until then it is only in the
    /// bundle, so clients can take it first; 0 switches at once (for a CA whose key leaked).
    pub grace_seconds: Option<u32>,
}

fn view(state: &AppState) -> ProxyCa {
    ProxyCa {
        data: state.authorities.trusted(),
        bundle_pem: state.authorities.bundle_pem(),
    }
}

#[utoipa::path(get, path = "/admin/v1/proxy-ca", tag = "proxy-ca", responses((status = 200, body = ProxyCa)))]
pub async fn show(State(state): State<AppState>) -> Json<ProxyCa> {
    Json(view(&state))
}

#[utoipa::path(post, path = "/admin/v1/proxy-ca/rotate", tag = "proxy-ca", params(Rotate),
    description = "Makes a new CA. It joins the trust bundle now and signs leaf certificates once the grace period is over; the current CA signs until then and is dropped from the bundle after.",
    responses((status = 200, body = ProxyCa), (status = 503, body = ErrorBody)))]
pub async fn rotate(
    State(state): State<AppState>,
    ctx: AdminCtx,
    ApiQuery(q): ApiQuery<Rotate>,
) -> Result<Json<ProxyCa>, ApiError> {
    let grace = q
        .grace_seconds
        .map_or(DEFAULT_ROTATION_GRACE, |s| chrono::Duration::seconds(i64::from(s)));
    state
        .authorities
        .rotate(state.store.as_ref(), &state.keyring.current(), grace, ctx.event())
        .await
        .map_err(ApiError::internal)?;
    crate::changes::publish(&state, crate::changes::Change::All).await;
    Ok(Json(view(&state)))
}
