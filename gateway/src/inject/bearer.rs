//! `bearer`: `Authorization: Bearer {token}`.

use serde_json::{Map, Value};

use super::{Edits, InjectError, InjectRequest, Injector, format_token};
use crate::redact::Credential;

#[derive(Debug, Default)]
pub struct BearerInjector;

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

    fn inject(
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
