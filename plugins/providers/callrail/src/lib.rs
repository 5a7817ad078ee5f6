//! CallRail: `Authorization: Token token={token}`.

#![no_std]

use credgate_plugin_sdk::prelude::*;

struct Callrail;

impl Provider for Callrail {
    fn describe() -> Description {
        Description::new("callrail", "CallRail", env!("CARGO_PKG_VERSION"))
            .base_url("https://api.callrail.com")
            .host("api.callrail.com")
            .docs("https://apidocs.callrail.com/#authentication")
            .credential(Field::secret("token", "API key"))
    }

    fn inject(_: &Request, credential: &Credential, _: &Config) -> Result<Edits, Error> {
        Ok(Edits::new().set_header("authorization", format!("Token token={}", credential.get("token")?)))
    }
}

provider!(Callrail);
