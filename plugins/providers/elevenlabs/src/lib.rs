//! ElevenLabs: `xi-api-key: {token}`.

#![no_std]

use credgate_plugin_sdk::prelude::*;

struct Elevenlabs;

impl Provider for Elevenlabs {
    fn describe() -> Description {
        Description::new("elevenlabs", "ElevenLabs", env!("CARGO_PKG_VERSION"))
            .env("ELEVENLABS_API_KEY")
            .base_url("https://api.elevenlabs.io")
            .host("api.elevenlabs.io")
            .docs("https://elevenlabs.io/docs/api-reference/authentication")
            .credential(Field::secret("token", "API key"))
    }

    fn inject(_: &Request, credential: &Credential, _: &Config) -> Result<Edits, Error> {
        Ok(Edits::new().set_header("xi-api-key", credential.get("token")?))
    }
}

provider!(Elevenlabs);
