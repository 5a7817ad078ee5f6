//! Pipeline CRM: the query parameters `api_key={token}` and `app_key={appKey}`.

#![no_std]

use credgate_plugin_sdk::prelude::*;

struct Pipelinecrm;

impl Provider for Pipelinecrm {
    fn describe() -> Description {
        Description::new("pipelinecrm", "Pipeline CRM", env!("CARGO_PKG_VERSION"))
            .base_url("https://api.pipelinecrm.com")
            .host("api.pipelinecrm.com")
            .docs("https://app.pipelinecrm.com/api/docs")
            .credential(Field::secret("token", "API key"))
            .credential(Field::secret("appKey", "App key"))
    }

    fn inject(_: &Request, credential: &Credential, _: &Config) -> Result<Edits, Error> {
        Ok(Edits::new()
            .set_query("api_key", credential.get("token")?)
            .set_query("app_key", credential.get("appKey")?))
    }
}

provider!(Pipelinecrm);
