//! `GET /admin/v1/whoami`: who the presented admin token is and what it may do, so a client
//! (the portal) shows only what the token's scopes open. Any valid token may ask.

use axum::{Extension, Json};
use serde::Serialize;
use utoipa::ToSchema;

use super::auth::{AdminActor, AdminScopes};
use crate::vault::scope::Scope;

/// The route that needs no scope beyond a valid token.
pub const ROUTE: &str = "/admin/v1/whoami";

#[derive(Debug, Serialize, ToSchema)]
pub struct WhoAmI {
    /// As the audit trail names it: `admin:<id> (<name>)` or `admin:bootstrap`.
    pub actor: String,
    pub scopes: Vec<Scope>,
}

#[utoipa::path(get, path = "/admin/v1/whoami", tag = "admin-tokens", responses((status = 200, body = WhoAmI)))]
pub async fn read(Extension(actor): Extension<AdminActor>, Extension(scopes): Extension<AdminScopes>) -> Json<WhoAmI> {
    Json(WhoAmI {
        actor: actor.0,
        scopes: scopes.0,
    })
}
