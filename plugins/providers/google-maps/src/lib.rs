//! Google Maps Platform: the query parameter `key={token}`.

#![no_std]

use credgate_plugin_sdk::prelude::*;

struct GoogleMaps;

impl Provider for GoogleMaps {
    fn describe() -> Description {
        Description::new("google-maps", "Google Maps Platform", env!("CARGO_PKG_VERSION"))
            .base_url("https://maps.googleapis.com")
            .host("maps.googleapis.com")
            .docs("https://developers.google.com/maps/documentation/javascript/get-api-key")
            .credential(Field::secret("token", "API key"))
    }

    fn inject(_: &Request, credential: &Credential, _: &Config) -> Result<Edits, Error> {
        Ok(Edits::new().set_query("key", credential.get("token")?))
    }
}

provider!(GoogleMaps);
