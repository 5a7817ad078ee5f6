//! The operator portal in a real browser: Debian's Chromium, driven headless by
//! `playwright-core` from `tests/portal/portal.test.mjs`, against this build's gateway.
//!
//! The script signs in, adds a template secret, issues a key and a grant, calls the data plane,
//! finds the call in the audit page, rotates, revokes, uploads providers, and checks that no
//! secret value reaches a page, a request made after creation, or browser storage. Screenshots
//! of every page land in `<target>/tmp/portal-screenshots` for review.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::plugins::fixtures;
use crate::support::Gateway;

fn portal_tests() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/portal")
}

fn chromium() -> String {
    let path = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    assert!(
        Path::new(&path).exists(),
        "the portal test needs Debian's Chromium at {path} (`apt-get install chromium`; .ci/run installs it)"
    );
    path
}

/// `npm ci` once per pinned `playwright-core` (the only dependency, no browser download).
fn node_modules() {
    crate::support::npm_ci(&portal_tests());
}

#[tokio::test]
async fn the_portal_manages_everything_in_a_real_browser() {
    let chromium = chromium();
    node_modules();
    let gw = Gateway::start().await;
    let tmp = tempfile::tempdir().unwrap();
    let bad = tmp.path().join("not-a-component.wasm");
    std::fs::write(&bad, b"this is not a WebAssembly component\n").unwrap();
    let shots = Path::new(env!("CARGO_TARGET_TMPDIR")).join("portal-screenshots");
    std::fs::create_dir_all(&shots).unwrap();

    let out = tokio::task::spawn_blocking(move || {
        Command::new("node")
            .arg(portal_tests().join("portal.test.mjs"))
            .env("CREDGATE_URL", &gw.base)
            .env("CREDGATE_ADMIN_TOKEN", &gw.admin_token)
            .env("CREDGATE_PROVIDER_WASM", fixtures::path("versioned-v2"))
            .env("CREDGATE_PROVIDER_ID", "acme-versioned")
            .env("CREDGATE_BAD_WASM", &bad)
            .env("SCREENSHOT_DIR", &shots)
            .env("CHROMIUM", &chromium)
            .output()
            .map(|out| (out, gw, shots))
    })
    .await
    .unwrap();
    let (out, gw, shots) = out.expect("node");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "the portal test failed:\n{stdout}\n{stderr}\ngateway log:\n{}",
        gw.logs()
    );
    assert!(stdout.contains("PASS"), "{stdout}");
    for page in [
        "signin",
        "secrets",
        "add-secret",
        "grants",
        "principals",
        "providers",
        "audit",
    ] {
        assert!(shots.join(format!("{page}.png")).exists(), "screenshot of {page}");
    }
    // The gateway's own log never carries a value the browser typed.
    let logs = gw.logs();
    assert!(!logs.contains("sk-canary-"), "{logs}");
}

/// Sign-in through a real OpenID Provider, in the browser: the provider's own page, roles from
/// its groups claim, the session cookie, CSRF, sign-out (`tests/portal/oidc.test.mjs`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operators_sign_in_through_the_identity_provider_in_a_real_browser() {
    let chromium = chromium();
    node_modules();
    let provider = crate::identity::Provider::start();
    let gw = Gateway::start_with(crate::support::Options {
        args: [
            "--oidc-issuer",
            &provider.issuer,
            "--oidc-audience",
            "credgate-app",
            "--oidc-client-id",
            "credgate-app",
            "--oidc-scopes",
            "openid email groups",
            "--oidc-role",
            "engineering=admin",
            "--oidc-role",
            "finance=audit:read",
        ]
        .map(str::to_owned)
        .to_vec(),
        env: vec![("CREDGATE_OIDC_CLIENT_SECRET".into(), "credgate-app-secret".into())],
        ..Default::default()
    })
    .await
    .expect("gateway starts");
    provider
        .control_with(
            "/__oidc/redirect-uris",
            serde_json::json!({"uris": [format!("{}/portal/oidc/callback", gw.base)]}),
        )
        .await;
    let shots = Path::new(env!("CARGO_TARGET_TMPDIR")).join("portal-screenshots");
    std::fs::create_dir_all(&shots).unwrap();
    let (base, issuer) = (gw.base.clone(), provider.issuer.clone());
    let out = tokio::task::spawn_blocking(move || {
        Command::new("node")
            .arg(portal_tests().join("oidc.test.mjs"))
            .env("CREDGATE_URL", &base)
            .env("OIDC_ISSUER", &issuer)
            .env("SCREENSHOT_DIR", &shots)
            .env("CHROMIUM", &chromium)
            .output()
    })
    .await
    .unwrap()
    .expect("node");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stdout.contains("PASS"),
        "the sign-in test failed:\n{stdout}\n{stderr}\ngateway log:\n{}",
        gw.logs()
    );
    // The client secret and the session never reach the gateway's log.
    assert!(!gw.logs().contains("credgate-app-secret"));
}
