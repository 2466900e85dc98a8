//! Fault classes through the real client against the emulator: transient errors retried,
//! caps account-wide, bad fields item-level, lost answers never repeated for inits, and the
//! rate budget holding in a burst.

use std::time::Duration;

use serde_json::json;
use tokdrop::tiktok::wire::{InboxVideoInit, VideoInit, VideoSource};
use tokdrop::tiktok::{AccountPause, ErrorClass, InitError, InitKind, TokenManager, TokenStore};
use tokdrop_sandbox::{Fault, SandboxEndpoint};

use crate::sandbox_harness::{Env, client_for, fast_config};
use crate::sandbox_posting::post_info;

fn upload_body(privacy: &str) -> VideoInit {
    VideoInit {
        post_info: post_info(privacy),
        source_info: VideoSource::FileUpload {
            video_size: 1000,
            chunk_size: 1000,
            total_chunk_count: 1,
        },
    }
}

/// An init answered 500 or 429 created nothing and says so (transient, not sent again by the
/// client: the publisher journals it and backs off); a non-JSON 502 on status/fetch is retried
/// inside the client. The init that finally passes creates one post.
#[tokio::test]
async fn transient_errors_are_retried() {
    let env = Env::logged_in(fast_config()).await;
    env.sandbox.set(|c| {
        c.faults.push(Fault::error(
            SandboxEndpoint::VideoInit,
            500,
            "internal_error",
            1,
        ));
        c.faults.push(Fault::error(
            SandboxEndpoint::VideoInit,
            429,
            "rate_limit_exceeded",
            1,
        ));
        let mut gateway = Fault::error(SandboxEndpoint::StatusFetch, 502, "x", 1);
        gateway.code = None;
        c.faults.push(gateway);
    });
    let token = env.token().await;
    // A 429 makes the client treat its window as full: keep that window short here.
    let client = client_for(&env.sandbox, Duration::from_millis(100));
    for code in ["internal_error", "rate_limit_exceeded"] {
        match client.video_init(&token, &upload_body("SELF_ONLY")).await {
            Err(InitError::NotCreated(e)) => {
                assert_eq!(e.code, code);
                assert!(matches!(e.class(), ErrorClass::Transient { .. }), "{e:?}");
            }
            other => panic!("expected {code}, got {other:?}"),
        }
    }
    let init = client
        .video_init(&token, &upload_body("SELF_ONLY"))
        .await
        .expect("third try");
    client
        .status_fetch(&token, &init.publish_id)
        .await
        .expect("second try");
    let calls = env.sandbox.calls();
    let codes: Vec<_> = calls
        .of(SandboxEndpoint::VideoInit)
        .iter()
        .map(|c| c.code.clone())
        .collect();
    assert_eq!(codes, ["internal_error", "rate_limit_exceeded", "ok"]);
    assert_eq!(calls.posts.len(), 1);
    assert_eq!(calls.count(SandboxEndpoint::StatusFetch), 2);
}

/// The daily cap: init answers 403 spam_risk_too_many_posts, creator_info answers it with
/// HTTP 200; both classify as an account-wide pause.
#[tokio::test]
async fn daily_cap_pauses_the_account() {
    let mut config = fast_config();
    config.daily_post_cap = 1;
    let env = Env::logged_in(config).await;
    let token = env.token().await;
    env.client()
        .video_init(&token, &upload_body("SELF_ONLY"))
        .await
        .expect("first post");
    let err = env
        .client()
        .video_init(&token, &upload_body("SELF_ONLY"))
        .await
        .expect_err("capped");
    assert_eq!(err.api_error().http_status, Some(403));
    assert_eq!(
        err.api_error().class(),
        ErrorClass::AccountWide(AccountPause::DailyPostCap)
    );
    let info = env.client().creator_info(&token).await.expect_err("capped");
    assert_eq!(info.http_status, Some(200));
    assert_eq!(
        info.class(),
        ErrorClass::AccountWide(AccountPause::DailyPostCap)
    );
}

/// Pending drafts beyond the cap: spam_risk_too_many_pending_share, account-wide.
#[tokio::test]
async fn pending_share_cap_pauses_the_account() {
    let mut config = fast_config();
    config.pending_share_cap = 1;
    let env = Env::logged_in(config).await;
    let token = env.token().await;
    let body = InboxVideoInit {
        source_info: VideoSource::FileUpload {
            video_size: 10,
            chunk_size: 10,
            total_chunk_count: 1,
        },
    };
    env.client()
        .inbox_video_init(&token, &body)
        .await
        .expect("first");
    let err = env
        .client()
        .inbox_video_init(&token, &body)
        .await
        .expect_err("cap");
    assert_eq!(
        err.api_error().class(),
        ErrorClass::AccountWide(AccountPause::PendingShareCap)
    );
}

/// Field errors are item-level with either spelling; privacy mismatch too.
#[tokio::test]
async fn bad_fields_fail_the_item() {
    let env = Env::logged_in(fast_config()).await;
    let token = env.token().await;
    let no_toggle = json!({"post_info": {"privacy_level": "SELF_ONLY"},
        "source_info": {"source": "FILE_UPLOAD", "video_size": 10, "chunk_size": 10, "total_chunk_count": 1}});
    let err = env
        .client()
        .init(&token, InitKind::Video, &no_toggle)
        .await
        .expect_err("invalid");
    assert_eq!(err.api_error().code, "invalid_param");
    assert_eq!(
        err.api_error().class(),
        ErrorClass::Item {
            setup_problem: false
        }
    );
    env.sandbox
        .set(|c| c.invalid_param_code = "invalid_params".into());
    let err = env
        .client()
        .init(&token, InitKind::Video, &no_toggle)
        .await
        .expect_err("invalid");
    assert_eq!(err.api_error().code, "invalid_params");
    assert_eq!(
        err.api_error().class(),
        ErrorClass::Item {
            setup_problem: false
        }
    );
    let err = env
        .client()
        .video_init(&token, &upload_body("FOLLOWER_OF_CREATOR"))
        .await
        .expect_err("public account has no FOLLOWER_OF_CREATOR");
    assert_eq!(err.api_error().code, "privacy_level_option_mismatch");
    assert_eq!(
        err.api_error().class(),
        ErrorClass::Item {
            setup_problem: false
        }
    );
}

/// An init whose answer is lost (the emulator created the post, then dropped the
/// connection) is MaybeSent and never sent again; a lost status answer is simply retried.
#[tokio::test]
async fn lost_init_answer_is_not_repeated() {
    let env = Env::logged_in(fast_config()).await;
    env.sandbox.set(|c| {
        c.faults
            .push(Fault::dropped(SandboxEndpoint::VideoInit, true));
        c.faults
            .push(Fault::dropped(SandboxEndpoint::CreatorInfo, false));
    });
    let token = env.token().await;
    let err = env
        .client()
        .video_init(&token, &upload_body("SELF_ONLY"))
        .await
        .expect_err("lost");
    assert!(matches!(err, InitError::MaybeSent(_)), "{err:?}");
    env.client().creator_info(&token).await.expect("retried");
    let calls = env.sandbox.calls();
    assert_eq!(calls.count(SandboxEndpoint::VideoInit), 1);
    assert!(calls.of(SandboxEndpoint::VideoInit)[0].dropped);
    assert_eq!(calls.posts.len(), 1, "the post exists at TikTok");
    assert_eq!(calls.count(SandboxEndpoint::CreatorInfo), 2);
}

/// A burst of 50 init attempts on one token never exceeds the emulator's 6-per-window limit:
/// no 429, and at most 6 arrivals in any window (short windows on both sides).
#[tokio::test]
async fn burst_of_inits_respects_the_rate_limit() {
    let mut config = fast_config();
    config.rate_limits.window_ms = 300;
    let env = Env::logged_in(config).await;
    let mut client = client_for(&env.sandbox, Duration::from_millis(300));
    // A wider margin than TikTok's 1 s-per-minute: both windows are short here.
    client = {
        let mut c = client.config().clone();
        c.budget.margin = Duration::from_millis(60);
        tokdrop::tiktok::Client::new(c).expect("client")
    };
    let tokens = TokenManager::new(client, TokenStore::new(env.tokens.store().dir()));
    let token = tokens.access_token("default").await.expect("token");
    // Unverified URLs: each attempt is answered (403) without creating a post.
    let body = VideoInit {
        post_info: post_info("SELF_ONLY"),
        source_info: VideoSource::PullFromUrl {
            video_url: "https://unverified.example/a.mp4".into(),
        },
    };
    let attempts = (0..50).map(|_| tokens.client().video_init(&token, &body));
    let results = futures_util::future::join_all(attempts).await;
    assert!(results.iter().all(
        |r| matches!(r, Err(InitError::NotCreated(e)) if e.code == "url_ownership_unverified")
    ));
    let calls = env.sandbox.calls();
    let inits = calls.init_calls();
    assert_eq!(inits.len(), 50);
    assert!(inits.iter().all(|c| c.code != "rate_limit_exceeded"));
    let most = calls.max_in_window(Duration::from_millis(300), |c| c.endpoint.is_init());
    assert!(most <= 6, "{most} inits within one window");
}
