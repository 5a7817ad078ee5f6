//! Supabase: `Authorization: Bearer {token}` and `apikey: {token}`.

#![no_std]

use credgate_plugin_sdk::prelude::*;

struct Supabase;

impl Provider for Supabase {
    fn describe() -> Description {
        Description::new("supabase", "Supabase", env!("CARGO_PKG_VERSION"))
            .base_url("https://{projectUrl}")
            .host("{projectUrl}")
            .docs("https://supabase.com/docs/guides/api/api-keys")
            .credential(Field::secret("token", "API key"))
            .config(
                Field::config("projectUrl", "Project host", ValueKind::Host)
                    .help("The project's host, e.g. abcdefgh.supabase.co"),
            )
    }

    fn inject(_: &Request, credential: &Credential, _: &Config) -> Result<Edits, Error> {
        let token = credential.get("token")?;
        Ok(Edits::new()
            .set_header("authorization", format!("Bearer {token}"))
            .set_header("apikey", token))
    }
}

provider!(Supabase);
