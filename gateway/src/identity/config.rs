//! Which OpenID Providers credgate trusts, as the operator configures them: one with flags
//! (`--oidc-issuer`, `--oidc-audience`, …), or several in a JSON file (`--oidc-config`). The
//! portal's sign-in uses the one issuer with a `client_id`; its secret comes from the
//! environment only (`CREDGATE_OIDC_CLIENT_SECRET`).

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;

use crate::redact::SecretString;
use crate::vault::scope::Scope;

/// Most groups a token may name: a claim longer than this is refused rather than cut.
pub const MAX_GROUPS: usize = 256;

fn default_groups_claim() -> String {
    "groups".to_owned()
}

fn default_signin_scopes() -> String {
    "openid email profile".to_owned()
}

fn yes() -> bool {
    true
}

/// One trusted issuer.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct IssuerConfig {
    /// As its tokens name it (`iss`); discovery is read from `<issuer>/.well-known/openid-configuration`.
    pub issuer: String,
    /// The audience its tokens must name (`aud`): the client id apps obtain tokens with.
    pub audience: String,
    /// The claim listing the user's groups.
    #[serde(default = "default_groups_claim")]
    pub groups_claim: String,
    /// A user this issuer vouches for becomes a user principal on first sight; otherwise only
    /// users an operator created with that external id are accepted.
    #[serde(default = "yes")]
    pub provision_users: bool,
    /// The portal signs in through this issuer when set: its OAuth client id.
    #[serde(default)]
    pub client_id: Option<String>,
    /// The scopes the portal's sign-in asks for, space-separated; add the one that puts the
    /// groups claim in the ID token if the provider needs one (Okta: `groups`).
    #[serde(default = "default_signin_scopes")]
    pub signin_scopes: String,
    /// For the portal: a group (as the groups claim names it) → the scopes its members get.
    #[serde(default)]
    pub roles: BTreeMap<String, Vec<Scope>>,
}

/// Everything identity needs from the operator.
#[derive(Clone, Debug, Default)]
pub struct IdentityConfig {
    pub issuers: Vec<IssuerConfig>,
    /// The portal's client secret (`CREDGATE_OIDC_CLIENT_SECRET`), for a confidential client.
    pub client_secret: Option<SecretString>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    issuers: Vec<IssuerConfig>,
}

/// The flags, as `credgate serve` received them.
#[derive(Clone, Debug, Default)]
pub struct Flags {
    pub issuer: Option<String>,
    pub audience: Option<String>,
    pub groups_claim: Option<String>,
    pub provision_users: bool,
    pub client_id: Option<String>,
    pub signin_scopes: Option<String>,
    /// `GROUP=SCOPE[,SCOPE…]`, repeatable.
    pub roles: Vec<String>,
    pub config_file: Option<std::path::PathBuf>,
}

impl IdentityConfig {
    /// From the flags or the file (not both), checked.
    pub fn load(flags: &Flags, client_secret: Option<SecretString>) -> Result<Self, String> {
        let issuers = match (&flags.config_file, &flags.issuer) {
            (Some(_), Some(_)) => return Err("give --oidc-issuer or --oidc-config, not both".into()),
            (Some(path), None) => read_file(path)?,
            (None, Some(issuer)) => {
                let audience = flags
                    .audience
                    .clone()
                    .ok_or("--oidc-issuer needs --oidc-audience (the client id its tokens are issued to)")?;
                vec![IssuerConfig {
                    issuer: issuer.clone(),
                    audience,
                    groups_claim: flags.groups_claim.clone().unwrap_or_else(default_groups_claim),
                    provision_users: flags.provision_users,
                    client_id: flags.client_id.clone(),
                    signin_scopes: flags.signin_scopes.clone().unwrap_or_else(default_signin_scopes),
                    roles: parse_roles(&flags.roles)?,
                }]
            }
            (None, None) => {
                if flags.audience.is_some()
                    || flags.client_id.is_some()
                    || flags.signin_scopes.is_some()
                    || !flags.roles.is_empty()
                {
                    return Err("the --oidc-* settings need --oidc-issuer".into());
                }
                Vec::new()
            }
        };
        let config = Self { issuers, client_secret };
        config.check()?;
        Ok(config)
    }

    fn check(&self) -> Result<(), String> {
        let mut seen = std::collections::HashSet::new();
        for i in &self.issuers {
            let url = url::Url::parse(&i.issuer).map_err(|_| format!("issuer `{}` is not a URL", i.issuer))?;
            if !matches!(url.scheme(), "https" | "http") || url.query().is_some() || url.fragment().is_some() {
                return Err(format!(
                    "issuer `{}` must be an https URL without query or fragment",
                    i.issuer
                ));
            }
            // Keys read over plain HTTP could be anyone's: only on this machine.
            if url.scheme() == "http" && !is_loopback(&url) {
                return Err(format!(
                    "issuer `{}` must be https (plain http only on a loopback address)",
                    i.issuer
                ));
            }
            if !seen.insert(i.issuer.trim_end_matches('/')) {
                return Err(format!("issuer `{}` is configured twice", i.issuer));
            }
            if i.audience.trim().is_empty() {
                return Err(format!("issuer `{}` needs an audience", i.issuer));
            }
            if i.groups_claim.trim().is_empty() {
                return Err(format!("issuer `{}`: the groups claim must not be empty", i.issuer));
            }
            if !i.signin_scopes.split_whitespace().any(|s| s == "openid") {
                return Err(format!(
                    "issuer `{}`: the sign-in scopes must include `openid`",
                    i.issuer
                ));
            }
            if !i.roles.is_empty() && i.client_id.is_none() {
                return Err(format!(
                    "issuer `{}`: roles are for the portal's sign-in, which needs a client_id",
                    i.issuer
                ));
            }
        }
        if self.issuers.iter().filter(|i| i.client_id.is_some()).count() > 1 {
            return Err("only one issuer may have a client_id: the portal signs in through one".into());
        }
        Ok(())
    }

    /// The issuer the portal signs in through.
    pub fn portal(&self) -> Option<&IssuerConfig> {
        self.issuers.iter().find(|i| i.client_id.is_some())
    }
}

fn is_loopback(url: &url::Url) -> bool {
    match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        None => false,
    }
}

fn read_file(path: &Path) -> Result<Vec<IssuerConfig>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let file: File =
        serde_json::from_str(&text).map_err(|e| format!("{} is not a valid OIDC config: {e}", path.display()))?;
    Ok(file.issuers)
}

/// `engineering=admin` or `finance=audit:read,secrets:read`.
fn parse_roles(roles: &[String]) -> Result<BTreeMap<String, Vec<Scope>>, String> {
    let mut out = BTreeMap::new();
    for role in roles {
        let (group, scopes) = role
            .split_once('=')
            .ok_or_else(|| format!("--oidc-role `{role}` must be GROUP=SCOPE[,SCOPE…]"))?;
        let scopes = scopes
            .split(',')
            .map(|s| Scope::parse(s.trim()).ok_or_else(|| format!("--oidc-role `{role}`: no scope `{}`", s.trim())))
            .collect::<Result<Vec<_>, _>>()?;
        if group.trim().is_empty() {
            return Err(format!("--oidc-role `{role}` names no group"));
        }
        out.insert(group.trim().to_owned(), scopes);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flags() -> Flags {
        Flags {
            issuer: Some("https://idp.example".into()),
            audience: Some("credgate".into()),
            provision_users: true,
            ..Default::default()
        }
    }

    #[test]
    fn flags_make_one_issuer_and_roles_parse() {
        let mut f = flags();
        f.client_id = Some("portal".into());
        f.roles = vec!["engineering=admin".into(), "finance=audit:read, secrets:read".into()];
        let c = IdentityConfig::load(&f, None).unwrap();
        assert_eq!(c.issuers.len(), 1);
        assert_eq!(c.issuers[0].groups_claim, "groups");
        assert_eq!(
            c.issuers[0].roles["finance"],
            vec![Scope::AuditRead, Scope::SecretsRead]
        );
        assert_eq!(c.portal().unwrap().client_id.as_deref(), Some("portal"));
    }

    #[test]
    fn mistakes_are_named() {
        let mut f = flags();
        f.audience = None;
        assert!(IdentityConfig::load(&f, None).unwrap_err().contains("--oidc-audience"));
        let mut f = flags();
        f.roles = vec!["engineering=root".into()];
        assert!(IdentityConfig::load(&f, None).unwrap_err().contains("no scope `root`"));
        let mut f = flags();
        f.issuer = Some("ftp://idp".into());
        assert!(IdentityConfig::load(&f, None).is_err());
        f.issuer = Some("http://idp.example".into());
        assert!(IdentityConfig::load(&f, None).unwrap_err().contains("must be https"));
        f.issuer = Some("http://127.0.0.1:9000".into());
        assert!(IdentityConfig::load(&f, None).is_ok(), "plain http on loopback");
        let f = Flags {
            audience: Some("x".into()),
            ..Default::default()
        };
        assert!(
            IdentityConfig::load(&f, None)
                .unwrap_err()
                .contains("need --oidc-issuer")
        );
        let mut f = flags();
        f.roles = vec!["engineering=admin".into()];
        assert!(IdentityConfig::load(&f, None).unwrap_err().contains("client_id"));
    }

    #[test]
    fn a_file_holds_several_issuers() {
        let dir = std::env::temp_dir().join(format!("credgate-oidc-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("oidc.json");
        std::fs::write(
            &path,
            r#"{"issuers": [
                {"issuer": "https://a.example", "audience": "x", "provision_users": false},
                {"issuer": "https://b.example", "audience": "y", "groups_claim": "roles",
                 "client_id": "portal", "roles": {"ops": ["admin"]}}]}"#,
        )
        .unwrap();
        let f = Flags {
            config_file: Some(path.clone()),
            ..Default::default()
        };
        let c = IdentityConfig::load(&f, None).unwrap();
        assert!(!c.issuers[0].provision_users);
        assert_eq!(c.portal().unwrap().issuer, "https://b.example");
        std::fs::write(
            &path,
            r#"{"issuers": [{"issuer": "https://a.example", "audience": "x", "typo": 1}]}"#,
        )
        .unwrap();
        assert!(IdentityConfig::load(&f, None).unwrap_err().contains("typo"));
        std::fs::remove_dir_all(dir).unwrap();
    }
}
