//! Notifications through the real binary: `on_result` commands and signed webhooks get each
//! result (and each account pause) exactly once — across a `kill -9` between finishing and
//! delivery too — and `tokdrop check` refuses bad notification settings, naming the field.

use std::collections::VecDeque;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::sync::mpsc;

use crate::harness::Dir;
use crate::service::{Running, login, start_full};

/// Back-off of 50 ms, so retries take no time in tests.
fn fast() -> Vec<(&'static str, String)> {
    vec![("TOKDROP_NOTIFY_RETRY_MS", "50".to_string())]
}

/// Files beside the service's folder, there before it starts: the `on_result` script, what it
/// received (`got/`), the flag that makes it fail, and the webhook secret.
struct Side {
    tmp: tempfile::TempDir,
}

const SECRET: &str = "s3cr3t-for-the-webhook";

impl Side {
    fn new() -> Side {
        let side = Side {
            tmp: tempfile::tempdir().expect("tempdir"),
        };
        let got = side.path("got");
        fs::create_dir_all(&got).expect("got");
        // Appends what it got (TOKDROP_* variables, its argument, `---`, stdin) to a file of its
        // own in got/, named after the delivery id. Fails (exit 1) while `fail` exists.
        let script = format!(
            "#!/bin/sh\nset -e\n[ ! -e '{fail}' ] || exit 1\nout='{got}'/\"$TOKDROP_DELIVERY_ID\".$$\n{{ env | grep '^TOKDROP_' | sort; echo \"arg=$1\"; echo ---; cat; }} > \"$out.tmp\"\nmv \"$out.tmp\" \"$out\"\n",
            fail = side.path("fail").display(),
            got = got.display()
        );
        fs::write(side.path("notify.sh"), script).expect("script");
        fs::set_permissions(side.path("notify.sh"), fs::Permissions::from_mode(0o755))
            .expect("chmod");
        fs::write(side.path("hook-secret"), format!("{SECRET}\n")).expect("secret");
        fs::set_permissions(side.path("hook-secret"), fs::Permissions::from_mode(0o600))
            .expect("chmod");
        side
    }

    fn path(&self, rel: &str) -> std::path::PathBuf {
        self.tmp.path().join(rel)
    }

    /// `on_result:` running the script with one argument (a list: no shell).
    fn on_result(&self) -> String {
        format!(
            "on_result: {{command: [\"{}\", \"an arg\"], timeout: 10s}}",
            self.path("notify.sh").display()
        )
    }

    fn webhook(&self, url: &str) -> String {
        format!(
            "webhook: {{url: \"{url}\", secret_file: \"{}\"}}",
            self.path("hook-secret").display()
        )
    }

    /// What the script received, one per run: (env lines, stdin).
    fn runs(&self) -> Vec<(String, String)> {
        let mut out: Vec<(String, String)> = fs::read_dir(self.path("got"))
            .expect("got")
            .flatten()
            .filter(|e| !e.file_name().to_string_lossy().ends_with(".tmp"))
            .map(|e| {
                let text = fs::read_to_string(e.path()).expect("run");
                let (env, stdin) = text.split_once("---\n").expect("separator");
                (env.to_string(), stdin.to_string())
            })
            .collect();
        out.sort();
        out
    }
}

/// Waits until `state/outbox` holds no pending entry (everything delivered or given up).
fn outbox_drained(d: &Dir) {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let pending = pending(d);
        if pending.is_empty() {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "still pending: {pending:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The outbox entries waiting for delivery.
fn pending(d: &Dir) -> Vec<String> {
    fs::read_dir(d.path("state/outbox"))
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.ends_with(".json") && !n.starts_with('.'))
                .collect()
        })
        .unwrap_or_default()
}

fn ledger_lines(d: &Dir) -> Vec<String> {
    fs::read_to_string(d.path("state/ledger.jsonl"))
        .expect("ledger")
        .lines()
        .map(String::from)
        .collect()
}

fn env_of<'a>(env: &'a str, key: &str) -> Option<&'a str> {
    env.lines()
        .find_map(|l| l.strip_prefix(&format!("TOKDROP_{key}=")))
}

/// Stops the service (SIGTERM) and hands back its folder.
fn stop(r: Running) -> Dir {
    let Running { d, p, .. } = r;
    p.stop();
    d
}

/// One request the test receiver got.
#[derive(Debug, Clone)]
struct Hook {
    headers: Vec<(String, String)>,
    body: String,
    answered: u16,
}

impl Hook {
    fn header(&self, name: &str) -> &str {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map_or("", |(_, v)| v.as_str())
    }

    /// Checks the signature as a receiver would: HMAC-SHA256 over `<timestamp>.<body>`.
    fn signed_with(&self, secret: &[u8]) -> bool {
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(secret).expect("key");
        mac.update(self.header("x-tokdrop-timestamp").as_bytes());
        mac.update(b".");
        mac.update(self.body.as_bytes());
        let Some(hex_sig) = self.header("x-tokdrop-signature").strip_prefix("sha256=") else {
            return false;
        };
        let Ok(sig) = hex::decode(hex_sig) else {
            return false;
        };
        mac.verify_slice(&sig).is_ok()
    }
}

/// A tiny HTTP/1.1 receiver on 127.0.0.1: answers each POST with the next scripted status
/// (then `default`), and reports every request on a channel.
struct Receiver {
    port: u16,
    script: Arc<Mutex<(VecDeque<u16>, u16)>>,
    got: mpsc::UnboundedReceiver<Hook>,
}

impl Receiver {
    async fn start(script: &[u16], default: u16) -> Receiver {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let script = Arc::new(Mutex::new((script.iter().copied().collect(), default)));
        let (tx, got) = mpsc::unbounded_channel();
        let s = script.clone();
        tokio::spawn(async move {
            while let Ok((conn, _)) = listener.accept().await {
                let (s, tx) = (s.clone(), tx.clone());
                tokio::spawn(async move {
                    let _ = serve(conn, s, tx).await;
                });
            }
        });
        Receiver { port, script, got }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}/hook", self.port)
    }

    fn answer_from_now_on(&self, status: u16) {
        let mut s = self.script.lock().expect("lock");
        s.0.clear();
        s.1 = status;
    }

    async fn next(&mut self) -> Hook {
        tokio::time::timeout(Duration::from_secs(60), self.got.recv())
            .await
            .expect("a webhook request within 60 s")
            .expect("receiver running")
    }
}

async fn serve(
    conn: tokio::net::TcpStream,
    script: Arc<Mutex<(VecDeque<u16>, u16)>>,
    tx: mpsc::UnboundedSender<Hook>,
) -> std::io::Result<()> {
    // One request per connection (answered with `connection: close`).
    let mut conn = BufReader::new(conn);
    let mut line = String::new();
    if conn.read_line(&mut line).await? == 0 {
        return Ok(());
    }
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        conn.read_line(&mut h).await?;
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            headers.push((k.trim().to_string(), v.trim().to_string()));
        }
    }
    let len: usize = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0; len];
    conn.read_exact(&mut body).await?;
    let status = {
        let mut s = script.lock().expect("lock");
        let default = s.1;
        s.0.pop_front().unwrap_or(default)
    };
    conn.get_mut()
        .write_all(
            format!("HTTP/1.1 {status} X\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
                .as_bytes(),
        )
        .await?;
    let _ = tx.send(Hook {
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
        answered: status,
    });
    Ok(())
}

/// An `on_result` command (a list: no shell) gets every result once — a published item and an
/// invalid one — with the ledger line on stdin and the documented variables.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_result_gets_each_result_once() {
    let side = Side::new();
    let r = start_full(&format!("{}\n", side.on_result()), "", |_| {}, &fast()).await;
    r.d.copy_sample("photo.jpg", "inbox/good.jpg");
    r.finished("good.jpg", 60);
    r.d.write("outside/bad.yaml", "privacy_level: SELF\n");
    r.d.copy_sample("photo.jpg", "outside/bad.jpg");
    fs::rename(r.d.path("outside/bad.yaml"), r.d.path("inbox/bad.yaml")).expect("mv");
    fs::rename(r.d.path("outside/bad.jpg"), r.d.path("inbox/bad.jpg")).expect("mv");
    r.finished("bad.jpg", 60);
    outbox_drained(&r.d);
    let d = stop(r);
    let runs = side.runs();
    assert_eq!(runs.len(), 2, "{runs:?}");
    let ledger = ledger_lines(&d);
    for (env, stdin) in &runs {
        assert!(
            ledger
                .iter()
                .any(|l| format!("{l}\n") == *stdin || l == stdin),
            "stdin is a ledger line: {stdin}"
        );
        assert_eq!(env_of(env, "EVENT"), Some("result"), "{env}");
        assert_eq!(env_of(env, "ACCOUNT"), Some("default"), "{env}");
        assert!(
            env_of(env, "WATCH").is_some_and(|w| w.ends_with("inbox")),
            "{env}"
        );
        assert!(env.contains("arg=an arg"), "{env}");
        let id = env_of(env, "ID").expect("id");
        assert_eq!(
            env_of(env, "DELIVERY_ID"),
            Some(format!("result-{id}").as_str())
        );
        assert!(
            !env.contains("CLIENT_SECRET"),
            "the client secret is not passed on: {env}"
        );
    }
    let good = runs
        .iter()
        .find(|(e, _)| env_of(e, "ITEM") == Some("good.jpg"))
        .expect("good.jpg");
    assert_eq!(env_of(&good.0, "STATUS"), Some("published"));
    assert!(env_of(&good.0, "PUBLISH_ID").is_some(), "{}", good.0);
    assert!(env_of(&good.0, "ERROR_CODE").is_none(), "{}", good.0);
    let result_file = env_of(&good.0, "RESULT_FILE").expect("result file");
    assert!(
        Path::new(result_file).ends_with("done/good.result.yaml"),
        "{result_file}"
    );
    let bad = runs
        .iter()
        .find(|(e, _)| env_of(e, "ITEM") == Some("bad.jpg"))
        .expect("bad.jpg");
    assert_eq!(env_of(&bad.0, "STATUS"), Some("invalid"));
    assert_eq!(env_of(&bad.0, "ERROR_CODE"), Some("invalid_item"));
    assert!(env_of(&bad.0, "POST_URL").is_none());
}

/// The id of the only result in the ledger.
fn only_result_id(d: &Dir) -> String {
    let lines = ledger_lines(d);
    assert_eq!(lines.len(), 1, "{lines:?}");
    let v: serde_json::Value = serde_json::from_str(&lines[0]).expect("json");
    v["id"].as_str().expect("id").to_string()
}

/// A folder's webhook gets each result once, signed: the signature verifies with the secret
/// (HMAC-SHA256 over `<timestamp>.<body>`), the body is the ledger line, and the headers say
/// the event and the delivery id.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_gets_each_result_once_signed() {
    let side = Side::new();
    let mut rx = Receiver::start(&[], 200).await;
    let r = start_full(
        &format!("    {}\n", side.webhook(&rx.url())),
        "",
        |_| {},
        &fast(),
    )
    .await;
    r.d.copy_sample("photo.jpg", "inbox/hooked.jpg");
    r.finished("hooked.jpg", 60);
    let hook = rx.next().await;
    outbox_drained(&r.d);
    let d = stop(r);
    assert!(rx.got.try_recv().is_err(), "delivered once");
    assert_eq!(hook.answered, 200);
    assert!(hook.signed_with(SECRET.as_bytes()), "{hook:?}");
    assert!(!hook.signed_with(b"another secret"));
    assert_eq!(hook.header("x-tokdrop-event"), "result");
    assert_eq!(hook.header("content-type"), "application/json");
    let id = only_result_id(&d);
    assert_eq!(hook.header("x-tokdrop-delivery"), format!("result-{id}"));
    assert_eq!(
        hook.body,
        ledger_lines(&d)[0],
        "the body is the ledger line"
    );
    assert!(!hook.body.contains(SECRET));
}

/// A receiver answering 500 is asked again (same delivery id, a fresh signature) and the
/// result is delivered once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_webhook_is_retried_then_delivered_once() {
    let side = Side::new();
    let mut rx = Receiver::start(&[500], 200).await;
    let r = start_full(
        &format!("{}\n", side.webhook(&rx.url())),
        "",
        |_| {},
        &fast(),
    )
    .await;
    r.d.copy_sample("photo.jpg", "inbox/retried.jpg");
    r.finished("retried.jpg", 60);
    let first = rx.next().await;
    let second = rx.next().await;
    r.wait_line("notification failed: the receiver answered HTTP 500", 10);
    outbox_drained(&r.d);
    let _d = stop(r);
    assert!(rx.got.try_recv().is_err(), "no third request");
    assert_eq!((first.answered, second.answered), (500, 200));
    assert_eq!(
        first.header("x-tokdrop-delivery"),
        second.header("x-tokdrop-delivery")
    );
    assert_eq!(first.body, second.body);
    assert!(first.signed_with(SECRET.as_bytes()) && second.signed_with(SECRET.as_bytes()));
}

/// kill -9 after the item is in done/ while its webhook and command still fail: after the
/// restart each gets the result exactly once (and the receiver sees one delivery id).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill9_between_finish_and_delivery_still_delivers_once() {
    let side = Side::new();
    fs::write(side.path("fail"), "").expect("fail flag");
    let mut rx = Receiver::start(&[], 503).await;
    // Slow back-off before the kill: neither target may run out of attempts first.
    let slow = [("TOKDROP_NOTIFY_RETRY_MS", "60000".to_string())];
    let r = start_full(
        &format!("{}\n{}\n", side.on_result(), side.webhook(&rx.url())),
        "",
        |_| {},
        &slow,
    )
    .await;
    r.d.copy_sample("photo.jpg", "inbox/crash.jpg");
    r.finished("crash.jpg", 60);
    assert_eq!(rx.next().await.answered, 503);
    r.wait_line("target=\"on_result\"", 30);
    let (d, emu) = r.kill9();
    assert_eq!(pending(&d).len(), 2, "both deliveries wait in the outbox");
    assert!(d.path("done/crash.jpg").exists());
    rx.answer_from_now_on(200);
    while rx.got.try_recv().is_ok() {} // 503s sent before the kill
    fs::remove_file(side.path("fail")).expect("unflag");
    let r = Running::spawn(d, emu, &fast());
    loop {
        if rx.next().await.answered == 200 {
            break;
        }
    }
    outbox_drained(&r.d);
    let d = stop(r);
    assert!(rx.got.try_recv().is_err(), "the webhook got it once");
    let runs = side.runs();
    assert_eq!(runs.len(), 1, "the command ran successfully once: {runs:?}");
    let id = only_result_id(&d);
    assert_eq!(
        env_of(&runs[0].0, "DELIVERY_ID"),
        Some(format!("result-{id}").as_str())
    );
    assert_eq!(runs[0].1.trim_end(), ledger_lines(&d)[0]);
}

/// A daily cap pauses the account: one `paused` notification with the reason, the TikTok code
/// and the next check; a re-check that finds the account still capped notifies nothing more.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pause_is_notified_once() {
    let side = Side::new();
    let r = start_full(
        &format!("{}\n", side.on_result()),
        "",
        |c| c.daily_post_cap = 1,
        &fast(),
    )
    .await;
    r.d.copy_sample("photo.jpg", "inbox/first.jpg");
    r.finished("first.jpg", 60);
    r.d.copy_sample("photo.jpg", "inbox/capped.jpg");
    r.wait_line("daily post limit", 60);
    r.wait_line("event=\"paused\" target=\"on_result\" about=default}: tokdrop::lifecycle::notifications: notification delivered", 30);
    // A new login makes the worker re-check at once; the cap still holds. (A login stored
    // in the instant before the worker starts waiting is not seen as new: log in again.)
    let mut rechecked = false;
    for _ in 0..5 {
        login(&r.d, &r.emu).await;
        if r.try_line("re-checking the paused account", 5).is_some() {
            rechecked = true;
            break;
        }
    }
    assert!(rechecked, "a new login re-checks the account");
    r.wait_line("daily post limit", 60);
    let d = stop(r);
    let runs = side.runs();
    let paused: Vec<_> = runs
        .iter()
        .filter(|(env, _)| env_of(env, "EVENT") == Some("paused"))
        .collect();
    let waiting = pending(&d)
        .iter()
        .filter(|n| n.starts_with("paused-"))
        .count();
    assert_eq!(paused.len() + waiting, 1, "{runs:?}, {waiting} pending");
    if let Some((env, body)) = paused.first() {
        assert_eq!(env_of(env, "ACCOUNT"), Some("default"));
        assert_eq!(env_of(env, "ERROR_CODE"), Some("spam_risk_too_many_posts"));
        let v: serde_json::Value = serde_json::from_str(body).expect("json");
        assert_eq!(v["event"], "paused");
        assert_eq!(v["account"], "default");
        assert_eq!(v["code"], "spam_risk_too_many_posts");
        assert!(
            v["reason"]
                .as_str()
                .is_some_and(|r| r.contains("daily post limit")),
            "{v}"
        );
        assert!(v["until"].as_str().is_some(), "{v}");
    }
    assert!(
        !d.path("failed/capped.jpg").exists(),
        "a pause fails nothing"
    );
}

/// `tokdrop check` refuses notification settings that cannot work (exit 2), naming the field:
/// plain http to another host, a missing secret file, a program that does not exist.
#[test]
fn bad_notification_settings_are_config_errors() {
    let cases = [
        (
            "webhook: {url: \"http://hooks.example.com/x\", secret_file: ./secret}\n",
            "'webhook.url': a webhook must use https (http is allowed only for a loopback address)",
        ),
        (
            "    webhook: {url: \"https://hooks.example.com/x\", secret_file: ./nope}\n",
            "'watch[0].webhook.secret_file': cannot read the secret file",
        ),
        (
            "on_result: {command: [./missing.sh]}\n",
            "'on_result.command': the program",
        ),
        ("on_result: {comand: x}\n", "did you mean 'command'"),
    ];
    for (extra, want) in cases {
        let d = Dir::new("direct");
        let config = fs::read_to_string(d.path("watch.yaml")).expect("config");
        d.write("watch.yaml", &format!("{config}{extra}"));
        let out = d.run(&["check"]);
        assert_eq!(out.code, 2, "{extra}: {}", out.all());
        assert!(out.all().contains(want), "{extra}: {}", out.all());
    }
    // The example config's commented notification settings stay valid as written.
    let d = Dir::new("direct");
    let config = fs::read_to_string(d.path("watch.yaml")).expect("config");
    d.write("hook", "k");
    d.write(
        "watch.yaml",
        &format!(
            "{config}on_result: {{command: \"echo \\\"$TOKDROP_ITEM\\\"\", timeout: 5s}}\nwebhook: {{url: \"http://127.0.0.1:9/x\", secret_file: ./hook}}\n"
        ),
    );
    let out = d.run(&["check"]);
    assert_eq!(out.code, 0, "{}", out.all());
}
