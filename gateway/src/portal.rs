//! The operator portal at `/portal/`: static pages that speak only the admin API.
//!
//! The pages are plain HTML, CSS and JavaScript modules (one per page, `app.js` routing
//! between them), with no build chain, embedded in the
//! binary so a release has no files to lose. `--portal-dir` serves them from a directory
//! instead, for operators who customise them. The admin token stays in the browser's session
//! storage and travels only in the `Authorization` header of admin API calls.
//!
//! Every file is sent under a strict Content Security Policy (scripts and styles only from
//! this origin, no inline code, connections only back to this origin, no framing), so a
//! hostile string in, say, a secret's name or an audit message cannot run as code.

use std::path::PathBuf;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;

use crate::error::{ApiError, ErrorCode};
use crate::state::AppState;

/// The embedded pages: (file name, media type, bytes).
const FILES: &[(&str, &str, &[u8])] = &[
    (
        "index.html",
        "text/html; charset=utf-8",
        include_bytes!("../portal/index.html"),
    ),
    (
        "style.css",
        "text/css; charset=utf-8",
        include_bytes!("../portal/style.css"),
    ),
    (
        "api.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../portal/api.js"),
    ),
    (
        "app.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../portal/app.js"),
    ),
    (
        "ui.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../portal/ui.js"),
    ),
    (
        "signin.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../portal/signin.js"),
    ),
    (
        "secrets.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../portal/secrets.js"),
    ),
    (
        "grants.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../portal/grants.js"),
    ),
    (
        "principals.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../portal/principals.js"),
    ),
    (
        "providers.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../portal/providers.js"),
    ),
    (
        "audit.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../portal/audit.js"),
    ),
    (
        "approvals.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../portal/approvals.js"),
    ),
    (
        "overview.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../portal/overview.js"),
    ),
];

const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                   connect-src 'self'; form-action 'none'; base-uri 'none'; frame-ancestors 'none'";

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/portal", get(|| async { Redirect::permanent("/portal/") }))
        .route("/portal/", get(index))
        .route("/portal/{file}", get(file))
}

async fn index(State(state): State<AppState>) -> Response {
    serve(state.settings.portal_dir.as_ref(), "index.html").await
}

async fn file(State(state): State<AppState>, Path(name): Path<String>) -> Response {
    serve(state.settings.portal_dir.as_ref(), &name).await
}

async fn serve(dir: Option<&PathBuf>, name: &str) -> Response {
    let Some(&(name, media_type, embedded)) = FILES.iter().find(|(n, _, _)| *n == name) else {
        return ApiError::new(ErrorCode::NotFound, "no such portal page").into_response();
    };
    let body = match dir {
        None => embedded.to_vec(),
        // Only the names above are ever read, so a request cannot reach other files.
        Some(dir) => match tokio::fs::read(dir.join(name)).await {
            Ok(bytes) => bytes,
            Err(e) => {
                tracing::warn!(file = name, error = %e, "cannot read the portal directory");
                return ApiError::new(ErrorCode::NotFound, "this portal page is missing from --portal-dir")
                    .into_response();
            }
        },
    };
    let mut response = (StatusCode::OK, body).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(media_type));
    headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}
