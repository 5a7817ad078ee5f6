//! Stripe: `Authorization: Bearer {token}`.

#![no_std]

use credgate_plugin_sdk::prelude::*;

struct Stripe;

impl Provider for Stripe {
    fn describe() -> Description {
        Description::new("stripe", "Stripe", env!("CARGO_PKG_VERSION"))
            .env("STRIPE_API_KEY")
            .base_url("https://api.stripe.com")
            .host("api.stripe.com")
            .docs("https://docs.stripe.com/api/authentication")
            .credential(Field::secret("token", "Secret key"))
    }

    fn inject(_: &Request, credential: &Credential, _: &Config) -> Result<Edits, Error> {
        Ok(Edits::new().set_header("authorization", format!("Bearer {}", credential.get("token")?)))
    }
}

provider!(Stripe);
