//! Shippo: `Authorization: ShippoToken {token}`.

#![no_std]

use credgate_plugin_sdk::prelude::*;

struct Shippo;

impl Provider for Shippo {
    fn describe() -> Description {
        Description::new("shippo", "Shippo", env!("CARGO_PKG_VERSION"))
            .base_url("https://api.goshippo.com")
            .host("api.goshippo.com")
            .docs("https://docs.goshippo.com/docs/guides_general/authentication/")
            .credential(Field::secret("token", "API token"))
    }

    fn inject(_: &Request, credential: &Credential, _: &Config) -> Result<Edits, Error> {
        Ok(Edits::new().set_header("authorization", format!("ShippoToken {}", credential.get("token")?)))
    }
}

provider!(Shippo);
