//! Shopify: `X-Shopify-Access-Token: {token}`.

#![no_std]

use credgate_plugin_sdk::prelude::*;

struct ShopifyApiKey;

impl Provider for ShopifyApiKey {
    fn describe() -> Description {
        Description::new("shopify-api-key", "Shopify", env!("CARGO_PKG_VERSION"))
            .base_url("https://{subdomain}.myshopify.com")
            .host("{subdomain}.myshopify.com")
            .docs("https://shopify.dev/docs/api/admin-rest#authentication")
            .credential(Field::secret("token", "Admin API access token"))
            .config(Field::config("subdomain", "Store", ValueKind::Label).help("The part before .myshopify.com"))
    }

    fn inject(_: &Request, credential: &Credential, _: &Config) -> Result<Edits, Error> {
        Ok(Edits::new().set_header("x-shopify-access-token", credential.get("token")?))
    }
}

provider!(ShopifyApiKey);
