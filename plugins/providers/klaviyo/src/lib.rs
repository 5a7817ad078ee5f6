//! Klaviyo: `Authorization: Klaviyo-API-Key {token}` and `revision: {revision}`.

#![no_std]

use credgate_plugin_sdk::prelude::*;

struct Klaviyo;

impl Provider for Klaviyo {
    fn describe() -> Description {
        Description::new("klaviyo", "Klaviyo", env!("CARGO_PKG_VERSION"))
            .base_url("https://a.klaviyo.com")
            .host("a.klaviyo.com")
            .docs("https://developers.klaviyo.com/en/docs/authenticate_")
            .credential(Field::secret("token", "Private API key"))
            .config(
                Field::config("revision", "API revision", ValueKind::Text)
                    .default_value("2024-07-15")
                    .help("The revision header, a date such as 2024-07-15"),
            )
    }

    fn inject(_: &Request, credential: &Credential, config: &Config) -> Result<Edits, Error> {
        Ok(Edits::new()
            .set_header("authorization", format!("Klaviyo-API-Key {}", credential.get("token")?))
            .set_header("revision", config.require("revision")?))
    }
}

provider!(Klaviyo);
