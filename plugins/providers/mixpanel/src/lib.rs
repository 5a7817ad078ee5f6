//! Mixpanel: Basic authentication with a service account's username and secret.

#![no_std]

use credgate_plugin_sdk::prelude::*;

struct Mixpanel;

impl Provider for Mixpanel {
    fn describe() -> Description {
        Description::new("mixpanel", "Mixpanel", env!("CARGO_PKG_VERSION"))
            .base_url("https://mixpanel.com")
            .host("mixpanel.com")
            .host("*.mixpanel.com")
            .docs("https://developer.mixpanel.com/reference/service-accounts")
            .credential(Field::secret("username", "Service account username"))
            .credential(Field::secret("secret", "Service account secret"))
    }

    fn inject(_: &Request, credential: &Credential, _: &Config) -> Result<Edits, Error> {
        Ok(Edits::new().set_header(
            "authorization",
            basic(credential.get("username")?, credential.get("secret")?),
        ))
    }
}

provider!(Mixpanel);
