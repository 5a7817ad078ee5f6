//! SendGrid: `Authorization: Bearer {token}`.

#![no_std]

use credgate_plugin_sdk::prelude::*;

struct Sendgrid;

impl Provider for Sendgrid {
    fn describe() -> Description {
        Description::new("sendgrid", "SendGrid", env!("CARGO_PKG_VERSION"))
            .env("SENDGRID_API_KEY")
            .base_url("https://api.sendgrid.com")
            .host("api.sendgrid.com")
            .docs("https://www.twilio.com/docs/sendgrid/api-reference/how-to-use-the-sendgrid-v3-api/authentication")
            .credential(Field::secret("token", "API key"))
    }

    fn inject(_: &Request, credential: &Credential, _: &Config) -> Result<Edits, Error> {
        Ok(Edits::new().set_header("authorization", format!("Bearer {}", credential.get("token")?)))
    }
}

provider!(Sendgrid);
