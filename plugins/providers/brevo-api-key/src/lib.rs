//! Brevo: `api-key: {token}`.

#![no_std]

use credgate_plugin_sdk::prelude::*;

struct BrevoApiKey;

impl Provider for BrevoApiKey {
    fn describe() -> Description {
        Description::new("brevo-api-key", "Brevo", env!("CARGO_PKG_VERSION"))
            .base_url("https://api.brevo.com/v3")
            .host("api.brevo.com")
            .docs("https://developers.brevo.com/docs/getting-started")
            .credential(Field::secret("token", "API key"))
    }

    fn inject(_: &Request, credential: &Credential, _: &Config) -> Result<Edits, Error> {
        Ok(Edits::new().set_header("api-key", credential.get("token")?))
    }
}

provider!(BrevoApiKey);
