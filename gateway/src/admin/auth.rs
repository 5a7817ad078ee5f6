//! Admin API authentication: `Authorization: Bearer <admin token>`, checked against
//! [`crate::admin_tokens`].

use axum::extract::{MatchedPath, Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::error::{ApiError, ErrorCode};
use crate::state::AppState;
use crate::vault::scope::{self, Scope};

/// Who made an admin call, in request extensions: `admin:<token id> (<name>)` or
/// `admin:bootstrap`.
#[derive(Clone, Debug)]
pub struct AdminActor(pub String);

/// What the call's token may do, in request extensions.
#[derive(Clone, Debug)]
pub struct AdminScopes(pub Vec<Scope>);

/// Middleware guarding `/admin/v1`.
pub async fn require_admin(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let presented = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
        .map(str::trim)
        .map(str::to_owned);
    let Some(presented) = presented else {
        return ApiError::unauthenticated("missing admin token: send `Authorization: Bearer <admin token>`")
            .into_response();
    };
    match state.admin_auth.authenticate(state.store.as_ref(), &presented).await {
        Some(caller) => {
            let route = req.extensions().get::<MatchedPath>().map(|m| m.as_str().to_owned());
            let needed = Scope::needed(req.method(), route.as_deref().unwrap_or(""));
            let open_to_all = route.as_deref() == Some(super::whoami::ROUTE);
            if !open_to_all && !scope::allows(&caller.scopes, needed) {
                return ApiError::new(
                    ErrorCode::ForbiddenScope,
                    format!("this admin token lacks the `{}` scope this call needs", needed.as_str()),
                )
                .into_response();
            }
            req.extensions_mut().insert(AdminActor(caller.actor));
            req.extensions_mut().insert(AdminScopes(caller.scopes));
            next.run(req).await
        }
        None => {
            tracing::warn!("admin call with an invalid token");
            ApiError::unauthenticated("invalid admin token").into_response()
        }
    }
}
