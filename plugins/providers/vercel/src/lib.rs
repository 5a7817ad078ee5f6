//! Vercel: `Authorization: Bearer {token}`.

#![no_std]

use credgate_plugin_sdk::prelude::*;

struct Vercel;

impl Provider for Vercel {
    fn describe() -> Description {
        Description::new("vercel", "Vercel", env!("CARGO_PKG_VERSION"))
            .base_url("https://api.vercel.com")
            .host("api.vercel.com")
            .docs("https://vercel.com/docs/rest-api#authentication")
            .credential(Field::secret("token", "Access token"))
    }

    fn inject(_: &Request, credential: &Credential, _: &Config) -> Result<Edits, Error> {
        Ok(Edits::new().set_header("authorization", format!("Bearer {}", credential.get("token")?)))
    }
}

provider!(Vercel);
