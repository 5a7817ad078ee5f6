//! Hugging Face: `Authorization: Bearer {token}`.

#![no_std]

use credgate_plugin_sdk::prelude::*;

struct Huggingface;

impl Provider for Huggingface {
    fn describe() -> Description {
        Description::new("huggingface", "Hugging Face", env!("CARGO_PKG_VERSION"))
            .env("HF_TOKEN")
            .base_url("https://huggingface.co")
            .host("huggingface.co")
            .host("*.huggingface.co")
            .docs("https://huggingface.co/docs/hub/security-tokens")
            .credential(Field::secret("token", "Access token"))
    }

    fn inject(_: &Request, credential: &Credential, _: &Config) -> Result<Edits, Error> {
        Ok(Edits::new().set_header("authorization", format!("Bearer {}", credential.get("token")?)))
    }
}

provider!(Huggingface);
