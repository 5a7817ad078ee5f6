//! `GET /admin/v1/whoami`: who the presented admin token (or portal session) is and what it
//! may do, so a client (the portal) shows only what the scopes open. Any valid token may ask.

use axum::{Extension, Json};
use http::HeaderMap;
use serde::Serialize;
use utoipa::ToSchema;

use super::auth::{AdminActor, AdminScopes};
use crate::vault::scope::Scope;

/// The route that needs no scope beyond a valid token.
pub const ROUTE: &str = super::auth::OPEN_TO_ALL;

#[derive(Debug, Serialize, ToSchema)]
pub struct WhoAmI {
    /// As the audit trail names it: `admin:<id> (<name>)` or `admin:bootstrap`.
    pub actor: String,
    pub scopes: Vec<Scope>,
    /// For a portal session (signed in through the identity provider): the value its changes
    /// must carry in `X-Credgate-CSRF`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub csrf: Option<String>,
}

#[utoipa::path(get, path = "/admin/v1/whoami", tag = "admin-tokens", responses((status = 200, body = WhoAmI)))]
pub async fn read(
    Extension(actor): Extension<AdminActor>,
    Extension(scopes): Extension<AdminScopes>,
    headers: HeaderMap,
) -> Json<WhoAmI> {
    // Only when the session is what authenticated the call (no token was presented).
    let csrf = if super::auth::bearer(&headers).is_some() {
        None
    } else {
        crate::signin::csrf_for(&headers)
    };
    Json(WhoAmI {
        actor: actor.0,
        scopes: scopes.0,
        csrf,
    })
}
