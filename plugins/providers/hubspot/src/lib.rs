//! HubSpot: `Authorization: Bearer {token}`.

#![no_std]

use credgate_plugin_sdk::prelude::*;

struct Hubspot;

impl Provider for Hubspot {
    fn describe() -> Description {
        Description::new("hubspot", "HubSpot", env!("CARGO_PKG_VERSION"))
            .base_url("https://api.hubapi.com")
            .host("api.hubapi.com")
            .docs("https://developers.hubspot.com/docs/api/private-apps")
            .credential(Field::secret("token", "Private app access token"))
    }

    fn inject(_: &Request, credential: &Credential, _: &Config) -> Result<Edits, Error> {
        Ok(Edits::new().set_header("authorization", format!("Bearer {}", credential.get("token")?)))
    }
}

provider!(Hubspot);
