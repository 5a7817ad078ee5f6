//! Pinecone: `Api-Key: {token}`.

#![no_std]

use credgate_plugin_sdk::prelude::*;

struct Pinecone;

impl Provider for Pinecone {
    fn describe() -> Description {
        Description::new("pinecone", "Pinecone", env!("CARGO_PKG_VERSION"))
            .env("PINECONE_API_KEY")
            .base_url("https://api.pinecone.io")
            .host("api.pinecone.io")
            .host("*.pinecone.io")
            .docs("https://docs.pinecone.io/reference/api/authentication")
            .credential(Field::secret("token", "API key"))
    }

    fn inject(_: &Request, credential: &Credential, _: &Config) -> Result<Edits, Error> {
        Ok(Edits::new().set_header("api-key", credential.get("token")?))
    }
}

provider!(Pinecone);
