//! `credgate serve` settings. Every flag has an environment variable and a default; secrets
//! (the master key, the bootstrap admin token, database passwords) are never echoed.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, ValueEnum};

use crate::store::DatabaseUrl;

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line, for log pipelines.
    Json,
}

#[derive(Clone, Debug, Args)]
#[command(after_long_help = SERVE_ENV_HELP)]
pub struct ServeArgs {
    /// Address to listen on. Port 0 picks a free port; the bound address is printed on
    /// stdout as `listening on <addr>`.
    #[arg(long, env = "CREDGATE_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,

    /// Directory for the embedded SQLite database, the generated master key and the
    /// generated admin token. Created (mode 0700) if missing.
    #[arg(long, env = "CREDGATE_DATA_DIR", default_value = "./credgate-data")]
    pub data_dir: PathBuf,

    /// Database URL: `postgres://user:pass@host/db` for production and replicas, or
    /// `sqlite:<path>`. [default: SQLite at <data-dir>/credgate.db]
    #[arg(long, env = "CREDGATE_DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,

    /// File holding the master key ring: base64 keys of 32 bytes, one per line, the first
    /// active. Ignored when CREDGATE_MASTER_KEY is set. [default: <data-dir>/master.key,
    /// generated at first start]
    #[arg(long, env = "CREDGATE_MASTER_KEY_FILE")]
    pub master_key_file: Option<PathBuf>,

    /// File holding a bootstrap admin token chosen by the operator. Ignored when
    /// CREDGATE_ADMIN_TOKEN is set. [default: none; a token is generated at first start]
    #[arg(long, env = "CREDGATE_ADMIN_TOKEN_FILE")]
    pub admin_token_file: Option<PathBuf>,

    /// Log format.
    #[arg(long, env = "CREDGATE_LOG_FORMAT", value_enum, default_value = "text")]
    pub log_format: LogFormat,

    /// Log filter, in `tracing` syntax (e.g. `info`, `credgate=debug`).
    #[arg(long, env = "CREDGATE_LOG", default_value = "info")]
    pub log: String,

    /// Log the text of a provider plugin's errors (off by default). A plugin's message may
    /// carry a credential in a form no redaction recognises; the app and the audit trail never
    /// get it, and the log only with this set, for debugging a template.
    #[arg(long, env = "CREDGATE_LOG_PLUGIN_ERRORS")]
    pub log_plugin_errors: bool,

    /// Largest admin API request body, in bytes.
    #[arg(long, env = "CREDGATE_ADMIN_MAX_BODY_BYTES", default_value_t = 1024 * 1024)]
    pub admin_max_body_bytes: usize,

    /// Largest data-plane request body, in bytes; larger ones are refused with 413.
    #[arg(long, env = "CREDGATE_MAX_BODY_BYTES", default_value_t = 64 * 1024 * 1024)]
    pub max_body_bytes: u64,

    /// Largest body of a call held for approval, in bytes (it is kept, sealed, until the call
    /// is made); larger ones are refused with 413. Responses of approved calls are kept up to
    /// this size too.
    #[arg(long, env = "CREDGATE_APPROVAL_MAX_BODY", default_value_t = 1024 * 1024)]
    pub approval_max_body: u64,

    /// The address operators and apps reach this gateway at (e.g.
    /// `https://credgate.example.com`), for the links credgate hands out (`approval_url`, the
    /// `Location` of a held call). Default: the address it listens on (`127.0.0.1` for an
    /// unspecified one), which only serves callers on the same host.
    #[arg(long, env = "CREDGATE_PUBLIC_URL")]
    pub public_url: Option<String>,

    /// Seconds to wait for a TCP (and TLS) connection to an upstream.
    #[arg(long, env = "CREDGATE_UPSTREAM_CONNECT_TIMEOUT", default_value_t = 10)]
    pub upstream_connect_timeout: u64,

    /// Seconds from sending a request upstream to its response headers arriving.
    #[arg(long, env = "CREDGATE_UPSTREAM_FIRST_BYTE_TIMEOUT", default_value_t = 300)]
    pub upstream_first_byte_timeout: u64,

    /// Seconds an upstream response body may pause between two reads.
    #[arg(long, env = "CREDGATE_UPSTREAM_IDLE_TIMEOUT", default_value_t = 300)]
    pub upstream_idle_timeout: u64,

    /// PEM file of extra CA certificates trusted for upstreams, besides the system roots.
    #[arg(long, env = "CREDGATE_UPSTREAM_CA_FILE")]
    pub upstream_ca_file: Option<PathBuf>,

    /// Also serve forward-proxy traffic (`HTTPS_PROXY=http://<addr>`) on this address:
    /// `CONNECT` tunnels intercepted with credgate's own CA, and plain-HTTP absolute-form
    /// requests. Off unless given.
    #[arg(long, env = "CREDGATE_PROXY_LISTEN")]
    pub proxy_listen: Option<SocketAddr>,

    /// Hosts (`name`, `name:port` or `*.suffix`) that forward-proxy tunnels reach untouched:
    /// no interception and no credential, audited as `proxy.passthrough`. For package
    /// registries and the like. Repeatable, or comma-separated.
    #[arg(long, env = "CREDGATE_PROXY_PASSTHROUGH", value_delimiter = ',')]
    pub proxy_passthrough: Vec<String>,

    /// PEM certificate chain: serve TLS on --listen (with --tls-key).
    #[arg(long, env = "CREDGATE_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,

    /// PEM private key for --tls-cert.
    #[arg(long, env = "CREDGATE_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,

    /// Watched directory of provider plugins (`*.wasm` components): files added, replaced or
    /// removed there are loaded, replaced or unloaded within a second. A plugin with a bundled
    /// id overrides the bundled one; an uploaded one overrides both.
    #[arg(long, env = "CREDGATE_PLUGINS_DIR")]
    pub plugins_dir: Option<PathBuf>,

    /// Seconds between full resyncs of in-memory state with the database: the safety net
    /// behind change notifications between replicas (PostgreSQL).
    #[arg(long, env = "CREDGATE_RESYNC_SECONDS", default_value_t = 10)]
    pub resync_seconds: u64,

    /// Longest a provider plugin may run for one call, in milliseconds.
    #[arg(long, env = "CREDGATE_PLUGIN_DEADLINE_MS", default_value_t = 100)]
    pub plugin_deadline_ms: u64,

    /// Linear memory a provider plugin instance may use, in MiB.
    #[arg(long, env = "CREDGATE_PLUGIN_MEMORY_MIB", default_value_t = 16)]
    pub plugin_memory_mib: usize,

    /// Audit events that may wait to be indexed into the database (queued, or journaled and
    /// not yet copied) before calls are refused with `audit_unavailable`.
    #[arg(long, env = "CREDGATE_AUDIT_QUEUE", default_value_t = 65_536)]
    pub audit_queue: usize,

    /// Directory of the audit journal: each data-plane call's record is appended there before
    /// the call is forwarded, and copied into the database's hash chain right after (after a
    /// crash, at the next start). One gateway process per directory.
    /// [default: <data-dir>/audit-journal]
    #[arg(long, env = "CREDGATE_AUDIT_JOURNAL_DIR")]
    pub audit_journal_dir: Option<PathBuf>,

    /// Keep audit records in the database this many days: older ones move, a whole UTC day at
    /// a time, into compressed archive files under --audit-archive-dir, each with a signed
    /// checkpoint kept in the database, so `credgate audit verify --archive DIR` still proves
    /// the whole trail. Unset: every record stays in the database.
    #[arg(long, env = "CREDGATE_AUDIT_RETAIN_DAYS", value_parser = clap::value_parser!(u32).range(1..))]
    pub audit_retain_days: Option<u32>,

    /// Where archive files go (replicas sharing a database share this directory too).
    /// [default: <data-dir>/audit-archive]
    #[arg(long, env = "CREDGATE_AUDIT_ARCHIVE_DIR")]
    pub audit_archive_dir: Option<PathBuf>,

    /// Seconds between archiving passes (with --audit-retain-days): a day's file is written
    /// within this long of the day passing the retention.
    #[arg(long, env = "CREDGATE_AUDIT_ARCHIVE_INTERVAL_SECONDS", default_value_t = 300, value_parser = clap::value_parser!(u64).range(1..))]
    pub audit_archive_interval_seconds: u64,

    /// Flush every audit journal write to disk before the call goes on (fdatasync), and every
    /// SQLite commit (synchronous=FULL), so the audit record written before each call survives
    /// a power cut too. Off, a record survives a crash or kill of credgate and reaches the disk
    /// within seconds. PostgreSQL follows the server's `synchronous_commit` either way.
    #[arg(long, env = "CREDGATE_FSYNC_COMMITS")]
    pub fsync_commits: bool,

    /// Data-plane calls in flight at most (a streaming response counts until it ends). Past it
    /// a call is refused at once with `overloaded` (503, `Retry-After: 1`), so overload costs
    /// the callers a fast error instead of queues, memory and timeouts for everyone.
    #[arg(long, env = "CREDGATE_MAX_IN_FLIGHT", default_value_t = 4096)]
    pub max_in_flight: usize,

    /// Serve the operator portal (`/portal/`) from this directory instead of the copy embedded
    /// in the binary: for customising it. Only the portal's own file names are read from it.
    #[arg(long, env = "CREDGATE_PORTAL_DIR")]
    pub portal_dir: Option<PathBuf>,

    /// An OpenID Provider whose ID tokens credgate trusts (its `iss`, e.g.
    /// `https://example.okta.com`): apps acting for a person send that person's token in
    /// `X-Credgate-User-Token`, and the portal can sign operators in through it. Needs
    /// --oidc-audience. For several providers, use --oidc-config.
    #[arg(long, env = "CREDGATE_OIDC_ISSUER")]
    pub oidc_issuer: Option<String>,

    /// The audience (`aud`) the issuer's tokens must name: the client id apps get tokens for.
    #[arg(long, env = "CREDGATE_OIDC_AUDIENCE")]
    pub oidc_audience: Option<String>,

    /// The claim listing a user's groups. [default: groups]
    #[arg(long, env = "CREDGATE_OIDC_GROUPS_CLAIM")]
    pub oidc_groups_claim: Option<String>,

    /// Create a user principal the first time a token names an unknown user (`true`), or accept
    /// only users an operator created with that external id (`false`).
    #[arg(long, env = "CREDGATE_OIDC_PROVISION_USERS", default_value_t = true, action = clap::ArgAction::Set)]
    pub oidc_provision_users: bool,

    /// The portal's OAuth client id at the issuer: with it, the portal offers sign-in through
    /// the provider (authorization code with PKCE; the redirect URI is
    /// `<public url>/portal/oidc/callback`). A confidential client's secret goes in
    /// CREDGATE_OIDC_CLIENT_SECRET.
    #[arg(long, env = "CREDGATE_OIDC_CLIENT_ID")]
    pub oidc_client_id: Option<String>,

    /// The scopes the portal's sign-in asks the provider for, space-separated (add the one
    /// that puts groups in the ID token if the provider needs it, e.g. `groups`).
    /// [default: openid email profile]
    #[arg(long, env = "CREDGATE_OIDC_SCOPES")]
    pub oidc_scopes: Option<String>,

    /// Portal roles: `GROUP=SCOPE[,SCOPE…]` gives members of GROUP (as the groups claim names
    /// it) those admin scopes. Repeatable. A person in no such group cannot sign in.
    #[arg(long = "oidc-role", env = "CREDGATE_OIDC_ROLES", value_delimiter = ';')]
    pub oidc_roles: Vec<String>,

    /// JSON file of trusted issuers, instead of the --oidc-* flags:
    /// `{"issuers": [{"issuer", "audience", "groups_claim"?, "provision_users"?, "client_id"?,
    /// "roles"?: {"GROUP": ["SCOPE", …]}}]}`.
    #[arg(long, env = "CREDGATE_OIDC_CONFIG")]
    pub oidc_config: Option<PathBuf>,

    /// Seconds to let in-flight requests finish after SIGTERM or Ctrl-C.
    #[arg(long, env = "CREDGATE_SHUTDOWN_GRACE_SECONDS", default_value_t = 30)]
    pub shutdown_grace_seconds: u64,
}

const SERVE_ENV_HELP: &str = "\
Secrets are read from the environment only, never from flags:
  CREDGATE_MASTER_KEY     master key ring, base64 keys separated by commas, the first active;
                          takes precedence over --master-key-file
  CREDGATE_ADMIN_TOKEN    a bootstrap admin token chosen by the operator (16+ characters);
                          takes precedence over --admin-token-file
  CREDGATE_OIDC_CLIENT_SECRET
                          the portal's OAuth client secret at the OpenID Provider, for a
                          confidential client (with --oidc-client-id)

With neither a master key nor a key file, the first start generates <data-dir>/master.key
(mode 0600). That is for local use: in production supply the key from a secrets manager.";

impl ServeArgs {
    pub fn database_url(&self) -> DatabaseUrl {
        match &self.database_url {
            Some(url) => DatabaseUrl::new(url.clone()),
            None => DatabaseUrl::new(format!("sqlite:{}", self.data_dir.join("credgate.db").display())),
        }
    }

    /// The identity settings, checked.
    pub fn identity(&self) -> Result<crate::identity::config::IdentityConfig, String> {
        let flags = crate::identity::config::Flags {
            issuer: self.oidc_issuer.clone(),
            audience: self.oidc_audience.clone(),
            groups_claim: self.oidc_groups_claim.clone(),
            provision_users: self.oidc_provision_users,
            client_id: self.oidc_client_id.clone(),
            signin_scopes: self.oidc_scopes.clone(),
            roles: self.oidc_roles.clone(),
            config_file: self.oidc_config.clone(),
        };
        let secret = std::env::var("CREDGATE_OIDC_CLIENT_SECRET")
            .ok()
            .filter(|s| !s.is_empty())
            .map(crate::redact::SecretString::new);
        crate::identity::config::IdentityConfig::load(&flags, secret)
    }

    pub fn audit_archive_dir(&self) -> PathBuf {
        self.audit_archive_dir
            .clone()
            .unwrap_or_else(|| self.data_dir.join("audit-archive"))
    }

    pub fn audit_journal_dir(&self) -> PathBuf {
        self.audit_journal_dir
            .clone()
            .unwrap_or_else(|| self.data_dir.join("audit-journal"))
    }
}
