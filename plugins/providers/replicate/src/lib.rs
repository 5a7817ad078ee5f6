//! Replicate: `Authorization: Bearer {token}`.

#![no_std]

use credgate_plugin_sdk::prelude::*;

struct Replicate;

impl Provider for Replicate {
    fn describe() -> Description {
        Description::new("replicate", "Replicate", env!("CARGO_PKG_VERSION"))
            .env("REPLICATE_API_TOKEN")
            .base_url("https://api.replicate.com")
            .host("api.replicate.com")
            .docs("https://replicate.com/docs/reference/http")
            .credential(Field::secret("token", "API token"))
    }

    fn inject(_: &Request, credential: &Credential, _: &Config) -> Result<Edits, Error> {
        Ok(Edits::new().set_header("authorization", format!("Bearer {}", credential.get("token")?)))
    }
}

provider!(Replicate);
