//! Airtable: `Authorization: Bearer {token}`.

#![no_std]

use credgate_plugin_sdk::prelude::*;

struct AirtablePat;

impl Provider for AirtablePat {
    fn describe() -> Description {
        Description::new("airtable-pat", "Airtable", env!("CARGO_PKG_VERSION"))
            .base_url("https://api.airtable.com")
            .host("api.airtable.com")
            .docs("https://airtable.com/developers/web/api/authentication")
            .credential(Field::secret("token", "Personal access token"))
    }

    fn inject(_: &Request, credential: &Credential, _: &Config) -> Result<Edits, Error> {
        Ok(Edits::new().set_header("authorization", format!("Bearer {}", credential.get("token")?)))
    }
}

provider!(AirtablePat);
