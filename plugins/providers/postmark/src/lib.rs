//! Postmark: `X-Postmark-Server-Token: {token}`.

#![no_std]

use credgate_plugin_sdk::prelude::*;

struct Postmark;

impl Provider for Postmark {
    fn describe() -> Description {
        Description::new("postmark", "Postmark", env!("CARGO_PKG_VERSION"))
            .base_url("https://api.postmarkapp.com")
            .host("api.postmarkapp.com")
            .docs("https://postmarkapp.com/developer/api/overview#authentication")
            .credential(Field::secret("token", "Server token"))
    }

    fn inject(_: &Request, credential: &Credential, _: &Config) -> Result<Edits, Error> {
        Ok(Edits::new().set_header("x-postmark-server-token", credential.get("token")?))
    }
}

provider!(Postmark);
