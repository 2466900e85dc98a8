//! The API client over real HTTP: envelopes, retries, the double-post rule, chunk uploads.

use std::time::Duration;

use serde_json::json;
use tokdrop::tiktok::chunks::ChunkPlan;
use tokdrop::tiktok::error::codes;
use tokdrop::tiktok::wire::{self, PublishState};
use tokdrop::tiktok::{
    AccountPause, Client, ClientConfig, ErrorClass, InitError, InitKind, Secret,
};

use crate::tiktok_mock::{Mock, Reply};

pub fn client(base: &str) -> Client {
    let mut config = ClientConfig::new(base, "awKEY", Secret::new("CLIENTSECRET-MARKER"));
    config.request_timeout = Duration::from_millis(500);
    config.retry.base_delay = Duration::from_millis(5);
    config.retry.max_delay = Duration::from_millis(20);
    config.retry.rate_limited_wait = Duration::from_millis(10);
    // A 429 makes the client treat the window as full; keep that wait short here.
    config.budget.window = Duration::from_millis(100);
    config.budget.margin = Duration::ZERO;
    Client::new(config).expect("client")
}

fn token() -> Secret {
    Secret::new("act.TOKEN-MARKER")
}

/// creator_info sends the bearer token, JSON and tokdrop's user agent, and parses `data`.
#[tokio::test]
async fn creator_info_round_trip() {
    let mock = Mock::start().await;
    mock.push(wire::CREATOR_INFO, Reply::ok(json!({
        "creator_username": "u", "creator_nickname": "N", "privacy_level_options": ["SELF_ONLY"],
        "comment_disabled": false, "duet_disabled": true, "stitch_disabled": true, "max_video_post_duration_sec": 600
    })));
    let info = client(&mock.base())
        .creator_info(&token())
        .await
        .expect("creator_info");
    assert_eq!(info.privacy_level_options, vec!["SELF_ONLY"]);
    let seen = &mock.seen(wire::CREATOR_INFO)[0];
    assert_eq!(seen.headers["authorization"], "Bearer act.TOKEN-MARKER");
    assert_eq!(
        seen.headers["user-agent"],
        concat!("tokdrop/", env!("CARGO_PKG_VERSION"))
    );
    assert_eq!(
        seen.headers["content-type"],
        "application/json; charset=UTF-8"
    );
}

/// A spam cap arriving with HTTP 200 is an error classified account-wide, with its log_id.
#[tokio::test]
async fn http_200_errors_are_errors() {
    let mock = Mock::start().await;
    mock.push(
        wire::CREATOR_INFO,
        Reply::err(200, "spam_risk_too_many_posts"),
    );
    let err = client(&mock.base())
        .creator_info(&token())
        .await
        .expect_err("capped");
    assert_eq!(
        err.class(),
        ErrorClass::AccountWide(AccountPause::DailyPostCap)
    );
    assert_eq!(err.log_id.as_deref(), Some("LOGERR"));
    assert_eq!(err.http_status, Some(200));
}

/// An init answered 5xx or 429 created nothing: the client says so at once (NotCreated,
/// transient) and does not send it again itself — the publisher journals the refusal before it
/// backs off, so a kill during the wait cannot leave an "init may have been sent".
#[tokio::test]
async fn answered_init_errors_are_returned_not_retried() {
    let mock = Mock::start().await;
    mock.push(wire::VIDEO_INIT, Reply::err(500, "internal_error"));
    mock.push(wire::VIDEO_INIT, Reply::err(429, "rate_limit_exceeded"));
    mock.push(
        wire::VIDEO_INIT,
        Reply::ok(json!({"publish_id": "v_pub_url~v2.1"})),
    );
    let c = client(&mock.base());
    let body = json!({"source_info": {"source": "PULL_FROM_URL"}});
    for (sent, code) in [(1, "internal_error"), (2, "rate_limit_exceeded")] {
        match c.init(&token(), InitKind::Video, &body).await {
            Err(InitError::NotCreated(e)) => {
                assert_eq!(e.code, code);
                assert!(matches!(e.class(), ErrorClass::Transient { .. }), "{e:?}");
            }
            other => panic!("expected {code}, got {other:?}"),
        }
        assert_eq!(mock.seen(wire::VIDEO_INIT).len(), sent);
    }
    let init = c
        .init(&token(), InitKind::Video, &body)
        .await
        .expect("third try accepted");
    assert_eq!(init.publish_id, "v_pub_url~v2.1");
    assert_eq!(mock.seen(wire::VIDEO_INIT).len(), 3);
}

/// An init whose answer is lost to a timeout is MaybeSent and is sent exactly once.
#[tokio::test]
async fn lost_init_answer_is_maybe_sent_and_not_retried() {
    let mock = Mock::start().await;
    let mut slow = Reply::ok(json!({"publish_id": "v_pub_url~v2.2"}));
    slow.delay = Duration::from_secs(3);
    mock.default(wire::CONTENT_INIT, slow);
    let err = client(&mock.base())
        .init(&token(), InitKind::Content, &json!({}))
        .await
        .expect_err("timed out");
    assert!(matches!(err, InitError::MaybeSent(_)), "{err:?}");
    assert_eq!(err.api_error().code, codes::TIMEOUT);
    assert_eq!(mock.seen(wire::CONTENT_INIT).len(), 1);
}

/// A 200 init answer that cannot be read may have created a post: MaybeSent, not retried.
#[tokio::test]
async fn unreadable_init_success_is_maybe_sent() {
    let mock = Mock::start().await;
    mock.default(
        wire::INBOX_VIDEO_INIT,
        Reply {
            status: 200,
            body: "<html>".into(),
            headers: vec![],
            delay: Duration::ZERO,
        },
    );
    let err = client(&mock.base())
        .init(&token(), InitKind::InboxVideo, &json!({}))
        .await
        .expect_err("unreadable");
    assert!(err.may_have_reached_tiktok());
    assert_eq!(mock.seen(wire::INBOX_VIDEO_INIT).len(), 1);
}

/// An init that cannot connect never left: NotCreated, transient.
#[tokio::test]
async fn refused_connection_is_not_created() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr").port()
    };
    let err = client(&format!("http://127.0.0.1:{port}"))
        .init(&token(), InitKind::Video, &json!({}))
        .await
        .expect_err("refused");
    assert!(matches!(err, InitError::NotCreated(_)), "{err:?}");
    assert_eq!(err.api_error().code, codes::CONNECTION);
    assert!(matches!(
        err.api_error().class(),
        ErrorClass::Transient { .. }
    ));
}

/// Status answers keep 19-digit ids exact.
#[tokio::test]
async fn status_fetch_parses_post_ids() {
    let mock = Mock::start().await;
    mock.push(wire::STATUS_FETCH, Reply {
        status: 200,
        body: r#"{"data":{"status":"PUBLISH_COMPLETE","publicaly_available_post_id":[7678907398077074696]},"error":{"code":"ok","message":"","log_id":"L"}}"#.into(),
        headers: vec![],
        delay: Duration::ZERO,
    });
    let status = client(&mock.base())
        .status_fetch(&token(), "v_pub_url~v2.1")
        .await
        .expect("status");
    assert_eq!(status.state, PublishState::PublishComplete);
    assert_eq!(status.post_ids, vec![7678907398077074696]);
    let body: serde_json::Value =
        serde_json::from_slice(&mock.seen(wire::STATUS_FETCH)[0].body).expect("json");
    assert_eq!(body, json!({"publish_id": "v_pub_url~v2.1"}));
}

/// OAuth errors are flat and may come with HTTP 200; the form carries the client credentials.
#[tokio::test]
async fn oauth_error_on_200() {
    let mock = Mock::start().await;
    mock.push(wire::OAUTH_TOKEN, Reply::json(200, json!({"error": "invalid_grant", "error_description": "Authorization code is expired.", "log_id": "L"})));
    let err = client(&mock.base())
        .exchange_code(
            &Secret::new("CODE"),
            &Secret::new("VERIFIER"),
            "http://127.0.0.1:3455/callback/",
        )
        .await
        .expect_err("expired");
    assert_eq!(err.code, "invalid_grant");
    let form = String::from_utf8(mock.seen(wire::OAUTH_TOKEN)[0].body.to_vec()).expect("utf8");
    assert!(form.contains("grant_type=authorization_code"), "{form}");
    assert!(
        form.contains("redirect_uri=http%3A%2F%2F127.0.0.1%3A3455%2Fcallback%2F"),
        "{form}"
    );
    assert!(form.contains("code_verifier=VERIFIER"));
}

/// Chunks go out in order with exact Content-Range/Length; a 5xx chunk is sent again.
#[tokio::test]
async fn upload_streams_chunks_and_retries_5xx() {
    let mock = Mock::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("clip with space.mp4");
    let data: Vec<u8> = (0..2500u32).map(|i| (i % 251) as u8).collect();
    std::fs::write(&path, &data).expect("write");
    let plan = ChunkPlan {
        video_size: 2500,
        chunk_size: 1000,
        total_chunk_count: 2,
    };
    let partial = Reply {
        status: 206,
        body: String::new(),
        headers: vec![("content-range", "bytes 0-999/2500".into())],
        delay: Duration::ZERO,
    };
    mock.push(
        "/upload/",
        Reply {
            status: 502,
            body: "bad gateway".into(),
            headers: vec![],
            delay: Duration::ZERO,
        },
    );
    mock.push("/upload/", partial);
    mock.push(
        "/upload/",
        Reply {
            status: 201,
            body: String::new(),
            headers: vec![],
            delay: Duration::ZERO,
        },
    );
    let url = format!(
        "{}/upload/?upload_id=1&upload_token=UPLOADTOKEN",
        mock.base()
    );
    client(&mock.base())
        .upload_file(&url, &path, &plan, "video/mp4")
        .await
        .expect("uploaded");
    let seen = mock.seen("/upload/");
    let ranges: Vec<_> = seen
        .iter()
        .map(|s| {
            s.headers["content-range"]
                .to_str()
                .expect("ascii")
                .to_string()
        })
        .collect();
    assert_eq!(
        ranges,
        [
            "bytes 0-999/2500",
            "bytes 0-999/2500",
            "bytes 1000-2499/2500"
        ]
    );
    assert_eq!(seen[2].headers["content-length"], "1500");
    assert_eq!(&seen[2].body[..], &data[1000..]);
    assert!(seen.iter().all(|s| s.method == "PUT"));
}

/// An expired upload URL (403) fails at once, without the upload token in the message.
#[tokio::test]
async fn expired_upload_url_is_not_retried() {
    let mock = Mock::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("a.mp4");
    std::fs::write(&path, b"0123456789").expect("write");
    mock.default(
        "/upload/",
        Reply {
            status: 403,
            body: String::new(),
            headers: vec![],
            delay: Duration::ZERO,
        },
    );
    let plan = ChunkPlan::for_size(10).expect("plan");
    let url = format!("{}/upload/?upload_token=UPLOADTOKEN", mock.base());
    let err = client(&mock.base())
        .upload_file(&url, &path, &plan, "video/mp4")
        .await
        .expect_err("expired");
    assert_eq!(err.code, codes::UPLOAD_EXPIRED);
    assert_eq!(mock.seen("/upload/").len(), 1);
    assert!(!err.to_string().contains("UPLOADTOKEN"));
}
