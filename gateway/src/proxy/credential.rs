//! The credential: which injector puts it on the request, the caller's own copies taken off,
//! then (only once every check has passed) decrypted, injected and validated.

use std::sync::Arc;
use std::time::Instant;

use http::{HeaderMap, Method, header};

use super::call::{Call, Failure, refuse};
use super::scrub::Needles;
use super::target::Target;
use crate::cache::LiveSecret;
use crate::crypto::open_value;
use crate::error::{ApiError, ErrorCode};
use crate::inject::{self, InjectRequest, Injector, Payload};
use crate::plugin::{PluginError, Unresolved};
use crate::redact::Credential;
use crate::state::AppState;

/// The injector for the secret's type, native or a provider plugin; named in the call's
/// record and metrics.
pub async fn injector(call: &mut Call, secret: &LiveSecret) -> Result<Arc<dyn Injector>, Failure> {
    let injector = resolve(&call.state, secret).await?;
    call.provider = injector.id().to_owned();
    call.event.provider = Some(injector.id().to_owned());
    call.event.provider_version = Some(injector.version().to_owned());
    Ok(injector)
}

async fn resolve(state: &AppState, secret: &LiveSecret) -> Result<Arc<dyn Injector>, Failure> {
    let type_id = &secret.meta.secret_type;
    state
        .providers
        .resolve(type_id, state.store.as_ref())
        .await
        .map_err(|why| match why {
            Unresolved::Unknown => refuse(
                ErrorCode::ProviderError,
                format!("no provider is loaded for type `{type_id}`"),
            ),
            Unresolved::Disabled => refuse(
                ErrorCode::ProviderError,
                format!("provider `{type_id}` cannot be loaded: {}", PluginError::Disabled),
            ),
            Unresolved::Broken(e) => refuse(
                ErrorCode::ProviderError,
                format!("provider `{type_id}` cannot be loaded: {e}"),
            ),
        })
}

/// The caller's own copies of the credential's headers and parameters go, so exactly one
/// credential reaches the upstream; and for a secret whose responses are scrubbed, nothing
/// that would hide a value from the scrubber is asked for.
pub fn strip_callers_copies(
    injector: &dyn Injector,
    secret: &LiveSecret,
    headers: &mut HeaderMap,
    target: &mut Target,
) {
    for name in injector.credential_headers(&secret.meta.config) {
        headers.remove(name.as_str());
    }
    if secret.meta.redact_responses {
        // A body to be scrubbed must come as plain bytes, and whole: a compressed body hides
        // the value from the scrubber, and a range could return a value's second half alone.
        headers.insert(header::ACCEPT_ENCODING, http::HeaderValue::from_static("identity"));
        headers.remove(header::RANGE);
        headers.remove(header::IF_RANGE);
    }
    let params = injector.credential_params(&secret.meta.config);
    if !params.is_empty()
        && let Some(q) = target.query.as_deref()
    {
        let kept = crate::query::without(q, |name, _| params.iter().any(|p| p == name));
        target.set_query(kept);
    }
}

/// Decrypts the credential, has the injector put it on the request, and applies its edits by
/// the rules every injector is held to. Returns what must not come back in the response.
pub async fn inject(
    call: &mut Call,
    injector: &Arc<dyn Injector>,
    secret: &Arc<LiveSecret>,
    method: &Method,
    headers: &mut HeaderMap,
    target: &mut Target,
    payload: Payload,
) -> Result<Needles, Failure> {
    let state = &call.state;
    let started = Instant::now();
    let mut credential = decrypt(state, secret)?;
    if injector.minting().is_some() {
        let ctx = crate::minting::MintContext {
            upstream: state.upstream.clone(),
            store: state.store.clone(),
            ring: state.keyring.current(),
            replica: state.replica,
        };
        let minted = state.minter.fields(&ctx, secret, injector, &credential).await;
        if let Err(crate::minting::MintError::Stale) = &minted {
            // Read the secret again before the next call.
            crate::changes::publish(state, crate::changes::Change::Secret { id: secret.meta.id }).await;
        }
        let minted = minted.map_err(|e| {
            state.metrics.provider_failure(injector.id());
            match (&e, state.settings.log_plugin_errors) {
                (crate::minting::MintError::Template { detail, .. }, true) => {
                    tracing::warn!(provider = injector.id(), error = %detail, "minting failed");
                }
                _ => tracing::warn!(provider = injector.id(), error = %e, "minting failed"),
            }
            refuse(
                ErrorCode::ProviderError,
                format!("provider `{}` could not obtain a token: {e}", injector.id()),
            )
        })?;
        if let Some(obtained) = minted {
            if obtained.rotated_to.is_some() {
                // The provider rotated a stored field: every replica reads the new version.
                crate::changes::publish(state, crate::changes::Change::Secret { id: secret.meta.id }).await;
            }
            for (name, value) in obtained.fields.fields() {
                credential.insert(name, value.clone());
            }
        }
    }
    let edits = injector
        .inject(
            &InjectRequest {
                method,
                url: &target.url,
                headers,
                payload,
            },
            &credential,
            &secret.meta.config,
        )
        .await
        .map_err(|e| {
            state.metrics.provider_failure(injector.id());
            if state.settings.log_plugin_errors {
                tracing::warn!(provider = injector.id(), error = %e, "injection failed");
            } else {
                tracing::warn!(provider = injector.id(), error = %e.summary(), "injection failed");
            }
            refuse(
                ErrorCode::ProviderError,
                format!(
                    "provider `{}` could not inject the credential: {}",
                    injector.id(),
                    e.summary()
                ),
            )
        })?;
    // A name is never secret: one that carries a credential value (stored or minted) would
    // put it where values are not protected (the audit path, logs, the upstream's header
    // list), so the injection is refused.
    // Compared in place, ignoring ASCII case: no copy of a value is made, on every call.
    let carries = |name: &str| {
        credential.fields().any(|(_, v)| {
            let value = v.expose().as_bytes();
            value.len() >= 4
                && name
                    .as_bytes()
                    .windows(value.len())
                    .any(|w| w.eq_ignore_ascii_case(value))
        })
    };
    if edits
        .set_headers
        .iter()
        .chain(&edits.set_query)
        .any(|(name, _)| carries(name))
    {
        state.metrics.provider_failure(injector.id());
        return Err(refuse(
            ErrorCode::ProviderError,
            format!(
                "provider `{}`'s injection was refused: a header or parameter name carried a credential value",
                injector.id()
            ),
        ));
    }
    // What must not come back, taken while the credential is at hand.
    let needles = Needles::new(&credential, &edits);
    drop(credential);
    let mut query = target.query.take();
    let injected_params = inject::apply(edits, headers, &mut query).map_err(|e| {
        if state.settings.log_plugin_errors {
            tracing::warn!(provider = injector.id(), error = %e, "injection refused");
        }
        refuse(
            ErrorCode::ProviderError,
            format!("provider `{}`'s injection was refused: {}", injector.id(), e.summary()),
        )
    })?;
    target.set_query(query);
    state.metrics.injection(injector.id(), started.elapsed());
    call.event.path = Some(match &target.query {
        Some(q) => format!("{}?{}", target.path, crate::query::redacted(q, &injected_params)),
        None => target.path.clone(),
    });
    Ok(needles)
}

fn decrypt(state: &AppState, secret: &LiveSecret) -> Result<Credential, Failure> {
    let ring = state.keyring.current();
    let plaintext = open_value(&ring, &secret.meta.id.to_string(), secret.meta.version, &secret.sealed)
        .map_err(|e| ApiError::internal(format!("cannot open secret {}: {e}", secret.meta.id)))?;
    Credential::from_plaintext(&plaintext)
        .map_err(|_| ApiError::internal(format!("secret {} holds an unreadable value", secret.meta.id)).into())
}
