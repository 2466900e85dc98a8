//! One item, several attempts, never two posts (issue 13): against the emulator, with the real
//! binary. A pull TikTok starts late, a cancel TikTok refuses, a restart during a daily cap, a
//! publish_id TikTok forgets, and a failure TikTok calls retryable — each asserted on the
//! emulator's record of what exists on TikTok.

use std::time::Duration;

use tokdrop_sandbox::{Calls, Control, Fault, SandboxEndpoint};

use crate::service::{Running, sha256_hex, start, start_full};

/// A video dropped with its sidecar; returns the SHA-256 of the file TikTok must end up with.
fn drop_video(r: &Running, name: &str) -> String {
    r.d.copy_sample("h264_faststart.mp4", &format!("outside/{name}.mp4"));
    r.d.write(&format!("outside/{name}.yaml"), &format!("title: {name}\n"));
    let sha = sha256_hex(&r.d.path(&format!("outside/{name}.mp4")));
    for ext in ["yaml", "mp4"] {
        std::fs::rename(
            r.d.path(&format!("outside/{name}.{ext}")),
            r.d.path(&format!("inbox/{name}.{ext}")),
        )
        .expect("mv");
    }
    sha
}

/// Waits (on the emulator's events) until nothing is left processing, then returns the record.
async fn settled(r: &Running) -> Calls {
    r.emu
        .wait_until(Duration::from_secs(30), |c| {
            c.posts
                .iter()
                .all(|p| p.status != "PROCESSING_DOWNLOAD" && p.status != "PROCESSING_UPLOAD")
                .then(|| c.clone())
        })
        .await
        .expect("every post settles")
}

/// `transfer: auto`, TikTok's download queued past `pull_start_timeout`: tokdrop revokes the
/// links and cancels the first publish, uploads only after TikTok reports it FAILED, and the
/// late pull (released afterwards) finds nothing: one post exists, and the result names the
/// cancelled attempt by its publish_id.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_late_pull_after_the_give_up_point_is_cancelled_not_doubled() {
    let r = start_full("", ", pull_start_timeout: 1s", |c| c.hold_pulls = true, &[]).await;
    let sha = drop_video(&r, "late");
    let text = r.finished("late.mp4", 90);
    assert!(text.contains("status: published"), "{text}");
    assert!(text.contains("transfer: upload"), "{text}");
    assert!(
        text.contains("previous_attempts:\n- publish_id: v_pub_url~")
            && text.contains("fail_reason: publish_cancelled"),
        "{text}"
    );
    r.emu.set(|c| c.hold_pulls = false);
    let calls = settled(&r).await;
    assert_eq!(calls.existing_posts_of(&sha).len(), 1, "{:?}", calls.posts);
    assert_eq!(calls.cancels.len(), 1);
    assert_eq!(calls.cancels[0].code, "ok");
    assert!(calls.downloads.is_empty(), "the cancelled pull never ran");
    r.stop();
}

/// The same, when TikTok does not acknowledge the cancel: tokdrop keeps following the first
/// publish (its links revoked) until TikTok says it FAILED; the late pull then fails against
/// the revoked links, and only then is the file uploaded. Still one post.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unacknowledged_cancel_waits_for_tiktok_to_fail_the_pull() {
    let r = start_full(
        "",
        ", pull_start_timeout: 1s",
        |c| {
            c.hold_pulls = true;
            c.faults = vec![Fault::error(
                SandboxEndpoint::Cancel,
                500,
                "internal_error",
                5,
            )];
        },
        &[],
    )
    .await;
    let sha = drop_video(&r, "stubborn");
    r.wait_line("did not cancel the publish", 60);
    assert!(
        r.emu.calls().init_calls().len() == 1,
        "no second init while the first may still post"
    );
    // TikTok's queue moves on: its download hits the revoked links and fails.
    r.emu.set(|c| c.hold_pulls = false);
    let text = r.finished("stubborn.mp4", 90);
    assert!(
        text.contains("status: published") && text.contains("transfer: upload"),
        "{text}"
    );
    assert!(text.contains("fail_reason: video_pull_failed"), "{text}");
    let calls = settled(&r).await;
    assert_eq!(calls.existing_posts_of(&sha).len(), 1, "{:?}", calls.posts);
    assert_eq!(calls.downloads.len(), 1);
    assert_eq!(
        calls.downloads[0].http_status,
        Some(404),
        "{:?}",
        calls.downloads
    );
    r.stop();
}

/// `transfer: pull` has no fallback: a download TikTok starts late is simply waited for, and
/// nothing is cancelled.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_late_pull_without_fallback_is_waited_for() {
    let r = start_full(
        "",
        ", pull_start_timeout: 1s, transfer: pull",
        |c| c.pull_delay_ms = 3000,
        &[],
    )
    .await;
    let sha = drop_video(&r, "patient");
    let text = r.finished("patient.mp4", 90);
    assert!(
        text.contains("status: published") && text.contains("transfer: pull"),
        "{text}"
    );
    let calls = settled(&r).await;
    assert_eq!(calls.existing_posts_of(&sha).len(), 1);
    assert!(calls.cancels.is_empty());
    assert_eq!(calls.init_calls().len(), 1);
    r.stop();
}

/// Killed while TikTok held the download; restarted while the account is at its daily cap
/// (creator_info would say `spam_risk_too_many_posts`): the post that already exists is
/// followed at once, without creator_info, and published.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_during_a_daily_cap_still_follows_the_post() {
    let r = start("", |c| c.hold_pulls = true).await;
    r.d.copy_sample("photo.jpg", "inbox/capped.jpg");
    r.wait_line("init accepted item=capped.jpg", 60);
    let (d, emu) = r.kill9();
    emu.set(|c| c.daily_post_cap = 1); // the post just made fills it
    let before = emu.calls().count(SandboxEndpoint::CreatorInfo);
    let r = Running::spawn(d, emu, &[]);
    // TikTok's download goes on once tokdrop serves again (one that ran while it was down is
    // another test's matter).
    r.wait_line("tokdrop is running", 30);
    r.emu.set(|c| c.hold_pulls = false);
    let text = r.finished("capped.jpg", 60);
    assert!(text.contains("status: published"), "{text}");
    assert_eq!(
        r.emu.calls().count(SandboxEndpoint::CreatorInfo),
        before,
        "a resumed post does not ask creator_info"
    );
    assert_eq!(r.emu.calls().posts.len(), 1);
    r.stop();
}

/// TikTok forgets the publish_id while tokdrop follows it (`invalid_publish_id`): the post may
/// exist, so the item ends `unknown` with the publish_id in the result, never `failed`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forgotten_publish_id_is_unknown_not_failed() {
    let r = start("", |c| c.hold_pulls = true).await;
    r.d.copy_sample("photo.jpg", "inbox/forgot.jpg");
    r.wait_line("init accepted item=forgot.jpg", 60);
    let publish_id = r.emu.calls().posts[0].publish_id.clone();
    r.emu
        .control(Control {
            expire_publish_ids: true,
            ..Control::default()
        })
        .expect("control");
    let text = r.finished("forgot.jpg", 60);
    assert!(text.contains("status: unknown"), "{text}");
    assert!(text.contains("code: invalid_publish_id"), "{text}");
    assert!(
        text.contains(&format!("publish_id: {publish_id}")),
        "{text}"
    );
    assert!(r.d.path("failed/forgot.jpg").exists());
    r.stop();
}

/// FAILED `internal` is retryable (tiktok-api.md §7.2) and FAILED is final: one new init, and
/// the second attempt is published; the result lists the first.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_internal_failure_is_tried_once_more() {
    let r = start("", |c| c.fail_next_posts = vec!["internal".into()]).await;
    r.d.copy_sample("photo.jpg", "inbox/again.jpg");
    let text = r.finished("again.jpg", 90);
    assert!(text.contains("status: published"), "{text}");
    assert!(
        text.contains("previous_attempts:\n- publish_id: p_pub_url~")
            && text.contains("fail_reason: internal"),
        "{text}"
    );
    let calls = r.emu.calls();
    assert_eq!(calls.init_calls().len(), 2);
    assert_eq!(
        calls.posts_by_status().get("PUBLISH_COMPLETE").copied(),
        Some(1)
    );
    r.stop();
}

/// Killed while the upload was going (`transfer: upload`; the emulator holds the chunk PUT):
/// after the restart the upload goes on where TikTok says it is — from the journaled
/// upload_url, within its hour — and the post is published once with exactly the file.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interrupted_upload_is_resumed_after_a_restart() {
    let r = start_full("", ", transfer: upload", |c| c.hold_uploads = true, &[]).await;
    let sha = drop_video(&r, "cut");
    r.wait_line("init accepted item=cut.mp4", 60);
    let (d, emu) = r.kill9();
    emu.set(|c| c.hold_uploads = false);
    let r = Running::spawn(d, emu, &[]);
    let text = r.finished("cut.mp4", 60);
    assert!(
        text.contains("status: published") && text.contains("transfer: upload"),
        "{text}"
    );
    let calls = settled(&r).await;
    assert_eq!(calls.posts.len(), 1, "{:?}", calls.posts);
    assert_eq!(calls.existing_posts_of(&sha).len(), 1);
    assert_eq!(calls.init_calls().len(), 1);
    r.stop();
}

/// An init answered 429 created nothing, and the journal says so before the back-off: killed
/// during the back-off, the restarted service sends it again (not `unknown`), and one post
/// exists.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kill_during_the_back_off_after_a_429_is_not_unknown() {
    let r = start("", |c| {
        c.faults = vec![Fault::error(
            SandboxEndpoint::ContentInit,
            429,
            "rate_limit_exceeded",
            1,
        )];
    })
    .await;
    r.d.copy_sample("photo.jpg", "inbox/busy.jpg");
    r.wait_line("nothing was created, trying again", 60);
    let (d, emu) = r.kill9();
    let r = Running::spawn(d, emu, &[]);
    let text = r.finished("busy.jpg", 60);
    assert!(text.contains("status: published"), "{text}");
    let calls = r.emu.calls();
    let codes: Vec<&str> = calls.init_calls().iter().map(|c| c.code.as_str()).collect();
    assert_eq!(codes, ["rate_limit_exceeded", "ok"]);
    assert_eq!(calls.posts.len(), 1);
    r.stop();
}

/// kill -9 right after each journal state of the item's machine that the real binary reaches
/// (the fake-publisher matrix in crash.rs covers claiming and finishing): a restart never
/// doubles a post, and every file ends in done/ or failed/ exactly once with one ledger line.
/// - init intent: the publish request may have gone out, so the item ends `unknown` (or,
///   when TikTok's answer was journaled before the kill landed, `published`);
/// - published by FILE_UPLOAD, upload held: the upload is resumed and the post published;
/// - published by pull with the links revoked (TikTok never started, the cancel was answered):
///   the restart goes on with the upload, never serving the revoked links again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill9_at_every_journal_state_of_the_machine() {
    let debug = [(
        "RUST_LOG",
        "info,tokdrop::lifecycle::publish=debug,tokdrop::access=warn".to_string(),
    )];
    struct Case {
        item: &'static str,
        tiktok: &'static str,
        trigger: &'static str,
        hold: fn(&mut tokdrop_sandbox::SandboxConfig),
        release: fn(&mut tokdrop_sandbox::SandboxConfig),
        want: &'static str,
    }
    let cases = [
        Case {
            item: "intent.mp4",
            tiktok: "",
            trigger: "journaled item=intent.mp4 stage=init_intent",
            hold: |_| {},
            release: |_| {},
            want: "status: unknown|status: published",
        },
        Case {
            item: "upload.mp4",
            tiktok: ", transfer: upload",
            trigger: "init accepted item=upload.mp4",
            hold: |c| c.hold_uploads = true,
            release: |c| c.hold_uploads = false,
            want: "status: published",
        },
        Case {
            item: "revoked.mp4",
            tiktok: ", pull_start_timeout: 1s",
            trigger: "journaled item=revoked.mp4 stage=published revoked=true",
            hold: |c| c.hold_pulls = true,
            release: |_| {},
            want: "status: published",
        },
    ];
    for case in cases {
        let r = start_full("", case.tiktok, case.hold, &debug).await;
        let name = case.item.trim_end_matches(".mp4");
        let sha = drop_video(&r, name);
        r.wait_line(case.trigger, 60);
        let (d, emu) = r.kill9();
        emu.set(case.release);
        let r = Running::spawn(d, emu, &debug);
        let text = r.finished(case.item, 90);
        assert!(
            case.want.split('|').any(|w| text.contains(w)),
            "{}: {text}",
            case.trigger
        );
        r.emu.set(|c| c.hold_pulls = false);
        let calls = settled(&r).await;
        assert!(
            calls.existing_posts_of(&sha).len() <= 1,
            "{}: {:?}",
            case.trigger,
            calls.posts
        );
        if text.contains("status: published") {
            assert_eq!(calls.existing_posts_of(&sha).len(), 1, "{}", case.trigger);
        }
        let places = ["done", "failed"]
            .iter()
            .filter(|f| r.d.path(f).join(case.item).exists())
            .count();
        assert_eq!(
            places, 1,
            "{}: in done/ or failed/ exactly once",
            case.trigger
        );
        let ledger = std::fs::read_to_string(r.d.path("state/ledger.jsonl")).expect("ledger");
        assert_eq!(ledger.lines().count(), 1, "{}", case.trigger);
        r.stop();
    }
}

/// `transfer: pull` has no fallback, so its give-up point is `publish_timeout`: a download
/// TikTok has not started by then ends the item `unknown` with its publish_id (never a new
/// init), and a download TikTok starts later finds the links revoked. One init, no second post.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pull_starting_after_the_publish_timeout_never_doubles() {
    let r = start_full(
        "",
        ", transfer: pull, publish_timeout: 1m",
        |c| c.hold_pulls = true,
        &[],
    )
    .await;
    let sha = drop_video(&r, "slowpoke");
    let text = r.finished("slowpoke.mp4", 120);
    assert!(
        text.contains("status: unknown") && text.contains("publish_id: v_pub_url~"),
        "{text}"
    );
    r.emu.set(|c| c.hold_pulls = false);
    let calls = settled(&r).await;
    assert_eq!(calls.init_calls().len(), 1, "never a second init");
    assert!(
        calls.existing_posts_of(&sha).is_empty(),
        "{:?}",
        calls.posts
    );
    assert!(
        calls.downloads.iter().all(|d| d.http_status == Some(404)),
        "the late download finds the links revoked: {:?}",
        calls.downloads
    );
    r.stop();
}

/// SIGTERM while the publisher waits out a 429 on the init (TikTok's rate limit wait is a
/// minute): the service stops at once, well before the wait ends, without sending the init
/// again; the next start publishes the item.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_during_the_back_off_stops_without_another_init() {
    let r = start("", |c| {
        c.faults = vec![Fault::error(
            SandboxEndpoint::ContentInit,
            429,
            "rate_limit_exceeded",
            1,
        )];
    })
    .await;
    r.d.copy_sample("photo.jpg", "inbox/later.jpg");
    let line = r.wait_line("nothing was created, trying again in", 60);
    assert!(!line.contains("trying again in 0 s"), "{line}");
    r.signal("TERM");
    let Running { d, emu, mut p } = r;
    // The wait is a minute; stopping takes a moment. 30 s tells the two apart.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = p.child.try_wait().expect("wait") {
            break status;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "still running 30 s after SIGTERM, during the back-off"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(status.success(), "{status:?}");
    let inits = emu.calls().init_calls().len();
    assert_eq!(inits, 1, "no init after the stop");
    drop(p);
    let r = Running::spawn(d, emu, &[]);
    let text = r.finished("later.jpg", 60);
    assert!(text.contains("status: published"), "{text}");
    assert_eq!(r.emu.calls().init_calls().len(), 2);
    r.stop();
}
