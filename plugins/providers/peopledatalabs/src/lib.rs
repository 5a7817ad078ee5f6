//! People Data Labs: the query parameter `api_key={token}`.

#![no_std]

use credgate_plugin_sdk::prelude::*;

struct Peopledatalabs;

impl Provider for Peopledatalabs {
    fn describe() -> Description {
        Description::new("peopledatalabs", "People Data Labs", env!("CARGO_PKG_VERSION"))
            .base_url("https://api.peopledatalabs.com")
            .host("api.peopledatalabs.com")
            .docs("https://docs.peopledatalabs.com/docs/authentication")
            .credential(Field::secret("token", "API key"))
    }

    fn inject(_: &Request, credential: &Credential, _: &Config) -> Result<Edits, Error> {
        Ok(Edits::new().set_query("api_key", credential.get("token")?))
    }
}

provider!(Peopledatalabs);
