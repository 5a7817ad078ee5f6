//! GitHub: `Authorization: Bearer {token}`, `X-GitHub-Api-Version: {version}` and `Accept: application/vnd.github+json`.

#![no_std]

use credgate_plugin_sdk::prelude::*;

struct GithubPat;

impl Provider for GithubPat {
    fn describe() -> Description {
        Description::new("github-pat", "GitHub", env!("CARGO_PKG_VERSION"))
            .env("GITHUB_TOKEN")
            .env("GH_TOKEN")
            .base_url("https://api.github.com")
            .host("api.github.com")
            .docs("https://docs.github.com/en/rest/authentication/authenticating-to-the-rest-api")
            .credential(Field::secret("token", "Personal access token"))
            .config(
                Field::config("version", "API version", ValueKind::Text)
                    .default_value("2022-11-28")
                    .help("The X-GitHub-Api-Version header"),
            )
    }

    fn inject(_: &Request, credential: &Credential, config: &Config) -> Result<Edits, Error> {
        Ok(Edits::new()
            .set_header("authorization", format!("Bearer {}", credential.get("token")?))
            .set_header("x-github-api-version", config.require("version")?)
            .set_header("accept", "application/vnd.github+json"))
    }
}

provider!(GithubPat);
