//! Admin API authentication: `Authorization: Bearer <admin token>`, checked against
//! [`crate::admin_tokens`], or, without one, the portal's session cookie (with its CSRF
//! header on every change: [`crate::signin::session_caller`]).

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

/// The route any valid token may call, whatever its scopes: `whoami`, so a client can learn
/// what its token opens.
pub const OPEN_TO_ALL: &str = "/admin/v1/whoami";

/// The admin token an `Authorization: Bearer` header presents.
pub fn bearer(headers: &http::HeaderMap) -> Option<String> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
        .map(str::trim)
        .map(str::to_owned)
}

/// Middleware guarding `/admin/v1`.
pub async fn require_admin(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let presented = bearer(req.headers());
    let caller = match presented {
        Some(presented) => state.admin_auth.authenticate(state.store.as_ref(), &presented).await,
        None => match crate::signin::session_caller(&state, req.headers(), req.method()).await {
            Some(Ok((caller, _))) => Some(caller),
            Some(Err(e)) => return e.into_response(),
            None => {
                return ApiError::unauthenticated("missing admin token: send `Authorization: Bearer <admin token>`")
                    .into_response();
            }
        },
    };
    match caller {
        Some(caller) => {
            let route = req.extensions().get::<MatchedPath>().map(|m| m.as_str().to_owned());
            let needed = Scope::needed(req.method(), route.as_deref().unwrap_or(""));
            let open_to_all = route.as_deref() == Some(OPEN_TO_ALL);
            if !open_to_all && !scope::allows(&caller.scopes, needed) {
                return ApiError::new(
                    ErrorCode::ForbiddenScope,
                    format!(
                        "this admin token (or session) lacks the `{}` scope this call needs",
                        needed.as_str()
                    ),
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
