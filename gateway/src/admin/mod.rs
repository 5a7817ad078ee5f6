//! The admin API under `/admin/v1`: JSON, `Authorization: Bearer <admin token>`, described by
//! the OpenAPI document at `/admin/v1/openapi.json` that is generated from these handlers.

pub mod auth;
pub mod extract;

mod admin_tokens;
mod approvals;
mod audit;
mod grants;
mod keyring;
mod keys;
mod openapi;
mod principals;
mod providers;
mod proxy_ca;
mod secrets;
mod sessions;
mod stats;
mod whoami;

use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::middleware::{Next, from_fn_with_state};
use axum::response::Response;
use axum::routing::{get, post};

use crate::audit::{AuditEvent, AuditKind};
use crate::error::ErrorRender;
use crate::request_id::RequestId;
use crate::state::AppState;

pub use openapi::ApiDoc;

pub fn router(state: AppState) -> Router<AppState> {
    let body_limit = state.settings.admin_max_body_bytes;
    let guarded = Router::new()
        .route("/admin/v1/principals", get(principals::list).post(principals::create))
        .route(
            "/admin/v1/principals/{id}",
            get(principals::get).delete(principals::delete),
        )
        .route("/admin/v1/principals/{id}/members", post(principals::add_member))
        .route(
            "/admin/v1/principals/{id}/members/{member_id}",
            axum::routing::delete(principals::remove_member),
        )
        .route(
            "/admin/v1/principals/{id}/keys",
            get(keys::list_for_principal).post(keys::issue),
        )
        .route("/admin/v1/keys", get(keys::list))
        .route("/admin/v1/keys/{id}", get(keys::get).delete(keys::revoke))
        .route("/admin/v1/secrets", get(secrets::list).post(secrets::create))
        .route("/admin/v1/secrets/{id}", get(secrets::get).delete(secrets::delete))
        .route("/admin/v1/secrets/{id}/rotate", post(secrets::rotate))
        .route(
            "/admin/v1/secrets/{id}/grants",
            get(grants::list_for_secret).post(grants::issue),
        )
        .route("/admin/v1/grants", get(grants::list))
        .route("/admin/v1/grants/{grant_id}", get(grants::get).delete(grants::revoke))
        .route("/admin/v1/audit", get(audit::list))
        .route("/admin/v1/audit/verify", get(audit::verify))
        .route("/admin/v1/audit/checkpoints", get(audit::checkpoints))
        .route("/admin/v1/stats", get(stats::read))
        .route(
            "/admin/v1/providers",
            get(providers::list)
                .post(providers::upload)
                .layer(axum::extract::DefaultBodyLimit::max(providers::MAX_COMPONENT_BYTES)),
        )
        .route(
            "/admin/v1/providers/{id}",
            get(providers::show).delete(providers::remove),
        )
        .route("/admin/v1/providers/{id}/disable", post(providers::disable))
        .route("/admin/v1/providers/{id}/enable", post(providers::enable))
        .route("/admin/v1/keyring", get(keyring::status))
        .route("/admin/v1/keyring/rotate", post(keyring::rotate))
        .route("/admin/v1/keyring/rewrap", post(keyring::rewrap))
        .route("/admin/v1/proxy-ca", get(proxy_ca::show))
        .route("/admin/v1/proxy-ca/rotate", post(proxy_ca::rotate))
        .route(whoami::ROUTE, get(whoami::read))
        .route(
            "/admin/v1/admin-tokens",
            get(admin_tokens::list).post(admin_tokens::create),
        )
        .route(
            "/admin/v1/admin-tokens/{id}",
            axum::routing::delete(admin_tokens::revoke),
        )
        .route("/admin/v1/sessions", get(sessions::list))
        .route("/admin/v1/sessions/{id}", axum::routing::delete(sessions::end))
        .route("/admin/v1/approvals", get(approvals::list))
        .route("/admin/v1/approvals/{id}", get(approvals::get))
        .route("/admin/v1/approvals/{id}/approve", post(approvals::approve))
        .route("/admin/v1/approvals/{id}/deny", post(approvals::deny))
        // Inner to outer: failed changes are audited, after the caller is authenticated.
        .route_layer(from_fn_with_state(state.clone(), audit_failures))
        .route_layer(from_fn_with_state(state, auth::require_admin))
        // Bodies over the limit fail to buffer; `ApiJson` answers that with a 413.
        .layer(axum::extract::DefaultBodyLimit::max(body_limit));
    Router::new()
        .route("/admin/v1/openapi.json", get(openapi::document))
        .merge(guarded)
}

/// Records an audit event for every attempted change that failed, so refusals (a taken
/// name, an unknown id, a bad body) are on the record too. Successful changes are recorded
/// with the change itself, in the same transaction.
async fn audit_failures(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let route = req.extensions().get::<MatchedPath>().map(|m| m.as_str().to_owned());
    let action = route.as_deref().and_then(|r| extract::action_for(req.method(), r));
    let actor = req.extensions().get::<auth::AdminActor>().map(|a| a.0.clone());
    let request_id = req.extensions().get::<RequestId>().map(|r| r.0.clone());
    let target = req.uri().path().to_owned();
    let response = next.run(req).await;
    if let (Some(action), Some(error)) = (action, response.extensions().get::<ErrorRender>()) {
        let mut event = AuditEvent::new(AuditKind::Admin, action, error.code.as_str());
        event.actor = actor;
        event.request_id = request_id;
        event.target = Some(target);
        event.message = Some(error.message.clone());
        state.audit.record_detached(event);
    }
    response
}
