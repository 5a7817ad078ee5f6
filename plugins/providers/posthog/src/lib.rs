//! PostHog: `Authorization: Bearer {token}`.

#![no_std]

use credgate_plugin_sdk::prelude::*;

struct Posthog;

impl Provider for Posthog {
    fn describe() -> Description {
        Description::new("posthog", "PostHog", env!("CARGO_PKG_VERSION"))
            .base_url("https://{subdomain}.posthog.com")
            .host("{subdomain}.posthog.com")
            .docs("https://posthog.com/docs/api")
            .credential(Field::secret("token", "Personal API key"))
            .config(
                Field::config("subdomain", "Cloud region", ValueKind::Label)
                    .default_value("us")
                    .help("us or eu, the PostHog cloud the project lives on"),
            )
    }

    fn inject(_: &Request, credential: &Credential, _: &Config) -> Result<Edits, Error> {
        Ok(Edits::new().set_header("authorization", format!("Bearer {}", credential.get("token")?)))
    }
}

provider!(Posthog);
