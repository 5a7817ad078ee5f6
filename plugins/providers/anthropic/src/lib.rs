//! Anthropic: `x-api-key: {token}` and `anthropic-version: {version}`.

#![no_std]

use credgate_plugin_sdk::prelude::*;

struct Anthropic;

impl Provider for Anthropic {
    fn describe() -> Description {
        Description::new("anthropic", "Anthropic", env!("CARGO_PKG_VERSION"))
            .env("ANTHROPIC_API_KEY")
            .base_url("https://api.anthropic.com")
            .host("api.anthropic.com")
            .docs("https://docs.anthropic.com/en/api/getting-started")
            .credential(Field::secret("token", "API key"))
            .config(
                Field::config("version", "API version", ValueKind::Text)
                    .default_value("2023-06-01")
                    .help("The anthropic-version header, e.g. 2023-06-01"),
            )
    }

    fn inject(_: &Request, credential: &Credential, config: &Config) -> Result<Edits, Error> {
        Ok(Edits::new()
            .set_header("x-api-key", credential.get("token")?)
            .set_header("anthropic-version", config.require("version")?))
    }
}

provider!(Anthropic);
