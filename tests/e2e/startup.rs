//! Starting, stopping and restarting: master keys, persistence, graceful shutdown.

use std::path::Path;

use base64::Engine;
use reqwest::StatusCode;
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::support::{Gateway, Options};

fn digest_dir(dir: &Path) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        // SQLite's `-shm` file is its shared-memory WAL index, rebuilt whenever the database
        // is opened, and an empty `-wal` is what opening leaves: neither holds data.
        .filter(|p| {
            p.is_file() && !p.to_string_lossy().ends_with("-shm") && std::fs::metadata(p).is_ok_and(|m| m.len() > 0)
        })
        .map(|p| {
            (
                p.file_name().unwrap().to_string_lossy().into_owned(),
                hex::encode(Sha256::digest(std::fs::read(&p).unwrap())),
            )
        })
        .collect();
    out.sort();
    out
}

fn key_b64(byte: u8) -> String {
    base64::engine::general_purpose::STANDARD.encode([byte; 32])
}

#[tokio::test]
async fn wrong_master_key_refuses_and_touches_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let right = vec![("CREDGATE_MASTER_KEY".to_owned(), key_b64(1))];
    let mut gw = Gateway::start_with(Options {
        data_dir: Some(data.clone()),
        env: right.clone(),
        ..Default::default()
    })
    .await
    .unwrap();
    let bot = gw.create_principal("agent", "bot").await;
    let sid = gw
        .create_secret(json!({"name": "s", "type": "bearer", "credential": {"token": "t"}, "allowed_hosts": ["x.com"]}))
        .await;
    let token = gw.admin_token.clone();
    assert!(gw.stop().unwrap().success(), "SIGTERM is a clean exit");
    let logs = gw.logs();
    assert!(logs.contains("stopped"), "{logs}");
    assert!(
        !logs.contains("did not finish"),
        "the audit writer ends with the server: {logs}"
    );
    let before = digest_dir(&data);

    let wrong = vec![("CREDGATE_MASTER_KEY".to_owned(), key_b64(2))];
    let failure = Gateway::start_with(Options {
        data_dir: Some(data.clone()),
        env: wrong,
        ..Default::default()
    })
    .await
    .err()
    .unwrap();
    assert_eq!(failure.status.unwrap().code(), Some(1));
    assert!(failure.output.contains("wrong master key"), "{}", failure.output);
    assert_eq!(digest_dir(&data), before, "a refused start changes no file");

    let malformed = vec![("CREDGATE_MASTER_KEY".to_owned(), "not base64!".to_owned())];
    let failure = Gateway::start_with(Options {
        data_dir: Some(data.clone()),
        env: malformed,
        ..Default::default()
    })
    .await
    .err()
    .unwrap();
    assert!(failure.output.contains("CREDGATE_MASTER_KEY"), "{}", failure.output);

    let gw = Gateway::start_with(Options {
        data_dir: Some(data),
        env: right,
        ..Default::default()
    })
    .await
    .unwrap();
    assert_eq!(gw.admin_token, token, "the saved token still works after a restart");
    assert_eq!(gw.get(&format!("/admin/v1/principals/{bot}")).await.json["name"], "bot");
    assert_eq!(gw.get(&format!("/admin/v1/secrets/{sid}")).await.json["version"], 1);
    assert!(
        !gw.logs().contains("shown this once"),
        "the token is printed on the first start only"
    );
}

#[tokio::test]
async fn quickstart_generates_a_private_key_and_token_once() {
    use std::os::unix::fs::PermissionsExt;
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let mut gw = Gateway::start_with(Options {
        data_dir: Some(data.clone()),
        ..Default::default()
    })
    .await
    .unwrap();
    let logs = gw.logs();
    assert!(logs.contains("shown this once") && logs.contains(&gw.admin_token));
    assert!(logs.contains("generated a new master key for local use"), "{logs}");
    for file in ["master.key", "admin-token"] {
        let mode = std::fs::metadata(data.join(file)).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{file}");
    }
    assert_eq!(std::fs::metadata(&data).unwrap().permissions().mode() & 0o777, 0o700);
    gw.stop();
    let gw = Gateway::start_with(Options {
        data_dir: Some(data),
        ..Default::default()
    })
    .await
    .unwrap();
    assert!(!gw.logs().contains("generated a new master key"));
    assert_eq!(gw.get("/admin/v1/principals").await.status, StatusCode::OK);
}

#[tokio::test]
async fn keyring_rotation_survives_a_restart() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let mut gw = Gateway::start_with(Options {
        data_dir: Some(data.clone()),
        ..Default::default()
    })
    .await
    .unwrap();
    for i in 0..3 {
        gw.create_secret(json!({"name": format!("s{i}"), "type": "bearer", "credential": {"token": "t"}, "allowed_hosts": ["x.com"]})).await;
    }
    let before = gw.get("/admin/v1/keyring").await.json;
    let ca_before = gw.proxy_ca().await;
    let rotated = gw.post("/admin/v1/keyring/rotate", json!({})).await;
    assert_eq!(rotated.status, StatusCode::OK, "{}", rotated.text);
    // Three secrets and the forward-proxy CA's sealed key.
    assert_eq!(
        (rotated.json["rewrapped"].as_u64(), rotated.json["remaining"].as_i64()),
        (Some(4), Some(0))
    );
    assert_ne!(rotated.json["active_key_id"], before["active_key_id"]);
    let status = gw.get("/admin/v1/keyring").await.json;
    assert_eq!(status["keys"].as_array().unwrap().len(), 2);
    assert_eq!(status["pending_rewrap"], 0);
    let old_key = status["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["id"] == before["active_key_id"])
        .unwrap();
    assert_eq!(
        old_key["data_keys"], 0,
        "nothing, the CA's key included, is left under the old key"
    );
    gw.stop();
    let gw = Gateway::start_with(Options {
        data_dir: Some(data),
        ..Default::default()
    })
    .await
    .unwrap();
    assert_eq!(
        gw.get("/admin/v1/keyring").await.json["active_key_id"],
        rotated.json["active_key_id"]
    );
    let ca_after = gw.proxy_ca().await;
    assert_eq!(ca_after, ca_before, "the CA's key opens under the new master key");
    // An environment-supplied ring is the operator's: credgate will not rotate it.
    let env_gw = Gateway::start_with(Options {
        env: vec![("CREDGATE_MASTER_KEY".into(), key_b64(9))],
        ..Default::default()
    })
    .await
    .unwrap();
    env_gw
        .post("/admin/v1/keyring/rotate", json!({}))
        .await
        .assert_error(409, "conflict");
}

#[tokio::test]
async fn readiness_turns_off_while_draining() {
    let mut gw = Gateway::start().await;
    assert_eq!(
        gw.http
            .get(format!("{}/readyz", gw.base))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    let status = gw.stop().unwrap();
    assert!(status.success(), "{status:?}");
    assert!(gw.logs().contains("shutting down"));
}
