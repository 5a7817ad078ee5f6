//! Google Gemini: the query parameter `key={token}`.

#![no_std]

use credgate_plugin_sdk::prelude::*;

struct GoogleGemini;

impl Provider for GoogleGemini {
    fn describe() -> Description {
        Description::new("google-gemini", "Google Gemini", env!("CARGO_PKG_VERSION"))
            .env("GEMINI_API_KEY")
            .env("GOOGLE_API_KEY")
            .base_url("https://generativelanguage.googleapis.com")
            .host("generativelanguage.googleapis.com")
            .docs("https://ai.google.dev/gemini-api/docs/api-key")
            .credential(Field::secret("token", "API key"))
    }

    fn inject(_: &Request, credential: &Credential, _: &Config) -> Result<Edits, Error> {
        Ok(Edits::new().set_query("key", credential.get("token")?))
    }
}

provider!(GoogleGemini);
