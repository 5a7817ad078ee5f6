//! Kraken (spot REST, private endpoints): `API-Key: {api_key}` and `API-Sign`, the base64 of
//! HMAC-SHA512 under the base64-decoded `secret` of the URI path followed by SHA-256 of the
//! nonce and the form body. The nonce is the body's own `nonce` field, which the caller sends
//! (always increasing, as Kraken requires): a template cannot change the body.

#![no_std]

use credgate_plugin_sdk::prelude::*;

const MAX_BODY: u32 = 64 * 1024;

struct Kraken;

impl Provider for Kraken {
    fn describe() -> Description {
        Description::new("kraken", "Kraken", env!("CARGO_PKG_VERSION"))
            .base_url("https://api.kraken.com")
            .host("api.kraken.com")
            .docs("https://docs.kraken.com/api/docs/guides/spot-rest-auth")
            .credential(Field::secret("api_key", "API key"))
            .credential(
                Field::secret("secret", "Private key")
                    .help("Base64, as Kraken shows it; signs each call and is never sent."),
            )
            .body_bytes(MAX_BODY)
    }

    fn validate(credential: &Credential, _: &Config) -> Result<(), Error> {
        match encoding::base64_decode(credential.get("secret")?) {
            Some(_) => Ok(()),
            None => Err(Error::InvalidCredential("the private key is not base64".into())),
        }
    }

    fn inject(request: &Request, credential: &Credential, _: &Config) -> Result<Edits, Error> {
        let body = request.body_bytes();
        let nonce = form_field(body, "nonce").ok_or_else(|| {
            Error::Unsupported("a Kraken private call carries `nonce` in its form body; this one has none".into())
        })?;
        let secret = encoding::base64_decode(credential.get("secret")?)
            .ok_or_else(|| Error::InvalidCredential("the private key is not base64".into()))?;
        let mut inner = Vec::with_capacity(nonce.len() + body.len());
        inner.extend_from_slice(nonce.as_bytes());
        inner.extend_from_slice(body);
        let mut message = request.path().as_bytes().to_vec();
        message.extend_from_slice(&crypto::digest(Hash::Sha256, &inner));
        let signature = crypto::hmac(Hash::Sha512, &secret, &message);
        Ok(Edits::new()
            .set_header("api-key", credential.get("api_key")?)
            .set_header("api-sign", encoding::base64(&signature)))
    }
}

/// The raw value of `name` in an `application/x-www-form-urlencoded` body.
fn form_field<'a>(body: &'a [u8], name: &str) -> Option<&'a str> {
    let text = core::str::from_utf8(body).ok()?;
    text.split('&')
        .filter_map(|pair| pair.split_once('='))
        .find(|(n, _)| *n == name)
        .map(|(_, v)| v)
        .filter(|v| !v.is_empty())
}

provider!(Kraken);
