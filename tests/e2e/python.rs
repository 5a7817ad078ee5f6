//! The Python SDK's own suite (pytest, `sdk/python/tests`), run against this build's gateway
//! binary and real peers, and the test peers' own suites (`tests/peers`: pytest, and
//! `node --test` for the OpenID Provider), so the one test command covers them too.
//!
//! The virtual environment is built once per set of pinned requirements, in
//! `~/.cache/credgate/python-<hash>`, and reused.

use std::path::{Path, PathBuf};
use std::process::Command;

use sha2::{Digest, Sha256};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

pub(crate) fn venv() -> PathBuf {
    let sdk = root().join("sdk/python");
    let mut hash = Sha256::new();
    for file in ["requirements-test.txt", "pyproject.toml"] {
        hash.update(std::fs::read(sdk.join(file)).unwrap());
    }
    let key = hex::encode(&hash.finalize()[..6]);
    let cache = PathBuf::from(std::env::var("HOME").unwrap_or_else(|_| ".".into())).join(".cache/credgate");
    let venv = cache.join(format!("python-{key}"));
    let python = venv.join("bin/python");
    if python.exists() && venv.join(".complete").exists() {
        return venv;
    }
    std::fs::create_dir_all(&cache).unwrap();
    let lock = cache.join(format!("python-{key}.lock"));
    if std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&lock)
        .is_err()
    {
        // Another test process is building it.
        for _ in 0..900 {
            if venv.join(".complete").exists() {
                return venv;
            }
            std::thread::sleep(std::time::Duration::from_secs(1));
        }
    }
    let run = |cmd: &mut Command, what: &str| {
        let status = cmd
            .status()
            .unwrap_or_else(|e| panic!("{what}: {e} (is python3 with venv and pip installed?)"));
        assert!(status.success(), "{what} failed");
    };
    let _ = std::fs::remove_dir_all(&venv);
    run(
        Command::new("python3").args(["-m", "venv"]).arg(&venv),
        "python3 -m venv",
    );
    run(
        Command::new(&python)
            .args(["-m", "pip", "install", "-q", "-r"])
            .arg(sdk.join("requirements-test.txt")),
        "pip install -r sdk/python/requirements-test.txt",
    );
    run(
        Command::new(&python)
            .args(["-m", "pip", "install", "-q", "-e"])
            .arg(&sdk),
        "pip install -e sdk/python",
    );
    std::fs::write(venv.join(".complete"), b"").unwrap();
    let _ = std::fs::remove_file(&lock);
    venv
}

#[test]
fn the_python_sdk_suite_passes() {
    let venv = venv();
    let s3s = crate::support::tool_from_crates_io("s3s-fs", "0.14.1", &["--features", "binary"]);
    let mut cmd = Command::new(venv.join("bin/python"));
    cmd.args(["-m", "pytest", "-q", "-p", "no:cacheprovider"])
        .current_dir(root().join("sdk/python"))
        .env("CREDGATE_BIN", crate::support::BIN)
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .env("CREDGATE_TEST_S3S_FS", s3s)
        .env("CREDGATE_TEST_POSTGRES_URL", crate::support::postgres_base_url());
    let out = cmd.output().expect("run pytest");
    let text = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "the Python suite failed:\n{text}");
    // Nothing may skip quietly; the only allowed skip is PostgreSQL turned off explicitly.
    let skipping_postgres = std::env::var("CREDGATE_TEST_SKIP_POSTGRES").is_ok_and(|v| v == "1");
    assert!(
        text.contains(" passed") && (skipping_postgres || !text.contains(" skipped")),
        "{text}"
    );
}

/// The test peers' own tests: the exchange peer accepts what ccxt signs and refuses tampered,
/// stale and forged requests, and the token server issues tokens to the real clients (Authlib,
/// google-auth, PyJWT) and refuses bad ones, so their verdicts on credgate (signing.rs,
/// minting.rs) mean something.
#[test]
fn the_test_peers_check_what_real_clients_send() {
    let out = Command::new(venv().join("bin/python"))
        .args(["-m", "pytest", "-q", "-p", "no:cacheprovider"])
        .args(["test_exchange_oracle.py", "test_token_server.py"])
        .current_dir(root().join("tests/peers"))
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .output()
        .expect("run pytest");
    let text = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && text.contains(" passed") && !text.contains(" skipped"),
        "{text}"
    );
}

/// The OpenID Provider peer (oidc-provider, `tests/peers/oidc`): a scripted login gets real ID
/// tokens with the groups claim, key rotation and group changes show in the next token. Its
/// own `node --test` suite, run here so the one test command covers it.
#[test]
fn the_openid_provider_peer_issues_the_tokens_its_tests_expect() {
    let dir = root().join("tests/peers/oidc");
    crate::support::npm_ci(&dir);
    let out = Command::new("node")
        .args(["--test", "test.mjs"])
        .current_dir(&dir)
        .output()
        .expect("run node --test");
    let text = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && text.contains("# pass") && text.contains("# fail 0"),
        "{text}"
    );
}
