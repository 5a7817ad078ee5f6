//! Mapbox: the query parameter `access_token={token}`.

#![no_std]

use credgate_plugin_sdk::prelude::*;

struct Mapbox;

impl Provider for Mapbox {
    fn describe() -> Description {
        Description::new("mapbox", "Mapbox", env!("CARGO_PKG_VERSION"))
            .base_url("https://api.mapbox.com")
            .host("api.mapbox.com")
            .docs("https://docs.mapbox.com/api/overview/#access-tokens-and-token-scopes")
            .credential(Field::secret("token", "Access token"))
    }

    fn inject(_: &Request, credential: &Credential, _: &Config) -> Result<Edits, Error> {
        Ok(Edits::new().set_query("access_token", credential.get("token")?))
    }
}

provider!(Mapbox);
