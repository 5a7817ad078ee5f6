//! `/admin/v1/secrets`: store a credential once, read back only its metadata, rotate it,
//! delete it.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;
use uuid::Uuid;

use std::sync::Arc;

use super::extract::{AdminCtx, ApiPath};
use crate::clock::now;
use crate::crypto::seal_value;
use crate::error::{ApiError, ApiJson, ErrorBody, ErrorCode};
use crate::inject::{self, InjectError, Injector, check_credential, check_secret};
use crate::plugin::Unresolved;
use crate::redact::Credential;
use crate::state::AppState;
use crate::vault::SecretMeta;
use crate::vault::secret::{self, MAX_NAME_LEN};

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateSecret {
    /// Unique among live secrets (compared by its slug).
    pub name: String,
    /// A native type or a provider id: `GET /admin/v1/providers` lists them all.
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
    /// Scrub the credential from response bodies as they stream, not only from response
    /// headers (off by default), for upstreams that echo what they were sent.
    #[serde(default)]
    pub redact_responses: bool,
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
    /// When its credential was last injected into a call; `null` if never.
    pub last_used_at: Option<chrono::DateTime<chrono::Utc>>,
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
    let kind = Kind::of(&state, &req.secret_type).await?;
    let (config, allowed_hosts) = kind
        .shape(&req.credential, req.config, &req.allowed_hosts, req.allow_insecure_http)
        .await?;

    let at = now();
    let meta = SecretMeta {
        id: Uuid::new_v4(),
        name: req.name,
        slug,
        secret_type: kind.id().to_owned(),
        config,
        allowed_hosts,
        allow_private_destinations: req.allow_private_destinations,
        allow_insecure_http: req.allow_insecure_http,
        redact_responses: req.redact_responses,
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
    Ok((
        StatusCode::CREATED,
        Json(SecretView {
            meta,
            active_grants: 0,
            last_used_at: None,
        }),
    ))
}

#[utoipa::path(get, path = "/admin/v1/secrets", tag = "secrets", responses((status = 200, body = SecretList)))]
pub async fn list(State(state): State<AppState>) -> Result<Json<SecretList>, ApiError> {
    // `last_used_at` comes from the audit trail: let it catch up with the calls answered.
    state.audit.settle().await;
    let counts = state.store.active_grant_counts(now()).await?;
    let mut data = Vec::new();
    for meta in state.store.secrets().await? {
        let active_grants = counts.iter().find(|(id, _)| *id == meta.id).map_or(0, |(_, n)| *n);
        let last_used_at = state.store.secret_last_used(meta.id).await?;
        data.push(SecretView {
            meta,
            active_grants,
            last_used_at,
        });
    }
    Ok(Json(SecretList { data }))
}

async fn view(state: &AppState, id: Uuid) -> Result<SecretView, ApiError> {
    state.audit.settle().await;
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
    let last_used_at = state.store.secret_last_used(id).await?;
    Ok(SecretView {
        meta,
        active_grants,
        last_used_at,
    })
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
    let kind = Kind::of(&state, &meta.secret_type).await?;
    kind.check_rotation(&req.credential, &meta.config).await?;
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
    crate::changes::publish(&state, crate::changes::Change::Secret { id }).await;
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
        // Its grants were revoked too, but a grant is only usable through its secret, which is
        // gone: dropping the secret from every replica's memory is enough.
        crate::changes::publish(&state, crate::changes::Change::Secret { id }).await;
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found("secret"))
    }
}

/// What a secret's `type` names: its injector, native or a provider plugin, resolved the way
/// the data plane resolves it.
struct Kind(Arc<dyn Injector>);

impl Kind {
    async fn of(state: &AppState, type_text: &str) -> Result<Self, ApiError> {
        match state.providers.resolve(type_text, state.store.as_ref()).await {
            Ok(injector) => Ok(Self(injector)),
            Err(Unresolved::Disabled) => Err(ApiError::bad_request("this provider is disabled; enable it first")),
            Err(Unresolved::Broken(e)) => Err(ApiError::new(
                ErrorCode::ProviderError,
                format!("the provider for this type cannot be loaded: {e}"),
            )),
            // The value is not repeated: a credential pasted into the wrong field would be.
            Err(Unresolved::Unknown) => {
                let natives: Vec<&str> = inject::natives().iter().map(|n| n.id()).collect();
                Err(ApiError::bad_request(format!(
                    "unknown secret type; expected {} or a provider id (GET /admin/v1/providers lists them)",
                    natives.join(", ")
                )))
            }
        }
    }

    fn id(&self) -> &str {
        self.0.id()
    }

    /// Applies the type's rules to a new secret: its config (defaults filled, base URL
    /// completed) and its allowed hosts.
    async fn shape(
        &self,
        credential: &Credential,
        config: Map<String, Value>,
        allowed_hosts: &[String],
        allow_insecure_http: bool,
    ) -> Result<(Map<String, Value>, Vec<String>), ApiError> {
        let chose_base_url = config.contains_key("base_url");
        let checked = check_secret(self.0.description(), credential, &config).map_err(ApiError::bad_request)?;
        if !allow_insecure_http {
            for field in self.0.description().config_fields.iter().filter(|f| f.kind == "url") {
                if checked
                    .config
                    .get(&field.name)
                    .and_then(Value::as_str)
                    .is_some_and(|u| u.starts_with("http:"))
                {
                    return Err(ApiError::bad_request(format!(
                        "config `{}` must be an absolute https URL (plain http needs allow_insecure_http)",
                        field.name
                    )));
                }
            }
        }
        let mut config = checked.config;
        if let Some(url) = checked.base_url {
            config.insert("base_url".into(), Value::String(url));
        }
        self.0.validate(credential, &config).await.map_err(refused)?;
        let base_url = secret::base_url(&config, allow_insecure_http).map_err(ApiError::bad_request)?;
        // Hosts: the operator's; else, when the operator chose the base URL, its host; else
        // the template's defaults (none for a native type: its base URL's host, if any).
        let hosts = if !allowed_hosts.is_empty() {
            allowed_hosts.to_vec()
        } else if chose_base_url {
            Vec::new()
        } else {
            checked.default_hosts
        };
        let hosts = secret::resolve_allowed_hosts(&hosts, base_url.as_ref()).map_err(ApiError::bad_request)?;
        self.0.check_hosts(&config, &hosts).map_err(ApiError::bad_request)?;
        Ok((config, hosts))
    }

    async fn check_rotation(&self, credential: &Credential, config: &Map<String, Value>) -> Result<(), ApiError> {
        check_credential(self.0.description(), credential).map_err(ApiError::bad_request)?;
        self.0.validate(credential, config).await.map_err(refused)
    }
}

/// A type's refusal of a secret is the operator's to fix; its failure is the provider's.
fn refused(e: InjectError) -> ApiError {
    match e {
        InjectError::Failed { summary, detail } => {
            ApiError::new(ErrorCode::ProviderError, format!("{summary}: {detail}"))
        }
        other => ApiError::bad_request(other.summary()),
    }
}
