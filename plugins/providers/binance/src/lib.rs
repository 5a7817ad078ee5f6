//! Binance (spot and margin REST): `X-MBX-APIKEY: {api_key}`, and every call signed as Binance's
//! SIGNED endpoints require: `timestamp` (milliseconds) and then `signature` appended to the
//! query, the signature being hex HMAC-SHA256 under `secret` of the query as sent (with
//! `timestamp`) followed by the body.

#![no_std]

use credgate_plugin_sdk::prelude::*;

/// Order and account calls carry small form bodies.
const MAX_BODY: u32 = 64 * 1024;

struct Binance;

impl Provider for Binance {
    fn describe() -> Description {
        Description::new("binance", "Binance", env!("CARGO_PKG_VERSION"))
            .base_url("https://api.binance.com")
            .host("api.binance.com")
            .docs("https://developers.binance.com/docs/binance-spot-api-docs/rest-api/endpoint-security-type")
            .credential(Field::secret("api_key", "API key"))
            .credential(Field::secret("secret", "Secret key").help("Signs each call (HMAC-SHA256); never sent."))
            .body_bytes(MAX_BODY)
    }

    fn inject(request: &Request, credential: &Credential, _: &Config) -> Result<Edits, Error> {
        let timestamp = time::unix_millis().to_string();
        // The query as credgate will send it: the caller's, without any `timestamp` or
        // `signature` of its own, then ours.
        let mut signed = request.query_without(&["timestamp", "signature"]);
        if !signed.is_empty() {
            signed.push('&');
        }
        signed.push_str("timestamp=");
        signed.push_str(&timestamp);
        let mut payload = signed.into_bytes();
        payload.extend_from_slice(request.body_bytes());
        let signature = crypto::hmac(Hash::Sha256, credential.get("secret")?.as_bytes(), &payload);
        Ok(Edits::new()
            .set_header("x-mbx-apikey", credential.get("api_key")?)
            .set_query("timestamp", timestamp)
            .set_query("signature", encoding::hex(&signature)))
    }
}

provider!(Binance);
