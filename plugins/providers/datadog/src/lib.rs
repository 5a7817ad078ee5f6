//! Datadog: `DD-API-KEY: {token}` and, when given, `DD-APPLICATION-KEY: {applicationKey}`.

#![no_std]

use credgate_plugin_sdk::prelude::*;

struct Datadog;

impl Provider for Datadog {
    fn describe() -> Description {
        Description::new("datadog", "Datadog", env!("CARGO_PKG_VERSION"))
            .base_url("https://api.{siteParameter}/api")
            .host("api.{siteParameter}")
            .docs("https://docs.datadoghq.com/api/latest/authentication/")
            .credential(Field::secret("token", "API key"))
            .credential(
                Field::secret("applicationKey", "Application key")
                    .optional()
                    .help("Needed by most read endpoints"),
            )
            .config(
                Field::config("siteParameter", "Site", ValueKind::Text)
                    .one_of(&[
                        "datadoghq.com",
                        "us3.datadoghq.com",
                        "us5.datadoghq.com",
                        "datadoghq.eu",
                        "ddog-gov.com",
                        "ap1.datadoghq.com",
                    ])
                    .default_value("datadoghq.com")
                    .help("The Datadog site the organisation lives on"),
            )
    }

    fn inject(_: &Request, credential: &Credential, _: &Config) -> Result<Edits, Error> {
        let mut edits = Edits::new().set_header("dd-api-key", credential.get("token")?);
        if let Some(application_key) = credential.find("applicationKey") {
            edits = edits.set_header("dd-application-key", application_key);
        }
        Ok(edits)
    }
}

provider!(Datadog);
