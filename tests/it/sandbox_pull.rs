//! PULL_FROM_URL rules at the emulator: verified prefixes, no redirects, pull failures, and
//! cancel while downloading.

use std::sync::atomic::Ordering;

use serde_json::json;
use tokdrop::tiktok::wire::{PublishState, VideoInit, VideoSource};
use tokdrop::tiktok::{ErrorClass, InitError, InitKind};
use tokdrop_sandbox::PostRecord;

use crate::sandbox_harness::{Env, MediaServer, fast_config, pattern};
use crate::sandbox_posting::post_info;

fn video(url: String) -> VideoInit {
    VideoInit {
        post_info: post_info("SELF_ONLY"),
        source_info: VideoSource::PullFromUrl { video_url: url },
    }
}

async fn env_with(media: &MediaServer) -> Env {
    let mut config = fast_config();
    media.trust(&mut config);
    Env::logged_in(config).await
}

/// A URL outside the verified prefixes fails the init with url_ownership_unverified, a
/// setup problem; nothing is downloaded.
#[tokio::test]
async fn unverified_prefix_is_refused() {
    let media = MediaServer::start().await;
    let env = env_with(&media).await;
    media.add("a.mp4", pattern(10));
    let url = format!("{}/elsewhere/a.mp4", media.base);
    let err = env
        .client()
        .video_init(&env.token().await, &video(url))
        .await
        .expect_err("unverified");
    assert!(matches!(&err, InitError::NotCreated(e) if e.code == "url_ownership_unverified"));
    assert_eq!(err.api_error().http_status, Some(403));
    assert_eq!(
        err.api_error().class(),
        ErrorClass::Item {
            setup_problem: true
        }
    );
    assert_eq!(media.hits.load(Ordering::SeqCst), 0);
    assert!(env.sandbox.calls().posts.is_empty());
}

/// The HTTP status of url_ownership_unverified follows its override knob (200 in the wild).
#[tokio::test]
async fn status_override_knob() {
    let media = MediaServer::start().await;
    let mut config = fast_config();
    media.trust(&mut config);
    config
        .status_overrides
        .insert("url_ownership_unverified".into(), 200);
    let env = Env::logged_in(config).await;
    let err = env
        .client()
        .video_init(
            &env.token().await,
            &video("https://nowhere.example/a.mp4".into()),
        )
        .await
        .expect_err("unverified");
    assert_eq!(err.api_error().http_status, Some(200));
    assert_eq!(err.api_error().code, "url_ownership_unverified");
}

/// A redirecting URL is not followed: the post fails with video_pull_failed and the record
/// shows the 302.
#[tokio::test]
async fn redirects_are_refused() {
    let media = MediaServer::start().await;
    let env = env_with(&media).await;
    media.add("a.mp4", pattern(10));
    let token = env.token().await;
    let init = env
        .client()
        .video_init(&token, &video(format!("{}/moved/a.mp4", media.base)))
        .await
        .expect("init");
    let post = env
        .until(|c| {
            c.post(&init.publish_id)
                .filter(|p| p.status == "FAILED")
                .cloned()
        })
        .await;
    assert_eq!(post.fail_reason.as_deref(), Some("video_pull_failed"));
    let calls = env.sandbox.calls();
    let download = calls.downloads_of(&init.publish_id)[0].clone();
    assert_eq!(download.http_status, Some(302));
    assert!(download.error.expect("error").contains("redirect"));
    assert_eq!(
        media.hits.load(Ordering::SeqCst),
        1,
        "the target was never fetched"
    );
    let status = env
        .client()
        .status_fetch(&token, &init.publish_id)
        .await
        .expect("status");
    assert_eq!(status.state, PublishState::Failed);
    assert_eq!(status.fail_reason.as_deref(), Some("video_pull_failed"));
}

/// A missing photo fails the post with photo_pull_failed.
#[tokio::test]
async fn missing_photo_fails_the_pull() {
    let media = MediaServer::start().await;
    let env = env_with(&media).await;
    let good = media.add("1.jpg", pattern(10));
    let body = json!({
        "post_mode": "MEDIA_UPLOAD", "media_type": "PHOTO", "post_info": {"title": "t"},
        "source_info": {"source": "PULL_FROM_URL", "photo_cover_index": 0,
            "photo_images": [good, format!("{}/m/missing.jpg", media.base)]}
    });
    let init = env
        .client()
        .init(&env.token().await, InitKind::Content, &body)
        .await
        .expect("init");
    let post = env
        .until(|c| {
            c.post(&init.publish_id)
                .filter(|p| p.status == "FAILED")
                .cloned()
        })
        .await;
    assert_eq!(post.fail_reason.as_deref(), Some("photo_pull_failed"));
    let calls = env.sandbox.calls();
    let statuses: Vec<_> = calls
        .downloads_of(&init.publish_id)
        .iter()
        .map(|d| d.http_status)
        .collect();
    assert_eq!(statuses, [Some(200), Some(404)]);
}

/// Cancel while the download is running: FAILED with publish_cancelled, the pull stops;
/// cancelling again is refused.
#[tokio::test]
async fn cancel_during_download() {
    let media = MediaServer::start().await;
    let env = env_with(&media).await;
    media.add("big.mp4", pattern(200_000));
    let token = env.token().await;
    let init = env
        .client()
        .video_init(&token, &video(format!("{}/slow/big.mp4", media.base)))
        .await
        .expect("init");
    let downloading = |p: &PostRecord| p.status == "PROCESSING_DOWNLOAD" && p.downloaded_bytes > 0;
    env.until(|c| c.post(&init.publish_id).filter(|p| downloading(p)).cloned())
        .await;
    env.client()
        .cancel(&token, &init.publish_id)
        .await
        .expect("cancel");
    let status = env
        .client()
        .status_fetch(&token, &init.publish_id)
        .await
        .expect("status");
    assert_eq!(status.state, PublishState::Failed);
    assert_eq!(status.fail_reason.as_deref(), Some("publish_cancelled"));
    let download = env
        .until(|c| {
            c.downloads_of(&init.publish_id)
                .first()
                .filter(|d| d.finished_at.is_some())
                .map(|d| (*d).clone())
        })
        .await;
    assert_eq!(download.error.as_deref(), Some("cancelled"));
    assert!(download.bytes < 200_000);
    media.release.notify_waiters();
    let again = env
        .client()
        .cancel(&token, &init.publish_id)
        .await
        .expect_err("not cancellable");
    assert_eq!(again.code, "publish_not_cancellable");
}

/// The pull-failure knob fails the next pull without touching the network; the fail_reason
/// knob fails the next post after its media arrived.
#[tokio::test]
async fn injected_failures() {
    let media = MediaServer::start().await;
    let mut config = fast_config();
    media.trust(&mut config);
    config.fail_next_pulls = 1;
    let env = Env::logged_in(config).await;
    let url = media.add("a.mp4", pattern(10));
    let token = env.token().await;
    let failed = |id: String| {
        move |c: &tokdrop_sandbox::Calls| c.post(&id).filter(|p| p.status == "FAILED").cloned()
    };
    let first = env
        .client()
        .video_init(&token, &video(url.clone()))
        .await
        .expect("init");
    let one = env.until(failed(first.publish_id)).await;
    assert_eq!(one.fail_reason.as_deref(), Some("video_pull_failed"));
    assert_eq!(media.hits.load(Ordering::SeqCst), 0);
    env.sandbox
        .set(|c| c.fail_next_posts = vec!["picture_size_check_failed".into()]);
    let second = env
        .client()
        .video_init(&token, &video(url))
        .await
        .expect("init");
    let two = env.until(failed(second.publish_id)).await;
    assert_eq!(
        two.fail_reason.as_deref(),
        Some("picture_size_check_failed")
    );
    assert_eq!(two.downloaded_bytes, 10);
    assert!(env.sandbox.config().fail_next_posts.is_empty());
}
