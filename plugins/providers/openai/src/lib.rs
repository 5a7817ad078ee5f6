//! OpenAI: `Authorization: Bearer {token}`.

#![no_std]

use credgate_plugin_sdk::prelude::*;

struct Openai;

impl Provider for Openai {
    fn describe() -> Description {
        Description::new("openai", "OpenAI", env!("CARGO_PKG_VERSION"))
            .env("OPENAI_API_KEY")
            .base_url("https://api.openai.com")
            .host("api.openai.com")
            .docs("https://platform.openai.com/docs/api-reference/authentication")
            .credential(Field::secret("token", "API key"))
    }

    fn inject(_: &Request, credential: &Credential, _: &Config) -> Result<Edits, Error> {
        Ok(Edits::new().set_header("authorization", format!("Bearer {}", credential.get("token")?)))
    }
}

provider!(Openai);
