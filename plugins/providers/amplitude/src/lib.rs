//! Amplitude: Basic authentication with the API key as user and the secret key as password.

#![no_std]

use credgate_plugin_sdk::prelude::*;

struct Amplitude;

impl Provider for Amplitude {
    fn describe() -> Description {
        Description::new("amplitude", "Amplitude", env!("CARGO_PKG_VERSION"))
            .base_url("https://{hostname}")
            .host("{hostname}")
            .docs("https://amplitude.com/docs/apis/authentication")
            .credential(Field::secret("api_key", "API key"))
            .credential(Field::secret("secret_key", "Secret key"))
            .config(
                Field::config("hostname", "Host", ValueKind::Host)
                    .default_value("amplitude.com")
                    .help("amplitude.com, or analytics.eu.amplitude.com for the EU"),
            )
    }

    fn inject(_: &Request, credential: &Credential, _: &Config) -> Result<Edits, Error> {
        Ok(Edits::new().set_header(
            "authorization",
            basic(credential.get("api_key")?, credential.get("secret_key")?),
        ))
    }
}

provider!(Amplitude);
