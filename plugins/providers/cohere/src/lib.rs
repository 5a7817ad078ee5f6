//! Cohere: `Authorization: Bearer {token}`.

#![no_std]

use credgate_plugin_sdk::prelude::*;

struct Cohere;

impl Provider for Cohere {
    fn describe() -> Description {
        Description::new("cohere", "Cohere", env!("CARGO_PKG_VERSION"))
            .env("CO_API_KEY")
            .env("COHERE_API_KEY")
            .base_url("https://api.cohere.com")
            .host("api.cohere.com")
            .docs("https://docs.cohere.com/reference/about")
            .credential(Field::secret("token", "API key"))
    }

    fn inject(_: &Request, credential: &Credential, _: &Config) -> Result<Edits, Error> {
        Ok(Edits::new().set_header("authorization", format!("Bearer {}", credential.get("token")?)))
    }
}

provider!(Cohere);
