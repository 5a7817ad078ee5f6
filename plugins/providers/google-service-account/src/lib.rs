//! Google Cloud APIs with a service account: credgate signs a JWT with the account's private
//! key (RS256, by the host), exchanges it at the token endpoint (the JWT-bearer grant, RFC
//! 7523) for an access token, and sends `Authorization: Bearer {access_token}`.

#![no_std]

use credgate_plugin_sdk::prelude::*;

/// How long an assertion asks its token to last: Google's most.
const LIFETIME: u64 = 3600;

struct ServiceAccount;

/// The fields of the service-account key file credgate uses.
struct Key {
    email: String,
    private_key: String,
    key_id: String,
}

fn key(credential: &Credential) -> Result<Key, Error> {
    let invalid = |why: &str| Error::InvalidCredential(format!("the service account key {why}"));
    let json: serde_json::Value =
        serde_json::from_str(credential.get("key_json")?).map_err(|_| invalid("is not JSON"))?;
    let field = |name: &str| json.get(name).and_then(|v| v.as_str()).filter(|v| !v.is_empty());
    if field("type") != Some("service_account") {
        return Err(invalid("is not of type `service_account`"));
    }
    Ok(Key {
        email: field("client_email")
            .ok_or_else(|| invalid("has no `client_email`"))?
            .into(),
        private_key: field("private_key")
            .ok_or_else(|| invalid("has no `private_key`"))?
            .into(),
        key_id: field("private_key_id").unwrap_or("").into(),
    })
}

impl Provider for ServiceAccount {
    fn describe() -> Description {
        Description::new(
            "google-service-account",
            "Google Cloud (service account)",
            env!("CARGO_PKG_VERSION"),
        )
        .base_url("https://www.googleapis.com")
        .host("*.googleapis.com")
        .docs("https://developers.google.com/identity/protocols/oauth2/service-account#httprest")
        .credential(Field::secret("key_json", "Service account key (JSON)").help("The whole key file, as downloaded."))
        .config(
            Field::config("scope", "Scopes", ValueKind::Text)
                .default_value("https://www.googleapis.com/auth/cloud-platform"),
        )
        .config(
            Field::config("token_url", "Token endpoint", ValueKind::Url)
                .default_value("https://oauth2.googleapis.com/token"),
        )
        .token_host("{token_url}")
    }

    fn validate(credential: &Credential, _: &Config) -> Result<(), Error> {
        key(credential).map(|_| ())
    }

    fn mint(credential: &Credential, config: &Config) -> Result<Option<TokenRequest>, Error> {
        let key = key(credential)?;
        let token_url = config.require("token_url")?;
        let now = time::now().0;
        let header = serde_json::json!({"alg": "RS256", "typ": "JWT", "kid": key.key_id});
        let claims = serde_json::json!({
            "iss": key.email,
            "scope": config.require("scope")?,
            "aud": token_url,
            "iat": now,
            "exp": now + LIFETIME,
        });
        let assertion = mint::jwt_rs256(&header.to_string(), &claims.to_string(), &key.private_key)?;
        Ok(Some(
            TokenRequest::post_form(token_url)
                .form("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer")
                .form("assertion", assertion),
        ))
    }

    fn accept(response: &TokenResponse, _: &Credential, _: &Config) -> Result<Minted, Error> {
        let token = response.json_str("access_token")?;
        Ok(Minted::new(response.json_u64("expires_in")?.unwrap_or(LIFETIME)).field("access_token", token))
    }

    fn inject(_: &Request, credential: &Credential, _: &Config) -> Result<Edits, Error> {
        Ok(Edits::new().set_header("authorization", format!("Bearer {}", credential.get("access_token")?)))
    }
}

provider!(ServiceAccount);
