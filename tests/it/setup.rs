//! A real TikTok app as its owner registered it (issue 14): an app approved only for
//! `video.upload` sends drafts, and `auth status` checks each login against what its folders
//! need, naming the folders a missing scope breaks.

use tokdrop::tiktok::token_store::TokenStore;
use tokdrop::tiktok::tokens::TokenManager;
use tokdrop_sandbox::{Sandbox, SandboxConfig, SandboxEndpoint, SandboxHandle};

use crate::harness::Dir;
use crate::service::{sha256_hex, start_full};

const INBOX_ONLY: [&str; 3] = ["user.info.basic", "user.info.profile", "video.upload"];

/// The usual unaudited setup: the app is approved for `video.upload` only. A video dropped
/// into an inbox folder goes to the creator's inbox — without creator_info, which needs
/// `video.publish` — and TikTok receives exactly the file.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_inbox_only_app_sends_drafts() {
    let drafts = "  - path: ./drafts\n    mode: inbox\n    done_dir: ./done\n    failed_dir: ./failed\n    settle: 100ms\n";
    let r = start_full(
        drafts,
        "",
        |c| c.approved_scopes = INBOX_ONLY.map(String::from).to_vec(),
        &[],
    )
    .await;
    r.d.copy_sample("h264_faststart.mp4", "outside/draft.mp4");
    let sha = sha256_hex(&r.d.path("outside/draft.mp4"));
    std::fs::rename(r.d.path("outside/draft.mp4"), r.d.path("drafts/draft.mp4")).expect("mv");
    let text = r.finished("draft.mp4", 60);
    assert!(text.contains("status: sent_to_inbox"), "{text}");
    let calls = r.emu.calls();
    assert_eq!(calls.count(SandboxEndpoint::CreatorInfo), 0);
    assert_eq!(calls.existing_posts_of(&sha).len(), 1);
    r.stop();
}

/// A config with a direct and an inbox folder, logged in as `scopes` asks and the user grants.
async fn logged_in(d: &Dir, sandbox: &SandboxHandle, scopes: &[&str]) {
    d.write("secret", "sandbox-secret");
    d.write(
        "watch.yaml",
        &format!(
            "state_dir: ./state
server: {{listen: 127.0.0.1:8443, public_url: https://localhost:8443/, tls: {{self_signed: true}}}}
tiktok: {{client_key: sbawtokdropsandbox, client_secret_file: ./secret, api_base: {b}, auth_base: {b}}}
watch:
  - {{path: ./posts, mode: direct, done_dir: ./done, failed_dir: ./failed}}
  - {{path: ./drafts, mode: inbox, done_dir: ./done, failed_dir: ./failed}}
",
            b = sandbox.base_url()
        ),
    );
    for dir in ["posts", "drafts"] {
        std::fs::create_dir_all(d.path(dir)).expect("mkdir");
    }
    store_login(d, sandbox, scopes).await;
}

/// Logs the emulator's user in with `scopes` (as granted at the authorize page) and stores
/// the grant for the `default` account in `d`'s state folder.
pub(crate) async fn store_login(d: &Dir, sandbox: &SandboxHandle, scopes: &[&str]) {
    let scopes: Vec<String> = scopes.iter().map(|s| s.to_string()).collect();
    let grant = serde_json::from_value::<tokdrop::tiktok::wire::TokenResponse>(
        sandbox.login(None, &scopes).expect("login"),
    )
    .expect("token answer");
    let client = tokdrop::tiktok::client::Client::new(tokdrop::tiktok::client::ClientConfig::new(
        sandbox.base_url().to_string(),
        sandbox.config().client_key,
        tokdrop::tiktok::Secret::new(sandbox.config().client_secret),
    ))
    .expect("client");
    TokenManager::new(client, TokenStore::new(d.path("state/tokens")))
        .store_grant("default", &grant)
        .await
        .expect("store");
}

async fn auth_status(d: Dir, args: &'static [&'static str]) -> (Dir, crate::harness::Output) {
    tokio::task::spawn_blocking(move || {
        let mut all = vec!["auth", "status"];
        all.extend_from_slice(args);
        let out = d.run(&all);
        (d, out)
    })
    .await
    .expect("auth status")
}

/// `auth status` of a login that lacks `video.publish` (the user untoggled it, or the app is
/// not approved for it) names the direct folder it breaks and exits 3; it asks user/info, not
/// creator_info, which would need that scope. With every needed scope, it exits 0.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auth_status_names_the_folders_a_missing_scope_breaks() {
    let mut config = SandboxConfig::default();
    config.accounts[0].deselect = vec!["video.publish".into()];
    let sandbox = Sandbox::start(config).await.expect("emulator");
    let d = Dir::empty();
    logged_in(
        &d,
        &sandbox,
        &[
            "user.info.basic",
            "user.info.profile",
            "video.publish",
            "video.upload",
        ],
    )
    .await;
    let (d, out) = auth_status(d, &[]).await;
    assert_eq!(out.code, 3, "{}", out.all());
    assert!(
        out.stdout.contains(
            "posts (direct mode) cannot post: it needs the scope video.publish, which this login was not granted"
        ),
        "{}",
        out.stdout
    );
    assert!(
        !out.stdout.contains("drafts (inbox mode) cannot post"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout
            .contains("TikTok accepts it: @tokdrop.sandbox (tokdrop sandbox)"),
        "{}",
        out.stdout
    );
    assert_eq!(sandbox.calls().count(SandboxEndpoint::CreatorInfo), 0);
    let (d, out) = auth_status(d, &["--json"]).await;
    assert_eq!(out.code, 3, "{}", out.all());
    let report: serde_json::Value = serde_json::from_str(out.stdout.trim()).expect("one JSON line");
    assert_eq!(report["account"], "default");
    assert_eq!(report["needs_login"], true);
    assert_eq!(report["accepted"], true);
    assert_eq!(
        report["cannot_post"][0],
        "posts (direct mode) cannot post: it needs the scope video.publish, which this login was not granted"
    );
    assert!(!out.stdout.contains("act."), "no token in the JSON");

    sandbox.set(|c| c.accounts[0].deselect.clear());
    logged_in(
        &d,
        &sandbox,
        &[
            "user.info.basic",
            "user.info.profile",
            "video.publish",
            "video.upload",
        ],
    )
    .await;
    let (_d, out) = auth_status(d, &[]).await;
    assert_eq!(out.code, 0, "{}", out.all());
    assert!(!out.stdout.contains("cannot post"), "{}", out.stdout);
    assert_eq!(sandbox.calls().count(SandboxEndpoint::CreatorInfo), 1);
}

/// Plays the browser of a Web-platform login: reads the authorize URL `auth login` prints,
/// follows TikTok's redirect to the media server's callback (trusting the self-signed
/// certificate the media server wrote), and returns the callback page and the command's end.
async fn web_login_through_browser(d: &Dir, public: &str) -> (String, std::process::Output) {
    use std::io::BufRead;
    let mut login = std::process::Command::new(env!("CARGO_BIN_EXE_tokdrop"))
        .args(["auth", "login", "--config", "watch.yaml"])
        .current_dir(d.tmp.path())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("auth login");
    let mut url = String::new();
    std::io::BufReader::new(login.stdout.take().expect("stdout"))
        .read_line(&mut url)
        .expect("url line");
    let redirect = format!("{public}oauth/callback/");
    assert!(
        url.contains(&format!(
            "redirect_uri={}",
            percent_encoding::utf8_percent_encode(&redirect, percent_encoding::NON_ALPHANUMERIC)
        )),
        "the redirect URI is sent exactly as configured: {url}"
    );
    let pem = std::fs::read(d.path("state/sandbox-ca.pem")).expect("media server certificate");
    let browser = crate::harness::http()
        .redirect(reqwest::redirect::Policy::none())
        .add_root_certificate(reqwest::Certificate::from_pem(&pem).expect("pem"))
        .build()
        .expect("client");
    let answer = browser.get(url.trim()).send().await.expect("authorize");
    let location = answer.headers()["location"]
        .to_str()
        .expect("location")
        .to_string();
    assert!(location.starts_with(&redirect), "{location}");
    let page = browser.get(&location).send().await.expect("callback");
    assert_eq!(page.status(), 200);
    let page = page.text().await.expect("page");
    let out = tokio::task::spawn_blocking(move || login.wait_with_output())
        .await
        .expect("join")
        .expect("wait");
    (page, out)
}

fn web_app(c: &mut SandboxConfig, public: &str) {
    c.platform = tokdrop_sandbox::Platform::Web;
    c.redirect_uris = vec![format!("{public}oauth/callback/")];
}

/// A Web-platform app with a direct and an inbox folder, logged in through `auth login` with
/// the service stopped, the user switching off `deselect` at the authorize page.
async fn web_login_with_the_service_stopped_as(
    deselect: &[&str],
) -> (u16, String, std::process::Output, Dir) {
    let port = crate::harness::free_port();
    let public = format!("https://localhost:{port}/");
    let mut config = SandboxConfig::default();
    web_app(&mut config, &public);
    config.accounts[0].deselect = deselect.iter().map(|s| s.to_string()).collect();
    let sandbox = Sandbox::start(config).await.expect("sandbox");
    let d = Dir::empty();
    d.write("secret", "sandbox-secret");
    d.write(
        "watch.yaml",
        &format!(
            "state_dir: ./state
server: {{listen: 127.0.0.1:{port}, public_url: {public}, tls: {{self_signed: true}}}}
tiktok: {{client_key: sbawtokdropsandbox, client_secret_file: ./secret, api_base: {b}, auth_base: {b}, redirect_uri: '{public}oauth/callback/'}}
watch:
  - {{path: ./posts, mode: direct, done_dir: ./done, failed_dir: ./failed}}
  - {{path: ./drafts, mode: inbox, done_dir: ./done, failed_dir: ./failed}}
",
            b = sandbox.base_url()
        ),
    );
    for dir in ["posts", "drafts"] {
        std::fs::create_dir_all(d.path(dir)).expect("mkdir");
    }
    let (page, out) = web_login_through_browser(&d, &public).await;
    (port, page, out, d)
}

/// A Web-platform app with the service stopped: `auth login` answers TikTok's redirect on
/// `server.listen` itself, over the media server's TLS, and stores the login.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn web_login_with_the_service_stopped() {
    let (port, page, out, d) = web_login_with_the_service_stopped_as(&[]).await;
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(page.contains("You can close this tab"), "{page}");
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains(&format!(
            "is answered by tokdrop itself on 127.0.0.1:{port} (the service is not running)"
        )),
        "{err}"
    );
    assert!(err.contains("Logged in: account 'default'"), "{err}");
    assert!(!err.contains("warning"), "{err}");
    assert!(d.path("state/tokens/default.json").exists());
    assert_eq!(
        std::fs::read_dir(d.path("state/login"))
            .expect("dir")
            .count(),
        0,
        "the hand-over folder is left empty"
    );
}

/// The user switches `video.publish` off at TikTok's authorize page: `auth login` still stores
/// the login, and names the direct folder that cannot post without it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auth_login_names_the_folders_a_deselected_scope_breaks() {
    let (_, _, out, _d) = web_login_with_the_service_stopped_as(&["video.publish"]).await;
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains("warning: TikTok did not grant video.publish."),
        "{err}"
    );
    assert!(
        err.contains("warning: posts (direct mode) cannot post: it needs the scope video.publish, which this login was not granted"),
        "{err}"
    );
    assert!(!err.contains("drafts (inbox mode)"), "{err}");
}

/// A Web-platform app with the service running: its media server answers the redirect and
/// hands it to the waiting `auth login`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn web_login_through_the_running_service() {
    let r = start_full("", ", redirect_uri: '{public}oauth/callback/'", |_| {}, &[]).await;
    let yaml = std::fs::read_to_string(r.d.path("watch.yaml")).expect("config");
    let public = yaml
        .split("public_url: ")
        .nth(1)
        .and_then(|s| s.split(',').next())
        .expect("public_url")
        .to_string();
    r.emu.set(|c| web_app(c, &public));
    let (page, out) = web_login_through_browser(&r.d, &public).await;
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(page.contains("You can close this tab"), "{page}");
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains("is answered by the running service on"),
        "{err}"
    );
    assert!(err.contains("Logged in: account 'default'"), "{err}");
    r.stop();
}
