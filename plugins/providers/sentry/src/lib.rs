//! Sentry: `Authorization: Bearer {token}`.

#![no_std]

use credgate_plugin_sdk::prelude::*;

struct Sentry;

impl Provider for Sentry {
    fn describe() -> Description {
        Description::new("sentry", "Sentry", env!("CARGO_PKG_VERSION"))
            .base_url("https://{hostname}/api")
            .host("{hostname}")
            .docs("https://docs.sentry.io/api/auth/")
            .credential(Field::secret("token", "Auth token"))
            .config(
                Field::config("hostname", "Host", ValueKind::Host)
                    .default_value("sentry.io")
                    .help("sentry.io, or the host of a self-hosted Sentry"),
            )
    }

    fn inject(_: &Request, credential: &Credential, _: &Config) -> Result<Edits, Error> {
        Ok(Edits::new().set_header("authorization", format!("Bearer {}", credential.get("token")?)))
    }
}

provider!(Sentry);
