//! Brex: `Authorization: Bearer {token}`.

#![no_std]

use credgate_plugin_sdk::prelude::*;

struct BrexApiKey;

impl Provider for BrexApiKey {
    fn describe() -> Description {
        Description::new("brex-api-key", "Brex", env!("CARGO_PKG_VERSION"))
            .base_url("https://platform.brexapis.com")
            .host("platform.brexapis.com")
            .docs("https://developer.brex.com/docs/authentication/")
            .credential(Field::secret("token", "User token"))
    }

    fn inject(_: &Request, credential: &Credential, _: &Config) -> Result<Edits, Error> {
        Ok(Edits::new().set_header("authorization", format!("Bearer {}", credential.get("token")?)))
    }
}

provider!(BrexApiKey);
