//! The emulator's own HTTP surface: `POST /_sandbox/control` (merge patch + actions) and
//! `GET /_sandbox/calls`, and its per-token rate limit answering 429.

use serde_json::json;
use tokdrop_sandbox::{Calls, SandboxEndpoint};

use crate::sandbox_harness::{Env, fast_config};

/// A control patch changes knobs at runtime (here: an injected 503 and a rate limit), a typo
/// is refused with 400, and `/_sandbox/calls` shows fingerprints, never the token.
#[tokio::test]
async fn control_endpoint_changes_knobs() {
    let env = Env::logged_in(fast_config()).await;
    let http = crate::harness::http().build().expect("client");
    let base = env.sandbox.base_url().to_string();
    let answer = http
        .post(format!("{base}/_sandbox/control"))
        .json(&json!({"config": {
            "faults": [{"endpoint": "creator_info", "http_status": 503, "code": "internal_error"}],
            "rate_limits": {"creator_info": 1, "window_ms": 60000}
        }}))
        .send()
        .await
        .expect("control");
    assert_eq!(answer.status(), 200);
    let config: serde_json::Value = answer.json().await.expect("json");
    assert_eq!(config["rate_limits"]["creator_info"], 1);
    assert_eq!(config["rate_limits"]["init"], 6, "untouched knobs stay");
    assert_eq!(config["client_secret"], "[redacted]");

    let token = env.token().await;
    // 503 (injected before the rate gate, retried by the client), then ok: the ok call fills
    // the window of 1.
    env.client().creator_info(&token).await.expect("retried");
    let raw = http
        .post(format!("{base}{}", tokdrop::tiktok::wire::CREATOR_INFO))
        .bearer_auth(token.expose())
        .send()
        .await
        .expect("raw");
    assert_eq!(raw.status(), 429);
    let body: serde_json::Value = raw.json().await.expect("json");
    assert_eq!(body["error"]["code"], "rate_limit_exceeded");
    assert_eq!(body["data"], json!({}));
    assert!(
        body["error"]["log_id"]
            .as_str()
            .is_some_and(|l| l.len() > 14)
    );

    let typo = http
        .post(format!("{base}/_sandbox/control"))
        .json(&json!({"config": {"daily_cap": 1}}))
        .send()
        .await
        .expect("control");
    assert_eq!(typo.status(), 400);
    assert!(typo.text().await.expect("text").contains("daily_cap"));

    let calls: serde_json::Value = http
        .get(format!("{base}/_sandbox/calls"))
        .send()
        .await
        .expect("calls")
        .json()
        .await
        .expect("json");
    let creator: Vec<_> = calls["calls"]
        .as_array()
        .expect("calls")
        .iter()
        .filter(|c| c["endpoint"] == "creator_info")
        .map(|c| {
            (
                c["http_status"].as_u64(),
                c["code"].as_str().map(String::from),
            )
        })
        .collect();
    assert_eq!(
        creator,
        [
            (Some(503), Some("internal_error".into())),
            (Some(200), Some("ok".into())),
            (Some(429), Some("rate_limit_exceeded".into())),
        ]
    );
    assert_eq!(
        calls["calls"][0]["token_fingerprint"].as_str(),
        Some(token.fingerprint().as_str())
    );
    assert!(!calls.to_string().contains(token.expose()));
}

/// `reset_counters` frees the daily cap; `wait_until` sees changes without polling.
#[tokio::test]
async fn reset_counters_and_events() {
    let mut config = fast_config();
    config.daily_post_cap = 1;
    let env = Env::logged_in(config).await;
    let token = env.token().await;
    let body = json!({"post_info": {"privacy_level": "SELF_ONLY", "brand_content_toggle": false},
        "source_info": {"source": "FILE_UPLOAD", "video_size": 10, "chunk_size": 10, "total_chunk_count": 1}});
    let kind = tokdrop::tiktok::InitKind::Video;
    env.client().init(&token, kind, &body).await.expect("first");
    env.client()
        .init(&token, kind, &body)
        .await
        .expect_err("capped");
    env.sandbox
        .control(tokdrop_sandbox::Control {
            reset_counters: true,
            ..Default::default()
        })
        .expect("reset");
    env.client()
        .init(&token, kind, &body)
        .await
        .expect("after reset");
    let inits = env
        .until(|c: &Calls| (c.count(SandboxEndpoint::VideoInit) == 3).then(|| c.inits.clone()))
        .await;
    let codes: Vec<_> = inits.iter().map(|i| i.code.as_str()).collect();
    assert_eq!(codes, ["ok", "spam_risk_too_many_posts", "ok"]);
}

/// Shutdown stops the server: the next call cannot connect.
#[tokio::test]
async fn shutdown_stops_the_server() {
    let env = Env::logged_in(fast_config()).await;
    let token = env.token().await;
    let client = env.client().clone();
    let Env { sandbox, .. } = env;
    sandbox.shutdown().await;
    let err = client.creator_info(&token).await.expect_err("stopped");
    assert_eq!(err.code, tokdrop::tiktok::error::codes::CONNECTION);
}
