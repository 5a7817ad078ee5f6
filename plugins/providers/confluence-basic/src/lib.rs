//! Confluence: Basic authentication with the account email and an API token and `Content-Type: application/json`.

#![no_std]

use credgate_plugin_sdk::prelude::*;

struct ConfluenceBasic;

impl Provider for ConfluenceBasic {
    fn describe() -> Description {
        Description::new("confluence-basic", "Confluence", env!("CARGO_PKG_VERSION"))
            .base_url("https://{subdomain}.atlassian.net")
            .host("{subdomain}.atlassian.net")
            .docs("https://developer.atlassian.com/cloud/confluence/basic-auth-for-rest-apis/")
            .credential(Field::secret("email", "Account email"))
            .credential(Field::secret("token", "API token"))
            .config(Field::config("subdomain", "Site", ValueKind::Label).help("The part before .atlassian.net"))
    }

    fn inject(_: &Request, credential: &Credential, _: &Config) -> Result<Edits, Error> {
        Ok(Edits::new()
            .set_header(
                "authorization",
                basic(credential.get("email")?, credential.get("token")?),
            )
            .set_header("content-type", "application/json"))
    }
}

provider!(ConfluenceBasic);
