//! One compiled, checked plugin, ready to run: compiled once, pre-instantiated, and given a
//! fresh store and instance for every call, so nothing carries from one caller's request to
//! the next.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use sha2::{Digest, Sha256};
use wasmtime::Store;
use wasmtime::component::Component;

use super::bindings::{self, Pair, ProviderPre, v0_1};
use super::engine::PluginEngine;
use super::sandbox::Sandbox;
use crate::inject::{self, BodyAccess, BodyHash, FieldSpec, ProviderDescription};

/// After this many failures in a row a plugin is reported as failing repeatedly.
const REPEATED_FAILURES: u64 = 3;

#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum PluginError {
    /// Not a component, or not one that compiles here.
    #[error("the component cannot be compiled: {0}")]
    Compile(String),
    /// It does not fit the contract: missing exports, imports the host does not offer, a
    /// description that does not hold together.
    #[error("the component does not implement credgate:provider@0.2.0 or @0.1.0: {0}")]
    Contract(String),
    #[error("the plugin ran past its deadline")]
    Timeout,
    #[error("the plugin ran out of memory")]
    OutOfMemory,
    #[error("the plugin exhausted its stack")]
    StackOverflow,
    #[error("the plugin trapped: {0}")]
    Trap(String),
    /// The operator switched this provider off.
    #[error("the provider is disabled")]
    Disabled,
    /// The plugin refused, with its own typed error.
    #[error("{0}")]
    Refused(String),
}

fn kind_name(kind: bindings::ValueKind) -> &'static str {
    match kind {
        bindings::ValueKind::Text => "text",
        bindings::ValueKind::Url => "url",
        bindings::ValueKind::Host => "host",
        bindings::ValueKind::Label => "label",
        bindings::ValueKind::Json => "json",
    }
}

fn field(f: bindings::Field) -> FieldSpec {
    FieldSpec {
        name: f.name,
        label: f.label,
        help: f.help,
        required: f.required,
        allow_empty: false,
        kind: kind_name(f.kind).into(),
        allowed_values: f.allowed_values,
        default_value: f.default_value,
    }
}

fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !id.starts_with('-')
}

fn valid_field_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// The host's copy of what a component says of itself, checked: an id of its own (never a
/// native type's), short names, and placeholders that name config fields.
fn description_from_wit(d: bindings::Description, max_body_bytes: u64) -> Result<ProviderDescription, PluginError> {
    let bad = |why: String| PluginError::Contract(format!("its description is invalid: {why}"));
    if !valid_id(&d.id) {
        return Err(bad("the id must be lower-case letters, digits and `-`".into()));
    }
    if inject::is_native(&d.id) {
        return Err(bad(format!("the id `{}` is a native type", d.id)));
    }
    if d.display_name.trim().is_empty()
        || d.display_name.len() > 100
        || d.version.trim().is_empty()
        || d.version.len() > 64
    {
        return Err(bad("display name and version must be non-empty and short".into()));
    }
    let description = ProviderDescription {
        id: d.id,
        display_name: d.display_name,
        version: d.version,
        credential_fields: d.credential_fields.into_iter().map(field).collect(),
        open_credential_fields: d.open_credential_fields,
        config_fields: d.config_fields.into_iter().map(field).collect(),
        base_url: d.base_url,
        default_hosts: d.default_hosts,
        docs_url: d.docs_url,
        body: match d.body {
            bindings::BodyAccess::None => BodyAccess::None,
            bindings::BodyAccess::Digest(bindings::HashAlgorithm::Sha1) => {
                return Err(bad("a body digest is SHA-256 or SHA-512".into()));
            }
            bindings::BodyAccess::Digest(bindings::HashAlgorithm::Sha256) => BodyAccess::Digest(BodyHash::Sha256),
            bindings::BodyAccess::Digest(bindings::HashAlgorithm::Sha512) => BodyAccess::Digest(BodyHash::Sha512),
            bindings::BodyAccess::Bytes(most) if u64::from(most) > max_body_bytes => {
                return Err(bad(format!(
                    "it asks for up to {most} bytes of the body; a plugin may ask for at most {max_body_bytes} (a quarter of its memory)"
                )));
            }
            bindings::BodyAccess::Bytes(most) => BodyAccess::Bytes(u64::from(most)),
        },
        env: d.env,
        token_hosts: d.token_hosts,
    };
    let env_name = |n: &String| {
        !n.is_empty()
            && n.len() <= 64
            && n.bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
    };
    if description.env.len() > 16 || !description.env.iter().all(env_name) {
        return Err(bad(
            "env lists at most 16 variable names of upper-case letters, digits and `_`".into(),
        ));
    }
    if let Some(name) = description.env.iter().find(|n| inject::reserved_env(n)) {
        return Err(bad(format!(
            "env names `{name}`, which `credgate run` sets itself or a shell or runtime reads: only variables that hold a key may be named"
        )));
    }
    for host in &description.token_hosts {
        let bare = host.replace(['{', '}'], "");
        if host.is_empty() || host.len() > 253 || bare.contains(['/', '?', '#', '@', ' ']) {
            return Err(bad(format!(
                "token host `{}` is not a host pattern",
                host.chars().take(100).collect::<String>()
            )));
        }
    }
    for f in description.credential_fields.iter().chain(&description.config_fields) {
        if !valid_field_name(&f.name) {
            return Err(bad(format!(
                "field name `{}` is not a valid name",
                f.name.chars().take(64).collect::<String>()
            )));
        }
    }
    if description.config_fields.iter().any(|f| f.name == "base_url") {
        return Err(bad(
            "`base_url` is a config key every secret has; a template cannot declare it".into(),
        ));
    }
    for template in std::iter::once(&description.base_url)
        .chain(&description.default_hosts)
        .chain(&description.token_hosts)
    {
        // A token host may name the secret's own base URL (its host and port).
        let base_url_allowed = description.token_hosts.contains(template);
        for name in inject::placeholders(template).map_err(bad)? {
            if !(description.config_fields.iter().any(|f| f.name == name) || base_url_allowed && name == "base_url") {
                return Err(bad(format!(
                    "`{template}` uses `{{{name}}}`, which is not a config field"
                )));
            }
        }
    }
    Ok(description)
}

/// A component pre-linked against the contract it implements.
enum Contract {
    V0_2(ProviderPre<Sandbox>),
    V0_1(v0_1::ProviderPre<Sandbox>),
}

impl Contract {
    /// The newest contract the component implements.
    fn of(instance_pre: wasmtime::component::InstancePre<Sandbox>) -> Result<Self, PluginError> {
        let newest = match ProviderPre::new(instance_pre.clone()) {
            Ok(pre) => return Ok(Self::V0_2(pre)),
            Err(e) => e,
        };
        v0_1::ProviderPre::new(instance_pre)
            .map(Self::V0_1)
            .map_err(|_| PluginError::Contract(one_line(&newest)))
    }

    pub fn version(&self) -> &'static str {
        match self {
            Self::V0_2(_) => "0.2.0",
            Self::V0_1(_) => "0.1.0",
        }
    }
}

/// A plugin ready to run.
pub struct LoadedPlugin {
    engine: Arc<PluginEngine>,
    pre: Contract,
    pub description: ProviderDescription,
    /// SHA-256 of the component's bytes, hex.
    pub digest: String,
    pub size: usize,
    consecutive_failures: AtomicU64,
}

impl std::fmt::Debug for LoadedPlugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoadedPlugin")
            .field("id", &self.description.id)
            .field("digest", &self.digest)
            .finish_non_exhaustive()
    }
}

type Credentials<'a> = &'a [Pair];

/// Says in words what the first eight bytes show, before the compiler's own (byte-dump) errors:
/// not WebAssembly at all, or a core module where a component is needed.
fn check_header(bytes: &[u8]) -> Result<(), PluginError> {
    const MAGIC: &[u8] = b"\0asm";
    if bytes.len() < 8 || &bytes[..4] != MAGIC {
        return Err(PluginError::Compile(
            "the file is not WebAssembly (it does not start with the `\\0asm` magic bytes)".into(),
        ));
    }
    if bytes[4..8] == [1, 0, 0, 0] {
        return Err(PluginError::Compile(
            "the file is a core WebAssembly module, not a component: build it for `wasm32-wasip2` with the plugin SDK"
                .into(),
        ));
    }
    Ok(())
}

/// An error chain as one line: operators read it in an API response, a page or a log line.
fn one_line(e: &wasmtime::Error) -> String {
    format!("{e:#}").split_whitespace().collect::<Vec<_>>().join(" ")
}

impl LoadedPlugin {
    /// Compiles `bytes` (on a blocking thread: it takes tens of milliseconds), links it against
    /// the host (refusing imports the host does not offer) and reads its description under
    /// the sandbox limits. Nothing is registered here; an error leaves everything as it was.
    pub async fn load(engine: &Arc<PluginEngine>, bytes: Vec<u8>) -> Result<Self, PluginError> {
        let digest = hex::encode(Sha256::digest(&bytes));
        let size = bytes.len();
        check_header(&bytes)?;
        let compiling = engine.clone();
        let pre = tokio::task::spawn_blocking(move || {
            let component =
                Component::new(&compiling.engine, &bytes).map_err(|e| PluginError::Compile(one_line(&e)))?;
            let instance_pre = compiling
                .linker
                .instantiate_pre(&component)
                .map_err(|e| PluginError::Contract(one_line(&e)))?;
            Contract::of(instance_pre)
        })
        .await
        .map_err(|e| PluginError::Compile(format!("compilation panicked: {e}")))??;
        let mut plugin = Self {
            engine: engine.clone(),
            pre,
            description: ProviderDescription {
                id: String::new(),
                display_name: String::new(),
                version: String::new(),
                credential_fields: Vec::new(),
                open_credential_fields: false,
                config_fields: Vec::new(),
                base_url: String::new(),
                default_hosts: Vec::new(),
                docs_url: String::new(),
                body: BodyAccess::None,
                env: Vec::new(),
                token_hosts: Vec::new(),
            },
            digest,
            size,
            consecutive_failures: AtomicU64::new(0),
        };
        let mut store = plugin.store();
        let described = async {
            match &plugin.pre {
                Contract::V0_2(pre) => pre.instantiate_async(&mut store).await?.call_describe(&mut store).await,
                Contract::V0_1(pre) => Ok(v0_1::description(
                    pre.instantiate_async(&mut store)
                        .await?
                        .call_describe(&mut store)
                        .await?,
                )),
            }
        }
        .await;
        let described = plugin.settle(described, &store)?;
        plugin.description = description_from_wit(described, engine.limits.memory_bytes as u64 / 4)?;
        Ok(plugin)
    }

    /// The contract version the component implements: `0.2.0` or `0.1.0`.
    pub fn contract(&self) -> &'static str {
        self.pre.version()
    }

    /// A fresh store for one call: its own instance, the memory cap and the deadline.
    fn store(&self) -> Store<Sandbox> {
        let mut store = Store::new(
            &self.engine.engine,
            Sandbox::new(self.engine.limits.memory_bytes).with_clock(self.engine.limits.fixed_clock),
        );
        store.limiter(|sandbox| sandbox);
        store.set_epoch_deadline(self.engine.deadline_ticks());
        store.epoch_deadline_trap();
        store
    }

    /// Classifies a failed call, counts failures in a row, and reports a plugin that keeps
    /// failing.
    fn settle<R>(&self, result: wasmtime::Result<R>, store: &Store<Sandbox>) -> Result<R, PluginError> {
        match result {
            Ok(value) => {
                self.consecutive_failures.store(0, Ordering::Relaxed);
                Ok(value)
            }
            Err(e) => {
                let error = classify(&e, store.data().hit_memory_limit);
                let failures = self.consecutive_failures.fetch_add(1, Ordering::Relaxed) + 1;
                let id = if self.description.id.is_empty() {
                    "<loading>"
                } else {
                    &self.description.id
                };
                if failures >= REPEATED_FAILURES {
                    tracing::error!(plugin = id, failures, error = %error, "plugin fails repeatedly");
                } else {
                    tracing::warn!(plugin = id, error = %error, "plugin call failed");
                }
                Err(error)
            }
        }
    }

    pub async fn validate(&self, credential: Credentials<'_>, config: &[Pair]) -> Result<(), PluginError> {
        let mut store = self.store();
        let result = async {
            match &self.pre {
                Contract::V0_2(pre) => {
                    let provider = pre.instantiate_async(&mut store).await?;
                    provider.call_validate(&mut store, credential, config).await
                }
                Contract::V0_1(pre) => {
                    let provider = pre.instantiate_async(&mut store).await?;
                    let mut old = v0_1::pairs(credential);
                    let result = provider.call_validate(&mut store, &old, &v0_1::pairs(config)).await;
                    zeroize_values(old.iter_mut().map(|p| &mut p.value));
                    Ok(result?.map_err(v0_1::error))
                }
            }
        }
        .await;
        self.settle(result, &store)?.map_err(|e| refusal(e, credential))
    }

    pub async fn inject(
        &self,
        request: &bindings::Request,
        credential: Credentials<'_>,
        config: &[Pair],
    ) -> Result<bindings::Edits, PluginError> {
        let mut store = self.store();
        let result = async {
            match &self.pre {
                Contract::V0_2(pre) => {
                    let provider = pre.instantiate_async(&mut store).await?;
                    provider.call_inject(&mut store, request, credential, config).await
                }
                Contract::V0_1(pre) => {
                    let provider = pre.instantiate_async(&mut store).await?;
                    let mut old = v0_1::pairs(credential);
                    let result = provider
                        .call_inject(&mut store, &v0_1::request(request), &old, &v0_1::pairs(config))
                        .await;
                    zeroize_values(old.iter_mut().map(|p| &mut p.value));
                    Ok(result?.map(v0_1::edits).map_err(v0_1::error))
                }
            }
        }
        .await;
        self.settle(result, &store)?.map_err(|e| refusal(e, credential))
    }

    /// The token request `mint` describes, or none (a template that mints nothing; every 0.1
    /// component).
    pub async fn mint(
        &self,
        credential: Credentials<'_>,
        config: &[Pair],
    ) -> Result<Option<bindings::TokenRequest>, PluginError> {
        let Contract::V0_2(pre) = &self.pre else {
            return Ok(None);
        };
        let mut store = self.store();
        let result = async {
            let provider = pre.instantiate_async(&mut store).await?;
            provider.call_mint(&mut store, credential, config).await
        }
        .await;
        self.settle(result, &store)?.map_err(|e| refusal(e, credential))
    }

    /// What the template reads from the token endpoint's answer.
    pub async fn accept(
        &self,
        response: &bindings::TokenResponse,
        credential: Credentials<'_>,
        config: &[Pair],
    ) -> Result<bindings::Minted, PluginError> {
        let Contract::V0_2(pre) = &self.pre else {
            return Err(PluginError::Refused(
                "unsupported: a 0.1 component mints nothing".into(),
            ));
        };
        let mut store = self.store();
        let result = async {
            let provider = pre.instantiate_async(&mut store).await?;
            provider.call_accept(&mut store, response, credential, config).await
        }
        .await;
        self.settle(result, &store)?.map_err(|e| refusal(e, credential))
    }

    pub fn consecutive_failures(&self) -> u64 {
        self.consecutive_failures.load(Ordering::Relaxed)
    }
}

/// The copies of credential values made for a 0.1 call, wiped after it.
fn zeroize_values<'a>(values: impl Iterator<Item = &'a mut String>) {
    use zeroize::Zeroize;
    for value in values {
        value.zeroize();
    }
}

/// The plugin's own error, with any credential value it might quote cut out: a plugin cannot
/// leak a value through its error message.
impl PluginError {
    /// A fixed text per kind of failure, with nothing the plugin produced: what the app and
    /// the audit trail are told. (A plugin's message could carry a credential reversed,
    /// hex-encoded or in part, which no redaction can recognise.)
    pub fn summary(&self) -> &'static str {
        match self {
            Self::Compile(_) | Self::Contract(_) => "the provider's component cannot be used",
            Self::Timeout => "the plugin ran past its deadline",
            Self::OutOfMemory => "the plugin ran out of memory",
            Self::StackOverflow => "the plugin exhausted its stack",
            Self::Trap(_) => "the plugin trapped",
            Self::Disabled => "the provider is disabled",
            Self::Refused(m) if m.starts_with("invalid config") => "the plugin refused the secret's config",
            Self::Refused(m) if m.starts_with("invalid credential") => "the plugin refused the credential",
            Self::Refused(_) => "the plugin does not support this request",
        }
    }
}

fn refusal(error: bindings::Error, credential: Credentials<'_>) -> PluginError {
    let (kind, message) = match error {
        bindings::Error::InvalidConfig(m) => ("invalid config", m),
        bindings::Error::InvalidCredential(m) => ("invalid credential", m),
        bindings::Error::Unsupported(m) => ("unsupported", m),
    };
    let mut message: String = message.chars().take(500).filter(|c| !c.is_control()).collect();
    for pair in credential {
        if pair.value.len() >= 4 && message.contains(&pair.value) {
            message = "(the plugin's message quoted a credential value and was withheld)".into();
        }
    }
    PluginError::Refused(format!("{kind}: {message}"))
}

fn classify(e: &wasmtime::Error, hit_memory_limit: bool) -> PluginError {
    match e.downcast_ref::<wasmtime::Trap>() {
        Some(wasmtime::Trap::Interrupt) => PluginError::Timeout,
        Some(wasmtime::Trap::StackOverflow) => PluginError::StackOverflow,
        _ if hit_memory_limit => PluginError::OutOfMemory,
        Some(trap) => PluginError::Trap(trap.to_string()),
        None => PluginError::Trap(format!("{e}")),
    }
}
