//! Case table for the emulator's init checks.

use serde_json::{Value, json};

use super::*;

const URL: &str = "https://media.example.com/m/abc/clip.mp4";

fn config() -> SandboxConfig {
    SandboxConfig {
        verified_url_prefixes: vec!["https://media.example.com/m/".into()],
        ..SandboxConfig::default()
    }
}

fn all_scopes() -> Vec<String> {
    vec!["video.publish".into(), "video.upload".into()]
}

fn video(post_info: Value, source_info: Value) -> Value {
    json!({"post_info": post_info, "source_info": source_info})
}

fn ok_post_info() -> Value {
    json!({"privacy_level": "SELF_ONLY", "brand_content_toggle": false, "title": "t"})
}

fn photo(mode: &str, post_info: Value, images: Value, cover: Value) -> Value {
    json!({"post_mode": mode, "media_type": "PHOTO", "post_info": post_info,
        "source_info": {"source": "PULL_FROM_URL", "photo_images": images, "photo_cover_index": cover}})
}

fn code(endpoint: SandboxEndpoint, body: &Value, scopes: &[String], cfg: &SandboxConfig) -> String {
    let account = cfg.accounts[0].clone();
    match check_init(endpoint, body, scopes, cfg, &account) {
        Ok(_) => "ok".into(),
        Err(r) => r.code,
    }
}

/// Each rule of tiktok-api.md §4–5 gives the documented error code.
#[test]
fn init_rules_give_the_documented_codes() {
    use SandboxEndpoint::*;
    let pull = json!({"source": "PULL_FROM_URL", "video_url": URL});
    let long_title = "é".repeat(2201);
    let cases: Vec<(SandboxEndpoint, Value, &str)> = vec![
        (VideoInit, video(ok_post_info(), pull.clone()), "ok"),
        (
            VideoInit,
            video(
                json!({"privacy_level": "PUBLIC_TO_EVERYONE", "brand_content_toggle": false}),
                pull.clone(),
            ),
            "privacy_level_option_mismatch",
        ),
        (
            VideoInit,
            video(json!({"brand_content_toggle": false}), pull.clone()),
            "privacy_level_option_mismatch",
        ),
        (
            VideoInit,
            video(json!({"privacy_level": "SELF_ONLY"}), pull.clone()),
            "invalid_param",
        ),
        (
            VideoInit,
            video(
                json!({"privacy_level": "SELF_ONLY", "brand_content_toggle": false, "title": long_title}),
                pull.clone(),
            ),
            "invalid_param",
        ),
        (
            VideoInit,
            video(
                ok_post_info(),
                json!({"source": "PULL_FROM_URL", "video_url": "https://other.example.com/m/a.mp4"}),
            ),
            "url_ownership_unverified",
        ),
        (
            VideoInit,
            video(
                ok_post_info(),
                json!({"source": "PULL_FROM_URL", "video_url": "http://media.example.com/m/a.mp4"}),
            ),
            "url_ownership_unverified",
        ),
        (
            VideoInit,
            video(
                ok_post_info(),
                json!({"source": "FILE_UPLOAD", "video_size": 50_000_123u64, "chunk_size": 10_000_000u64, "total_chunk_count": 5}),
            ),
            "ok",
        ),
        (
            VideoInit,
            video(
                ok_post_info(),
                json!({"source": "FILE_UPLOAD", "video_size": 25_000_000u64, "chunk_size": 10_000_000u64, "total_chunk_count": 3}),
            ),
            "invalid_param",
        ),
        (
            InboxVideoInit,
            json!({"source_info": pull.clone(), "post_info": {"title": "dropped"}}),
            "ok",
        ),
        (InboxVideoInit, json!({"post_info": {}}), "invalid_param"),
        (
            ContentInit,
            photo(
                "DIRECT_POST",
                json!({"privacy_level": "SELF_ONLY", "brand_content_toggle": false, "brand_organic_toggle": false}),
                json!([URL, URL]),
                json!(1),
            ),
            "ok",
        ),
        (
            ContentInit,
            photo(
                "DIRECT_POST",
                json!({"privacy_level": "SELF_ONLY", "brand_content_toggle": false}),
                json!([URL]),
                json!(0),
            ),
            "invalid_param",
        ),
        (
            ContentInit,
            photo(
                "MEDIA_UPLOAD",
                json!({"title": "x".repeat(91)}),
                json!([URL]),
                json!(0),
            ),
            "invalid_param",
        ),
        (
            ContentInit,
            photo("MEDIA_UPLOAD", json!({}), json!([URL]), json!(1)),
            "invalid_param",
        ),
        (
            ContentInit,
            photo("MEDIA_UPLOAD", json!({}), json!(vec![URL; 36]), json!(0)),
            "invalid_param",
        ),
        (
            ContentInit,
            photo("MEDIA_UPLOAD", json!({}), json!([]), json!(0)),
            "invalid_param",
        ),
        (
            ContentInit,
            photo(
                "MEDIA_UPLOAD",
                json!({"description": "d".repeat(4000)}),
                json!(vec![URL; 35]),
                json!(34),
            ),
            "ok",
        ),
    ];
    let cfg = config();
    for (i, (endpoint, body, expected)) in cases.iter().enumerate() {
        assert_eq!(
            code(*endpoint, body, &all_scopes(), &cfg),
            *expected,
            "case {i}: {body}"
        );
    }
}

/// Scopes are checked per endpoint and post mode.
#[test]
fn scopes_are_required() {
    let cfg = config();
    let upload_only = vec!["video.upload".to_string()];
    let pull = json!({"source": "PULL_FROM_URL", "video_url": URL});
    assert_eq!(
        code(
            SandboxEndpoint::VideoInit,
            &video(ok_post_info(), pull.clone()),
            &upload_only,
            &cfg
        ),
        "scope_not_authorized"
    );
    assert_eq!(
        code(
            SandboxEndpoint::InboxVideoInit,
            &json!({"source_info": pull}),
            &upload_only,
            &cfg
        ),
        "ok"
    );
    let direct_photo = photo(
        "DIRECT_POST",
        json!({"privacy_level": "SELF_ONLY", "brand_content_toggle": false, "brand_organic_toggle": false}),
        json!([URL]),
        json!(0),
    );
    assert_eq!(
        code(
            SandboxEndpoint::ContentInit,
            &direct_photo,
            &upload_only,
            &cfg
        ),
        "scope_not_authorized"
    );
}

/// Unaudited mode refuses anything but SELF_ONLY, and SELF_ONLY on a public account.
#[test]
fn unaudited_mode() {
    let mut cfg = config();
    cfg.audited = false;
    cfg.accounts[0].privacy_level_options =
        Some(vec!["PUBLIC_TO_EVERYONE".into(), "SELF_ONLY".into()]);
    let pull = json!({"source": "PULL_FROM_URL", "video_url": URL});
    let public = video(
        json!({"privacy_level": "PUBLIC_TO_EVERYONE", "brand_content_toggle": false}),
        pull.clone(),
    );
    assert_eq!(
        code(SandboxEndpoint::VideoInit, &public, &all_scopes(), &cfg),
        "unaudited_client_can_only_post_to_private_accounts"
    );
    let private = video(ok_post_info(), pull);
    assert_eq!(
        code(SandboxEndpoint::VideoInit, &private, &all_scopes(), &cfg),
        "ok"
    );
    cfg.accounts[0].private_account = false;
    assert_eq!(
        code(SandboxEndpoint::VideoInit, &private, &all_scopes(), &cfg),
        "unaudited_client_can_only_post_to_private_accounts"
    );
}

/// The inbox endpoint records what it dropped; the spelling knob changes the code; the
/// chunk scale knob lets a tiny multi-chunk plan pass.
#[test]
fn knobs_and_dropped_fields() {
    let mut cfg = config();
    let account = cfg.accounts[0].clone();
    let accepted = check_init(
        SandboxEndpoint::InboxVideoInit,
        &json!({"source_info": {"source": "PULL_FROM_URL", "video_url": URL}, "post_info": {}, "title": "x"}),
        &all_scopes(),
        &cfg,
        &account,
    )
    .expect("accepted");
    assert_eq!(accepted.dropped_fields, vec!["post_info", "title"]);
    cfg.invalid_param_code = "invalid_params".into();
    let tiny = video(
        ok_post_info(),
        json!({"source": "FILE_UPLOAD", "video_size": 25_000u64, "chunk_size": 10_000u64, "total_chunk_count": 2}),
    );
    assert_eq!(
        code(SandboxEndpoint::VideoInit, &tiny, &all_scopes(), &cfg),
        "invalid_params"
    );
    cfg.chunk_rule_scale = 1000;
    assert_eq!(
        code(SandboxEndpoint::VideoInit, &tiny, &all_scopes(), &cfg),
        "ok"
    );
}
