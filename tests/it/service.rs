//! `tokdrop run` end to end: the real binary, with the built-in emulator standing in for
//! TikTok (started here, in the test, so faults can be injected and calls counted). Items go
//! from the inbox to done/ or failed/ with the result files a user reads.

use std::fs;
use std::time::Duration;

use sha2::{Digest, Sha256};
use tokdrop::tiktok::token_store::TokenStore;
use tokdrop::tiktok::tokens::TokenManager;
use tokdrop_sandbox::{Fault, Sandbox, SandboxConfig, SandboxEndpoint, SandboxHandle};

use crate::harness::{Dir, free_port};
use crate::process::Tokdrop;

/// The running binary, its log lines, and the emulator it talks to.
pub(crate) struct Running {
    pub(crate) d: Dir,
    pub(crate) emu: SandboxHandle,
    pub(crate) p: Tokdrop,
}

pub(crate) async fn start(extra_watch: &str, tune: impl FnOnce(&mut SandboxConfig)) -> Running {
    start_with_env(extra_watch, tune, &[]).await
}

async fn start_with_env(
    extra_watch: &str,
    tune: impl FnOnce(&mut SandboxConfig),
    envs: &[(&str, String)],
) -> Running {
    start_full(extra_watch, "", tune, envs).await
}

/// `extra_tiktok`: more keys of the `tiktok:` flow mapping (`, transfer: pull`); `{public}` stands
/// for the public URL (`https://localhost:PORT/`).
pub(crate) async fn start_full(
    extra_watch: &str,
    extra_tiktok: &str,
    tune: impl FnOnce(&mut SandboxConfig),
    envs: &[(&str, String)],
) -> Running {
    let d = Dir::empty();
    let port = free_port();
    let public = format!("https://localhost:{port}/");
    let mut sc = SandboxConfig {
        verified_url_prefixes: vec![public.clone()],
        extra_ca_file: Some(d.path("state/sandbox-ca.pem")),
        processing_delay_ms: 50,
        ..Default::default()
    };
    tune(&mut sc);
    let (key, secret) = (sc.client_key.clone(), sc.client_secret.clone());
    let emu = Sandbox::start(sc).await.expect("emulator");
    d.write("secret", &secret);
    d.write(
        "watch.yaml",
        &format!(
            "state_dir: ./state
server: {{listen: 127.0.0.1:{port}, public_url: {public}, tls: {{self_signed: true}}}}
tiktok: {{client_key: {key}, client_secret_file: ./secret, api_base: {api}, auth_base: {api}{extra_tiktok}}}
watch:
  - path: ./inbox
    mode: direct
    done_dir: ./done
    failed_dir: ./failed
    settle: 100ms
    defaults: {{privacy_level: SELF_ONLY}}
{extra_watch}",
            api = emu.base_url(),
            extra_tiktok = extra_tiktok.replace("{public}", &public),
        ),
    );
    fs::create_dir_all(d.path("drafts")).expect("drafts");
    login(&d, &emu).await;
    let r = Running::spawn(d, emu, envs);
    r.wait_line("tokdrop is running", 30);
    r
}

/// Stores a fresh sandbox login for the `default` account, as `tokdrop auth login` would.
pub(crate) async fn login(d: &Dir, emu: &SandboxHandle) {
    let grant = serde_json::from_value::<tokdrop::tiktok::wire::TokenResponse>(
        emu.issue_token(None).expect("token"),
    )
    .expect("the emulator\'s token answer parses");
    let client = tokdrop::tiktok::client::Client::new(tokdrop::tiktok::client::ClientConfig::new(
        emu.base_url().to_string(),
        emu.config().client_key,
        tokdrop::tiktok::Secret::new(emu.config().client_secret),
    ))
    .expect("client");
    let tokens = TokenManager::new(client, TokenStore::new(d.path("state/tokens")));
    tokens.store_grant("default", &grant).await.expect("store");
}

impl std::ops::Deref for Running {
    type Target = Tokdrop;
    fn deref(&self) -> &Tokdrop {
        &self.p
    }
}

impl std::ops::DerefMut for Running {
    fn deref_mut(&mut self) -> &mut Tokdrop {
        &mut self.p
    }
}

impl Running {
    pub(crate) fn stop(self) {
        self.p.stop();
    }
}

pub(crate) fn sha256_hex(p: &std::path::Path) -> String {
    hex::encode(Sha256::digest(fs::read(p).expect("read")))
}

/// Every kind of item through the real service: direct video, inbox video, single photo, photo
/// set with a cover, an invalid sidecar and a post TikTok fails — the queue goes on, each post
/// is initialized once, and TikTok received exactly the bytes of the files.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_item_kind_end_to_end() {
    let inbox = "  - path: ./drafts\n    mode: inbox\n    done_dir: ./done\n    failed_dir: ./failed\n    settle: 100ms\n";
    let r = start(inbox, |c| c.fail_next_posts = vec![]).await;
    let d = &r.d;
    d.copy_sample("h264_faststart.mp4", "outside/clip.mp4");
    d.write(
        "outside/clip.yaml",
        "title: \"Direct #one\"\nprivacy_level: SELF_ONLY\n",
    );
    fs::rename(d.path("outside/clip.yaml"), d.path("inbox/clip.yaml")).expect("mv");
    fs::rename(d.path("outside/clip.mp4"), d.path("inbox/clip.mp4")).expect("mv");
    let text = r.finished("clip.mp4", 60);
    assert!(text.contains("status: published"), "{text}");
    assert!(text.contains("transfer: pull"), "{text}");
    assert!(text.contains("publish_id: v_pub_url~"), "{text}");
    assert!(text.contains("bytes: 5145\n  of_bytes: 5145"), "{text}");

    d.copy_sample("vp9.webm", "drafts/draft.webm");
    let text = r.finished("draft.webm", 60);
    assert!(
        text.contains("status: sent_to_inbox") && text.contains("mode: inbox"),
        "{text}"
    );

    d.copy_sample("photo.jpg", "inbox/pic.jpg");
    let text = r.finished("pic.jpg", 60);
    assert!(text.contains("status: published"), "{text}");

    for n in ["1.jpg", "2.jpg", "3.jpg"] {
        d.copy_sample("photo.jpg", &format!("outside/trip/{n}"));
    }
    d.write("outside/trip/post.yaml", "title: Trip\ncover_index: 2\n");
    fs::rename(d.path("outside/trip"), d.path("inbox/trip")).expect("mv");
    let text = r.finished("trip", 60);
    assert!(text.contains("status: published"), "{text}");

    d.write("outside/bad.yaml", "privacy_level: SELF\n");
    d.copy_sample("photo.jpg", "outside/bad.jpg");
    fs::rename(d.path("outside/bad.yaml"), d.path("inbox/bad.yaml")).expect("mv");
    fs::rename(d.path("outside/bad.jpg"), d.path("inbox/bad.jpg")).expect("mv");
    let text = r.finished("bad.jpg", 60);
    assert!(
        text.contains("status: invalid") && text.contains("did you mean 'SELF_ONLY'?"),
        "{text}"
    );

    r.emu
        .set(|c| c.fail_next_posts = vec!["picture_size_check_failed".into()]);
    d.copy_sample("photo.jpg", "inbox/big.jpg");
    let text = r.finished("big.jpg", 60);
    assert!(
        text.contains("status: failed") && text.contains("code: picture_size_check_failed"),
        "{text}"
    );
    d.copy_sample("photo.jpg", "inbox/after.jpg");
    let text = r.finished("after.jpg", 60);
    assert!(
        text.contains("status: published"),
        "the queue goes on after a failure: {text}"
    );

    let calls = r.emu.calls();
    let created: Vec<_> = calls.inits.iter().filter(|i| i.code == "ok").collect();
    assert_eq!(created.len(), 6, "one accepted init per valid item");
    let trip = created
        .iter()
        .find(|i| {
            i.body["source_info"]["photo_images"]
                .as_array()
                .is_some_and(|a| a.len() == 3)
        })
        .expect("trip init");
    assert_eq!(trip.body["source_info"]["photo_cover_index"], 2);
    let clip_sha = sha256_hex(&d.path("done/clip.mp4"));
    assert!(
        calls
            .downloads
            .iter()
            .any(|dl| dl.sha256.as_deref() == Some(clip_sha.as_str())),
        "TikTok got the exact bytes"
    );
    assert!(
        fs::read_dir(d.path("inbox"))
            .expect("inbox")
            .flatten()
            .all(|e| e.file_name() == ".tokdrop")
    );
    // Canary: the secrets appear in the token file and nowhere else tokdrop writes.
    let token: serde_json::Value = serde_json::from_str(
        &fs::read_to_string(d.path("state/tokens/default.json")).expect("token"),
    )
    .expect("json");
    let secrets = [
        token["access_token"].as_str().expect("access").to_string(),
        token["refresh_token"]
            .as_str()
            .expect("refresh")
            .to_string(),
        fs::read_to_string(d.path("secret")).expect("secret"),
    ];
    let mut written = vec![d.path("state/ledger.jsonl"), d.path("state/status.json")];
    for f in ["done", "failed"] {
        written.extend(
            fs::read_dir(d.path(f))
                .expect("dir")
                .flatten()
                .map(|e| e.path())
                .filter(|p| p.is_file()),
        );
    }
    for path in written {
        let text = fs::read_to_string(&path).unwrap_or_default();
        for s in &secrets {
            assert!(
                !text.contains(s.as_str()),
                "{} contains a secret",
                path.display()
            );
        }
    }
    r.stop();
}

/// 500s and a 429 on init are retried and the item is still published with one created post;
/// an init whose answer is lost after TikTok created the post ends `unknown` and is never sent
/// again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transient_faults_and_lost_answers() {
    let r = start("", |c| {
        c.faults = vec![
            Fault {
                endpoint: SandboxEndpoint::ContentInit,
                http_status: 500,
                code: Some("internal_error".into()),
                body: None,
                content_type: None,
                message: None,
                times: 2,
                drop_connection: false,
                take_effect: false,
            },
            Fault {
                endpoint: SandboxEndpoint::StatusFetch,
                http_status: 503,
                code: None,
                body: None,
                content_type: None,
                message: None,
                times: 1,
                drop_connection: false,
                take_effect: false,
            },
        ];
    })
    .await;
    r.d.copy_sample("photo.jpg", "inbox/retry.jpg");
    let text = r.finished("retry.jpg", 90);
    assert!(text.contains("status: published"), "{text}");
    let calls = r.emu.calls();
    assert_eq!(calls.inits.iter().filter(|i| i.code == "ok").count(), 1);
    assert_eq!(calls.posts.len(), 1, "exactly one post exists");

    r.emu.set(|c| {
        c.faults = vec![Fault {
            endpoint: SandboxEndpoint::ContentInit,
            http_status: 200,
            code: None,
            body: None,
            content_type: None,
            message: None,
            times: 1,
            drop_connection: true,
            take_effect: true,
        }];
    });
    r.d.copy_sample("photo.jpg", "inbox/lost.jpg");
    let text = r.finished("lost.jpg", 90);
    assert!(
        text.contains("status: unknown") && text.contains("stage: init"),
        "{text}"
    );
    assert!(
        text.contains("look at the creator's TikTok profile"),
        "{text}"
    );
    assert!(r.d.path("failed/lost.jpg").exists());
    assert_eq!(
        r.emu.calls().posts.len(),
        2,
        "the lost init was not sent again"
    );
    r.stop();
}

/// A rejected refresh token pauses the account (the item waits, nothing fails); a new login
/// resumes it without a restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn needs_login_pauses_and_a_new_login_resumes() {
    let r = start("", |_| {}).await;
    r.emu
        .control(
            serde_json::from_value(
                serde_json::json!({"expire_access_tokens": true, "revoke_refresh_tokens": true}),
            )
            .expect("control"),
        )
        .expect("control");
    r.d.copy_sample("photo.jpg", "inbox/wait.jpg");
    r.wait_line("paused: needs login", 60);
    // status.json follows the service within a fraction of a second.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let status = r.d.run(&["status"]);
        if status
            .stdout
            .contains("paused (default): needs login — run `tokdrop auth login` (next try ")
        {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "status never showed the pause:\n{}",
            status.stdout
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(!r.d.path("failed/wait.jpg").exists());
    login(&r.d, &r.emu).await;
    let text = r.finished("wait.jpg", 60);
    assert!(text.contains("status: published"), "{text}");
    r.stop();
}

/// Under `transfer: auto`, a video whose pull fails is sent once more by FILE_UPLOAD; the
/// result says so and lists the pull attempt.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_pull_falls_back_to_upload() {
    let r = start("", |c| c.fail_next_pulls = 1).await;
    r.d.copy_sample("h264_faststart.mp4", "outside/v.mp4");
    r.d.write("outside/v.yaml", "title: fallback\n");
    fs::rename(r.d.path("outside/v.yaml"), r.d.path("inbox/v.yaml")).expect("mv");
    fs::rename(r.d.path("outside/v.mp4"), r.d.path("inbox/v.mp4")).expect("mv");
    let text = r.finished("v.mp4", 90);
    assert!(
        text.contains("status: published") && text.contains("transfer: upload"),
        "{text}"
    );
    assert!(
        text.contains("previous_attempts:\n- publish_id: v_pub_url~")
            && text.contains("fail_reason: video_pull_failed"),
        "{text}"
    );
    let calls = r.emu.calls();
    assert_eq!(calls.posts.len(), 2, "one pull attempt, one upload");
    assert!(
        !calls.uploads.is_empty(),
        "the video was uploaded in chunks"
    );
    r.stop();
}

/// An access token that stops working while a post is being followed is refreshed once and the
/// polling goes on to the end.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_refresh_during_a_long_poll() {
    let r = start("", |c| c.processing_delay_ms = 7000).await;
    r.d.copy_sample("photo.jpg", "inbox/slow.jpg");
    r.wait_line("init accepted item=slow.jpg", 60);
    let refreshes_before = r.emu.calls().of(SandboxEndpoint::Token).len();
    r.emu
        .control(
            serde_json::from_value(serde_json::json!({"expire_access_tokens": true}))
                .expect("control"),
        )
        .expect("control");
    let text = r.finished("slow.jpg", 90);
    assert!(text.contains("status: published"), "{text}");
    assert!(
        r.emu.calls().of(SandboxEndpoint::Token).len() > refreshes_before,
        "the token was refreshed mid-poll"
    );
    r.stop();
}

impl Running {
    pub(crate) fn kill9(mut self) -> (Dir, SandboxHandle) {
        self.child.kill().expect("SIGKILL");
        self.child.wait().expect("reap");
        (self.d, self.emu)
    }

    /// Starts `tokdrop run` on the folder (again, after a kill) with the emulator.
    pub(crate) fn spawn(d: Dir, emu: SandboxHandle, envs: &[(&str, String)]) -> Running {
        let p = Tokdrop::spawn(d.tmp.path(), &["run", "--config", "watch.yaml"], envs);
        Running { d, emu, p }
    }
}

/// kill -9 of the real binary at claim, after init (during pull/processing), and after
/// finishing: after a restart every file is in done/ or failed/ exactly once and TikTok saw at
/// most one post per item.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill9_matrix_with_the_real_binary() {
    for (trigger, item) in [
        ("claimed item=a.jpg", "a.jpg"),
        ("init accepted item=b.jpg", "b.jpg"),
        ("finished item=c.jpg", "c.jpg"),
    ] {
        let r = start("", |c| c.processing_delay_ms = 3000).await;
        r.d.copy_sample("photo.jpg", &format!("inbox/{item}"));
        r.wait_line(trigger, 60);
        let (d, emu) = r.kill9();
        let r = Running::spawn(d, emu, &[]);
        r.wait_line("tokdrop is running", 30);
        if !trigger.starts_with("finished") {
            let text = r.finished(item, 90);
            // Killed right after the init, TikTok may have tried the download while the server
            // was down: that attempt fails, and its one retry may fail the same way.
            let pull_lost = trigger.starts_with("init") && text.contains("code: photo_pull_failed");
            assert!(
                text.contains("status: published") || pull_lost,
                "{trigger}: {text}"
            );
        }
        let places: Vec<_> = ["done", "failed"]
            .iter()
            .map(|f| r.d.path(f).join(item))
            .filter(|p| p.exists())
            .collect();
        assert_eq!(
            places.len(),
            1,
            "{trigger}: {item} must be in done/ or failed/ exactly once"
        );
        // A pull TikTok failed while tokdrop was down gets one new init: the first attempt is
        // FAILED (TikTok's end state), so at most one post may exist.
        let calls = r.emu.calls();
        assert!(
            calls.posts.iter().filter(|p| p.exists()).count() <= 1,
            "{trigger}: at most one post per item: {:?}",
            calls.posts
        );
        assert_eq!(
            fs::read_to_string(r.d.path("state/ledger.jsonl"))
                .expect("ledger")
                .lines()
                .count(),
            1,
            "{trigger}"
        );
        r.stop();
    }
}

/// Killed after TikTok accepted a pull and before it fetched the file: after the restart the
/// same links serve the file again, so TikTok's download (queued until now) succeeds and the
/// post is published once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_keeps_the_links_tiktok_was_given() {
    let r = start("", |c| c.hold_pulls = true).await;
    r.d.copy_sample("photo.jpg", "inbox/queued.jpg");
    r.wait_line("init accepted item=queued.jpg", 60);
    let (d, emu) = r.kill9();
    let r = Running::spawn(d, emu, &[]);
    r.wait_line(
        "serving the media again under the links TikTok was given",
        60,
    );
    r.emu.set(|c| c.hold_pulls = false);
    let text = r.finished("queued.jpg", 60);
    assert!(text.contains("status: published"), "{text}");
    let calls = r.emu.calls();
    assert_eq!(calls.posts.len(), 1, "posted once");
    assert_eq!(calls.downloads.len(), 1, "{:?}", calls.downloads);
    assert_eq!(
        calls.downloads[0].sha256.as_deref(),
        Some(sha256_hex(&r.d.path("done/queued.jpg")).as_str()),
        "TikTok got the file through the link it was given before the restart"
    );
    r.stop();
}

/// systemd's notify protocol through a real datagram socket: READY once running, STATUS lines,
/// WATCHDOG at half the interval, RELOADING with MONOTONIC_USEC then READY on SIGHUP, STOPPING
/// on SIGTERM (exit 0).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn systemd_notify_protocol() {
    let sockdir = tempfile::tempdir().expect("tempdir");
    let sock_path = sockdir.path().join("notify.sock");
    let sock = std::os::unix::net::UnixDatagram::bind(&sock_path).expect("bind");
    sock.set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    let r = start_with_env(
        "",
        |_| {},
        &[
            ("NOTIFY_SOCKET", sock_path.display().to_string()),
            ("WATCHDOG_USEC", "400000".into()),
        ],
    )
    .await;
    // Read datagrams as they come, as systemd does: the socket queues only a few
    // (net.unix.max_dgram_qlen), and WATCHDOG=1 arrives every 200 ms while the test waits.
    let (tx, datagrams) = std::sync::mpsc::channel::<String>();
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = sock.recv(&mut buf) {
            if tx
                .send(String::from_utf8_lossy(&buf[..n]).into_owned())
                .is_err()
            {
                break;
            }
        }
    });
    let mut seen: Vec<String> = Vec::new();
    let mut next = |want: &str| -> String {
        loop {
            let msg = datagrams
                .recv_timeout(Duration::from_secs(30))
                .unwrap_or_else(|e| panic!("no datagram with {want:?} (seen {seen:?}): {e}"));
            seen.push(msg.clone());
            if msg.contains(want) {
                return msg;
            }
        }
    };
    next("READY=1");
    next("STATUS=idle");
    next("WATCHDOG=1");
    r.signal("HUP");
    let reloading = next("RELOADING=1");
    assert!(reloading.contains("MONOTONIC_USEC="), "{reloading}");
    next("READY=1");
    r.d.copy_sample("photo.jpg", "inbox/n.jpg");
    next("STATUS=publishing n.jpg");
    r.finished("n.jpg", 60);
    r.signal("TERM");
    next("STOPPING=1");
    let mut r = r;
    let status = r.child.wait().expect("exit");
    assert!(status.success(), "{status:?}");
}

/// The watchdog follows the workers' heartbeat: while a worker holds an item without showing
/// progress past the stall limit, WATCHDOG=1 stops (systemd would restart the service), and it
/// comes back once the worker moves again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watchdog_stops_while_a_worker_is_stuck() {
    let sockdir = tempfile::tempdir().expect("tempdir");
    let sock_path = sockdir.path().join("notify.sock");
    let sock = std::os::unix::net::UnixDatagram::bind(&sock_path).expect("bind");
    sock.set_read_timeout(Some(Duration::from_millis(100)))
        .expect("timeout");
    let hold = sockdir.path().join("hold");
    fs::write(&hold, "").expect("hold");
    let r = start_with_env(
        "",
        |_| {},
        &[
            ("NOTIFY_SOCKET", sock_path.display().to_string()),
            ("WATCHDOG_USEC", "200000".into()),
            ("TOKDROP_TEST_HOLD", hold.display().to_string()),
            ("TOKDROP_STALL_LIMIT", "500ms".into()),
        ],
    )
    .await;
    let (tx, datagrams) = std::sync::mpsc::channel::<String>();
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        loop {
            match sock.recv(&mut buf) {
                Ok(n) => {
                    if tx
                        .send(String::from_utf8_lossy(&buf[..n]).into_owned())
                        .is_err()
                    {
                        break;
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(_) => break,
            }
        }
    });
    let wait_for = |want: &str| loop {
        let msg = datagrams
            .recv_timeout(Duration::from_secs(30))
            .unwrap_or_else(|e| panic!("no datagram with {want:?}: {e}"));
        if msg.contains(want) {
            break;
        }
    };
    wait_for("WATCHDOG=1");
    r.d.copy_sample("photo.jpg", "inbox/held.jpg");
    r.wait_line("not feeding the systemd watchdog", 30);
    // Pings sent before the log line may still be queued; from then on none come (one
    // would come every 100 ms otherwise): a gap of 600 ms must show within 10 s.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let mut during = Vec::new();
    while let Ok(msg) = datagrams.recv_timeout(Duration::from_millis(600)) {
        during.push(msg);
        assert!(
            std::time::Instant::now() < deadline,
            "the watchdog was still fed while the worker was stuck: {during:?}"
        );
    }
    fs::remove_file(&hold).expect("release");
    let text = r.finished("held.jpg", 60);
    assert!(text.contains("status: published"), "{text}");
    wait_for("WATCHDOG=1");
    r.stop();
}

/// SIGHUP re-reads the config: a broken one is refused and the service keeps working with the
/// running one; a valid one is taken: a new watch folder is watched at once, a new log level
/// applies (here RUST_LOG overrides it), and a changed server setting is named as needing a
/// restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_with_a_broken_and_a_changed_config() {
    let r = start("", |_| {}).await;
    let good = fs::read_to_string(r.d.path("watch.yaml")).expect("config");
    r.d.write("watch.yaml", &good.replace("mode: direct", "mode: publish"));
    r.signal("HUP");
    let line = r.wait_line("SIGHUP: the config is invalid, keeping the running one", 30);
    assert!(line.contains("SIGHUP"), "{line}");
    r.wait_line("'publish' is not one of direct, inbox", 5);
    r.d.copy_sample("photo.jpg", "inbox/still.jpg");
    let text = r.finished("still.jpg", 60);
    assert!(text.contains("status: published"), "{text}");
    fs::create_dir_all(r.d.path("more")).expect("mkdir");
    r.d.write(
        "watch.yaml",
        &format!(
            "{}  - path: ./more\n    mode: inbox\n    done_dir: ./more-done\n    failed_dir: ./more-failed\n    settle: 100ms\n",
            good.replace(
                "state_dir: ./state",
                "state_dir: ./state\nlog: {level: debug}",
            )
            .replace("tls: {self_signed: true}}", "tls: {self_signed: true}, link_ttl: 1h}")
        ),
    );
    r.signal("HUP");
    r.wait_line("RUST_LOG is set and keeps overriding log.level", 30);
    r.wait_line(
        "server.link_ttl changed; that takes effect after a restart",
        10,
    );
    r.wait_line("reload: now watching", 10);
    r.d.copy_sample("photo.jpg", "more/draft.jpg");
    let text = r.finished("draft.jpg", 60);
    assert!(text.contains("status: sent_to_inbox"), "{text}");
    assert!(r.d.path("more-done/draft.result.yaml").exists());
    let status = r.d.run(&["status"]).stdout;
    assert!(
        status.contains("watching: inbox (account default, direct)")
            && status.contains("watching: more (account default, inbox)"),
        "{status}"
    );
    r.stop();
}

/// SIGTERM while a post is being followed: exit 0 at once, the journal keeps the publish_id,
/// and the next start finishes the item without posting again. SIGTERM while idle: exit 0.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_in_flight_and_idle() {
    let r = start("", |c| c.processing_delay_ms = 8000).await;
    r.d.copy_sample("photo.jpg", "inbox/flight.jpg");
    r.wait_line("init accepted item=flight.jpg", 60);
    // Stop while TikTok processes the post: after it fetched the file (otherwise the pull
    // fails honestly while tokdrop is down, see kill9_matrix_with_the_real_binary).
    r.emu
        .wait_until(Duration::from_secs(30), |c| {
            c.downloads.iter().any(|d| d.sha256.is_some()).then_some(())
        })
        .await
        .expect("TikTok fetched the photo");
    let t0 = std::time::Instant::now();
    let (d, emu) = {
        let mut r = r;
        r.signal("TERM");
        let status = r.child.wait().expect("exit");
        assert!(status.success(), "{status:?}");
        (r.d, r.emu)
    };
    assert!(
        t0.elapsed() < Duration::from_secs(20),
        "stopped promptly: {:?}",
        t0.elapsed()
    );
    let journal: Vec<_> = fs::read_dir(d.path("state/journal"))
        .expect("journal")
        .flatten()
        .collect();
    assert_eq!(journal.len(), 1, "the item stays journaled");
    let record = fs::read_to_string(journal[0].path()).expect("record");
    assert!(
        record.contains("\"stage\": \"published\"") && record.contains("p_pub_url~"),
        "{record}"
    );
    let r = Running::spawn(d, emu, &[]);
    let text = r.finished("flight.jpg", 60);
    assert!(text.contains("status: published"), "{text}");
    assert_eq!(
        r.emu.calls().posts.len(),
        1,
        "no second post after the restart"
    );
    r.stop(); // idle now: exits 0 as well
}

/// Under the packaged unit's `UMask=0077`, what `tokdrop status` and `results` read (the
/// status file, the ledger) and the result files are readable by the service's group; the
/// tokens and the journal stay private to the service's user.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn group_reads_status_ledger_and_results_not_tokens() {
    use std::os::unix::fs::PermissionsExt;
    let r = start("", |_| {}).await;
    let Running { d, emu, p } = r;
    p.stop();
    let p = Tokdrop::spawn_with_umask(d.tmp.path(), &["run", "--config", "watch.yaml"], &[], "077");
    let r = Running { d, emu, p };
    r.wait_line("tokdrop is running", 30);
    r.d.copy_sample("photo.jpg", "inbox/g.jpg");
    assert!(r.finished("g.jpg", 60).contains("status: published"));
    let mode = |rel: &str| {
        fs::metadata(r.d.path(rel))
            .unwrap_or_else(|e| panic!("{rel}: {e}"))
            .permissions()
            .mode()
            & 0o777
    };
    assert_eq!(mode("state/ledger.jsonl"), 0o640);
    assert_eq!(mode("state/status.json"), 0o640);
    assert_eq!(mode("done/g.result.yaml"), 0o640);
    assert_eq!(mode("state/tokens/default.json"), 0o600);
    assert_eq!(mode("state/tokens"), 0o700);
    r.stop();
}
