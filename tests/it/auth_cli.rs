//! `tokdrop sandbox` and `tokdrop auth login | status | logout` through the binary: the
//! emulator runs as its own process, the test plays the browser.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::harness::{Dir, free_port};

struct Emulator {
    child: Child,
    base: String,
}

impl Drop for Emulator {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `tokdrop sandbox --listen 127.0.0.1:0` prints its address first and serves.
fn sandbox() -> Emulator {
    let mut child = Command::new(env!("CARGO_BIN_EXE_tokdrop"))
        .args(["sandbox", "--listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start sandbox");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("first line");
    let base = line
        .trim()
        .strip_prefix("sandbox listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .to_string();
    Emulator { child, base }
}

fn config(d: &Dir, emu: &Emulator, redirect_port: u16) {
    d.write("secret", "sandbox-secret");
    d.write(
        "watch.yaml",
        &format!(
            "state_dir: ./state
server: {{listen: 127.0.0.1:8443, public_url: https://localhost:8443/, tls: {{self_signed: true}}}}
tiktok:
  client_key: sbawtokdropsandbox
  client_secret_file: ./secret
  api_base: {b}
  auth_base: {b}
  redirect_uri: http://127.0.0.1:{redirect_port}/callback/
watch:
  - {{path: ./inbox, mode: direct, done_dir: ./done, failed_dir: ./failed}}
",
            b = emu.base
        ),
    );
}

/// `tokdrop auth login` with the "browser" played by the test: reads the authorize URL (alone
/// on stdout), follows TikTok's redirect to tokdrop's listener, and returns the command's end.
async fn login_through_browser(d: &Dir, emu: &Emulator) -> std::process::Output {
    let mut login = Command::new(env!("CARGO_BIN_EXE_tokdrop"))
        .args(["auth", "login", "--config", "watch.yaml"])
        .current_dir(d.tmp.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("auth login");
    let mut url = String::new();
    BufReader::new(login.stdout.take().expect("stdout"))
        .read_line(&mut url)
        .expect("url line");
    assert!(
        url.starts_with(&format!(
            "{}/v2/auth/authorize/?client_key=sbawtokdropsandbox",
            emu.base
        )),
        "{url}"
    );
    assert!(url.contains("code_challenge_method=S256"), "{url}");
    let browser = crate::harness::http()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let answer = browser.get(url.trim()).send().await.expect("authorize");
    let location = answer.headers()["location"]
        .to_str()
        .expect("location")
        .to_string();
    assert!(location.starts_with("http://127.0.0.1:"), "{location}");
    let page = browser.get(&location).send().await.expect("callback");
    assert!(page.status().is_success());
    tokio::task::spawn_blocking(move || login.wait_with_output())
        .await
        .expect("join")
        .expect("wait")
}

/// A Desktop app registered with the `*` port (the emulator's default registration is
/// `http://127.0.0.1:*/callback/`): `redirect_uri` with port 0 listens on a free port, sends
/// that port, and the login completes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn desktop_login_with_any_port() {
    let emu = sandbox();
    let d = Dir::empty();
    config(&d, &emu, 0);
    let out = login_through_browser(&d, &emu).await;
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("Logged in: account 'default'"), "{err}");
}

/// Full loopback login: the URL is printed alone on stdout, the "browser" follows TikTok's
/// redirect to tokdrop's listener, the token is stored; status then shows the account and
/// logout revokes it (status exits 3 afterwards).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn loopback_login_status_logout() {
    let emu = sandbox();
    let d = Dir::empty();
    config(&d, &emu, free_port());
    let out = login_through_browser(&d, &emu).await;
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains("Logged in: account 'default' is TikTok user"),
        "{err}"
    );
    let token = std::fs::read_to_string(d.path("state/tokens/default.json")).expect("token file");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(d.path("state/tokens/default.json"))
            .expect("meta")
            .permissions()
            .mode()
            & 0o777,
        0o600
    );
    assert!(
        !err.contains(
            token
                .split("\"access_token\":")
                .nth(1)
                .map_or("x", |s| &s[2..20])
        ),
        "no secret on the terminal"
    );

    let status = d.run(&["auth", "status"]);
    assert_eq!(status.code, 0, "{}", status.all());
    assert!(
        status.stdout.contains("default: TikTok user ")
            && status.stdout.contains("TikTok accepts it: @"),
        "{}",
        status.stdout
    );
    let logout = d.run(&["auth", "logout"]);
    assert_eq!(logout.code, 0, "{}", logout.all());
    assert!(!d.path("state/tokens/default.json").exists());
    let status = d.run(&["auth", "status"]);
    assert_eq!(status.code, 3, "{}", status.all());
    assert!(
        status.stdout.contains("default: not logged in"),
        "{}",
        status.stdout
    );
}

/// `--no-listen`: the redirected address is pasted on stdin.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paste_login() {
    let emu = sandbox();
    let d = Dir::empty();
    config(&d, &emu, free_port());
    let mut login = Command::new(env!("CARGO_BIN_EXE_tokdrop"))
        .args(["auth", "login", "--no-listen", "--config", "watch.yaml"])
        .current_dir(d.tmp.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("auth login");
    let mut url = String::new();
    BufReader::new(login.stdout.take().expect("stdout"))
        .read_line(&mut url)
        .expect("url line");
    let browser = crate::harness::http()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(10))
        .build()
        .expect("client");
    let location = browser
        .get(url.trim())
        .send()
        .await
        .expect("authorize")
        .headers()["location"]
        .to_str()
        .expect("location")
        .to_string();
    writeln!(login.stdin.take().expect("stdin"), "{location}").expect("paste");
    let out = tokio::task::spawn_blocking(move || login.wait_with_output())
        .await
        .expect("join")
        .expect("wait");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(d.path("state/tokens/default.json").exists());
}

/// A config that names no client secret reads systemd's credential: with
/// `$CREDENTIALS_DIRECTORY/client_secret` the account is merely not logged in (exit 3);
/// without it, the error says the three ways to give the secret. `check` notes where it
/// comes from.
#[test]
fn the_secret_from_systemds_credentials_directory() {
    let d = Dir::empty();
    d.write(
        "watch.yaml",
        "state_dir: ./state
server: {listen: 127.0.0.1:8443, public_url: https://media.example.com/, tls: {self_signed: true}}
tiktok: {client_key: key}
watch:
  - {path: ./inbox, mode: direct, done_dir: ./done, failed_dir: ./failed}
",
    );
    std::fs::create_dir_all(d.path("inbox")).expect("inbox");
    d.write("creds/client_secret", "s3cret\n");
    let run = |creds: bool, args: &[&str]| {
        let mut c = Command::new(env!("CARGO_BIN_EXE_tokdrop"));
        c.args(args)
            .current_dir(d.tmp.path())
            .env_remove("TOKDROP_CLIENT_SECRET")
            .env_remove("CREDENTIALS_DIRECTORY");
        if creds {
            c.env("CREDENTIALS_DIRECTORY", d.path("creds"));
        }
        c.output().expect("run")
    };
    let with = run(true, &["auth", "status"]);
    assert_eq!(
        with.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&with.stderr)
    );
    let without = run(false, &["auth", "status"]);
    let err = String::from_utf8_lossy(&without.stderr);
    assert_eq!(without.status.code(), Some(1), "{err}");
    assert!(
        err.contains("no client secret: watch.yaml names no tiktok.client_secret_file, TOKDROP_CLIENT_SECRET is not set, and systemd passed no credential client_secret"),
        "{err}"
    );
    let check = run(false, &["check"]);
    assert!(
        String::from_utf8_lossy(&check.stdout).contains(
            "note: no client secret is named: the service reads systemd's credential client_secret"
        ),
        "{}",
        String::from_utf8_lossy(&check.stdout)
    );
}
