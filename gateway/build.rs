//! Builds the provider plugins (and the test components) for `wasm32-wasip2` with a
//! cargo of their own and a target directory of their own, then writes `bundled.rs`, which
//! embeds the bundled components in the binary.
//!
//! Cargo reruns this only when `wit/`, `plugins/`, the test components or the migrations
//! change, so a plain build of the gateway stays quick when no plugin changed.

use std::path::{Path, PathBuf};
use std::process::Command;

const TARGET: &str = "wasm32-wasip2";

fn main() {
    let manifest_dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR"));
    let root = manifest_dir.parent().expect("workspace root").to_owned();
    let out_dir = PathBuf::from(std::env::var("OUT_DIR").expect("OUT_DIR"));
    for path in ["wit", "plugins", "tests/fixtures/components"] {
        println!("cargo:rerun-if-changed={}", root.join(path).display());
    }
    // `sqlx::migrate!` reads the migration directories when the crate compiles; a new file
    // alone would not make cargo compile it again.
    println!("cargo:rerun-if-changed={}", manifest_dir.join("migrations").display());
    // OUT_DIR is <target>/<profile>/build/<pkg>-<hash>/out: keep the components beside it,
    // in one place that survives across builds of the gateway.
    let wasm_target = out_dir.ancestors().nth(4).unwrap_or(&out_dir).join("wasm-components");

    ensure_target();
    let providers = build(&root.join("plugins"), &wasm_target);
    let fixtures = build(&root.join("tests/fixtures/components"), &wasm_target);

    let mut bundled = String::from(
        "/// Components embedded in the binary: (crate name, bytes).\npub const BUNDLED: &[(&str, &[u8])] = &[\n",
    );
    for (name, path) in &providers {
        bundled.push_str(&format!(
            "    ({name:?}, include_bytes!({:?})),\n",
            path.display().to_string()
        ));
    }
    bundled.push_str("];\n");
    std::fs::write(out_dir.join("bundled.rs"), bundled).expect("write bundled.rs");
    let mut list = String::from(
        "/// Test components (hostile ones, versioned ones): (crate name, path).\npub const FIXTURES: &[(&str, &str)] = &[\n",
    );
    for (name, path) in &fixtures {
        list.push_str(&format!("    ({name:?}, {:?}),\n", path.display().to_string()));
    }
    list.push_str("];\n");
    std::fs::write(out_dir.join("fixtures.rs"), list).expect("write fixtures.rs");
}

/// Makes sure the Rust standard library for the Wasm target is installed.
fn ensure_target() {
    let installed = || {
        Command::new(std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into()))
            .args(["--print", "target-libdir", "--target", TARGET])
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()))
            .is_some_and(|dir| dir.exists())
    };
    if installed() {
        return;
    }
    let added = Command::new("rustup")
        .args(["target", "add", TARGET])
        .status()
        .is_ok_and(|s| s.success());
    if !added || !installed() {
        panic!("the {TARGET} target is missing and could not be installed; run: rustup target add {TARGET}");
    }
}

/// Builds every member of the workspace at `dir`; returns (crate name, .wasm path) sorted.
fn build(dir: &Path, target_dir: &Path) -> Vec<(String, PathBuf)> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(dir)
        .args(["build", "--release", "--workspace", "--target", TARGET])
        .env("CARGO_TARGET_DIR", target_dir);
    // Settings meant for the gateway's own build must not leak into the Wasm build.
    for var in [
        "RUSTFLAGS",
        "CARGO_ENCODED_RUSTFLAGS",
        "CARGO_BUILD_TARGET",
        "CARGO_BUILD_RUSTFLAGS",
        "RUSTC_WORKSPACE_WRAPPER",
    ] {
        cmd.env_remove(var);
    }
    let status = cmd.status().expect("run cargo for the Wasm components");
    assert!(
        status.success(),
        "building the Wasm components in {} failed",
        dir.display()
    );

    let release = target_dir.join(TARGET).join("release");
    let mut out = Vec::new();
    let metadata = std::fs::read_to_string(dir.join("Cargo.toml")).expect("workspace manifest");
    for member in members(dir, &metadata) {
        let manifest = std::fs::read_to_string(member.join("Cargo.toml")).expect("member manifest");
        if !manifest.contains("cdylib") {
            continue;
        }
        let name = package_name(&manifest);
        let path = release.join(format!("{}.wasm", name.replace('-', "_")));
        assert!(path.exists(), "{} was not built", path.display());
        out.push((name, path));
    }
    out.sort();
    out
}

/// The member directories of a workspace manifest (`members = [...]`, with `dir/*` globs).
fn members(dir: &Path, manifest: &str) -> Vec<PathBuf> {
    let list = manifest
        .split("members")
        .nth(1)
        .and_then(|s| s.split(']').next())
        .unwrap_or_default();
    let mut out = Vec::new();
    for entry in list
        .split(',')
        .map(|s| s.trim().trim_matches(|c| c == '[' || c == '=' || c == ' ' || c == '"'))
    {
        let entry = entry.trim().trim_matches('"');
        if entry.is_empty() {
            continue;
        }
        if let Some(parent) = entry.strip_suffix("/*") {
            let mut found: Vec<PathBuf> = std::fs::read_dir(dir.join(parent))
                .map(|rd| {
                    rd.filter_map(Result::ok)
                        .map(|e| e.path())
                        .filter(|p| p.join("Cargo.toml").exists())
                        .collect()
                })
                .unwrap_or_default();
            found.sort();
            out.extend(found);
        } else {
            out.push(dir.join(entry));
        }
    }
    out
}

fn package_name(manifest: &str) -> String {
    manifest
        .lines()
        .find_map(|l| {
            l.trim()
                .strip_prefix("name")
                .map(|rest| rest.trim_start_matches([' ', '=']).trim().trim_matches('"').to_owned())
        })
        .expect("package name")
}
