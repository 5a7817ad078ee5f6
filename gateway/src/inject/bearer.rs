//! `bearer`: `Authorization: Bearer {token}`.

use serde_json::{Map, Value};

use super::{Edits, InjectError, InjectRequest, Injector, format_token};
use crate::redact::Credential;

#[derive(Debug, Default)]
pub struct BearerInjector;

#[async_trait::async_trait]
impl Injector for BearerInjector {
    fn id(&self) -> &str {
        "bearer"
    }

    fn version(&self) -> &str {
        "native"
    }

    fn credential_headers(&self, _: &Map<String, Value>) -> Vec<String> {
        vec!["authorization".into()]
    }

    async fn inject(
        &self,
        _: &InjectRequest<'_>,
        credential: &Credential,
        _: &Map<String, Value>,
    ) -> Result<Edits, InjectError> {
        Ok(Edits {
            set_headers: vec![("authorization".into(), format_token("Bearer {token}", credential)?)],
            ..Default::default()
        })
    }
}
