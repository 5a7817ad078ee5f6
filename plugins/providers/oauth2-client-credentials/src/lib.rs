//! Any OAuth 2.0 API behind the client-credentials grant (RFC 6749 §4.4): credgate obtains an
//! access token at `token_url` with the client's id and secret (HTTP Basic, or in the form),
//! keeps it until shortly before it expires, and sends `Authorization: Bearer {access_token}`.

#![no_std]

use credgate_plugin_sdk::prelude::*;

struct ClientCredentials;

impl Provider for ClientCredentials {
    fn describe() -> Description {
        Description::new(
            "oauth2-client-credentials",
            "OAuth 2.0 client credentials",
            env!("CARGO_PKG_VERSION"),
        )
        .docs("https://www.rfc-editor.org/rfc/rfc6749#section-4.4")
        .credential(Field::secret("client_id", "Client ID"))
        .credential(Field::secret("client_secret", "Client secret"))
        .config(
            Field::config("token_url", "Token endpoint", ValueKind::Url)
                .help("Where tokens are obtained; its host is the only one token requests go to."),
        )
        .config(
            Field::config("scope", "Scope", ValueKind::Text)
                .optional()
                .help("Space-separated scopes to ask for; none: the client's default."),
        )
        .config(
            Field::config("client_auth", "Client authentication", ValueKind::Text)
                .one_of(&["basic", "post"])
                .default_value("basic")
                .help("`basic`: HTTP Basic (client_secret_basic); `post`: in the form (client_secret_post)."),
        )
        .token_host("{token_url}")
    }

    fn mint(credential: &Credential, config: &Config) -> Result<Option<TokenRequest>, Error> {
        Ok(Some(client_credentials(
            config.require("token_url")?,
            credential,
            config,
            config.get("client_auth") == Some("post"),
        )?))
    }

    fn accept(response: &TokenResponse, _: &Credential, _: &Config) -> Result<Minted, Error> {
        bearer_token(response)
    }

    fn inject(_: &Request, credential: &Credential, _: &Config) -> Result<Edits, Error> {
        Ok(Edits::new().set_header("authorization", format!("Bearer {}", credential.get("access_token")?)))
    }
}

/// The client-credentials token request.
fn client_credentials(url: &str, credential: &Credential, config: &Config, post: bool) -> Result<TokenRequest, Error> {
    let (id, secret) = (credential.get("client_id")?, credential.get("client_secret")?);
    let mut request = TokenRequest::post_form(url).form("grant_type", "client_credentials");
    if let Some(scope) = config.get("scope").filter(|s| !s.is_empty()) {
        request = request.form("scope", scope);
    }
    Ok(if post {
        request.form("client_id", id).form("client_secret", secret)
    } else {
        // RFC 6749 §2.3.1: each form-urlencoded before they are joined.
        request.header(
            "authorization",
            basic(&encoding::form_urlencode(id), &encoding::form_urlencode(secret)),
        )
    })
}

/// An access token and its lifetime (an hour when the answer gives none).
fn bearer_token(response: &TokenResponse) -> Result<Minted, Error> {
    let token = response.json_str("access_token")?;
    let expires_in = response.json_u64("expires_in")?.unwrap_or(3600);
    Ok(Minted::new(expires_in).field("access_token", token))
}

provider!(ClientCredentials);
