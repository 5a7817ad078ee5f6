//! The `credgate` command line: `serve`, and admin commands over the admin API.

mod admin_token;
mod approval;
mod audit;
mod ca;
mod client;
mod grant;
mod key;
mod keyring;
mod output;
mod principal;
mod provider;
mod run;
mod scaffold;
mod secret;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

pub use client::{AdminClient, CliError, ClientArgs, EXIT_CODES_HELP, exit};

use crate::config::ServeArgs;

#[derive(Debug, Parser)]
#[command(
    name = "credgate",
    version,
    about = "A credential-injection gateway: apps call third-party APIs through it and never hold the keys.",
    after_help = EXIT_CODES_HELP
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the gateway (admin API; data plane).
    Serve(Box<ServeArgs>),
    /// Users, groups, systems and agents.
    Principal(principal::Args),
    /// App API keys.
    Key(key::Args),
    /// Stored credentials.
    Secret(secret::Args),
    /// Secrets issued to principals.
    Grant(grant::Args),
    /// Calls waiting for an operator's approval: list, show, approve, deny.
    Approval(approval::Args),
    /// The audit trail.
    Audit(audit::Args),
    /// Master keys.
    Keyring(keyring::Args),
    /// Provider plugins.
    Provider(provider::Args),
    /// Operators' admin tokens, named and scoped: create, list, revoke.
    AdminToken(admin_token::Args),
    /// The forward-proxy CA: show, export the trust bundle, rotate.
    Ca(ca::Args),
    /// Run a command with its HTTP(S) traffic through credgate's forward proxy: the app key
    /// in HTTPS_PROXY, credgate's CA trusted, placeholder API keys in the environment.
    Run(run::Args),
}

/// Runs an admin command; `serve` is handled by the binary (it owns logging and signals).
pub async fn run(command: Command) -> ExitCode {
    let result = match command {
        Command::Serve(_) => Err(CliError::new(exit::FAILURE, "serve is not an admin command")),
        Command::Principal(args) => principal::run(args).await,
        Command::Key(args) => key::run(args).await,
        Command::Secret(args) => secret::run(args).await,
        Command::Grant(args) => grant::run(args).await,
        Command::Approval(args) => approval::run(args).await,
        Command::Audit(args) => audit::run(args).await,
        Command::Keyring(args) => keyring::run(args).await,
        Command::Provider(args) => provider::run(args).await,
        Command::AdminToken(args) => admin_token::run(args).await,
        Command::Ca(args) => ca::run(args).await,
        Command::Run(args) => return run::run(args).await,
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("credgate: {}", e.message);
            e.exit_code()
        }
    }
}

/// Parses `90`, `90s`, `15m`, `24h` or `7d` into seconds.
pub fn parse_duration(text: &str) -> Result<i64, String> {
    let text = text.trim();
    let (number, unit) = match text.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => text.split_at(i),
        None => (text, "s"),
    };
    let n: i64 = number
        .parse()
        .map_err(|_| format!("`{text}` is not a duration like 3600, 90s, 15m, 24h or 7d"))?;
    let scale = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return Err(format!("`{text}`: the unit must be s, m, h or d")),
    };
    n.checked_mul(scale).ok_or_else(|| format!("`{text}` is too long"))
}

/// Percent-encodes a value for a query string.
pub fn query_value(text: &str) -> String {
    url::form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("90").unwrap(), 90);
        assert_eq!(parse_duration("15m").unwrap(), 900);
        assert_eq!(parse_duration("7d").unwrap(), 604_800);
        assert!(parse_duration("7w").is_err());
        assert!(parse_duration("h").is_err());
    }

    #[test]
    fn cli_parses() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
