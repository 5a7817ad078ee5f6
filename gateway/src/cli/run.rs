//! `credgate run -- CMD ARGS…`: runs a command whose HTTP(S) traffic goes through credgate's
//! forward proxy, unchanged. The command gets the app key only inside `HTTPS_PROXY`, trusts
//! credgate's CA (written with the system roots to a bundle the common clients are pointed
//! at), and finds placeholder values where SDKs look for API keys, so `credgate run -- python
//! agent.py` or `credgate run -- aws s3 ls` works with nothing else set, and never sees a real
//! credential.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use uuid::Uuid;
use zeroize::Zeroizing;

use super::{CliError, exit};
use crate::vault::token::{self, TokenKind};

/// The value put where SDKs look for their API keys: not a credential, and not the app key.
pub const PLACEHOLDER: &str = "credgate";

/// Key variables always given the placeholder, whatever the grants: a real key the caller's
/// environment holds never reaches the command. The providers of the caller's grants add their
/// own (`GET /v1/environment`).
const KEY_VARIABLES: &[&str] = &[
    "OPENAI_API_KEY",
    "ANTHROPIC_API_KEY",
    "GITHUB_TOKEN",
    "GH_TOKEN",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
];

/// Variables removed: they would make an SDK use other credentials than the placeholders.
const REMOVED_VARIABLES: &[&str] = &["AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_SHARED_CREDENTIALS_FILE"];

/// Where the common clients look for extra trusted CAs.
const CA_VARIABLES: &[&str] = &[
    "SSL_CERT_FILE",
    "REQUESTS_CA_BUNDLE",
    "CURL_CA_BUNDLE",
    "NODE_EXTRA_CA_CERTS",
    "AWS_CA_BUNDLE",
    "GIT_SSL_CAINFO",
];

#[derive(Debug, clap::Args)]
pub struct Args {
    /// credgate's main address (the CA bundle is fetched from it).
    #[arg(long, env = "CREDGATE_ADDR", default_value = "http://127.0.0.1:8080")]
    addr: String,
    /// credgate's forward-proxy address (`credgate serve --proxy-listen`).
    #[arg(long, env = "CREDGATE_PROXY", default_value = "http://127.0.0.1:8081")]
    proxy: String,
    /// File holding the app key. [default: the CREDGATE_APP_KEY environment variable]
    #[arg(long)]
    key_file: Option<PathBuf>,
    /// A grant the command's calls may use (repeatable). Without any, credgate uses the one
    /// grant of yours that allows each host.
    #[arg(long = "grant", value_name = "GRANT_ID")]
    grants: Vec<Uuid>,
    /// Proxy loopback destinations too (by default they bypass the proxy, except that
    /// credgate itself is never proxied).
    #[arg(long)]
    proxy_loopback: bool,
    /// Extra environment for the command (repeatable), applied last.
    #[arg(long = "env", value_name = "NAME=VALUE")]
    env: Vec<String>,
    /// The command and its arguments (after `--`).
    #[arg(
        trailing_var_arg = true,
        required = true,
        allow_hyphen_values = true,
        value_name = "CMD"
    )]
    command: Vec<String>,
}

pub async fn run(args: Args) -> ExitCode {
    match prepare_and_run(args).await {
        Ok(code) => code,
        Err(e) => {
            eprintln!("credgate: {}", e.message);
            e.exit_code()
        }
    }
}

async fn prepare_and_run(args: Args) -> Result<ExitCode, CliError> {
    let key = app_key(args.key_file.as_deref())?;
    let http = reqwest::Client::builder()
        .no_proxy()
        .timeout(std::time::Duration::from_secs(30))
        .build()
        .map_err(|e| CliError::new(exit::FAILURE, format!("cannot build an HTTP client: {e}")))?;
    let bundle = ca_bundle(&http, &args.addr).await?;
    let key_variables = key_variables(&http, &args.addr, &key).await?;
    let dir = std::env::temp_dir().join(format!("credgate-run-{}", Uuid::new_v4().simple()));
    let bundle_file = write_private(&dir, "ca-bundle.pem", bundle.as_bytes())?;
    let proxy = proxy_url(&args.proxy, &args.grants, &key)?;
    let no_proxy = no_proxy(&args.addr, args.proxy_loopback);

    let mut child = std::process::Command::new(&args.command[0]);
    child.args(&args.command[1..]);
    // Where the SDKs of the caller's providers read their keys (as the providers declare):
    // a placeholder, replacing any real value the caller's environment holds; credgate swaps
    // it for the stored credential on the way out. Set first, and never a name credgate sets
    // itself below or that a shell or runtime reads, whatever the gateway answered.
    for name in KEY_VARIABLES
        .iter()
        .copied()
        .chain(key_variables.iter().map(String::as_str))
        .filter(|name| !crate::inject::reserved_env(name))
    {
        child.env(name, PLACEHOLDER);
    }
    for name in ["HTTPS_PROXY", "HTTP_PROXY", "https_proxy", "http_proxy"] {
        child.env(name, proxy.as_str());
    }
    child.env("NO_PROXY", &no_proxy).env("no_proxy", &no_proxy);
    for name in CA_VARIABLES {
        child.env(name, &bundle_file);
    }
    for name in REMOVED_VARIABLES {
        child.env_remove(name);
    }
    // The app key reaches the command only inside the proxy URL.
    child.env_remove("CREDGATE_APP_KEY");
    // Node reads HTTPS_PROXY only when told to (Node 24 and later).
    child.env("NODE_USE_ENV_PROXY", "1");
    for pair in &args.env {
        let (name, value) = pair
            .split_once('=')
            .ok_or_else(|| CliError::new(exit::INVALID, format!("--env `{pair}` is not NAME=VALUE")))?;
        child.env(name, value);
    }
    let status = child.status();
    let _ = std::fs::remove_dir_all(&dir);
    let status = status.map_err(|e| CliError::new(exit::FAILURE, format!("cannot run `{}`: {e}", args.command[0])))?;
    Ok(match status.code() {
        Some(code) => ExitCode::from(u8::try_from(code).unwrap_or(1)),
        // Killed by a signal: report it as a shell would (128 + signal), within a byte.
        None => ExitCode::from(128 + signal_of(&status).unwrap_or(0)),
    })
}

#[cfg(unix)]
fn signal_of(status: &std::process::ExitStatus) -> Option<u8> {
    std::os::unix::process::ExitStatusExt::signal(status).and_then(|s| u8::try_from(s).ok())
}

#[cfg(not(unix))]
fn signal_of(_: &std::process::ExitStatus) -> Option<u8> {
    None
}

fn app_key(key_file: Option<&Path>) -> Result<Zeroizing<String>, CliError> {
    let key = match key_file {
        Some(path) => Zeroizing::new(
            std::fs::read_to_string(path)
                .map_err(|e| CliError::new(exit::INVALID, format!("cannot read --key-file {}: {e}", path.display())))?
                .trim()
                .to_owned(),
        ),
        None => Zeroizing::new(std::env::var("CREDGATE_APP_KEY").unwrap_or_default().trim().to_owned()),
    };
    if !token::looks_like(TokenKind::App, &key) {
        return Err(CliError::new(
            exit::INVALID,
            "no app key: set CREDGATE_APP_KEY or give --key-file (an app key starts with cg_app_)",
        ));
    }
    Ok(key)
}

/// The environment variables the SDKs of the caller's granted providers read their keys from
/// (`GET /v1/environment`, with the app key).
async fn key_variables(http: &reqwest::Client, addr: &str, key: &str) -> Result<Vec<String>, CliError> {
    let url = format!("{}/v1/environment", addr.trim_end_matches('/'));
    let unreachable =
        |e: reqwest::Error| CliError::new(exit::UNAVAILABLE, format!("cannot reach credgate at {addr}: {e}"));
    let response = http.get(&url).bearer_auth(key).send().await.map_err(unreachable)?;
    let status = response.status();
    let body: serde_json::Value = response.json().await.map_err(unreachable)?;
    if !status.is_success() {
        let message = body["error"]["message"].as_str().unwrap_or("no reason given");
        return Err(CliError::new(
            if status == reqwest::StatusCode::UNAUTHORIZED {
                exit::INVALID
            } else {
                exit::UNAVAILABLE
            },
            format!("credgate at {addr} refused the app key ({status}): {message}"),
        ));
    }
    Ok(body["variables"]
        .as_array()
        .map(|names| {
            names
                .iter()
                .filter_map(serde_json::Value::as_str)
                // Only what an environment variable may be called, whatever the answer holds.
                .filter(|n| {
                    !n.is_empty()
                        && n.bytes()
                            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
                })
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default())
}

/// credgate's trust bundle (public: certificates only), after the system's own roots.
async fn ca_bundle(http: &reqwest::Client, addr: &str) -> Result<String, CliError> {
    let url = format!("{}/v1/proxy-ca", addr.trim_end_matches('/'));
    let unreachable =
        |e: reqwest::Error| CliError::new(exit::UNAVAILABLE, format!("cannot reach credgate at {addr}: {e}"));
    let response = http.get(&url).send().await.map_err(unreachable)?;
    if !response.status().is_success() {
        return Err(CliError::new(
            exit::UNAVAILABLE,
            format!("credgate at {addr} did not give its CA ({})", response.status()),
        ));
    }
    let credgate = response.text().await.map_err(unreachable)?;
    let mut bundle = String::new();
    for cert in rustls_native_certs::load_native_certs().certs {
        bundle.push_str("-----BEGIN CERTIFICATE-----\n");
        for line in STANDARD.encode(cert.as_ref()).as_bytes().chunks(64) {
            bundle.push_str(std::str::from_utf8(line).unwrap_or_default());
            bundle.push('\n');
        }
        bundle.push_str("-----END CERTIFICATE-----\n");
    }
    bundle.push_str(&credgate);
    Ok(bundle)
}

/// A file only this user can read, in a directory only this user can enter.
fn write_private(dir: &Path, name: &str, bytes: &[u8]) -> Result<PathBuf, CliError> {
    let io = |e: std::io::Error| CliError::new(exit::FAILURE, format!("cannot write {}: {e}", dir.display()));
    let mut builder = std::fs::DirBuilder::new();
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir).map_err(io)?;
    let path = dir.join(name);
    let mut file = std::fs::File::create(&path).map_err(io)?;
    file.write_all(bytes).map_err(io)?;
    Ok(path)
}

/// The proxy URL with the app key as password and the grants, if any, as user name (clients
/// send a proxy password only with a user name, so there is always one).
fn proxy_url(proxy: &str, grants: &[Uuid], key: &str) -> Result<Zeroizing<String>, CliError> {
    let mut url = url::Url::parse(proxy).map_err(|e| CliError::new(exit::INVALID, format!("--proxy {proxy}: {e}")))?;
    let user = if grants.is_empty() {
        PLACEHOLDER.to_owned()
    } else {
        grants.iter().map(Uuid::to_string).collect::<Vec<_>>().join(",")
    };
    let bad = || CliError::new(exit::INVALID, format!("--proxy {proxy} cannot carry credentials"));
    url.set_username(&user).map_err(|()| bad())?;
    url.set_password(Some(key)).map_err(|()| bad())?;
    Ok(Zeroizing::new(url.to_string()))
}

/// Loopback (unless proxied too) and credgate's own host.
fn no_proxy(addr: &str, proxy_loopback: bool) -> String {
    let mut hosts: Vec<String> = Vec::new();
    if !proxy_loopback {
        hosts.extend(["localhost", "127.0.0.1", "::1"].map(str::to_owned));
    }
    if let Ok(url) = url::Url::parse(addr)
        && let Some(host) = url.host_str()
    {
        hosts.push(host.trim_start_matches('[').trim_end_matches(']').to_owned());
    }
    hosts.dedup();
    hosts.join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_proxy_url_carries_the_key_and_the_grants() {
        let key = "cg_app_abcdefghijkl_0123456789012345678901234567890123456789012";
        let g = Uuid::nil();
        let url = proxy_url("http://127.0.0.1:8081", &[g, g], key).unwrap();
        assert_eq!(url.as_str(), format!("http://{g},{g}:{key}@127.0.0.1:8081/"));
        let url = proxy_url("http://127.0.0.1:8081", &[], key).unwrap();
        assert!(url.starts_with("http://credgate:cg_app_"));
        assert_eq!(no_proxy("http://127.0.0.1:8080", true), "127.0.0.1");
        assert_eq!(
            no_proxy("http://gw.internal:8080", false),
            "localhost,127.0.0.1,::1,gw.internal"
        );
    }
}
