//! Perplexity: `Authorization: Bearer {token}`.

#![no_std]

use credgate_plugin_sdk::prelude::*;

struct Perplexity;

impl Provider for Perplexity {
    fn describe() -> Description {
        Description::new("perplexity", "Perplexity", env!("CARGO_PKG_VERSION"))
            .env("PERPLEXITY_API_KEY")
            .base_url("https://api.perplexity.ai")
            .host("api.perplexity.ai")
            .docs("https://docs.perplexity.ai/")
            .credential(Field::secret("token", "API key"))
    }

    fn inject(_: &Request, credential: &Credential, _: &Config) -> Result<Edits, Error> {
        Ok(Edits::new().set_header("authorization", format!("Bearer {}", credential.get("token")?)))
    }
}

provider!(Perplexity);
