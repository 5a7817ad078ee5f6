//! PagerDuty: `Authorization: Token token={token}`.

#![no_std]

use credgate_plugin_sdk::prelude::*;

struct Pagerduty;

impl Provider for Pagerduty {
    fn describe() -> Description {
        Description::new("pagerduty", "PagerDuty", env!("CARGO_PKG_VERSION"))
            .base_url("https://api.pagerduty.com")
            .host("api.pagerduty.com")
            .docs("https://developer.pagerduty.com/docs/authentication")
            .credential(Field::secret("token", "API key"))
    }

    fn inject(_: &Request, credential: &Credential, _: &Config) -> Result<Edits, Error> {
        Ok(Edits::new().set_header("authorization", format!("Token token={}", credential.get("token")?)))
    }
}

provider!(Pagerduty);
