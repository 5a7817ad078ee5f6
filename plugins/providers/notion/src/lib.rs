//! Notion: `Authorization: Bearer {token}` and `Notion-Version: {version}`.

#![no_std]

use credgate_plugin_sdk::prelude::*;

struct Notion;

impl Provider for Notion {
    fn describe() -> Description {
        Description::new("notion", "Notion", env!("CARGO_PKG_VERSION"))
            .base_url("https://api.notion.com")
            .host("api.notion.com")
            .docs("https://developers.notion.com/reference/authentication")
            .credential(Field::secret("token", "Integration token"))
            .config(
                Field::config("version", "API version", ValueKind::Text)
                    .default_value("2022-06-28")
                    .help("The Notion-Version header"),
            )
    }

    fn inject(_: &Request, credential: &Credential, config: &Config) -> Result<Edits, Error> {
        Ok(Edits::new()
            .set_header("authorization", format!("Bearer {}", credential.get("token")?))
            .set_header("notion-version", config.require("version")?))
    }
}

provider!(Notion);
