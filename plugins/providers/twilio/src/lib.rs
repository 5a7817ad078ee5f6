//! Twilio: Basic authentication with the Account SID as user and the auth token as password.

#![no_std]

use credgate_plugin_sdk::prelude::*;

struct Twilio;

impl Provider for Twilio {
    fn describe() -> Description {
        Description::new("twilio", "Twilio", env!("CARGO_PKG_VERSION"))
            .base_url("https://api.twilio.com")
            .host("api.twilio.com")
            .docs("https://www.twilio.com/docs/usage/requests-to-twilio")
            .credential(Field::secret("account_sid", "Account SID").help("AC followed by 32 letters and digits"))
            .credential(Field::secret("auth_token", "Auth token"))
    }

    fn validate(credential: &Credential, _: &Config) -> Result<(), Error> {
        let sid = credential.get("account_sid")?;
        let well_formed =
            sid.len() == 34 && sid.starts_with("AC") && sid[2..].bytes().all(|b| b.is_ascii_alphanumeric());
        if !well_formed {
            return Err(Error::InvalidCredential(
                "account_sid must be AC followed by 32 letters and digits".into(),
            ));
        }
        Ok(())
    }

    fn inject(_: &Request, credential: &Credential, _: &Config) -> Result<Edits, Error> {
        Ok(Edits::new().set_header(
            "authorization",
            basic(credential.get("account_sid")?, credential.get("auth_token")?),
        ))
    }
}

provider!(Twilio);
