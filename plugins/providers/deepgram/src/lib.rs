//! Deepgram: `Authorization: Token {token}`.

#![no_std]

use credgate_plugin_sdk::prelude::*;

struct Deepgram;

impl Provider for Deepgram {
    fn describe() -> Description {
        Description::new("deepgram", "Deepgram", env!("CARGO_PKG_VERSION"))
            .env("DEEPGRAM_API_KEY")
            .base_url("https://api.deepgram.com")
            .host("api.deepgram.com")
            .docs("https://developers.deepgram.com/reference/authentication")
            .credential(Field::secret("token", "API key"))
    }

    fn inject(_: &Request, credential: &Credential, _: &Config) -> Result<Edits, Error> {
        Ok(Edits::new().set_header("authorization", format!("Token {}", credential.get("token")?)))
    }
}

provider!(Deepgram);
