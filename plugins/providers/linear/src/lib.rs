//! Linear: `Authorization: {token}` (the raw key).

#![no_std]

use credgate_plugin_sdk::prelude::*;

struct Linear;

impl Provider for Linear {
    fn describe() -> Description {
        Description::new("linear", "Linear", env!("CARGO_PKG_VERSION"))
            .env("LINEAR_API_KEY")
            .base_url("https://api.linear.app")
            .host("api.linear.app")
            .docs("https://linear.app/developers/graphql#authentication")
            .credential(Field::secret("token", "API key"))
    }

    fn inject(_: &Request, credential: &Credential, _: &Config) -> Result<Edits, Error> {
        Ok(Edits::new().set_header("authorization", credential.get("token")?))
    }
}

provider!(Linear);
