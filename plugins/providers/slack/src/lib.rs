//! Slack: `Authorization: Bearer {token}`.

#![no_std]

use credgate_plugin_sdk::prelude::*;

struct Slack;

impl Provider for Slack {
    fn describe() -> Description {
        Description::new("slack", "Slack", env!("CARGO_PKG_VERSION"))
            .base_url("https://slack.com/api")
            .host("slack.com")
            .docs("https://api.slack.com/authentication/token-types")
            .credential(Field::secret("token", "Bot or user token"))
    }

    fn inject(_: &Request, credential: &Credential, _: &Config) -> Result<Edits, Error> {
        Ok(Edits::new().set_header("authorization", format!("Bearer {}", credential.get("token")?)))
    }
}

provider!(Slack);
