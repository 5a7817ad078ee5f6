//! Any OAuth 2.0 API reached with a refresh token (RFC 6749 §6): credgate exchanges it at
//! `token_url` for an access token, and when the provider rotates the refresh token on use, it
//! stores the new one as the secret's next version (sealed), so it stays the only holder. Calls
//! carry `Authorization: Bearer {access_token}`.

#![no_std]

use credgate_plugin_sdk::prelude::*;

struct RefreshToken;

impl Provider for RefreshToken {
    fn describe() -> Description {
        Description::new(
            "oauth2-refresh-token",
            "OAuth 2.0 refresh token",
            env!("CARGO_PKG_VERSION"),
        )
        .docs("https://www.rfc-editor.org/rfc/rfc6749#section-6")
        .credential(Field::secret("client_id", "Client ID"))
        .credential(
            Field::secret("client_secret", "Client secret")
                .optional()
                .help("None for a public client."),
        )
        .credential(Field::secret("refresh_token", "Refresh token"))
        .config(Field::config("token_url", "Token endpoint", ValueKind::Url))
        .config(
            Field::config("scope", "Scope", ValueKind::Text)
                .optional()
                .help("Narrower than granted, if given."),
        )
        .config(
            Field::config("client_auth", "Client authentication", ValueKind::Text)
                .one_of(&["basic", "post"])
                .default_value("basic"),
        )
        .token_host("{token_url}")
    }

    fn mint(credential: &Credential, config: &Config) -> Result<Option<TokenRequest>, Error> {
        let mut request = TokenRequest::post_form(config.require("token_url")?)
            .form("grant_type", "refresh_token")
            .form("refresh_token", credential.get("refresh_token")?);
        if let Some(scope) = config.get("scope").filter(|s| !s.is_empty()) {
            request = request.form("scope", scope);
        }
        let id = credential.get("client_id")?;
        request = match (credential.find("client_secret"), config.get("client_auth")) {
            (Some(secret), Some("post")) => request.form("client_id", id).form("client_secret", secret),
            (Some(secret), _) => request.header(
                "authorization",
                basic(&encoding::form_urlencode(id), &encoding::form_urlencode(secret)),
            ),
            (None, _) => request.form("client_id", id),
        };
        Ok(Some(request))
    }

    fn accept(response: &TokenResponse, credential: &Credential, _: &Config) -> Result<Minted, Error> {
        let token = response.json_str("access_token")?;
        let mut minted = Minted::new(response.json_u64("expires_in")?.unwrap_or(3600)).field("access_token", token);
        if let Ok(next) = response.json_str("refresh_token")
            && Some(next.as_str()) != credential.find("refresh_token")
        {
            minted = minted.rotated("refresh_token", next);
        }
        Ok(minted)
    }

    fn inject(_: &Request, credential: &Credential, _: &Config) -> Result<Edits, Error> {
        Ok(Edits::new().set_header("authorization", format!("Bearer {}", credential.get("access_token")?)))
    }
}

provider!(RefreshToken);
