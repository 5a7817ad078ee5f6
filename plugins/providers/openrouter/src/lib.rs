//! OpenRouter: `Authorization: Bearer {token}`.

#![no_std]

use credgate_plugin_sdk::prelude::*;

struct Openrouter;

impl Provider for Openrouter {
    fn describe() -> Description {
        Description::new("openrouter", "OpenRouter", env!("CARGO_PKG_VERSION"))
            .env("OPENROUTER_API_KEY")
            .base_url("https://openrouter.ai/api")
            .host("openrouter.ai")
            .docs("https://openrouter.ai/docs/api-reference/authentication")
            .credential(Field::secret("token", "API key"))
    }

    fn inject(_: &Request, credential: &Credential, _: &Config) -> Result<Edits, Error> {
        Ok(Edits::new().set_header("authorization", format!("Bearer {}", credential.get("token")?)))
    }
}

provider!(Openrouter);
