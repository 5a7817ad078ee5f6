//! Governed calls end to end: rate limits and quotas on grants (one process on SQLite, three
//! replicas on PostgreSQL), and the reason and context an app gives for a call.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::proxy::Fixture;
use crate::support::{Gateway, Options, Reply, replicas_on_postgres, send};
use crate::upstream::Upstream;

/// `n` calls at once through `gateways` in turn; the statuses in order.
async fn burst(gateways: &[&Gateway], key: &str, grant: &str, target: &str, n: usize) -> Vec<Reply> {
    let calls = (0..n).map(|i| {
        let gw = gateways[i % gateways.len()];
        send(gw.proxy(Method::GET, Some(key), grant, target))
    });
    futures_util::future::join_all(calls).await
}

fn count(replies: &[Reply], status: u16) -> usize {
    replies.iter().filter(|r| r.status.as_u16() == status).count()
}

fn metric(text: &str, name: &str, outcome: &str) -> f64 {
    text.lines()
        .filter(|l| l.starts_with(name) && l.contains(&format!("outcome=\"{outcome}\"")))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

fn total(text: &str, name: &str) -> f64 {
    text.lines()
        .find(|l| l.starts_with(name) && !l.starts_with('#'))
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
        .unwrap_or(0.0)
}

#[tokio::test]
async fn a_burst_past_a_rate_limit_admits_exactly_the_limit_on_sqlite() {
    let f = Fixture::new().await;
    let secret = f.secret("limited", "bearer", json!({"token": "t"}), json!({})).await;
    // Ten calls, then one every six minutes: none comes due during the test.
    let grant = f
        .grant(&secret, json!({"rate_limit": {"requests": 10, "per_seconds": 3600}}))
        .await;
    let target = format!("{}/status/200", f.up.url);
    let replies = burst(&[&f.gw], &f.key, &grant, &target, 25).await;
    let tally = Tally::of(&replies);
    tally.assert_exactly(10, "exactly the limit is admitted");
    assert_eq!(tally.limited, 15, "{tally:?}");
    assert!(f.up.count() <= 10, "nothing past the limit reaches the upstream");
    let refused = replies
        .iter()
        .find(|r| r.status == StatusCode::TOO_MANY_REQUESTS)
        .unwrap();
    let message = refused.assert_error(429, "rate_limited");
    assert!(message.contains("10 calls per 3600 s"), "{message}");
    let retry: u64 = refused.headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!(
        (300..=360).contains(&retry),
        "the next token is due in at most 360 s: {retry}"
    );
    // Refusals are audited and counted.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let audit =
        f.gw.get(&format!("/admin/v1/audit?grant_id={grant}&outcome=rate_limited"))
            .await;
    assert_eq!(audit.json["data"].as_array().unwrap().len(), 15);
    assert_eq!(audit.json["data"][0]["status"], 429);
    let metrics = f.gw.metrics().await;
    assert_eq!(metric(&metrics, "credgate_calls_total", "rate_limited"), 15.0);
    assert_eq!(
        total(&metrics, "credgate_limit_leases_total"),
        0.0,
        "one process counts in memory"
    );
    // A quota under the same kind of burst: exactly its calls.
    let quota = f
        .grant(&secret, json!({"quota": {"calls": 7, "period": "total"}}))
        .await;
    let replies = burst(&[&f.gw], &f.key, &quota, &target, 20).await;
    let tally = Tally::of(&replies);
    tally.assert_exactly(7, "exactly the quota is admitted");
    assert_eq!(tally.limited, 13, "{tally:?}");
    // A grant without limits beside it is untouched.
    let free = f.grant(&secret, json!({})).await;
    let replies = burst(&[&f.gw], &f.key, &free, &target, 20).await;
    assert_eq!(count(&replies, 200), 20);
    // The admin API shows the bucket.
    let shown = f.gw.get(&format!("/admin/v1/grants/{grant}")).await;
    assert_eq!(shown.json["usage"]["rate_limit"]["available"], 0, "{}", shown.text);
    assert_eq!(shown.json["grant_policy"]["rate_limit"]["requests"], 10);
    assert!(
        f.gw.get(&format!("/admin/v1/grants/{free}"))
            .await
            .json
            .get("usage")
            .is_none()
    );
}

#[tokio::test]
async fn a_quota_is_spent_refused_with_its_reset_time_and_starts_over_next_period() {
    let f = Fixture::new().await;
    let secret = f.secret("quota", "bearer", json!({"token": "t"}), json!({})).await;
    let grant = f.grant(&secret, json!({"quota": {"calls": 5, "period": "hour"}})).await;
    let call = || send(f.gw.via_grant(Method::GET, &grant, "status/200").bearer_auth(&f.key));
    for _ in 0..5 {
        assert_eq!(call().await.status, 200);
    }
    let refused = call().await;
    let message = refused.assert_error(429, "quota_exceeded");
    assert!(
        message.contains("quota of 5 calls an hour is spent; it resets at"),
        "{message}"
    );
    let retry: u64 = refused.headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=3600).contains(&retry), "{retry}");
    assert_eq!(f.up.count(), 5);
    let usage = f.gw.get(&format!("/admin/v1/grants/{grant}")).await.json["usage"]["quota"].clone();
    assert_eq!(usage["used"], 5, "{usage}");
    assert_eq!(usage["remaining"], 0);
    assert_eq!(usage["period"], "hour");
    let resets: chrono::DateTime<chrono::Utc> = usage["resets_at"].as_str().unwrap().parse().unwrap();
    assert!(message.contains(&resets.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)));

    // The hour ends: here, by moving the recorded period an hour back in the database, as if
    // the five calls had been made in the last one.
    let url = format!("sqlite:{}", f.gw.data_dir.join("credgate.db").display());
    let db = sqlx::SqlitePool::connect(&url).await.unwrap();
    let moved = sqlx::query("UPDATE grant_limits SET at = at - 3600000000 WHERE grant_id = $1 AND kind = 'quota'")
        .bind(&grant)
        .execute(&db)
        .await
        .unwrap();
    assert_eq!(moved.rows_affected(), 1);
    db.close().await;
    // A process that found the quota spent asks the database again after a second.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(call().await.status, 200, "a new period starts over");
    assert_eq!(f.up.count(), 6);
    let usage = f.gw.get(&format!("/admin/v1/grants/{grant}")).await.json["usage"]["quota"].clone();
    assert_eq!(usage["used"], 1, "{usage}");
}

#[tokio::test]
async fn bad_limits_are_refused_when_the_grant_is_issued() {
    let f = Fixture::new().await;
    let secret = f.secret("s", "bearer", json!({"token": "t"}), json!({})).await;
    for (policy, says) in [
        (
            json!({"rate_limit": {"requests": 0, "per_seconds": 1}}),
            "rate_limit.requests",
        ),
        (
            json!({"rate_limit": {"requests": 1, "per_seconds": 86401}}),
            "rate_limit.per_seconds",
        ),
        (json!({"rate_limit": {"requests": 1}}), "per_seconds"),
        (json!({"quota": {"calls": 0, "period": "day"}}), "quota.calls"),
        (json!({"quota": {"calls": 5, "period": "week"}}), "period"),
    ] {
        let r =
            f.gw.post(
                &format!("/admin/v1/secrets/{secret}/grants"),
                json!({"principal_id": f.agent, "grant_policy": policy}),
            )
            .await;
        let message = r.assert_error(400, "bad_request");
        assert!(message.contains(says), "{policy}: {message}");
    }
}

/// Bursts of calls a second and a half apart (long enough for idle slices to go back) until
/// two in a row admit nothing: how many were admitted, and the last burst's replies.
async fn drain_with_last(gateways: &[&Gateway], key: &str, grant: &str, target: &str) -> (Tally, Vec<Reply>) {
    let mut tally = Tally::default();
    let mut empty = 0;
    for _ in 0..8 {
        tokio::time::sleep(Duration::from_millis(1600)).await;
        let replies = burst(gateways, key, grant, target, 30).await;
        let now = Tally::of(&replies);
        tally.add(&now);
        // Twice in a row: a slice a replica gives back while a burst runs may reach the row
        // only after the other replicas found it empty (they ask again a second later).
        empty = if now.ok + now.other == 0 { empty + 1 } else { 0 };
        if empty == 2 {
            return (tally, replies);
        }
    }
    panic!("calls were still admitted after eight bursts");
}

async fn drain(gateways: &[&Gateway], key: &str, grant: &str, target: &str) -> Tally {
    drain_with_last(gateways, key, grant, target).await.0
}

/// Replies by kind: answered, refused by a limit, and anything else (a call under heavy load
/// may fail after its limit admitted it, e.g. with `audit_unavailable`; or before).
#[derive(Debug, Default, Clone, Copy)]
struct Tally {
    ok: usize,
    limited: usize,
    other: usize,
}

impl Tally {
    fn of(replies: &[Reply]) -> Self {
        let mut t = Self::default();
        for r in replies {
            match r.status.as_u16() {
                200 => t.ok += 1,
                429 => t.limited += 1,
                _ => t.other += 1,
            }
        }
        t
    }

    fn add(&mut self, other: &Self) {
        self.ok += other.ok;
        self.limited += other.limited;
        self.other += other.other;
    }

    /// The limit, exactly: never more answered than it allows, and every unit it allows
    /// used by some call (answered, or failed for another reason after it was admitted).
    fn assert_exactly(&self, limit: usize, what: &str) {
        assert!(
            self.ok <= limit && self.ok + self.other >= limit,
            "{what}: {self:?} against {limit}"
        );
    }
}

#[tokio::test]
async fn three_replicas_on_postgresql_hold_one_rate_limit_and_one_quota() {
    let Some(replicas) = replicas_on_postgres(3).await else {
        return;
    };
    let gateways: Vec<&Gateway> = replicas.iter().collect();
    let up = Upstream::start().await;
    let gw = gateways[0];
    let agent = gw.create_principal("agent", "governed").await;
    let (_, key) = gw.issue_key(&agent).await;
    let secret = gw
        .create_secret(json!({"name": "shared", "type": "bearer", "credential": {"token": "t"},
            "config": {"base_url": up.url}, "allow_private_destinations": true, "allow_insecure_http": true}))
        .await;
    let target = format!("{}/status/200", up.url);

    // A rate limit of 160 a day: no token comes due during the test.
    let rate = gw
        .issue_grant(
            &secret,
            &agent,
            json!({"rate_limit": {"requests": 160, "per_seconds": 86400}}),
        )
        .await;
    let first = Tally::of(&burst(&gateways, &key, &rate, &target, 240).await);
    // Slices move tokens between replicas, never make them: nothing over the limit. What the
    // replicas still hold unused when the burst ends (at most 3 × 10) is admitted later.
    assert!(first.ok <= 160, "{first:?}");
    assert!(first.ok + first.other >= 130, "{first:?}");
    // Slices idle for a second go back to the row, for any replica to use: bursts a second
    // and a half apart use up what is left, to the token.
    let mut overall = first;
    overall.add(&drain(&gateways, &key, &rate, &target).await);
    overall.assert_exactly(160, "the rate limit across the bursts");
    let leases: f64 = {
        let mut sum = 0.0;
        for gw in &gateways {
            sum += total(&gw.metrics().await, "credgate_limit_leases_total");
        }
        sum
    };
    // Most calls are admitted from a slice in memory, with no database round trip.
    assert!(leases < 160.0 / 2.0, "{leases} leases for 160 calls");

    // A quota of 50 in all: never exceeded, whichever replica is asked.
    let quota = gw
        .issue_grant(&secret, &agent, json!({"quota": {"calls": 50, "period": "total"}}))
        .await;
    let before = up.count();
    let first = Tally::of(&burst(&gateways, &key, &quota, &target, 90).await);
    assert!(first.ok <= 50 && first.ok + first.other >= 40, "{first:?}");
    let (rest, last) = drain_with_last(&gateways, &key, &quota, &target).await;
    let mut overall = first;
    overall.add(&rest);
    overall.assert_exactly(50, "the quota across the bursts");
    assert!(up.count() - before <= 50, "the upstream saw no more than the quota");
    let refused = last.iter().find(|r| r.status == StatusCode::TOO_MANY_REQUESTS).unwrap();
    let message = refused.assert_error(429, "quota_exceeded");
    assert!(message.contains("does not reset"), "{message}");
    assert!(refused.headers.get("retry-after").is_none());
    // Every replica reports the same usage once slices are back, and it adds up.
    tokio::time::sleep(Duration::from_millis(1600)).await;
    let mut seen = Vec::new();
    for gw in &gateways {
        let usage: Value = gw.get(&format!("/admin/v1/grants/{quota}")).await.json["usage"]["quota"].clone();
        let (used, remaining) = (usage["used"].as_u64().unwrap(), usage["remaining"].as_u64().unwrap());
        assert_eq!((used, remaining), (50, 0), "{usage}");
        seen.push(used);
    }
    assert!(seen.windows(2).all(|w| w[0] == w[1]), "{seen:?}");
}

#[tokio::test]
async fn reason_and_context_are_audited_filterable_and_never_forwarded() {
    let f = Fixture::new().await;
    let (_, grant) = f.bearer_grant().await;
    let context = json!({"ticket": "T-42", "agent_run": 7});
    let r = send(
        f.gw.via_grant(Method::POST, &grant, "anything")
            .bearer_auth(&f.key)
            .header("x-credgate-reason", "Refund order 1009 (customer asked)")
            .header("x-credgate-context", context.to_string())
            .body("{}"),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let seen = f.up.last();
    assert!(seen.header("x-credgate-reason").is_none() && seen.header("x-credgate-context").is_none());
    let request_id = r.headers["x-credgate-request-id"].to_str().unwrap();
    let record = f.gw.audit_of(request_id).await.pop().unwrap();
    assert_eq!(record["reason"], "Refund order 1009 (customer asked)");
    assert_eq!(record["context"], context);

    // The filters find it, and only it.
    let other = send(
        f.gw.via_grant(Method::GET, &grant, "status/200")
            .bearer_auth(&f.key)
            .header("x-credgate-reason", "read the orders")
            .header("x-credgate-context", r#"{"ticket": "T-43"}"#),
    )
    .await;
    assert_eq!(other.status, 200);
    tokio::time::sleep(Duration::from_millis(300)).await;
    for (query, expected) in [
        ("reason=REFUND", 1),
        ("reason=order", 2),
        ("context.ticket=T-42", 1),
        ("context.agent_run=7&reason=refund", 1),
        ("context.ticket=T-4", 0),
    ] {
        let found = f.gw.get(&format!("/admin/v1/audit?{query}")).await;
        assert_eq!(found.status, 200, "{query}: {}", found.text);
        assert_eq!(found.json["data"].as_array().unwrap().len(), expected, "{query}");
    }
    f.gw.get("/admin/v1/audit?context.bad%20key=x")
        .await
        .assert_error(400, "bad_request");
    f.gw.get("/admin/v1/audit?nonsense=1")
        .await
        .assert_error(400, "bad_request");

    // Malformed or over-size: refused before anything is sent.
    let before = f.up.count();
    for (name, value, says) in [
        ("x-credgate-reason", "x".repeat(257), "at most 256"),
        (
            "x-credgate-context",
            r#"["not", "an object"]"#.to_owned(),
            "JSON object",
        ),
        ("x-credgate-context", "{broken".to_owned(), "not valid JSON"),
        (
            "x-credgate-context",
            format!(r#"{{"k": "{}"}}"#, "v".repeat(4100)),
            "at most 4096",
        ),
    ] {
        let r = send(
            f.gw.via_grant(Method::GET, &grant, "status/200")
                .bearer_auth(&f.key)
                .header(name, value),
        )
        .await;
        let message = r.assert_error(400, "bad_request");
        assert!(message.contains(says), "{message}");
    }
    assert_eq!(f.up.count(), before);

    // A caller without a valid key writes nothing of its own into the trail.
    let r = send(
        f.gw.via_grant(Method::GET, &grant, "status/200")
            .bearer_auth("cg_app_notarealkey_000000000000000000000000000000000000000000")
            .header("x-credgate-reason", "stranger-text-in-the-trail"),
    )
    .await;
    r.assert_error(401, "unauthenticated");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let trail = f.gw.get("/admin/v1/audit?limit=1000").await;
    assert!(!trail.text.contains("stranger-text-in-the-trail"));
}

/// The canary sweep for governed calls: a credential behind a rate limit and a quota, calls
/// admitted and refused, reasons and contexts that carry the app key.
#[tokio::test]
async fn the_canary_never_leaves_through_governed_calls() {
    let canary = format!("canary-{}", uuid::Uuid::new_v4().simple());
    let f = Fixture::with(Options {
        log: Some("debug".into()),
        ..Default::default()
    })
    .await;
    let secret = f.secret("c", "bearer", json!({"token": canary}), json!({})).await;
    let grant = f
        .grant(
            &secret,
            json!({"rate_limit": {"requests": 3, "per_seconds": 3600}, "quota": {"calls": 2, "period": "day"}}),
        )
        .await;
    let mut responses = Vec::new();
    for i in 0..5 {
        let r = send(
            f.gw.via_grant(Method::GET, &grant, "status/200")
                .bearer_auth(&f.key)
                .header("x-credgate-reason", format!("call {i}"))
                .header("x-credgate-context", r#"{"k": "v"}"#),
        )
        .await;
        responses.push(format!("{:?}\n{}", r.headers, r.text));
    }
    assert!(responses[2].contains("quota_exceeded"), "{}", responses[2]);
    // A reason or context carrying a credgate key is refused, not recorded.
    for (name, value) in [
        ("x-credgate-reason", format!("debugging with {}", f.key)),
        ("x-credgate-context", format!(r#"{{"key": "{}"}}"#, f.key)),
    ] {
        let r = send(
            f.gw.via_grant(Method::GET, &grant, "status/200")
                .bearer_auth(&f.key)
                .header(name, value),
        )
        .await;
        assert!(
            r.assert_error(400, "bad_request")
                .contains("must not carry a credgate key")
        );
        responses.push(r.text);
    }
    responses.push(f.gw.get(&format!("/admin/v1/grants/{grant}")).await.text);
    crate::containment::assert_canary_nowhere(&f, &canary, &responses).await;
    let trail = f.gw.get("/admin/v1/audit?limit=1000").await;
    assert!(!trail.text.contains(&f.key), "the app key is not in the trail");
    assert_eq!(
        f.up.last().header("authorization").as_deref(),
        Some(format!("Bearer {canary}").as_str())
    );
}
