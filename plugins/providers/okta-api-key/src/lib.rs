//! Okta: `Authorization: SSWS {token}`.

#![no_std]

use credgate_plugin_sdk::prelude::*;

struct OktaApiKey;

impl Provider for OktaApiKey {
    fn describe() -> Description {
        Description::new("okta-api-key", "Okta", env!("CARGO_PKG_VERSION"))
            .base_url("https://{hostname}")
            .host("{hostname}")
            .docs("https://developer.okta.com/docs/guides/create-an-api-token/")
            .credential(Field::secret("token", "API token"))
            .config(Field::config("hostname", "Okta domain", ValueKind::Host).help("e.g. acme.okta.com"))
    }

    fn inject(_: &Request, credential: &Credential, _: &Config) -> Result<Edits, Error> {
        Ok(Edits::new().set_header("authorization", format!("SSWS {}", credential.get("token")?)))
    }
}

provider!(OktaApiKey);
