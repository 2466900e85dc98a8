//! The admin listener of the running service: `/metrics` changes as items pass through (a
//! success, a failure, a pause), `/healthz` turns 503 while a worker is stuck and back to 200
//! when it moves again, and neither is answered on the public media port.

use std::time::{Duration, Instant};

use crate::harness::free_port;
use crate::service::{Running, start_full};

async fn get(url: &str) -> (u16, String) {
    let r = crate::harness::http()
        .build()
        .expect("client")
        .get(url)
        .send()
        .await
        .expect("the admin listener answers");
    let status = r.status().as_u16();
    (status, r.text().await.expect("body"))
}

/// The value of the sample `name{labels}` (exact label text) in a scrape, if present.
fn sample(scrape: &str, series: &str) -> Option<f64> {
    scrape.lines().find_map(|l| {
        let rest = l.strip_prefix(series)?;
        rest.strip_prefix(' ')?.trim().parse().ok()
    })
}

/// Polls `url` until `want` holds (the service changes state on its own time).
async fn until(url: &str, what: &str, want: impl Fn(u16, &str) -> bool) -> (u16, String) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (status, body) = get(url).await;
        if want(status, &body) {
            return (status, body);
        }
        assert!(
            Instant::now() < deadline,
            "{what}; last answer {status}:\n{body}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn start_admin(
    envs: &[(&str, String)],
    tune: impl FnOnce(&mut tokdrop_sandbox::SandboxConfig),
) -> (Running, String) {
    let port = free_port();
    let extra = format!("admin: {{listen: 127.0.0.1:{port}}}\n");
    let r = start_full(&extra, "", tune, envs).await;
    (r, format!("http://127.0.0.1:{port}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_follow_items_through_success_failure_and_pause() {
    let (r, admin) = start_admin(&[], |c| c.daily_post_cap = 2).await;
    let inbox = r.d.path("inbox").display().to_string();
    let published =
        format!("tokdrop_items_total{{folder=\"{inbox}\",status=\"published\",reason=\"\"}}");
    let failed = format!(
        "tokdrop_items_total{{folder=\"{inbox}\",status=\"failed\",reason=\"picture_size_check_failed\"}}"
    );
    let depth = format!("tokdrop_queue_depth{{folder=\"{inbox}\"}}");
    // The folders are listed once the service has started.
    let (status, before) = until(&format!("{admin}/metrics"), "no queue depth", |_, b| {
        b.contains(&depth)
    })
    .await;
    assert_eq!(status, 200);
    assert!(before.contains("tokdrop_build_info{version=\""), "{before}");
    assert_eq!(sample(&before, &published), None, "{before}");
    assert_eq!(
        sample(
            &before,
            &format!("tokdrop_queue_depth{{folder=\"{inbox}\"}}")
        ),
        Some(0.0),
        "{before}"
    );
    assert!(
        sample(
            &before,
            "tokdrop_access_token_expiry_seconds{account=\"default\"}"
        )
        .is_some_and(|s| s > 0.0),
        "{before}"
    );

    r.d.copy_sample("h264_faststart.mp4", "inbox/clip.mp4");
    let text = r.finished("clip.mp4", 60);
    assert!(text.contains("status: published"), "{text}");
    let (_, after) = get(&format!("{admin}/metrics")).await;
    assert_eq!(sample(&after, &published), Some(1.0), "{after}");
    assert!(
        sample(&after, "tokdrop_served_bytes_total").is_some_and(|b| b >= 5145.0),
        "TikTok's pull is counted: {after}"
    );
    assert_eq!(
        sample(&after, "tokdrop_pulls_in_flight"),
        Some(0.0),
        "{after}"
    );
    assert_eq!(
        sample(&after, "tokdrop_claim_to_init_seconds_count"),
        Some(1.0),
        "{after}"
    );
    assert_eq!(
        sample(&after, "tokdrop_init_to_terminal_seconds_count"),
        Some(1.0),
        "{after}"
    );
    assert_eq!(
        sample(&after, "tokdrop_pull_duration_seconds_count"),
        Some(1.0),
        "{after}"
    );
    assert_eq!(
        sample(
            &after,
            "tokdrop_tiktok_requests_total{endpoint=\"video/init\",code=\"ok\"}"
        ),
        Some(1.0),
        "{after}"
    );
    assert!(
        sample(
            &after,
            "tokdrop_last_success_timestamp_seconds{account=\"default\"}"
        )
        .is_some_and(|t| t > 1.7e9),
        "{after}"
    );

    r.emu
        .set(|c| c.fail_next_posts = vec!["picture_size_check_failed".into()]);
    r.d.copy_sample("photo.jpg", "inbox/big.jpg");
    let text = r.finished("big.jpg", 60);
    assert!(text.contains("status: failed"), "{text}");
    let (_, after) = get(&format!("{admin}/metrics")).await;
    assert_eq!(sample(&after, &failed), Some(1.0), "{after}");
    assert_eq!(sample(&after, &published), Some(1.0), "{after}");

    // The daily cap (2 posts) is reached: the account pauses, the item waits.
    r.d.copy_sample("photo.jpg", "inbox/third.jpg");
    let (_, paused) = until(
        &format!("{admin}/metrics"),
        "the pause never showed",
        |_, b| b.contains("tokdrop_account_paused{account=\"default\""),
    )
    .await;
    assert!(
        paused.contains("tokdrop_account_paused{account=\"default\",reason=\"daily_post_cap\"} 1"),
        "{paused}"
    );
    assert!(
        sample(&paused, "tokdrop_tiktok_requests_total{endpoint=\"creator_info\",code=\"spam_risk_too_many_posts\"}")
            .is_some_and(|n| n >= 1.0),
        "{paused}"
    );
    assert!(!r.d.path("failed/third.jpg").exists());
    every_shipped_query_names_a_real_metric(&paused);
    r.stop();
}

/// The Grafana dashboard and the alert rules in packaging/monitoring/ use only metrics the
/// service exports (a renamed metric would leave a blank panel or a silent alert).
fn every_shipped_query_names_a_real_metric(scrape: &str) {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("packaging/monitoring");
    let families: Vec<&str> = scrape
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split(' ').next())
        .collect();
    let mut checked = 0;
    for file in ["tokdrop-grafana.json", "tokdrop-alerts.yaml"] {
        let text = std::fs::read_to_string(root.join(file)).expect("shipped file");
        let mut rest = text.as_str();
        while let Some(at) = rest.find("tokdrop_") {
            let name: String = rest[at..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            rest = &rest[at + name.len()..];
            let family = ["_bucket", "_count", "_sum", "_total"]
                .iter()
                .find_map(|s| name.strip_suffix(s))
                .unwrap_or(&name);
            assert!(
                families.contains(&family),
                "{file} uses {name}, which /metrics does not export ({families:?})"
            );
            checked += 1;
        }
    }
    assert!(checked > 20, "only {checked} metric names found");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthz_turns_503_while_a_worker_is_stuck_and_back() {
    let hold = tempfile::NamedTempFile::new().expect("hold file");
    let envs = [
        ("TOKDROP_TEST_HOLD", hold.path().display().to_string()),
        ("TOKDROP_STALL_LIMIT", "1s".to_string()),
    ];
    let (r, admin) = start_admin(&envs, |_| {}).await;
    let (status, body) = get(&format!("{admin}/healthz")).await;
    assert_eq!((status, body.as_str()), (200, "ok\n"), "idle is healthy");

    r.d.copy_sample("photo.jpg", "inbox/held.jpg");
    let (_, body) = until(
        &format!("{admin}/healthz"),
        "never reported the stuck worker",
        |s, _| s == 503,
    )
    .await;
    assert!(
        body.starts_with("unhealthy: the worker of account default has shown no progress for ")
            && body.contains("item held.jpg"),
        "{body}"
    );
    // The step is typed in status.json (what `status` and `STATUS=` render): held right after
    // its worker took it, nothing asked of TikTok yet.
    assert!(body.contains("stage claimed"), "{body}");
    let snap: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(r.d.path("state/status.json")).expect("status.json"),
    )
    .expect("json");
    assert_eq!(
        snap["in_flight"][0]["stage"],
        serde_json::json!({"step": "claimed"}),
        "{snap}"
    );

    let path = hold.path().to_path_buf();
    drop(hold); // removes the file: the worker goes on
    assert!(!path.exists());
    let text = r.finished("held.jpg", 60);
    assert!(text.contains("status: published"), "{text}");
    let (status, body) = get(&format!("{admin}/healthz")).await;
    assert_eq!((status, body.as_str()), (200, "ok\n"));

    // The public media port answers neither.
    let media = std::fs::read_to_string(r.d.path("watch.yaml")).expect("config");
    let port = media
        .split("listen: 127.0.0.1:")
        .nth(1)
        .and_then(|s| s.split(',').next())
        .expect("media port");
    let client = crate::harness::http()
        .danger_accept_invalid_certs(true)
        .build()
        .expect("client");
    let answer = client
        .get(format!("https://localhost:{port}/metrics"))
        .send()
        .await
        .expect("media server answers");
    assert_eq!(answer.status().as_u16(), 404);
    r.stop();
}

/// The journal folder becoming unwritable turns `/healthz` 503 with the folder named.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthz_names_an_unwritable_journal() {
    let (r, admin) = start_admin(&[], |_| {}).await;
    // Once an item went through, the journal has been replayed and is in use.
    r.d.copy_sample("photo.jpg", "inbox/first.jpg");
    assert!(r.finished("first.jpg", 60).contains("status: published"));
    let journal = r.d.path("state/journal");
    // Root ignores permissions: make the folder's place a file instead.
    std::fs::rename(&journal, r.d.path("state/journal.away")).expect("move away");
    std::fs::write(&journal, "not a folder").expect("file");
    let (status, body) = get(&format!("{admin}/healthz")).await;
    assert_eq!(status, 503, "{body}");
    assert!(
        body.contains("the journal folder") && body.contains("cannot be written"),
        "{body}"
    );
    std::fs::remove_file(&journal).expect("rm");
    std::fs::rename(r.d.path("state/journal.away"), &journal).expect("back");
    let (status, _) = get(&format!("{admin}/healthz")).await;
    assert_eq!(status, 200);
    r.stop();
}
