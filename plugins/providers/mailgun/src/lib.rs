//! Mailgun: Basic authentication with user `api` and the API key as password.

#![no_std]

use credgate_plugin_sdk::prelude::*;

struct Mailgun;

impl Provider for Mailgun {
    fn describe() -> Description {
        Description::new("mailgun", "Mailgun", env!("CARGO_PKG_VERSION"))
            .base_url("https://{region}.mailgun.net")
            .host("{region}.mailgun.net")
            .docs("https://documentation.mailgun.com/docs/mailgun/api-reference/authentication/")
            .credential(Field::secret("token", "API key"))
            .config(
                Field::config("region", "Region", ValueKind::Text)
                    .one_of(&["api", "api.eu"])
                    .default_value("api")
                    .help("api for the US region, api.eu for the EU region"),
            )
    }

    fn inject(_: &Request, credential: &Credential, _: &Config) -> Result<Edits, Error> {
        Ok(Edits::new().set_header("authorization", basic("api", credential.get("token")?)))
    }
}

provider!(Mailgun);
