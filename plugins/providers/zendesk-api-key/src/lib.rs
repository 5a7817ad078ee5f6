//! Zendesk: Basic authentication as `{username}/token` with the API token as password.

#![no_std]

use credgate_plugin_sdk::prelude::*;

struct ZendeskApiKey;

impl Provider for ZendeskApiKey {
    fn describe() -> Description {
        Description::new("zendesk-api-key", "Zendesk", env!("CARGO_PKG_VERSION"))
            .base_url("https://{subdomain}.zendesk.com")
            .host("{subdomain}.zendesk.com")
            .docs("https://developer.zendesk.com/api-reference/introduction/security-and-auth/")
            .credential(Field::secret("username", "Agent email"))
            .credential(Field::secret("password", "API token"))
            .config(Field::config("subdomain", "Subdomain", ValueKind::Label).help("The part before .zendesk.com"))
    }

    fn inject(_: &Request, credential: &Credential, _: &Config) -> Result<Edits, Error> {
        Ok(Edits::new().set_header(
            "authorization",
            basic(
                &format!("{}/token", credential.get("username")?),
                credential.get("password")?,
            ),
        ))
    }
}

provider!(ZendeskApiKey);
