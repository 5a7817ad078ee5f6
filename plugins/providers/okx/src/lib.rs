//! OKX (API v5): `OK-ACCESS-KEY`, `OK-ACCESS-PASSPHRASE`, `OK-ACCESS-TIMESTAMP` (ISO 8601 with
//! milliseconds, UTC) and `OK-ACCESS-SIGN`, the base64 of HMAC-SHA256 under `secret` of the
//! timestamp, the method, the request path with its query, and the body.

#![no_std]

use credgate_plugin_sdk::prelude::*;

const MAX_BODY: u32 = 64 * 1024;

struct Okx;

impl Provider for Okx {
    fn describe() -> Description {
        Description::new("okx", "OKX", env!("CARGO_PKG_VERSION"))
            .base_url("https://www.okx.com")
            .host("www.okx.com")
            .docs("https://www.okx.com/docs-v5/en/#overview-rest-authentication")
            .credential(Field::secret("api_key", "API key"))
            .credential(Field::secret("secret", "Secret key").help("Signs each call (HMAC-SHA256); never sent."))
            .credential(Field::secret("passphrase", "Passphrase").help("The one chosen when the key was created."))
            .body_bytes(MAX_BODY)
    }

    fn inject(request: &Request, credential: &Credential, _: &Config) -> Result<Edits, Error> {
        let timestamp = time::iso8601_millis(time::unix_millis());
        let mut prehash = format!("{timestamp}{}{}", request.method, request.path());
        if !request.query().is_empty() {
            prehash.push('?');
            prehash.push_str(request.query());
        }
        let mut message = prehash.into_bytes();
        message.extend_from_slice(request.body_bytes());
        let signature = crypto::hmac(Hash::Sha256, credential.get("secret")?.as_bytes(), &message);
        Ok(Edits::new()
            .set_header("ok-access-key", credential.get("api_key")?)
            .set_header("ok-access-passphrase", credential.get("passphrase")?)
            .set_header("ok-access-timestamp", timestamp)
            .set_header("ok-access-sign", encoding::base64(&signature)))
    }
}

provider!(Okx);
