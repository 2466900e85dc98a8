//! Canary against the emulator: a whole login, refresh, post and logout with marker secrets;
//! no secret (client secret, code, tokens, upload token) appears in captured logs (TRACE, both
//! sides), error texts, or the emulator's introspection and control answers.

use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};

use tokdrop::tiktok::chunks::ChunkPlan;
use tokdrop::tiktok::login::{LoginConfig, PendingLogin};
use tokdrop::tiktok::wire::{VideoInit, VideoSource};
use tokdrop::tiktok::{Secret, TokenManager, TokenStore};
use tokdrop_sandbox::{Control, Sandbox, SandboxEndpoint};

use crate::sandbox_harness::{client_for, fast_config, pattern};
use crate::sandbox_posting::post_info;

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

/// A process-wide TRACE subscriber writing into one buffer. Global rather than per-thread:
/// a scoped subscriber misses events whose callsite interest another test's thread cached
/// first, which made the "capture works" check flaky under the parallel test runner.
fn global_capture() -> Capture {
    static CAPTURE: OnceLock<Capture> = OnceLock::new();
    CAPTURE
        .get_or_init(|| {
            let capture = Capture::default();
            let writer = capture.clone();
            let subscriber = tracing_subscriber::fmt()
                .with_max_level(tracing::Level::TRACE)
                .with_writer(move || writer.clone())
                .finish();
            // Another test binary set-up may have installed one; then nothing is captured
            // and the "capture works" assertion says so.
            let _ = tracing::subscriber::set_global_default(subscriber);
            capture
        })
        .clone()
}

/// Every secret of a full session stays out of logs, errors and `/_sandbox/*` answers.
#[tokio::test]
async fn no_secret_leaks_from_a_sandbox_session() {
    let capture = global_capture();

    let mut config = fast_config();
    config.client_secret = "MARKER-CLIENT-SECRET".into();
    config.access_token_secs = 60;
    let sandbox = Sandbox::start(config).await.expect("sandbox");
    let dir = tempfile::tempdir().expect("tempdir");
    let tokens = TokenManager::new(
        client_for(&sandbox, std::time::Duration::from_secs(60)),
        TokenStore::new(dir.path()),
    );
    let mut secrets = vec!["MARKER-CLIENT-SECRET".to_string()];
    let mut texts = Vec::new();

    let redirect = "http://127.0.0.1:3455/callback/";
    let login = PendingLogin::new(
        &LoginConfig {
            auth_base: sandbox.base_url().into(),
            client_key: sandbox.config().client_key,
            redirect_uri: redirect.into(),
            scopes: vec!["video.publish".into()],
            pkce: Default::default(),
        },
        redirect,
    )
    .expect("login");
    let location = crate::harness::http()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("browser")
        .get(login.authorize_url())
        .send()
        .await
        .expect("authorize")
        .headers()["location"]
        .to_str()
        .expect("ascii")
        .to_string();
    let callback = login.parse_pasted(&location).expect("callback");
    secrets.push(callback.code.expose().to_string());
    login
        .finish(&tokens, "default", callback)
        .await
        .expect("login");
    let first = tokens.store().load("default").expect("load").expect("file");
    secrets.push(first.access_token.expose().to_string());
    secrets.push(first.refresh_token.expose().to_string());

    let token = tokens.access_token("default").await.expect("refreshed");
    let second = tokens.store().load("default").expect("load").expect("file");
    secrets.push(second.access_token.expose().to_string());
    secrets.push(second.refresh_token.expose().to_string());

    let client = tokens.client();
    let dir2 = tempfile::tempdir().expect("tempdir");
    let path = dir2.path().join("a.mp4");
    std::fs::write(&path, pattern(1000)).expect("write");
    let body = VideoInit {
        post_info: post_info("SELF_ONLY"),
        source_info: VideoSource::FileUpload {
            video_size: 1000,
            chunk_size: 1000,
            total_chunk_count: 1,
        },
    };
    let init = client.video_init(&token, &body).await.expect("init");
    let upload_url = init.upload_url.expect("url");
    let upload_token = upload_url
        .split("upload_token=")
        .nth(1)
        .expect("token")
        .to_string();
    secrets.push(upload_token);
    let plan = ChunkPlan::for_size(1000).expect("plan");
    client
        .upload_file(&upload_url, &path, &plan, "video/mp4")
        .await
        .expect("upload");
    // The same chunk again: 416 (a whole upload again would just see TikTok has it all).
    let first = plan.chunks().next().expect("one chunk");
    let bad = client
        .upload_chunk(&upload_url, &path, &plan, first, "video/mp4")
        .await
        .expect_err("done");
    texts.push(format!("{bad} {bad:?}"));
    sandbox
        .control(Control {
            expire_access_tokens: true,
            ..Control::default()
        })
        .expect("control");
    let err = client.creator_info(&token).await.expect_err("expired");
    texts.push(format!("{err} {err:?} {}", err.hint()));
    let wrong = client
        .exchange_code(
            &Secret::new(secrets[1].clone()),
            &Secret::new("v".repeat(43)),
            redirect,
        )
        .await
        .expect_err("used code");
    texts.push(format!("{wrong} {wrong:?}"));
    tokens.logout("default", false).await.expect("logout");

    let http = crate::harness::http().build().expect("client");
    let base = sandbox.base_url();
    texts.push(
        http.get(format!("{base}/_sandbox/calls"))
            .send()
            .await
            .expect("calls")
            .text()
            .await
            .expect("text"),
    );
    texts.push(
        http.post(format!("{base}/_sandbox/control"))
            .json(&serde_json::json!({"config": {"daily_post_cap": 3}}))
            .send()
            .await
            .expect("control")
            .text()
            .await
            .expect("text"),
    );
    texts.push(format!("{:?}", sandbox.calls()));
    assert!(sandbox.calls().count(SandboxEndpoint::Revoke) == 1);
    let logs = String::from_utf8(capture.0.lock().expect("lock").clone()).expect("utf8");
    assert!(logs.contains("sandbox call"), "capture works");
    for text in texts.iter().chain([&logs]) {
        for secret in &secrets {
            assert!(
                !text.contains(secret.as_str()),
                "a secret leaked in: {text}"
            );
        }
    }
}
