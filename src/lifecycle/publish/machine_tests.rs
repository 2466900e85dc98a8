//! The publisher's decisions with no I/O: feed creator settings and status answers, assert
//! what happens next.

use super::*;
use crate::content::sidecar::PrivacyLevel;

fn spec(kind: Kind, mode: Mode, privacy: Option<PrivacyLevel>) -> PostSpec {
    PostSpec {
        kind,
        account: "default".into(),
        mode,
        title: None,
        description: None,
        privacy_level: privacy,
        disable_comment: false,
        disable_duet: false,
        disable_stitch: false,
        brand_content_toggle: false,
        brand_organic_toggle: false,
        is_aigc: false,
        cover_timestamp_ms: None,
        cover_index: 0,
        auto_add_music: false,
        files: vec!["clip.mp4".into()],
        not_before: None,
    }
}

fn creator() -> CreatorInfo {
    CreatorInfo {
        creator_avatar_url: String::new(),
        creator_username: "sandbox".into(),
        creator_nickname: "Sandbox".into(),
        privacy_level_options: vec!["FOLLOWER_OF_CREATOR".into(), "SELF_ONLY".into()],
        comment_disabled: false,
        duet_disabled: false,
        stitch_disabled: false,
        max_video_post_duration_sec: 600,
    }
}

fn status(state: PublishState, ids: &[u64], fail: Option<&str>) -> PublishStatus {
    PublishStatus {
        state,
        fail_reason: fail.map(String::from),
        post_ids: ids.to_vec(),
        uploaded_bytes: None,
        downloaded_bytes: None,
    }
}

fn code(o: &PublishOutcome) -> &str {
    o.error.as_ref().map_or("", |e| e.code.as_str())
}

/// A privacy level the account does not offer and a video longer than the account may post
/// are refused before anything is sent; interactions the creator disabled are forced off.
#[test]
fn creator_settings_are_checked() {
    let info = creator();
    let mut public = spec(
        Kind::Video,
        Mode::Direct,
        Some(PrivacyLevel::PublicToEveryone),
    );
    let o = check_creator(&mut public, &info, Some(1000)).expect_err("refused");
    assert_eq!(code(&o), "privacy_level_option_mismatch");
    assert!(
        o.error
            .as_ref()
            .is_some_and(|e| e.hint.contains("FOLLOWER_OF_CREATOR, SELF_ONLY")),
        "{o:?}"
    );

    // Drafts go to the inbox: the creator picks the privacy there.
    let mut draft = spec(
        Kind::Video,
        Mode::Inbox,
        Some(PrivacyLevel::PublicToEveryone),
    );
    assert!(check_creator(&mut draft, &info, Some(1000)).is_ok());

    let mut long = spec(Kind::Video, Mode::Direct, Some(PrivacyLevel::SelfOnly));
    let o = check_creator(&mut long, &info, Some(601_000)).expect_err("too long");
    assert_eq!(code(&o), "video_too_long_for_creator");
    let mut photo = spec(Kind::Photo, Mode::Direct, Some(PrivacyLevel::SelfOnly));
    assert!(
        check_creator(&mut photo, &info, Some(601_000)).is_ok(),
        "photos have no duration"
    );

    let locked = CreatorInfo {
        comment_disabled: true,
        stitch_disabled: true,
        ..creator()
    };
    let mut s = spec(Kind::Video, Mode::Direct, Some(PrivacyLevel::SelfOnly));
    check_creator(&mut s, &locked, Some(1000)).expect("allowed");
    assert!((s.disable_comment, s.disable_duet, s.disable_stitch) == (true, false, true));
}

const HOUR: Duration = Duration::from_secs(3600);

/// The first poll is immediate, then the cadence applies; terminal answers end the follow with
/// the right status, link and hint.
#[test]
fn terminal_answers_end_the_follow() {
    let mut f = Follow::new("p_1", Some("alice"), false, false, HOUR);
    assert_eq!(
        f.next(Duration::ZERO, false),
        FollowStep::Poll(Duration::ZERO)
    );
    assert_eq!(
        f.on_status(&status(PublishState::ProcessingUpload, &[], None)),
        None
    );
    assert_eq!(
        f.next(Duration::from_secs(10), false),
        FollowStep::Poll(Duration::from_secs(5))
    );
    let Some(FollowStep::Done(o)) = f.on_status(&status(
        PublishState::PublishComplete,
        &[7412345678901234567],
        None,
    )) else {
        panic!("published")
    };
    assert_eq!(o.status, Status::Published);
    assert_eq!(o.post_ids, ["7412345678901234567"]);
    assert_eq!(
        o.post_url.as_deref(),
        Some("https://www.tiktok.com/@alice/video/7412345678901234567")
    );
    assert_eq!(f.polls(), 2);

    let mut photos = Follow::new("p_1b", Some("alice"), false, false, HOUR).photos();
    let Some(FollowStep::Done(o)) = photos.on_status(&status(
        PublishState::PublishComplete,
        &[7412345678901234567],
        None,
    )) else {
        panic!("published")
    };
    assert_eq!(
        o.post_url.as_deref(),
        Some("https://www.tiktok.com/@alice/photo/7412345678901234567"),
        "photo posts link to /photo/"
    );

    let mut f = Follow::new("p_2", None, false, false, HOUR);
    let Some(FollowStep::Done(o)) = f.on_status(&status(PublishState::SentToUserInbox, &[], None))
    else {
        panic!("in the inbox")
    };
    assert_eq!((o.status, o.post_url), (Status::SentToInbox, None));

    let Some(FollowStep::Finish(o)) = f.on_status(&status(
        PublishState::Failed,
        &[],
        Some("file_format_check_failed"),
    )) else {
        panic!("failed")
    };
    assert_eq!(
        (o.status, code(&o)),
        (Status::Failed, "file_format_check_failed")
    );
    assert_eq!(
        o.publish_id.as_deref(),
        Some("p_2"),
        "the result names the post"
    );
    assert!(!o.error.as_ref().expect("error").hint.is_empty());
}

/// A public post complete without its id yet is published: the follow waits (slowly) for the
/// id, and at the timeout reports it published rather than unknown.
#[test]
fn a_public_post_waits_for_its_id() {
    let mut f = Follow::new("p_3", Some("alice"), true, false, HOUR);
    f.next(Duration::ZERO, false);
    assert_eq!(
        f.on_status(&status(PublishState::PublishComplete, &[], None)),
        None
    );
    assert_eq!(
        f.next(Duration::from_secs(30), false),
        FollowStep::Poll(Duration::from_secs(300)),
        "every 5 minutes while waiting for the id"
    );
    let FollowStep::Done(o) = f.next(HOUR + Duration::from_secs(1), false) else {
        panic!("published without id")
    };
    assert_eq!((o.status, o.post_ids.len()), (Status::Published, 0));

    // A private post complete without ids is simply done.
    let mut f = Follow::new("p_4", Some("alice"), false, false, HOUR);
    assert!(matches!(
        f.on_status(&status(PublishState::PublishComplete, &[], None)),
        Some(FollowStep::Done(_))
    ));
}

/// Past the timeout with no terminal answer the outcome is unknown (never published). A pull
/// TikTok never started is cancelled after five silent minutes when a fallback may follow —
/// once, and the post is then followed on until TikTok says it FAILED; without a fallback
/// it is only followed (TikTok may start downloading late).
#[test]
fn timeouts_and_silent_pulls() {
    let mut f = Follow::new("p_5", None, false, false, HOUR);
    f.next(Duration::ZERO, false);
    let FollowStep::Finish(o) = f.next(HOUR + Duration::from_secs(1), false) else {
        panic!("timed out")
    };
    assert_eq!((o.status, code(&o)), (Status::Unknown, "publish_timeout"));

    let silent = Duration::from_secs(301);
    let mut pull =
        Follow::new("p_6", None, false, true, HOUR).cancel_on_silence(Duration::from_secs(300));
    pull.next(Duration::ZERO, false);
    assert_eq!(pull.next(silent, false), FollowStep::Cancel);
    assert!(
        matches!(pull.next(silent, false), FollowStep::Poll(_)),
        "cancelled once"
    );
    let mut no_fallback = Follow::new("p_6b", None, false, true, HOUR);
    no_fallback.next(Duration::ZERO, false);
    assert!(matches!(
        no_fallback.next(silent, false),
        FollowStep::Poll(_)
    ));
    let mut fetched =
        Follow::new("p_7", None, false, true, HOUR).cancel_on_silence(Duration::from_secs(300));
    fetched.next(Duration::ZERO, false);
    assert!(matches!(fetched.next(silent, true), FollowStep::Poll(_)));
    let mut upload = Follow::new("p_8", None, false, false, HOUR);
    upload.next(Duration::ZERO, false);
    assert!(
        matches!(upload.next(silent, false), FollowStep::Poll(_)),
        "uploads are not pulled"
    );
}

/// Which ended attempts are tried again (tiktok-api.md §7.2): FAILED is terminal, so a new
/// init cannot double a post; `internal` and pull failures TikTok calls retryable are; the
/// pull → upload fallback only for `auto` videos; never more than [`MAX_INITS`] inits.
#[test]
fn which_failures_are_tried_again() {
    use AfterFailure::*;
    let prev = |reasons: &[&str]| -> Vec<crate::lifecycle::outcome::PreviousAttempt> {
        reasons
            .iter()
            .map(|r| crate::lifecycle::outcome::PreviousAttempt {
                publish_id: Some("p".into()),
                transfer: "pull".into(),
                fail_reason: r.to_string(),
            })
            .collect()
    };
    // (reason, video, auto, used, previous, served_ok) → decision
    type Row<'a> = (
        &'a str,
        bool,
        bool,
        &'a str,
        &'a [&'a str],
        bool,
        AfterFailure,
    );
    let rows: &[Row] = &[
        ("internal", true, false, "pull", &[], false, Retry("pull")),
        (
            "internal",
            true,
            true,
            "upload",
            &[],
            false,
            Retry("upload"),
        ),
        (
            "internal",
            false,
            false,
            "pull",
            &["internal"],
            false,
            Retry("pull"),
        ),
        (
            "internal",
            false,
            false,
            "pull",
            &["internal", "internal"],
            false,
            Finish,
        ),
        (
            "video_pull_failed",
            true,
            true,
            "pull",
            &[],
            false,
            Retry("upload"),
        ),
        (
            "publish_cancelled",
            true,
            true,
            "pull",
            &[],
            false,
            Retry("upload"),
        ),
        (
            "url_ownership_unverified",
            true,
            true,
            "pull",
            &[],
            false,
            Retry("upload"),
        ),
        ("publish_cancelled", true, false, "pull", &[], false, Finish),
        ("video_pull_failed", true, false, "pull", &[], false, Finish),
        (
            "video_pull_failed",
            true,
            false,
            "pull",
            &[],
            true,
            Retry("pull"),
        ),
        (
            "video_pull_failed",
            true,
            false,
            "pull",
            &["video_pull_failed"],
            true,
            Finish,
        ),
        (
            "photo_pull_failed",
            false,
            true,
            "pull",
            &[],
            true,
            Retry("pull"),
        ),
        ("photo_pull_failed", false, true, "pull", &[], false, Finish),
        ("video_pull_failed", true, true, "upload", &[], true, Finish),
        (
            "file_format_check_failed",
            true,
            true,
            "pull",
            &[],
            true,
            Finish,
        ),
        ("spam_risk_text", false, false, "pull", &[], true, Finish),
        ("auth_removed", false, false, "pull", &[], true, Finish),
    ];
    for (reason, video, auto, used, previous, served_ok, want) in rows {
        let got = after_failure(reason, *video, *auto, used, &prev(previous), *served_ok);
        assert_eq!(
            got, *want,
            "{reason} video={video} auto={auto} used={used} previous={previous:?} served_ok={served_ok}"
        );
    }
}

/// Account-wide pauses tell the user what to do.
#[test]
fn pause_reasons() {
    assert!(pause_reason(AccountPause::NeedsLogin, "x").contains("tokdrop auth login"));
    assert!(
        pause_reason(
            AccountPause::PendingShareCap,
            "spam_risk_too_many_pending_share"
        )
        .contains("post or delete some")
    );
}
