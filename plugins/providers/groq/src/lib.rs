//! Groq: `Authorization: Bearer {token}`.

#![no_std]

use credgate_plugin_sdk::prelude::*;

struct Groq;

impl Provider for Groq {
    fn describe() -> Description {
        Description::new("groq", "Groq", env!("CARGO_PKG_VERSION"))
            .env("GROQ_API_KEY")
            .base_url("https://api.groq.com")
            .host("api.groq.com")
            .docs("https://console.groq.com/docs/api-reference")
            .credential(Field::secret("token", "API key"))
    }

    fn inject(_: &Request, credential: &Credential, _: &Config) -> Result<Edits, Error> {
        Ok(Edits::new().set_header("authorization", format!("Bearer {}", credential.get("token")?)))
    }
}

provider!(Groq);
