//! Freshdesk: Basic authentication with the API key as user and an empty password.

#![no_std]

use credgate_plugin_sdk::prelude::*;

struct Freshdesk;

impl Provider for Freshdesk {
    fn describe() -> Description {
        Description::new("freshdesk", "Freshdesk", env!("CARGO_PKG_VERSION"))
            .base_url("https://{subdomain}.freshdesk.com")
            .host("{subdomain}.freshdesk.com")
            .docs("https://developers.freshdesk.com/api/#authentication")
            .credential(Field::secret("token", "API key"))
            .config(Field::config("subdomain", "Helpdesk", ValueKind::Label).help("The part before .freshdesk.com"))
    }

    fn inject(_: &Request, credential: &Credential, _: &Config) -> Result<Edits, Error> {
        Ok(Edits::new().set_header("authorization", basic(credential.get("token")?, "")))
    }
}

provider!(Freshdesk);
