//! xAI: `Authorization: Bearer {token}`.

#![no_std]

use credgate_plugin_sdk::prelude::*;

struct Xai;

impl Provider for Xai {
    fn describe() -> Description {
        Description::new("xai", "xAI", env!("CARGO_PKG_VERSION"))
            .env("XAI_API_KEY")
            .base_url("https://api.x.ai")
            .host("api.x.ai")
            .docs("https://docs.x.ai/docs")
            .credential(Field::secret("token", "API key"))
    }

    fn inject(_: &Request, credential: &Credential, _: &Config) -> Result<Edits, Error> {
        Ok(Edits::new().set_header("authorization", format!("Bearer {}", credential.get("token")?)))
    }
}

provider!(Xai);
