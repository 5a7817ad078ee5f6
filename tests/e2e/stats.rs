//! `GET /admin/v1/stats`: every data-plane call counted, by outcome, provider and grant, in
//! time buckets, the same as the audit trail says.

use reqwest::Method;
use serde_json::{Value, json};

use crate::proxy::Fixture;
use crate::support::send;

fn totals(stats: &Value) -> Vec<(String, i64)> {
    stats["series"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["key"].as_str().unwrap().to_owned(), s["total"].as_i64().unwrap()))
        .collect()
}

#[tokio::test]
async fn stats_count_every_call_as_the_trail_records_it() {
    let f = Fixture::new().await;
    let (_, grant) = f.bearer_grant().await;
    let narrow_secret = f.secret("narrow", "bearer", json!({"token": "t"}), json!({})).await;
    let narrow = f.grant(&narrow_secret, json!({"allowed_methods": ["GET"]})).await;
    for _ in 0..3 {
        assert_eq!(
            send(f.gw.via_grant(Method::GET, &grant, "status/200").bearer_auth(&f.key))
                .await
                .status,
            200
        );
    }
    for _ in 0..2 {
        let r = send(f.gw.via_grant(Method::POST, &narrow, "x").bearer_auth(&f.key)).await;
        r.assert_error(403, "policy_violation");
    }
    let stranger = "cg_app_abcdefghijkm_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
    send(f.gw.via_grant(Method::GET, &grant, "status/200").bearer_auth(stranger))
        .await
        .assert_error(401, "unauthenticated");

    let stats = f.gw.get("/admin/v1/stats").await;
    assert_eq!(stats.status, 200, "{}", stats.text);
    let by_outcome = totals(&stats.json);
    assert_eq!(
        by_outcome,
        vec![
            ("ok".to_owned(), 3),
            ("policy_violation".to_owned(), 2),
            ("unauthenticated".to_owned(), 1)
        ],
        "{}",
        stats.text
    );
    assert_eq!(stats.json["total"], 6);
    assert_eq!(stats.json["by"], "outcome");
    assert_eq!(stats.json["bucket_seconds"], 720, "a day in about 120 buckets");
    assert_eq!(stats.json["now"]["max_in_flight"], 4096);
    assert_eq!(stats.json["now"]["in_flight"], 0);
    // The same as the trail: one record per call.
    let trail = f.gw.get("/admin/v1/audit?kind=proxy&limit=1000").await;
    let calls = trail.json["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["action"] == "proxy.request" || r["action"] == "proxy.response")
        .count();
    assert_eq!(calls, 6);

    // By grant (or for one) the counts are per hour: the range counted is widened to whole
    // hours, and the reply says so.
    let one_grant =
        f.gw.get(&format!("/admin/v1/stats?by=grant&grant_id={narrow}&bucket=3600"))
            .await;
    assert_eq!(totals(&one_grant.json), vec![(narrow.clone(), 2)], "{}", one_grant.text);
    let points = one_grant.json["series"][0]["points"].as_array().unwrap();
    assert!(
        points.iter().all(|p| p["at"].as_str().unwrap().ends_with(":00:00Z")),
        "hour buckets"
    );
    assert!(
        one_grant.json["from"].as_str().unwrap().ends_with(":00:00Z"),
        "{}",
        one_grant.text
    );
    let minutes = f.gw.get(&format!("/admin/v1/stats?grant_id={narrow}&bucket=60")).await;
    let message = minutes.assert_error(400, "bad_request");
    assert!(message.contains("multiple of 3600"), "{message}");
    // Without a bucket, one is chosen that the counts can answer.
    let by_principal = f.gw.get("/admin/v1/stats?by=principal").await;
    assert_eq!(by_principal.status, 200, "{}", by_principal.text);
    assert_eq!(by_principal.json["bucket_seconds"], 3600);
    assert_eq!(by_principal.json["total"], 6);
    let by_provider = totals(&f.gw.get("/admin/v1/stats?by=provider").await.json);
    assert!(by_provider.contains(&("bearer".to_owned(), 3)), "{by_provider:?}");

    for bad in [
        "bucket=61",
        "bucket=0",
        "from=2026-12-02T00:00:00Z&to=2026-12-01T00:00:00Z",
        "from=2026-01-01T00:00:00Z&to=2026-12-01T00:00:00Z",
        "by=host",
        "nonsense=1",
    ] {
        f.gw.get(&format!("/admin/v1/stats?{bad}"))
            .await
            .assert_error(400, "bad_request");
    }
}
