//! Semrush: the query parameter `key={token}`.

#![no_std]

use credgate_plugin_sdk::prelude::*;

struct Semrush;

impl Provider for Semrush {
    fn describe() -> Description {
        Description::new("semrush", "Semrush", env!("CARGO_PKG_VERSION"))
            .base_url("https://api.semrush.com")
            .host("api.semrush.com")
            .docs("https://developer.semrush.com/api/basics/get-started/")
            .credential(Field::secret("token", "API key"))
    }

    fn inject(_: &Request, credential: &Credential, _: &Config) -> Result<Edits, Error> {
        Ok(Edits::new().set_query("key", credential.get("token")?))
    }
}

provider!(Semrush);
