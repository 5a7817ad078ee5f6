//! A provider plugin behind the same [`Injector`] interface as the native injectors. The
//! credential crosses into the sandbox as plain strings; every copy made for a call is zeroed
//! after it.

use std::sync::Arc;

use serde_json::{Map, Value};
use zeroize::Zeroize;

use super::LoadedPlugin;
use super::bindings::{self, Body, Pair, Request};
use super::loaded::PluginError;
use crate::inject::mint::{Mint, Minted, TokenBody, TokenRequest, TokenResponse};
use crate::inject::{BodyAccess, BodyNeed, Edits, InjectError, InjectRequest, Injector, Payload, ProviderDescription};
use crate::redact::{Credential, SecretString};

#[derive(Debug)]
pub struct WasmInjector {
    pub plugin: Arc<LoadedPlugin>,
}

#[async_trait::async_trait]
impl Injector for WasmInjector {
    fn description(&self) -> &ProviderDescription {
        &self.plugin.description
    }

    /// The plugin's own checks. A refusal is the operator's to fix; any other failure is the
    /// provider's.
    async fn validate(&self, credential: &Credential, config: &Map<String, Value>) -> Result<(), InjectError> {
        let mut pairs = credential_pairs(credential);
        let result = self.plugin.validate(&pairs, &config_pairs(config)).await;
        for pair in &mut pairs {
            pair.value.zeroize();
        }
        match result {
            Ok(()) => Ok(()),
            Err(PluginError::Refused(message)) => Err(InjectError::Config(message)),
            Err(e) => Err(InjectError::Failed {
                summary: "the provider failed while checking the secret",
                detail: e.to_string(),
            }),
        }
    }

    fn minting(&self) -> Option<&dyn Mint> {
        (!self.plugin.description.token_hosts.is_empty()).then_some(self as &dyn Mint)
    }

    /// What the template's description asked for (0.2 templates that sign the body).
    fn body_need(&self, _config: &Map<String, Value>, _url: &url::Url) -> BodyNeed {
        match self.plugin.description.body {
            BodyAccess::None => BodyNeed::Nothing,
            BodyAccess::Digest(hash) => BodyNeed::Digest(hash),
            BodyAccess::Bytes(most) => BodyNeed::Bytes { most },
        }
    }

    async fn inject(
        &self,
        request: &InjectRequest<'_>,
        credential: &Credential,
        config: &Map<String, Value>,
    ) -> Result<Edits, InjectError> {
        let wit_request = Request {
            method: request.method.as_str().to_owned(),
            url: request.url.as_str().to_owned(),
            headers: request
                .headers
                .iter()
                .filter_map(|(n, v)| {
                    v.to_str().ok().map(|v| Pair {
                        name: n.as_str().to_owned(),
                        value: v.to_owned(),
                    })
                })
                .collect(),
            body: match &request.payload {
                Payload::Digest(digest) => Body::Digest(digest.clone()),
                Payload::Bytes(bytes) => Body::Bytes(bytes.to_vec()),
                Payload::NotNeeded | Payload::Sha256(_) | Payload::Unsigned(_) => Body::None,
            },
        };
        let mut pairs = credential_pairs(credential);
        let result = self.plugin.inject(&wit_request, &pairs, &config_pairs(config)).await;
        for pair in &mut pairs {
            pair.value.zeroize();
        }
        let mut edits = result.map_err(|e| InjectError::Failed {
            summary: e.summary(),
            detail: e.to_string(),
        })?;
        let out = Edits {
            set_headers: edits
                .set_headers
                .iter()
                .map(|p| (p.name.clone(), SecretString::new(p.value.clone())))
                .collect(),
            remove_headers: std::mem::take(&mut edits.remove_headers),
            set_query: edits
                .set_query
                .iter()
                .map(|p| (p.name.clone(), SecretString::new(p.value.clone())))
                .collect(),
        };
        for pair in edits.set_headers.iter_mut().chain(edits.set_query.iter_mut()) {
            pair.value.zeroize();
        }
        Ok(out)
    }
}

#[async_trait::async_trait]
impl Mint for WasmInjector {
    async fn token_request(
        &self,
        credential: &Credential,
        config: &Map<String, Value>,
    ) -> Result<Option<TokenRequest>, InjectError> {
        let mut pairs = credential_pairs(credential);
        let result = self.plugin.mint(&pairs, &config_pairs(config)).await;
        zeroize(&mut pairs);
        let Some(mut request) = result.map_err(failed)? else {
            return Ok(None);
        };
        let converted = token_request(&request);
        zeroize(&mut request.headers);
        match &mut request.body {
            bindings::TokenBody::Form(fields) => zeroize(fields),
            bindings::TokenBody::Json(text) => text.zeroize(),
            bindings::TokenBody::None => {}
        }
        converted.map(Some)
    }

    async fn accept(
        &self,
        response: &TokenResponse,
        credential: &Credential,
        config: &Map<String, Value>,
    ) -> Result<Minted, InjectError> {
        let mut wit_response = bindings::TokenResponse {
            status: response.status,
            headers: response
                .headers
                .iter()
                .map(|(name, value)| Pair {
                    name: name.clone(),
                    value: value.clone(),
                })
                .collect(),
            body: response.body.expose().to_owned(),
        };
        let mut pairs = credential_pairs(credential);
        let result = self.plugin.accept(&wit_response, &pairs, &config_pairs(config)).await;
        zeroize(&mut pairs);
        wit_response.body.zeroize();
        let mut minted = result.map_err(failed)?;
        let out = Minted {
            fields: to_credential(&minted.fields),
            expires_in: std::time::Duration::from_secs(minted.expires_in),
            rotated: to_credential(&minted.rotated),
        };
        zeroize(&mut minted.fields);
        zeroize(&mut minted.rotated);
        Ok(out)
    }
}

/// The host's copy of a plugin's token request, checked: a method and an absolute URL.
fn token_request(request: &bindings::TokenRequest) -> Result<TokenRequest, InjectError> {
    let refused = |why: &str| InjectError::Failed {
        summary: "the plugin's token request was refused",
        detail: why.to_owned(),
    };
    let method = http::Method::from_bytes(request.method.as_bytes()).map_err(|_| refused("its method is not one"))?;
    let url = url::Url::parse(&request.url).map_err(|_| refused("its URL is not an absolute URL"))?;
    let secret = |pairs: &[Pair]| {
        pairs
            .iter()
            .map(|p| (p.name.clone(), SecretString::new(p.value.clone())))
            .collect::<Vec<_>>()
    };
    Ok(TokenRequest {
        method,
        url,
        headers: secret(&request.headers),
        body: match &request.body {
            bindings::TokenBody::None => TokenBody::None,
            bindings::TokenBody::Form(fields) => TokenBody::Form(secret(fields)),
            bindings::TokenBody::Json(text) => TokenBody::Json(SecretString::new(text.clone())),
        },
    })
}

fn to_credential(pairs: &[Pair]) -> Credential {
    let mut credential = Credential::new();
    for pair in pairs {
        credential.insert(pair.name.clone(), SecretString::new(pair.value.clone()));
    }
    credential
}

fn zeroize(pairs: &mut [Pair]) {
    for pair in pairs {
        pair.value.zeroize();
    }
}

fn failed(e: PluginError) -> InjectError {
    InjectError::Failed {
        summary: e.summary(),
        detail: e.to_string(),
    }
}

/// Config as the plugin receives it: strings as they are, other JSON values as JSON text.
pub fn config_pairs(config: &Map<String, Value>) -> Vec<Pair> {
    config
        .iter()
        .map(|(name, value)| Pair {
            name: name.clone(),
            value: match value {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            },
        })
        .collect()
}

/// The credential as the plugin receives it. The caller zeroes the values after the call.
pub fn credential_pairs(credential: &Credential) -> Vec<Pair> {
    credential
        .fields()
        .map(|(name, value)| Pair {
            name: name.to_owned(),
            value: value.expose().to_owned(),
        })
        .collect()
}
