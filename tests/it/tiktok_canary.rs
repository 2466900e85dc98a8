//! Canary: with marker secrets, nothing logged (at TRACE, all crates) and no error text
//! contains them.

use std::io::Write;
use std::sync::{Arc, Mutex};

use jiff::{SignedDuration, Timestamp};
use serde_json::json;
use tokdrop::tiktok::wire;
use tokdrop::tiktok::{InitKind, Secret, TokenFile, TokenManager, TokenStore};

use crate::tiktok_client::client;
use crate::tiktok_mock::{Mock, Reply};

#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("lock").extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Refresh, calls that fail every way, and their errors never show a secret.
#[tokio::test]
async fn secrets_never_reach_logs_or_errors() {
    let capture = Capture::default();
    let writer = capture.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let mock = Mock::start().await;
    mock.default(wire::OAUTH_TOKEN, Reply::json(200, json!({
        "access_token": "act.MARKER-NEW-ACCESS", "expires_in": 7200, "open_id": "o",
        "refresh_token": "rft.MARKER-NEW-REFRESH", "refresh_expires_in": 86400, "scope": "video.publish"
    })));
    mock.default(wire::VIDEO_INIT, Reply::err(401, "access_token_invalid"));
    mock.default(wire::CREATOR_INFO, Reply::err(500, "internal_error"));
    let dir = tempfile::tempdir().expect("tempdir");
    let now = Timestamp::now();
    TokenStore::new(dir.path())
        .save(
            "default",
            &TokenFile {
                open_id: "o".into(),
                scope: "video.publish".into(),
                access_token: Secret::new("act.MARKER-OLD-ACCESS"),
                access_expires_at: now + SignedDuration::from_secs(10),
                refresh_token: Secret::new("rft.MARKER-OLD-REFRESH"),
                refresh_expires_at: now + SignedDuration::from_hours(48),
            },
        )
        .expect("save");
    let tm = TokenManager::new(client(&mock.base()), TokenStore::new(dir.path()));
    let token = tm.access_token("default").await.expect("refreshed");
    let mut texts = vec![format!("{token} {token:?}")];
    let c = tm.client();
    let e = c
        .init(&token, InitKind::Video, &json!({}))
        .await
        .expect_err("401");
    texts.push(format!("{e} {e:?}"));
    let e = c.creator_info(&token).await.expect_err("500");
    texts.push(format!("{e} {e:?} {}", e.hint()));
    let e = c
        .exchange_code(
            &Secret::new("CODE-MARKER"),
            &Secret::new("VERIFIER-MARKER"),
            "http://127.0.0.1:1/",
        )
        .await;
    texts.push(format!("{e:?}"));
    texts.push(format!("{:?} {:?}", tm, c.config()));
    texts.push(format!("{:?}", TokenStore::new(dir.path()).load("default")));
    drop(_guard);
    let logs = String::from_utf8(capture.0.lock().expect("lock").clone()).expect("utf8");
    assert!(
        logs.contains("access token refreshed"),
        "capture works: {logs}"
    );
    for text in texts.iter().chain([&logs]) {
        for marker in ["MARKER", "CLIENTSECRET"] {
            assert!(!text.contains(marker), "{marker} leaked in: {text}");
        }
    }
}
