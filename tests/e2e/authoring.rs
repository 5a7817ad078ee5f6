//! The template author's path, as a new author walks it: `credgate provider new` writes a crate
//! that passes its test and builds for the Wasm target as it is; the README's example builds
//! as written; `credgate provider check` dry-runs each, a signing one with a fixed clock and a
//! body, a minting one with a stand-in token answer.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use crate::support::BIN;

/// Where the authors' crates build: one target directory for all of them, kept across runs.
fn target_dir() -> PathBuf {
    PathBuf::from(std::env::var("HOME").unwrap_or_else(|_| ".".into())).join(".cache/credgate/authoring-target")
}

fn run(dir: &Path, program: &str, args: &[&str]) -> String {
    let out = Command::new(program)
        .args(args)
        .current_dir(dir)
        .env("CARGO_TARGET_DIR", target_dir())
        .output()
        .unwrap_or_else(|e| panic!("{program} {args:?}: {e}"));
    let text = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{program} {args:?} in {}:\n{text}", dir.display());
    text
}

/// Writes a template crate with `provider new`, runs its test, builds it; the component's path.
fn new_template(root: &Path, id: &str, flags: &[&str]) -> PathBuf {
    let dir = root.join(id);
    let mut args = vec!["provider", "new", id, "--dir", dir.to_str().unwrap()];
    args.extend(flags);
    run(root, BIN, &args);
    run(&dir, "cargo", &["test", "--quiet"]);
    build(&dir, id)
}

fn build(dir: &Path, id: &str) -> PathBuf {
    run(
        dir,
        "cargo",
        &["build", "--quiet", "--release", "--target", "wasm32-wasip2"],
    );
    target_dir().join(format!("wasm32-wasip2/release/{}.wasm", id.replace('-', "_")))
}

fn check(root: &Path, component: &Path, args: &[&str]) -> Value {
    let mut all = vec!["provider", "check", component.to_str().unwrap(), "--json"];
    all.extend(args);
    serde_json::from_str(&run(root, BIN, &all)).unwrap()
}

fn header<'a>(report: &'a Value, name: &str) -> Option<&'a str> {
    report["request"]["headers"]
        .as_array()?
        .iter()
        .filter_map(Value::as_str)
        .find_map(|line| line.strip_prefix(&format!("{name}: ")))
}

#[test]
fn new_templates_and_the_readme_example_build_and_dry_run_as_written() {
    let root = tempfile::tempdir().unwrap();
    let root = root.path();

    // A signing template: with the clock fixed and a body given, its signature is the HMAC a
    // verifier computes independently.
    let signing = new_template(root, "acme-signed", &["--signing"]);
    let body = root.join("body.json");
    std::fs::write(&body, br#"{"amount": 100}"#).unwrap();
    let report = check(
        root,
        &signing,
        &[
            "--credential",
            "key_id=k1",
            "--credential",
            "secret=test-secret",
            "--url",
            "https://api.example.com/v1/pay?x=1",
            "--method",
            "POST",
            "--body",
            body.to_str().unwrap(),
            "--now",
            "2026-12-06T18:00:00Z",
        ],
    );
    assert_eq!(report["contract"], "0.2.0");
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, b"test-secret");
    let expected = hex::encode(ring::hmac::sign(&key, br#"1796580000POST/v1/pay?x=1{"amount": 100}"#));
    assert_eq!(header(&report, "x-signature"), Some(expected.as_str()), "{report}");
    assert_eq!(header(&report, "x-timestamp"), Some("1796580000"));

    // A minting template: the token request is shown, never sent, and the stand-in answer's
    // token is what the request carries.
    let minting = new_template(root, "acme-minted", &["--minting"]);
    let report = check(
        root,
        &minting,
        &[
            "--credential",
            "client_id=c1",
            "--credential",
            "client_secret=s1",
            "--token-response",
            r#"{"access_token": "stand-in-token", "expires_in": 60}"#,
        ],
    );
    assert_eq!(report["token_request"]["url"], "https://auth.example.com/oauth/token");
    assert_eq!(report["minted"]["expires_in"], 60);
    assert_eq!(
        header(&report, "authorization"),
        Some("Bearer stand-in-token"),
        "{report}"
    );

    // The README's examples, as written, each in a crate `provider new` made.
    let readme = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../README.md")).unwrap();
    let section = &readme
        [readme.find("### Writing a provider plugin").unwrap()..readme.find("### The provider registry").unwrap()];
    let examples: Vec<&str> = section
        .split("```rust\n")
        .skip(1)
        .filter_map(|rest| rest.split("```").next())
        .collect();
    assert_eq!(examples.len(), 3, "plain, signing, minting");
    for example in examples {
        let id = example
            .split("Description::new(\"")
            .nth(1)
            .and_then(|rest| rest.split('"').next())
            .unwrap();
        let dir = root.join(format!("readme-{id}"));
        run(root, BIN, &["provider", "new", id, "--dir", dir.to_str().unwrap()]);
        std::fs::write(dir.join("src/lib.rs"), example).unwrap();
        let component = build(&dir, id);
        let (args, header_name, expected): (Vec<&str>, &str, String) = match id {
            "acme" => (
                vec![
                    "--credential",
                    "token=test-value",
                    "--url",
                    "https://api.acme.example/v1/things",
                ],
                "authorization",
                "Bearer test-value".into(),
            ),
            "acme-signed" => {
                let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, b"s3");
                (
                    vec![
                        "--credential",
                        "secret=s3",
                        "--method",
                        "POST",
                        "--url",
                        "https://api.acme.example/v1/pay",
                        "--body",
                        body.to_str().unwrap(),
                        "--now",
                        "2026-12-06T18:00:00Z",
                    ],
                    "x-signature",
                    hex::encode(ring::hmac::sign(&key, br#"1796580000POST/v1/pay{"amount": 100}"#)),
                )
            }
            "acme-minted" => (
                vec![
                    "--credential",
                    "client_id=c",
                    "--credential",
                    "client_secret=s",
                    "--token-response",
                    r#"{"access_token": "readme-token"}"#,
                ],
                "authorization",
                "Bearer readme-token".into(),
            ),
            other => panic!("an example the test does not know: {other}"),
        };
        let report = check(root, &component, &args);
        assert_eq!(header(&report, header_name), Some(expected.as_str()), "{id}: {report}");
    }
}
