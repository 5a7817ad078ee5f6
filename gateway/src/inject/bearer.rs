//! `bearer`: `Authorization: Bearer {token}`.

use std::sync::LazyLock;

use serde_json::{Map, Value};

use super::{Edits, FieldSpec, InjectError, InjectRequest, Injector, ProviderDescription, format_token};
use crate::redact::Credential;

#[derive(Debug, Default)]
pub struct BearerInjector;

static DESCRIPTION: LazyLock<ProviderDescription> = LazyLock::new(|| {
    ProviderDescription::native(
        "bearer",
        "Bearer token",
        vec![FieldSpec::text(
            "token",
            "Token",
            true,
            "Sent as Authorization: Bearer <token>.",
        )],
        Vec::new(),
    )
});

#[async_trait::async_trait]
impl Injector for BearerInjector {
    fn description(&self) -> &ProviderDescription {
        &DESCRIPTION
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
