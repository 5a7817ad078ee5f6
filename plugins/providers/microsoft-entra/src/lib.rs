//! Microsoft Entra ID (Microsoft Graph and other Microsoft APIs): the client-credentials grant
//! against the tenant's v2.0 token endpoint, the secret in the form as Entra takes it; calls
//! carry `Authorization: Bearer {access_token}`.

#![no_std]

use credgate_plugin_sdk::prelude::*;

struct Entra;

impl Provider for Entra {
    fn describe() -> Description {
        Description::new("microsoft-entra", "Microsoft Entra ID", env!("CARGO_PKG_VERSION"))
            .base_url("https://graph.microsoft.com")
            .host("graph.microsoft.com")
            .docs("https://learn.microsoft.com/en-us/entra/identity-platform/v2-oauth2-client-creds-grant-flow")
            .credential(Field::secret("client_id", "Application (client) ID"))
            .credential(Field::secret("client_secret", "Client secret"))
            .config(Field::config("tenant", "Directory (tenant) ID", ValueKind::Label))
            .config(
                Field::config("scope", "Scope", ValueKind::Text).default_value("https://graph.microsoft.com/.default"),
            )
            .config(
                Field::config("login_url", "Sign-in endpoint", ValueKind::Url)
                    .default_value("https://login.microsoftonline.com")
                    .help("The national cloud's, if not the global one."),
            )
            .token_host("{login_url}")
    }

    fn mint(credential: &Credential, config: &Config) -> Result<Option<TokenRequest>, Error> {
        let url = format!(
            "{}/{}/oauth2/v2.0/token",
            config.require("login_url")?.trim_end_matches('/'),
            config.require("tenant")?
        );
        Ok(Some(
            TokenRequest::post_form(&url)
                .form("grant_type", "client_credentials")
                .form("client_id", credential.get("client_id")?)
                .form("client_secret", credential.get("client_secret")?)
                .form("scope", config.require("scope")?),
        ))
    }

    fn accept(response: &TokenResponse, _: &Credential, _: &Config) -> Result<Minted, Error> {
        let token = response.json_str("access_token")?;
        Ok(Minted::new(response.json_u64("expires_in")?.unwrap_or(3600)).field("access_token", token))
    }

    fn inject(_: &Request, credential: &Credential, _: &Config) -> Result<Edits, Error> {
        Ok(Edits::new().set_header("authorization", format!("Bearer {}", credential.get("access_token")?)))
    }
}

provider!(Entra);
