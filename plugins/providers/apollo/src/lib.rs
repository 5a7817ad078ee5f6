//! Apollo: `X-Api-Key: {token}`.

#![no_std]

use credgate_plugin_sdk::prelude::*;

struct Apollo;

impl Provider for Apollo {
    fn describe() -> Description {
        Description::new("apollo", "Apollo", env!("CARGO_PKG_VERSION"))
            .base_url("https://app.apollo.io/api")
            .host("app.apollo.io")
            .host("api.apollo.io")
            .docs("https://docs.apollo.io/reference/authentication")
            .credential(Field::secret("token", "API key"))
    }

    fn inject(_: &Request, credential: &Credential, _: &Config) -> Result<Edits, Error> {
        Ok(Edits::new().set_header("x-api-key", credential.get("token")?))
    }
}

provider!(Apollo);
