//! The three inits against the emulator through the real client: bodies as received, status
//! progression, exact 19-digit ids, PULL_FROM_URL over HTTPS, and FILE_UPLOAD in chunks.

use serde_json::json;
use tokdrop::tiktok::chunks::ChunkPlan;
use tokdrop::tiktok::wire::{
    ContentInit, InboxVideoInit, MediaType, PhotoPostInfo, PhotoSource, PostMode, PublishState,
    PullFromUrl, VideoInit, VideoPostInfo, VideoSource,
};
use tokdrop_sandbox::{Calls, Fault, PostRecord, SandboxEndpoint};

use crate::sandbox_harness::{Env, MediaServer, fast_config, pattern, sha256};

pub fn post_info(privacy: &str) -> VideoPostInfo {
    VideoPostInfo {
        title: Some("a #cat on @tiktok".into()),
        privacy_level: privacy.into(),
        disable_duet: true,
        disable_comment: true,
        disable_stitch: true,
        video_cover_timestamp_ms: Some(1000),
        brand_content_toggle: false,
        brand_organic_toggle: false,
        is_aigc: false,
    }
}

/// The post once `done` holds for it.
fn post_when(
    publish_id: &str,
    done: impl Fn(&PostRecord) -> bool,
) -> impl FnMut(&Calls) -> Option<PostRecord> {
    move |calls| calls.post(publish_id).filter(|p| done(p)).cloned()
}

/// A public direct post: downloaded over HTTPS (sha256 = file), PUBLISH_COMPLETE, then a
/// 19-digit id that the client parses exactly; exactly one init with the documented body.
#[tokio::test]
async fn public_video_post_completes_with_exact_ids() {
    let media = MediaServer::start().await;
    let mut config = fast_config();
    media.trust(&mut config);
    let env = Env::logged_in(config).await;
    let data = pattern(300_000);
    let url = media.add("clip.mp4", data.clone());
    let body = VideoInit {
        post_info: post_info("PUBLIC_TO_EVERYONE"),
        source_info: VideoSource::PullFromUrl {
            video_url: url.clone(),
        },
    };
    let token = env.token().await;
    let init = env.client().video_init(&token, &body).await.expect("init");
    assert!(
        init.publish_id.starts_with("v_pub_url~v2."),
        "{}",
        init.publish_id
    );
    assert_eq!(init.upload_url, None);
    let post = env
        .until(post_when(&init.publish_id, |p| !p.post_ids.is_empty()))
        .await;
    assert_eq!(post.downloaded_bytes, data.len() as u64);
    let states: Vec<&str> = post.history.iter().map(|(s, _)| s.as_str()).collect();
    assert_eq!(states, ["PROCESSING_DOWNLOAD", "PUBLISH_COMPLETE"]);
    let status = env
        .client()
        .status_fetch(&token, &init.publish_id)
        .await
        .expect("status");
    assert_eq!(status.state, PublishState::PublishComplete);
    assert_eq!(status.post_ids, post.post_ids);
    assert_eq!(status.post_ids[0].to_string().len(), 19);
    assert_eq!(status.downloaded_bytes, Some(data.len() as u64));
    let calls = env.sandbox.calls();
    let downloads = calls.downloads_of(&init.publish_id);
    assert_eq!(downloads.len(), 1);
    assert_eq!(downloads[0].sha256.as_deref(), Some(sha256(&data).as_str()));
    assert_eq!(downloads[0].http_status, Some(200));
    assert_eq!(calls.inits.len(), 1);
    assert_eq!(
        calls.inits[0].body,
        serde_json::to_value(&body).expect("json")
    );
    assert_eq!(
        calls.inits[0].body["post_info"]["video_cover_timestamp_ms"],
        1000
    );
}

/// A private direct post completes with no ids (nothing is public).
#[tokio::test]
async fn private_post_completes_without_ids() {
    let media = MediaServer::start().await;
    let mut config = fast_config();
    media.trust(&mut config);
    let env = Env::logged_in(config).await;
    let url = media.add("a.mp4", pattern(1000));
    let body = VideoInit {
        post_info: post_info("SELF_ONLY"),
        source_info: VideoSource::PullFromUrl { video_url: url },
    };
    let token = env.token().await;
    let init = env.client().video_init(&token, &body).await.expect("init");
    env.until(post_when(&init.publish_id, |p| {
        p.status == "PUBLISH_COMPLETE"
    }))
    .await;
    let status = env
        .client()
        .status_fetch(&token, &init.publish_id)
        .await
        .expect("status");
    assert_eq!(status.state, PublishState::PublishComplete);
    assert!(status.post_ids.is_empty());
}

/// The inbox endpoint accepts extra fields but records them as dropped; the draft ends in
/// SEND_TO_USER_INBOX.
#[tokio::test]
async fn inbox_video_goes_to_the_inbox() {
    let media = MediaServer::start().await;
    let mut config = fast_config();
    media.trust(&mut config);
    let env = Env::logged_in(config).await;
    let url = media.add("draft.mp4", pattern(5000));
    let token = env.token().await;
    let with_title = json!({
        "source_info": {"source": "PULL_FROM_URL", "video_url": url},
        "post_info": {"title": "lost in the inbox"}
    });
    let init = env
        .client()
        .init(&token, tokdrop::tiktok::InitKind::InboxVideo, &with_title)
        .await
        .expect("init");
    assert!(
        init.publish_id.starts_with("v_inbox_url~"),
        "{}",
        init.publish_id
    );
    env.until(post_when(&init.publish_id, |p| {
        p.status == "SEND_TO_USER_INBOX"
    }))
    .await;
    let calls = env.sandbox.calls();
    assert_eq!(calls.inits[0].dropped_fields, vec!["post_info"]);
    let plain = InboxVideoInit {
        source_info: VideoSource::PullFromUrl {
            video_url: media.add("b.mp4", pattern(10)),
        },
    };
    let init = env
        .client()
        .inbox_video_init(&token, &plain)
        .await
        .expect("init");
    env.until(post_when(&init.publish_id, |p| {
        p.status == "SEND_TO_USER_INBOX"
    }))
    .await;
    let status = env
        .client()
        .status_fetch(&token, &init.publish_id)
        .await
        .expect("status");
    assert_eq!(status.state, PublishState::SentToUserInbox);
    assert_eq!(
        env.sandbox.calls().inits[1].dropped_fields,
        Vec::<String>::new()
    );
}

fn photo(mode: PostMode, urls: Vec<String>) -> ContentInit {
    let direct = mode == PostMode::DirectPost;
    ContentInit {
        post_info: PhotoPostInfo {
            title: Some("two cats".into()),
            description: Some("#cats".into()),
            privacy_level: direct.then(|| "SELF_ONLY".into()),
            disable_comment: direct.then_some(true),
            auto_add_music: direct.then_some(false),
            brand_content_toggle: direct.then_some(false),
            brand_organic_toggle: direct.then_some(false),
        },
        source_info: PhotoSource {
            source: PullFromUrl::PullFromUrl,
            photo_images: urls,
            photo_cover_index: 1,
        },
        post_mode: mode,
        media_type: MediaType::Photo,
        is_aigc: None,
    }
}

/// Photo posts pull every image: a direct post completes, a MEDIA_UPLOAD reaches the inbox.
#[tokio::test]
async fn photo_posts_pull_every_image() {
    let media = MediaServer::start().await;
    let mut config = fast_config();
    media.trust(&mut config);
    let env = Env::logged_in(config).await;
    let (one, two) = (pattern(700), pattern(900));
    let urls = vec![
        media.add("1.jpg", one.clone()),
        media.add("2.jpg", two.clone()),
    ];
    let token = env.token().await;
    let direct = env
        .client()
        .content_init(&token, &photo(PostMode::DirectPost, urls.clone()))
        .await
        .expect("direct");
    let draft = env
        .client()
        .content_init(&token, &photo(PostMode::MediaUpload, urls))
        .await
        .expect("draft");
    assert!(direct.publish_id.starts_with("p_pub_url~"));
    let done = env
        .until(post_when(&direct.publish_id, |p| {
            p.status == "PUBLISH_COMPLETE"
        }))
        .await;
    assert_eq!(done.downloaded_bytes, 1600);
    env.until(post_when(&draft.publish_id, |p| {
        p.status == "SEND_TO_USER_INBOX"
    }))
    .await;
    let calls = env.sandbox.calls();
    let hashes: Vec<_> = calls
        .downloads_of(&direct.publish_id)
        .iter()
        .map(|d| d.sha256.clone())
        .collect();
    assert_eq!(hashes, [Some(sha256(&one)), Some(sha256(&two))]);
    assert_eq!(calls.count(SandboxEndpoint::ContentInit), 2);
}

/// FILE_UPLOAD: a multi-chunk plan (rules scaled by the test-only `chunk_rule_scale` knob)
/// uploads in order with 206/201 and progress headers; the emulator's hash equals the file.
#[tokio::test]
async fn file_upload_in_chunks() {
    let mut config = fast_config();
    config.chunk_rule_scale = 1000;
    let env = Env::logged_in(config).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("clip with space.mp4");
    let data = pattern(25_000);
    std::fs::write(&path, &data).expect("write");
    let plan = ChunkPlan {
        video_size: 25_000,
        chunk_size: 10_000,
        total_chunk_count: 2,
    };
    let body = VideoInit {
        post_info: post_info("SELF_ONLY"),
        source_info: VideoSource::FileUpload {
            video_size: plan.video_size,
            chunk_size: plan.chunk_size,
            total_chunk_count: plan.total_chunk_count,
        },
    };
    let token = env.token().await;
    let init = env.client().video_init(&token, &body).await.expect("init");
    let upload_url = init.upload_url.expect("upload_url");
    assert!(upload_url.starts_with(&format!("{}/upload/?upload_id=", env.sandbox.base_url())));
    let before = env
        .client()
        .status_fetch(&token, &init.publish_id)
        .await
        .expect("status");
    assert_eq!(before.state, PublishState::ProcessingUpload);
    assert_eq!(before.uploaded_bytes, Some(0));
    env.client()
        .upload_file(&upload_url, &path, &plan, "video/mp4")
        .await
        .expect("upload");
    let post = env
        .until(post_when(&init.publish_id, |p| {
            p.status == "PUBLISH_COMPLETE"
        }))
        .await;
    assert_eq!(post.upload_sha256.as_deref(), Some(sha256(&data).as_str()));
    let calls = env.sandbox.calls();
    let statuses: Vec<u16> = calls.uploads.iter().map(|u| u.http_status).collect();
    assert_eq!(statuses, [206, 201]);
    // A chunk out of order is refused with 416.
    let again = crate::harness::http()
        .build()
        .expect("client")
        .put(&upload_url)
        .header("Content-Type", "video/mp4")
        .header("Content-Range", "bytes 0-9999/25000")
        .body(data[..10_000].to_vec())
        .send()
        .await
        .expect("put");
    assert_eq!(again.status(), 416);
}

/// Without the scale knob, TikTok's real rules apply: tokdrop's own single-chunk plan passes,
/// a ceil-based plan is refused with invalid_param.
#[tokio::test]
async fn chunk_rules_are_tiktoks() {
    let env = Env::logged_in(fast_config()).await;
    let token = env.token().await;
    let plan = ChunkPlan::for_size(4_194_304).expect("plan");
    let source = |p: ChunkPlan| VideoSource::FileUpload {
        video_size: p.video_size,
        chunk_size: p.chunk_size,
        total_chunk_count: p.total_chunk_count,
    };
    env.client()
        .inbox_video_init(
            &token,
            &InboxVideoInit {
                source_info: source(plan),
            },
        )
        .await
        .expect("single chunk");
    let ceil = ChunkPlan {
        video_size: 25_000_000,
        chunk_size: 10_000_000,
        total_chunk_count: 3,
    };
    let err = env
        .client()
        .inbox_video_init(
            &token,
            &InboxVideoInit {
                source_info: source(ceil),
            },
        )
        .await
        .expect_err("ceil plan");
    assert_eq!(err.api_error().code, "invalid_param");
    assert_eq!(err.api_error().message, "The total chunk count is invalid");
}

/// An upload URL past its lifetime answers 403, which the client reports as expired.
#[tokio::test]
async fn expired_upload_url_is_refused() {
    let mut config = fast_config();
    config.upload_url_secs = 0;
    let env = Env::logged_in(config).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("a.mp4");
    std::fs::write(&path, pattern(100)).expect("write");
    let plan = ChunkPlan::for_size(100).expect("plan");
    let body = InboxVideoInit {
        source_info: VideoSource::FileUpload {
            video_size: 100,
            chunk_size: 100,
            total_chunk_count: 1,
        },
    };
    let token = env.token().await;
    let init = env
        .client()
        .inbox_video_init(&token, &body)
        .await
        .expect("init");
    let err = env
        .client()
        .upload_file(&init.upload_url.expect("url"), &path, &plan, "video/mp4")
        .await
        .expect_err("expired");
    assert_eq!(err.code, tokdrop::tiktok::error::codes::UPLOAD_EXPIRED);
}

/// The emulator's default app is unaudited, as every new TikTok app is (tiktok-api.md §8):
/// the client's SELF_ONLY post to a private account goes through; a public post is refused
/// with `unaudited_client_can_only_post_to_private_accounts`, which the client reads as a
/// setup problem; once the account is public even SELF_ONLY is refused.
#[tokio::test]
async fn unaudited_app_posts_self_only() {
    let media = MediaServer::start().await;
    let mut config = tokdrop_sandbox::SandboxConfig {
        processing_delay_ms: 0,
        check_media: false,
        ..Default::default()
    };
    assert!(!config.audited && config.accounts[0].private_account);
    media.trust(&mut config);
    let env = Env::logged_in(config).await;
    let url = media.add("clip.mp4", pattern(10_000));
    let token = env.token().await;
    let init = |privacy: &str| VideoInit {
        post_info: post_info(privacy),
        source_info: VideoSource::PullFromUrl {
            video_url: url.clone(),
        },
    };
    let ok = env
        .client()
        .video_init(&token, &init("SELF_ONLY"))
        .await
        .expect("SELF_ONLY on a private account");
    env.until(post_when(&ok.publish_id, |p| {
        p.status == "PUBLISH_COMPLETE"
    }))
    .await;
    let refused = |err: tokdrop::tiktok::InitError| match err {
        tokdrop::tiktok::InitError::NotCreated(e) => {
            assert_eq!(e.code, "unaudited_client_can_only_post_to_private_accounts");
            assert_eq!(
                e.class(),
                tokdrop::tiktok::ErrorClass::Item {
                    setup_problem: true
                }
            );
        }
        other => panic!("expected a refusal, got {other:?}"),
    };
    refused(
        env.client()
            .video_init(&token, &init("FOLLOWER_OF_CREATOR"))
            .await
            .expect_err("public posting is refused"),
    );
    env.sandbox.set(|c| c.accounts[0].private_account = false);
    refused(
        env.client()
            .video_init(&token, &init("SELF_ONLY"))
            .await
            .expect_err("a public account is refused"),
    );
    assert_eq!(
        env.sandbox.calls().posts.len(),
        1,
        "exactly one post exists"
    );
}

/// A chunk TikTok stored although its answer was a 502: the client's retry of that chunk gets
/// 416, whose progress header (tiktok-api.md §4.5) says where TikTok is, and the upload goes
/// on from there. An upload restarted from byte 0 (as after a restart) skips what TikTok
/// already holds the same way. Each time TikTok ends with exactly the file.
#[tokio::test]
async fn upload_goes_on_where_tiktok_says_it_is() {
    let mut config = fast_config();
    config.chunk_rule_scale = 1000;
    let mut stored = Fault::error(SandboxEndpoint::Upload, 502, "x", 1);
    stored.code = None;
    stored.take_effect = true;
    config.faults = vec![stored];
    let env = Env::logged_in(config).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("clip.mp4");
    let data = pattern(35_000);
    std::fs::write(&path, &data).expect("write");
    let plan = ChunkPlan {
        video_size: 35_000,
        chunk_size: 10_000,
        total_chunk_count: 3,
    };
    let body = VideoInit {
        post_info: post_info("SELF_ONLY"),
        source_info: VideoSource::FileUpload {
            video_size: plan.video_size,
            chunk_size: plan.chunk_size,
            total_chunk_count: plan.total_chunk_count,
        },
    };
    let token = env.token().await;
    let upload_statuses = |env: &Env| -> Vec<u16> {
        env.sandbox
            .calls()
            .of(SandboxEndpoint::Upload)
            .iter()
            .map(|c| c.http_status)
            .collect()
    };

    let first = env.client().video_init(&token, &body).await.expect("init");
    env.client()
        .upload_file(
            first.upload_url.as_deref().expect("url"),
            &path,
            &plan,
            "video/mp4",
        )
        .await
        .expect("upload goes on after the 416");
    let post = env
        .until(post_when(&first.publish_id, |p| {
            p.status == "PUBLISH_COMPLETE"
        }))
        .await;
    assert_eq!(post.upload_sha256.as_deref(), Some(sha256(&data).as_str()));
    assert_eq!(upload_statuses(&env), [502, 416, 206, 201]);

    // Resumed from byte 0 while TikTok holds the first two chunks.
    let second = env.client().video_init(&token, &body).await.expect("init");
    let url = second.upload_url.expect("url");
    let chunks: Vec<_> = plan.chunks().collect();
    for chunk in &chunks[..2] {
        env.client()
            .upload_chunk(&url, &path, &plan, *chunk, "video/mp4")
            .await
            .expect("chunk");
    }
    env.client()
        .upload_file_from(&url, &path, &plan, "video/mp4", 0, &|_| {})
        .await
        .expect("resumed upload");
    let post = env
        .until(post_when(&second.publish_id, |p| {
            p.status == "PUBLISH_COMPLETE"
        }))
        .await;
    assert_eq!(post.upload_sha256.as_deref(), Some(sha256(&data).as_str()));
    assert_eq!(upload_statuses(&env)[4..], [206, 206, 416, 201]);
}
