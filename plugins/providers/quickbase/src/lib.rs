//! Quickbase: `Authorization: QB-USER-TOKEN {token}` and `QB-Realm-Hostname: {domain}`.

#![no_std]

use credgate_plugin_sdk::prelude::*;

struct Quickbase;

impl Provider for Quickbase {
    fn describe() -> Description {
        Description::new("quickbase", "Quickbase", env!("CARGO_PKG_VERSION"))
            .base_url("https://api.quickbase.com/v1")
            .host("api.quickbase.com")
            .docs("https://developer.quickbase.com/auth")
            .credential(Field::secret("token", "User token"))
            .config(Field::config("domain", "Realm host", ValueKind::Host).help("The realm, e.g. acme.quickbase.com"))
    }

    fn inject(_: &Request, credential: &Credential, config: &Config) -> Result<Edits, Error> {
        Ok(Edits::new()
            .set_header("authorization", format!("QB-USER-TOKEN {}", credential.get("token")?))
            .set_header("qb-realm-hostname", config.require("domain")?))
    }
}

provider!(Quickbase);
