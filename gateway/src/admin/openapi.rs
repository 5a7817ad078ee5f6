//! The OpenAPI document, generated from the handlers' annotations.

use axum::Json;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use super::{
    admin_tokens, approvals, audit, grants, keyring, keys, principals, providers, proxy_ca, secrets, sessions, stats,
    whoami,
};

#[derive(OpenApi)]
#[openapi(
    info(title = "credgate admin API", description = "Manage principals, API keys, secrets, grants, approvals, the audit trail and the master key ring. Every error has the shape `{\"error\": {\"code\", \"message\", \"request_id\"}}`."),
    paths(
        principals::create, principals::list, principals::get, principals::delete, principals::add_member, principals::remove_member,
        keys::issue, keys::list, keys::list_for_principal, keys::get, keys::revoke,
        secrets::create, secrets::list, secrets::get, secrets::rotate, secrets::delete,
        grants::issue, grants::list, grants::list_for_secret, grants::get, grants::revoke,
        providers::list, providers::show, providers::upload, providers::remove, providers::disable, providers::enable,
        audit::list, audit::verify, audit::checkpoints, stats::read,
        keyring::status, keyring::rotate, keyring::rewrap,
        proxy_ca::show, proxy_ca::rotate,
        approvals::list, approvals::get, approvals::approve, approvals::deny,
        admin_tokens::create, admin_tokens::list, admin_tokens::revoke, whoami::read,
        sessions::list, sessions::end,
    ),
    modifiers(&AdminToken),
    security(("admin_token" = [])),
    tags(
        (name = "principals", description = "Users, groups, systems and agents"),
        (name = "keys", description = "App API keys"),
        (name = "secrets", description = "Stored credentials (write-only)"),
        (name = "grants", description = "A secret issued to a principal"),
        (name = "providers", description = "Provider plugins: bundled, from the plugins directory, uploaded"),
        (name = "audit", description = "The hash-chained audit trail"),
        (name = "keyring", description = "Master keys"),
        (name = "proxy-ca", description = "credgate's CA for forward-proxy mode"),
        (name = "approvals", description = "Calls waiting for an operator's approval"),
        (name = "sessions", description = "The portal's sign-ins through the identity provider"),
    )
)]
#[derive(Debug)]
pub struct ApiDoc;

struct AdminToken;

impl Modify for AdminToken {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "admin_token",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("an admin token"))
                    .build(),
            ),
        );
    }
}

pub async fn document() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}
