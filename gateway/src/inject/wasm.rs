//! A provider plugin behind the same [`Injector`] interface as the native injectors.

use std::sync::Arc;

use serde_json::{Map, Value};
use zeroize::Zeroize;

use super::{Edits, InjectError, InjectRequest, Injector};
use crate::plugin::LoadedPlugin;
use crate::plugin::bindings::Request;
use crate::plugin::validate::{config_pairs, credential_pairs};
use crate::redact::{Credential, SecretString};

#[derive(Debug)]
pub struct WasmInjector {
    pub plugin: Arc<LoadedPlugin>,
}

#[async_trait::async_trait]
impl Injector for WasmInjector {
    fn id(&self) -> &str {
        &self.plugin.description.id
    }

    fn version(&self) -> &str {
        &self.plugin.description.version
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
                    v.to_str().ok().map(|v| crate::plugin::bindings::Pair {
                        name: n.as_str().to_owned(),
                        value: v.to_owned(),
                    })
                })
                .collect(),
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
