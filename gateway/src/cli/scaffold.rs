//! `credgate provider new`: a template crate that builds as it is written, the plugin SDK
//! vendored beside it (the contract's WIT included), so a new author starts from something that
//! compiles, passes its test and loads.

use std::path::{Path, PathBuf};

use super::{CliError, exit};

/// The SDK's sources, as this binary was built with them.
const SDK: &[(&str, &str)] = &[
    ("src/lib.rs", include_str!("../../../plugins/sdk/src/lib.rs")),
    ("src/types.rs", include_str!("../../../plugins/sdk/src/types.rs")),
    ("src/format.rs", include_str!("../../../plugins/sdk/src/format.rs")),
    ("src/runtime.rs", include_str!("../../../plugins/sdk/src/runtime.rs")),
    ("src/crypto.rs", include_str!("../../../plugins/sdk/src/crypto.rs")),
    ("src/encoding.rs", include_str!("../../../plugins/sdk/src/encoding.rs")),
    ("src/time.rs", include_str!("../../../plugins/sdk/src/time.rs")),
    ("src/mint.rs", include_str!("../../../plugins/sdk/src/mint.rs")),
    ("wit/provider.wit", include_str!("../../../wit/0.2/provider.wit")),
];

/// The linker flags every plugin needs (see plugins/.cargo/config.toml for why).
const CARGO_CONFIG: &str = include_str!("../../../plugins/.cargo/config.toml");

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum Kind {
    /// A stored key on a header.
    Plain,
    /// Each call signed with the host's HMAC over the time, the method, the path and the body.
    Signing,
    /// A token minted with the OAuth 2.0 client-credentials grant, then used as a Bearer token.
    Minting,
}

/// Writes the crate for template `id` into `dir`, which must not exist yet.
pub fn write(id: &str, kind: Kind, dir: &Path) -> Result<Vec<PathBuf>, CliError> {
    let valid = !id.is_empty()
        && id.len() <= 64
        && !id.starts_with('-')
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if !valid {
        return Err(CliError::new(
            exit::INVALID,
            "the id is lower-case letters, digits and `-` (it is also the secrets' type)",
        ));
    }
    if dir.exists() {
        return Err(CliError::new(
            exit::INVALID,
            format!("{} already exists; choose another directory with --dir", dir.display()),
        ));
    }
    let name: String = id
        .split('-')
        .map(|w| {
            let mut c = w.chars();
            c.next()
                .map(|f| f.to_uppercase().chain(c).collect::<String>())
                .unwrap_or_default()
        })
        .collect::<Vec<_>>()
        .join(" ");
    let source = match kind {
        Kind::Plain => include_str!("scaffold/plain.rs.txt"),
        Kind::Signing => include_str!("scaffold/signing.rs.txt"),
        Kind::Minting => include_str!("scaffold/minting.rs.txt"),
    };
    let mut files: Vec<(PathBuf, String)> = vec![
        (dir.join("Cargo.toml"), manifest(id)),
        (dir.join(".cargo/config.toml"), CARGO_CONFIG.to_owned()),
        (
            dir.join("src/lib.rs"),
            source.replace("{{id}}", id).replace("{{name}}", &name),
        ),
        (dir.join("credgate-plugin-sdk/Cargo.toml"), SDK_MANIFEST.to_owned()),
    ];
    for (path, text) in SDK {
        // The vendored SDK reads the contract from its own copy.
        let text = text.replace("path: \"../../wit/0.2\"", "path: \"wit\"");
        files.push((dir.join("credgate-plugin-sdk").join(path), text));
    }
    let mut written = Vec::new();
    for (path, text) in files {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|e| CliError::new(exit::FAILURE, format!("cannot create {}: {e}", parent.display())))?;
        }
        std::fs::write(&path, text)
            .map_err(|e| CliError::new(exit::FAILURE, format!("cannot write {}: {e}", path.display())))?;
        written.push(path);
    }
    Ok(written)
}

fn manifest(id: &str) -> String {
    format!(
        r#"[package]
name = "{id}"
version = "0.1.0"
edition = "2024"
publish = false

[lib]
crate-type = ["cdylib"]

[dependencies]
credgate-plugin-sdk = {{ path = "credgate-plugin-sdk" }}

# A crate of its own, not a member of any workspace it is created in.
[workspace]

[profile.release]
opt-level = "s"
lto = true
codegen-units = 1
strip = true
"#
    )
}

const SDK_MANIFEST: &str = r#"[package]
name = "credgate-plugin-sdk"
description = "Write credgate provider plugins (WebAssembly components) in Rust."
version = "1.0.0"
edition = "2024"
license = "Apache-2.0"
publish = false

[dependencies]
wit-bindgen = { version = "0.61", default-features = false, features = ["macros"] }
serde_json = { version = "1", default-features = false, features = ["alloc"] }

[features]
# Use the standard library (and WASI) instead of the SDK's no_std runtime.
std = ["wit-bindgen/std", "wit-bindgen/realloc"]
"#;
