//! GitLab: `PRIVATE-TOKEN: {token}`.

#![no_std]

use credgate_plugin_sdk::prelude::*;

struct GitlabPat;

impl Provider for GitlabPat {
    fn describe() -> Description {
        Description::new("gitlab-pat", "GitLab", env!("CARGO_PKG_VERSION"))
            .env("GITLAB_TOKEN")
            .base_url("https://{hostname}")
            .host("{hostname}")
            .docs("https://docs.gitlab.com/api/rest/authentication/")
            .credential(Field::secret("token", "Personal access token"))
            .config(
                Field::config("hostname", "Host", ValueKind::Host)
                    .default_value("gitlab.com")
                    .help("gitlab.com, or the host of a self-managed GitLab"),
            )
    }

    fn inject(_: &Request, credential: &Credential, _: &Config) -> Result<Edits, Error> {
        Ok(Edits::new().set_header("private-token", credential.get("token")?))
    }
}

provider!(GitlabPat);
