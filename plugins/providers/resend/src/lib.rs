//! Resend: `Authorization: Bearer {token}`.

#![no_std]

use credgate_plugin_sdk::prelude::*;

struct Resend;

impl Provider for Resend {
    fn describe() -> Description {
        Description::new("resend", "Resend", env!("CARGO_PKG_VERSION"))
            .env("RESEND_API_KEY")
            .base_url("https://api.resend.com")
            .host("api.resend.com")
            .docs("https://resend.com/docs/api-reference/introduction")
            .credential(Field::secret("token", "API key"))
    }

    fn inject(_: &Request, credential: &Credential, _: &Config) -> Result<Edits, Error> {
        Ok(Edits::new().set_header("authorization", format!("Bearer {}", credential.get("token")?)))
    }
}

provider!(Resend);
