//! What a secret type asks of a secret: its credential fields, its config keys, where it
//! sends by default. Every type describes itself this way, native injectors and provider
//! templates alike, so the admin API, the CLI and the portal read one shape for both.

use serde::Serialize;
use utoipa::ToSchema;

/// One credential field or config key of a type.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct FieldSpec {
    pub name: String,
    pub label: String,
    pub help: String,
    pub required: bool,
    /// A required credential field that may be empty (Basic's password, for APIs that take
    /// the key as the username). Templates cannot ask for this.
    pub allow_empty: bool,
    /// `text`, `url`, `host`, `label` or `json`.
    pub kind: String,
    pub allowed_values: Vec<String>,
    pub default_value: Option<String>,
}

impl FieldSpec {
    /// A text field, as native types declare theirs.
    pub fn text(name: &str, label: &str, required: bool, help: &str) -> Self {
        Self {
            name: name.into(),
            label: label.into(),
            help: help.into(),
            required,
            allow_empty: false,
            kind: "text".into(),
            allowed_values: Vec::new(),
            default_value: None,
        }
    }
}

/// A type's description, as the admin API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct ProviderDescription {
    pub id: String,
    pub display_name: String,
    /// A template's own version; `native` for the injectors built into credgate.
    pub version: String,
    pub credential_fields: Vec<FieldSpec>,
    pub open_credential_fields: bool,
    /// Config keys besides `base_url`, which every type takes.
    pub config_fields: Vec<FieldSpec>,
    pub base_url: String,
    pub default_hosts: Vec<String>,
    pub docs_url: String,
    /// What of the request body the injector reads before it runs (a signer's).
    #[serde(skip_serializing_if = "BodyAccess::is_none")]
    pub body: BodyAccess,
    /// Environment variables the provider's SDKs read the key from, which `credgate run`
    /// sets to a placeholder.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub env: Vec<String>,
    /// Hosts a minting template's token requests may go to (`{name}` from config; a URL
    /// field gives its host and port). Empty for every type that mints nothing.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub token_hosts: Vec<String>,
}

/// What of the request body an injector reads: the data plane then buffers it (bounded)
/// instead of streaming it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum BodyAccess {
    /// Nothing: the body streams through.
    #[default]
    None,
    /// Its digest.
    Digest(BodyHash),
    /// The bytes themselves, up to this many.
    Bytes(u64),
}

impl BodyAccess {
    pub fn is_none(&self) -> bool {
        *self == Self::None
    }
}

/// A body digest's hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum BodyHash {
    Sha256,
    Sha512,
}

impl ProviderDescription {
    /// A native type's description: fields only, no base URL or default hosts of its own.
    pub fn native(
        id: &str,
        display_name: &str,
        credential_fields: Vec<FieldSpec>,
        config_fields: Vec<FieldSpec>,
    ) -> Self {
        Self {
            id: id.into(),
            display_name: display_name.into(),
            version: super::NATIVE_VERSION.into(),
            credential_fields,
            open_credential_fields: false,
            config_fields,
            base_url: String::new(),
            default_hosts: Vec::new(),
            docs_url: String::new(),
            body: BodyAccess::None,
            env: Vec::new(),
            token_hosts: Vec::new(),
        }
    }

    pub fn credential_field(&self, name: &str) -> Option<&FieldSpec> {
        self.credential_fields.iter().find(|f| f.name == name)
    }
}
