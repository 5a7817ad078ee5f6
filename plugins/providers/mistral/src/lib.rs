//! Mistral AI: `Authorization: Bearer {token}`.

#![no_std]

use credgate_plugin_sdk::prelude::*;

struct Mistral;

impl Provider for Mistral {
    fn describe() -> Description {
        Description::new("mistral", "Mistral AI", env!("CARGO_PKG_VERSION"))
            .env("MISTRAL_API_KEY")
            .base_url("https://api.mistral.ai")
            .host("api.mistral.ai")
            .docs("https://docs.mistral.ai/api/")
            .credential(Field::secret("token", "API key"))
    }

    fn inject(_: &Request, credential: &Credential, _: &Config) -> Result<Edits, Error> {
        Ok(Edits::new().set_header("authorization", format!("Bearer {}", credential.get("token")?)))
    }
}

provider!(Mistral);
