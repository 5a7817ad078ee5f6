//! Cloudflare: `Authorization: Bearer {token}`.

#![no_std]

use credgate_plugin_sdk::prelude::*;

struct Cloudflare;

impl Provider for Cloudflare {
    fn describe() -> Description {
        Description::new("cloudflare", "Cloudflare", env!("CARGO_PKG_VERSION"))
            .env("CLOUDFLARE_API_TOKEN")
            .base_url("https://api.cloudflare.com/client")
            .host("api.cloudflare.com")
            .docs("https://developers.cloudflare.com/fundamentals/api/how-to/make-api-calls/")
            .credential(Field::secret("token", "API token"))
    }

    fn inject(_: &Request, credential: &Credential, _: &Config) -> Result<Edits, Error> {
        Ok(Edits::new().set_header("authorization", format!("Bearer {}", credential.get("token")?)))
    }
}

provider!(Cloudflare);
