//! The CLI against a real gateway: the README walkthrough, values never on argv, exit codes.

use crate::support::Gateway;

#[tokio::test]
async fn walkthrough_and_exit_codes() {
    let gw = Gateway::start().await;
    let run = |args: &[&str], stdin: Option<&str>| gw.cli(args, stdin);

    let created = run(
        &[
            "principal",
            "create",
            "--kind",
            "agent",
            "--name",
            "support-bot",
            "--json",
        ],
        None,
    );
    assert_eq!(created.code, 0, "{created:?}");
    let bot: serde_json::Value = serde_json::from_str(&created.stdout).unwrap();
    let bot = bot["id"].as_str().unwrap().to_owned();

    let table = run(&["principal", "list"], None);
    assert!(
        table.stdout.starts_with("ID") && table.stdout.contains("support-bot"),
        "{table:?}"
    );

    let key = run(&["key", "issue", &bot, "--name", "laptop", "--ttl", "1h"], None);
    assert_eq!(key.code, 0, "{key:?}");
    assert!(key.stdout.contains("cg_app_") && key.stderr.contains("shown this once"));

    // The value comes from stdin, not argv.
    let secret = run(
        &[
            "secret",
            "create",
            "--name",
            "OpenAI",
            "--type",
            "bearer",
            "--config",
            "base_url=https://api.openai.com/v1",
            "--json",
        ],
        Some("sk-from-stdin\n"),
    );
    assert_eq!(secret.code, 0, "{secret:?}");
    let secret: serde_json::Value = serde_json::from_str(&secret.stdout).unwrap();
    let sid = secret["id"].as_str().unwrap().to_owned();
    assert_eq!(secret["allowed_hosts"], serde_json::json!(["api.openai.com"]));

    // From a file, as a JSON object of fields.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("cred.json");
    std::fs::write(&file, r#"{"username": "api", "password": "pw"}"#).unwrap();
    let basic = run(
        &[
            "secret",
            "create",
            "--name",
            "Mailgun",
            "--type",
            "basic",
            "--allowed-host",
            "api.mailgun.net",
            "--from-file",
            file.to_str().unwrap(),
        ],
        None,
    );
    assert_eq!(basic.code, 0, "{basic:?}");

    let grant = run(
        &[
            "grant",
            "issue",
            &sid,
            "--principal",
            &bot,
            "--ttl",
            "7d",
            "--method",
            "POST",
            "--path-prefix",
            "/v1/chat",
            "--json",
        ],
        None,
    );
    assert_eq!(grant.code, 0, "{grant:?}");
    let grant: serde_json::Value = serde_json::from_str(&grant.stdout).unwrap();
    assert_eq!(
        grant["grant_policy"]["allowed_path_prefixes"],
        serde_json::json!(["/v1/chat"])
    );
    let gid = grant["grant_id"].as_str().unwrap();
    assert!(run(&["grant", "list", "--status", "active"], None).stdout.contains(gid));
    assert_eq!(run(&["secret", "rotate", &sid], Some("sk-rotated")).code, 0);
    assert!(run(&["secret", "show", &sid], None).stdout.contains("version"));
    assert_eq!(run(&["grant", "revoke", gid], None).code, 0);
    assert!(run(&["grant", "show", gid], None).stdout.contains("revoked"));

    let audit = run(&["audit", "list", "--action", "grant.revoke"], None);
    assert!(audit.stdout.contains("grant.revoke"), "{audit:?}");
    let export = run(&["audit", "export"], None);
    assert!(export.stdout.lines().count() >= 7);
    let verify = run(&["audit", "verify", "--json"], None);
    assert_eq!(verify.code, 0, "{verify:?}");
    let report: serde_json::Value = serde_json::from_str(&verify.stdout).unwrap();
    let checkpoint = format!("{}:{}", report["head_seq"], report["head_hash"].as_str().unwrap());
    let from = run(&["audit", "verify", "--from", &checkpoint], None);
    assert_eq!(from.code, 0, "{from:?}");
    assert_eq!(run(&["audit", "verify", "--from", "12"], None).code, 6);
    assert_eq!(run(&["keyring", "status"], None).code, 0);

    // Exit codes scripts can rely on.
    let ghost = uuid::Uuid::new_v4().to_string();
    assert_eq!(run(&["secret", "show", &ghost], None).code, 4);
    assert_eq!(
        run(
            &["principal", "create", "--kind", "agent", "--name", "support-bot"],
            None
        )
        .code,
        5
    );
    let invalid = run(&["secret", "create", "--name", "x", "--type", "bearer"], Some("t"));
    assert_eq!(invalid.code, 6, "{invalid:?}");
    assert!(invalid.stderr.contains("allowed_hosts"));
    assert_eq!(run(&["principal", "frobnicate"], None).code, 2);
    let mut unauth = std::process::Command::new(crate::support::BIN);
    unauth
        .args(["principal", "list"])
        .env("CREDGATE_ADDR", &gw.base)
        .env("CREDGATE_ADMIN_TOKEN", "wrong-token-wrong-token");
    assert_eq!(unauth.output().unwrap().status.code(), Some(3));
    let mut unreachable = std::process::Command::new(crate::support::BIN);
    unreachable
        .args(["principal", "list"])
        .env("CREDGATE_ADDR", "http://127.0.0.1:9")
        .env("CREDGATE_ADMIN_TOKEN", "x".repeat(20));
    assert_eq!(unreachable.output().unwrap().status.code(), Some(7));
}
