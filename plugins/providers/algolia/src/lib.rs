//! Algolia: `X-Algolia-Application-Id: {APP_ID}` and `X-Algolia-API-Key: {token}`.

#![no_std]

use credgate_plugin_sdk::prelude::*;

struct Algolia;

impl Provider for Algolia {
    fn describe() -> Description {
        Description::new("algolia", "Algolia", env!("CARGO_PKG_VERSION"))
            .base_url("https://{APP_ID}.algolia.net")
            .host("{APP_ID}.algolia.net")
            .host("{APP_ID}-dsn.algolia.net")
            .docs("https://www.algolia.com/doc/rest-api/search/#authentication")
            .credential(Field::secret("token", "API key"))
            .config(
                Field::config("APP_ID", "Application ID", ValueKind::Label).help("The application id, e.g. ABCDEF1234"),
            )
    }

    fn inject(_: &Request, credential: &Credential, config: &Config) -> Result<Edits, Error> {
        Ok(Edits::new()
            .set_header("x-algolia-application-id", config.require("APP_ID")?)
            .set_header("x-algolia-api-key", credential.get("token")?))
    }
}

provider!(Algolia);
