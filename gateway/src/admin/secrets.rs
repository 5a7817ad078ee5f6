//! `/admin/v1/secrets`: store a credential once, read back only its metadata, rotate it,
//! delete it.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;
use uuid::Uuid;

use super::extract::{AdminCtx, ApiPath};
use crate::crypto::seal_value;
use crate::error::{ApiError, ApiJson, ErrorBody, ErrorCode};
use crate::redact::Credential;
use crate::state::AppState;
use crate::vault::secret::{self, MAX_NAME_LEN, SecretType};
use crate::vault::{SecretMeta, now};

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateSecret {
    /// Unique among live secrets (compared by its slug).
    pub name: String,
    /// `bearer`, `api_key`, `basic` or `aws_sigv4`.
    #[serde(rename = "type")]
    pub secret_type: String,
    /// The credential's fields, e.g. `{"token": "…"}`. Write-only: never returned.
    #[schema(value_type = Object)]
    pub credential: Credential,
    /// Injection settings of the type, and `base_url` for base-URL mode.
    #[serde(default)]
    #[schema(value_type = Object)]
    pub config: Map<String, Value>,
    /// Hosts the credential may be sent to: `name`, `name:port` or `*.suffix`. Defaults to
    /// the base URL's host.
    #[serde(default)]
    pub allowed_hosts: Vec<String>,
    /// Allow loopback, private and link-local destinations (off by default).
    #[serde(default)]
    pub allow_private_destinations: bool,
    /// Allow plain-http destinations (off by default).
    #[serde(default)]
    pub allow_insecure_http: bool,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RotateSecret {
    /// The new credential, with the same fields the type requires.
    #[schema(value_type = Object)]
    pub credential: Credential,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SecretView {
    #[serde(flatten)]
    pub meta: SecretMeta,
    /// Grants of this secret that are neither revoked nor expired.
    pub active_grants: i64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SecretList {
    pub data: Vec<SecretView>,
}

#[utoipa::path(post, path = "/admin/v1/secrets", tag = "secrets", request_body = CreateSecret,
    responses((status = 201, body = SecretView), (status = 400, body = ErrorBody), (status = 409, body = ErrorBody),
        (status = 413, body = ErrorBody)))]
pub async fn create(
    State(state): State<AppState>,
    ctx: AdminCtx,
    ApiJson(req): ApiJson<CreateSecret>,
) -> Result<(StatusCode, Json<SecretView>), ApiError> {
    crate::vault::principal::validate_name(&req.name).map_err(ApiError::bad_request)?;
    if req.name.chars().count() > MAX_NAME_LEN {
        return Err(ApiError::bad_request(format!(
            "name must be at most {MAX_NAME_LEN} characters"
        )));
    }
    let slug = secret::slugify(&req.name).map_err(ApiError::bad_request)?;
    let secret_type = SecretType::parse(&req.secret_type).map_err(ApiError::bad_request)?;
    secret::validate_credential(&secret_type, &req.credential).map_err(ApiError::bad_request)?;
    secret::validate_config(&secret_type, &req.config).map_err(ApiError::bad_request)?;
    let base_url = secret::base_url(&req.config, req.allow_insecure_http).map_err(ApiError::bad_request)?;
    let allowed_hosts =
        secret::resolve_allowed_hosts(&req.allowed_hosts, base_url.as_ref()).map_err(ApiError::bad_request)?;

    let at = now();
    let meta = SecretMeta {
        id: Uuid::new_v4(),
        name: req.name,
        slug,
        secret_type: secret_type.as_str().to_owned(),
        config: req.config,
        allowed_hosts,
        allow_private_destinations: req.allow_private_destinations,
        allow_insecure_http: req.allow_insecure_http,
        version: 1,
        credential_fields: req.credential.field_names().map(str::to_owned).collect(),
        created_at: at,
        updated_at: at,
        deleted_at: None,
    };
    let sealed = seal_value(
        &state.keyring.current(),
        &meta.id.to_string(),
        meta.version,
        &req.credential.to_plaintext(),
    )
    .map_err(ApiError::internal)?;
    let mut event = ctx.event();
    event.target = Some(meta.id.to_string());
    event.secret_id = Some(meta.id);
    event.secret_version = Some(meta.version);
    state
        .store
        .insert_secret(&meta, &sealed, &event)
        .await
        .map_err(|e| match e {
            crate::store::StoreError::Conflict(_) => {
                ApiError::conflict(format!("a secret named like `{}` already exists", meta.slug))
            }
            other => other.into(),
        })?;
    Ok((StatusCode::CREATED, Json(SecretView { meta, active_grants: 0 })))
}

#[utoipa::path(get, path = "/admin/v1/secrets", tag = "secrets", responses((status = 200, body = SecretList)))]
pub async fn list(State(state): State<AppState>) -> Result<Json<SecretList>, ApiError> {
    let counts = state.store.active_grant_counts(now()).await?;
    let data = state
        .store
        .secrets()
        .await?
        .into_iter()
        .map(|meta| {
            let active_grants = counts.iter().find(|(id, _)| *id == meta.id).map_or(0, |(_, n)| *n);
            SecretView { meta, active_grants }
        })
        .collect();
    Ok(Json(SecretList { data }))
}

async fn view(state: &AppState, id: Uuid) -> Result<SecretView, ApiError> {
    let meta = state
        .store
        .secret(id)
        .await?
        .ok_or_else(|| ApiError::not_found("secret"))?;
    let active_grants = state
        .store
        .active_grant_counts(now())
        .await?
        .into_iter()
        .find(|(s, _)| *s == id)
        .map_or(0, |(_, n)| n);
    Ok(SecretView { meta, active_grants })
}

#[utoipa::path(get, path = "/admin/v1/secrets/{id}", tag = "secrets", params(("id" = Uuid, Path)),
    responses((status = 200, body = SecretView), (status = 404, body = ErrorBody)))]
pub async fn get(State(state): State<AppState>, ApiPath(id): ApiPath<Uuid>) -> Result<Json<SecretView>, ApiError> {
    Ok(Json(view(&state, id).await?))
}

#[utoipa::path(post, path = "/admin/v1/secrets/{id}/rotate", tag = "secrets", params(("id" = Uuid, Path)),
    request_body = RotateSecret,
    description = "Replaces the value with a new version. Ids stay the same, so every grant keeps working; the old value is destroyed.",
    responses((status = 200, body = SecretView), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, description = "rotated concurrently", body = ErrorBody)))]
pub async fn rotate(
    State(state): State<AppState>,
    ctx: AdminCtx,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(req): ApiJson<RotateSecret>,
) -> Result<Json<SecretView>, ApiError> {
    let meta = state
        .store
        .secret(id)
        .await?
        .ok_or_else(|| ApiError::not_found("secret"))?;
    let secret_type = SecretType::parse(&meta.secret_type).map_err(ApiError::internal)?;
    secret::validate_credential(&secret_type, &req.credential).map_err(ApiError::bad_request)?;
    let version = meta.version + 1;
    let sealed = seal_value(
        &state.keyring.current(),
        &id.to_string(),
        version,
        &req.credential.to_plaintext(),
    )
    .map_err(ApiError::internal)?;
    let mut event = ctx.event();
    event.target = Some(id.to_string());
    event.secret_id = Some(id);
    event.secret_version = Some(version);
    let rotated = state
        .store
        .rotate_secret(id, meta.version, &sealed, now(), &event)
        .await?;
    // The next call through any grant of this secret uses the new value.
    state.cache.invalidate_secret(id);
    if !rotated {
        return match state.store.secret(id).await? {
            None => Err(ApiError::not_found("secret")),
            Some(_) => Err(ApiError::new(
                ErrorCode::Conflict,
                "the secret was rotated at the same time by another call; retry",
            )),
        };
    }
    Ok(Json(view(&state, id).await?))
}

#[utoipa::path(delete, path = "/admin/v1/secrets/{id}", tag = "secrets", params(("id" = Uuid, Path)),
    description = "Deletes the secret: its value is destroyed and its grants are revoked.",
    responses((status = 204), (status = 404, body = ErrorBody)))]
pub async fn delete(
    State(state): State<AppState>,
    ctx: AdminCtx,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<StatusCode, ApiError> {
    let mut event = ctx.event();
    event.target = Some(id.to_string());
    event.secret_id = Some(id);
    if state.store.delete_secret(id, now(), &event).await? {
        // The secret and every grant of it changed.
        state.cache.invalidate_all();
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found("secret"))
    }
}
