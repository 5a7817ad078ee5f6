//! Dynatrace: `Authorization: Api-Token {token}`.

#![no_std]

use credgate_plugin_sdk::prelude::*;

struct Dynatrace;

impl Provider for Dynatrace {
    fn describe() -> Description {
        Description::new("dynatrace", "Dynatrace", env!("CARGO_PKG_VERSION"))
            .base_url("https://{environmentId}.live.dynatrace.com")
            .host("{environmentId}.live.dynatrace.com")
            .docs("https://docs.dynatrace.com/docs/dynatrace-api/basics/dynatrace-api-authentication")
            .credential(Field::secret("token", "Access token"))
            .config(
                Field::config("environmentId", "Environment ID", ValueKind::Label)
                    .help("The environment id in the tenant URL"),
            )
    }

    fn inject(_: &Request, credential: &Credential, _: &Config) -> Result<Edits, Error> {
        Ok(Edits::new().set_header("authorization", format!("Api-Token {}", credential.get("token")?)))
    }
}

provider!(Dynatrace);
