//! GitHub as a GitHub App installation: credgate signs the app's JWT with its private key
//! (RS256, by the host), exchanges it for an installation access token (an hour long), and
//! sends `Authorization: Bearer {token}` with the API version GitHub asks for.

#![no_std]

use credgate_plugin_sdk::prelude::*;

const API_VERSION: &str = "2022-11-28";

struct GithubApp;

impl Provider for GithubApp {
    fn describe() -> Description {
        Description::new("github-app", "GitHub App", env!("CARGO_PKG_VERSION"))
            .env("GITHUB_TOKEN")
            .env("GH_TOKEN")
            .base_url("https://api.github.com")
            .host("api.github.com")
            .docs("https://docs.github.com/en/apps/creating-github-apps/authenticating-with-a-github-app/authenticating-as-a-github-app-installation")
            .credential(Field::secret("private_key", "Private key (PEM)").help("The app's key, as GitHub generated it."))
            .config(Field::config("app_id", "App ID", ValueKind::Label))
            .config(Field::config("installation_id", "Installation ID", ValueKind::Label))
            .token_host("{base_url}")
    }

    fn mint(credential: &Credential, config: &Config) -> Result<Option<TokenRequest>, Error> {
        let now = time::now().0;
        // Issued a minute in the past against clock drift; GitHub takes at most ten minutes.
        let claims = format!(
            r#"{{"iat":{},"exp":{},"iss":"{}"}}"#,
            now - 60,
            now + 540,
            config.require("app_id")?
        );
        let jwt = mint::jwt_rs256(
            r#"{"alg":"RS256","typ":"JWT"}"#,
            &claims,
            credential.get("private_key")?,
        )?;
        let url = format!(
            "{}/app/installations/{}/access_tokens",
            config.require("base_url")?.trim_end_matches('/'),
            config.require("installation_id")?
        );
        Ok(Some(
            TokenRequest::post_json(&url, "")
                .header("authorization", format!("Bearer {jwt}"))
                .header("accept", "application/vnd.github+json")
                .header("x-github-api-version", API_VERSION),
        ))
    }

    fn accept(response: &TokenResponse, _: &Credential, _: &Config) -> Result<Minted, Error> {
        let token = response.json_str("token")?;
        let expires_at = time::parse_iso8601(&response.json_str("expires_at")?)
            .ok_or_else(|| Error::Unsupported("the installation token's `expires_at` is not a time".into()))?;
        let lifetime = expires_at.saturating_sub(time::now().0);
        Ok(Minted::new(lifetime).field("token", token))
    }

    fn inject(_: &Request, credential: &Credential, _: &Config) -> Result<Edits, Error> {
        Ok(Edits::new()
            .set_header("authorization", format!("Bearer {}", credential.get("token")?))
            .set_header("x-github-api-version", API_VERSION))
    }
}

provider!(GithubApp);
