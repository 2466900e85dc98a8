//! `tokdrop doctor` (issue 14): a working setup passes, and each check has a case that fails
//! it, asserted by the exact line a user sees.

use std::sync::Arc;

use tokdrop_sandbox::{Sandbox, SandboxConfig, SandboxHandle};

use crate::harness::{Dir, Output, free_port};
use crate::service::start_full;

const ALL: [&str; 4] = [
    "user.info.basic",
    "user.info.profile",
    "video.publish",
    "video.upload",
];

async fn doctor(d: Dir, args: &'static [&'static str]) -> (Dir, Output) {
    tokio::task::spawn_blocking(move || {
        let mut all = vec!["doctor"];
        all.extend_from_slice(args);
        let out = d.run(&all);
        (d, out)
    })
    .await
    .expect("doctor")
}

fn has_line(out: &Output, line: &str) {
    assert!(
        out.stdout.lines().any(|l| l == line),
        "no line {line:?} in:\n{}",
        out.all()
    );
}

fn has_line_starting(out: &Output, start: &str) {
    assert!(
        out.stdout.lines().any(|l| l.starts_with(start)),
        "no line starting {start:?} in:\n{}",
        out.all()
    );
}

/// A config for the emulator with a direct folder, public_url on `port` and `tls` as given,
/// logged in with `scopes`.
async fn setup(d: &Dir, sandbox: &SandboxHandle, port: u16, tls: &str, scopes: &[&str]) {
    d.write("secret", "sandbox-secret");
    d.write(
        "watch.yaml",
        &format!(
            "state_dir: ./state
server: {{listen: 127.0.0.1:{port}, public_url: https://localhost:{port}/, tls: {tls}}}
tiktok: {{client_key: sbawtokdropsandbox, client_secret_file: ./secret, api_base: {b}, auth_base: {b}}}
watch:
  - {{path: ./posts, mode: direct, done_dir: ./done, failed_dir: ./failed}}
",
            b = sandbox.base_url()
        ),
    );
    for dir in ["posts", "done", "failed"] {
        std::fs::create_dir_all(d.path(dir)).expect("mkdir");
    }
    crate::setup::store_login(d, sandbox, scopes).await;
}

/// The running service against the emulator, its self-signed certificate trusted as a private
/// CA would be: nothing fails; localhost, the port and a world-readable secret are warned about.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_working_setup_passes() {
    let r = start_full("", "", |_| {}, &[]).await;
    let port = std::fs::read_to_string(r.d.path("watch.yaml"))
        .expect("config")
        .split("listen: 127.0.0.1:")
        .nth(1)
        .and_then(|s| s.split(',').next())
        .expect("port")
        .to_string();
    let out =
        tokio::task::block_in_place(|| r.d.run(&["doctor", "--extra-ca", "state/sandbox-ca.pem"]));
    assert_eq!(out.code, 0, "{}", out.all());
    has_line(&out, "ok    config: watch.yaml is valid");
    has_line(
        &out,
        "warn  secret: secret is readable by every user on this machine (mode 0644)",
    );
    has_line_starting(&out, "ok    account default: TikTok accepts it: @");
    has_line(&out, "ok    clock: within 30 s of TikTok's");
    has_line(
        &out,
        "warn  public_url: localhost names this machine only; TikTok cannot fetch from it (fine for the sandbox)",
    );
    has_line(&out, &format!("warn  public_url: port {port}, not 443"));
    has_line_starting(&out, "ok    certificate: valid for localhost, issued by ");
    has_line(
        &out,
        &format!("ok    healthz: https://localhost:{port}/healthz answers from this host"),
    );
    has_line(
        &out,
        "ok    verification: no verification_dir: the domain is verified in the portal by a DNS record",
    );
    has_line_starting(&out, "ok    folders: readable and writable by ");
    has_line_starting(&out, "ok    inotify: max_user_watches is ");
    assert!(
        out.stdout.contains("; tokdrop watches 2 folders"),
        "{}",
        out.stdout
    );
    has_line_starting(&out, "ok    disk: ");
    r.stop();
}

/// No service running, TikTok's clock 10 minutes ahead, a login without `video.publish` for a
/// direct folder: each is named, and the exit status is 1.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn doctor_names_a_missing_scope_a_skewed_clock_and_an_unreachable_public_url() {
    let sandbox = Sandbox::start(SandboxConfig {
        clock_offset_secs: 600,
        ..SandboxConfig::default()
    })
    .await
    .expect("sandbox");
    let d = Dir::empty();
    let port = free_port();
    setup(
        &d,
        &sandbox,
        port,
        "{self_signed: true}",
        &["user.info.basic", "user.info.profile", "video.upload"],
    )
    .await;
    std::fs::set_permissions(
        d.path("secret"),
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )
    .expect("chmod");
    let (_d, out) = doctor(d, &[]).await;
    assert_eq!(out.code, 1, "{}", out.all());
    has_line(&out, "ok    secret: secret is readable");
    has_line(
        &out,
        "FAIL  account default: posts (direct mode) cannot post: it needs the scope video.publish, which this login was not granted",
    );
    has_line(&out, "      help: tokdrop auth login --account default");
    has_line(
        &out,
        "FAIL  clock: this machine's clock is 10m behind TikTok's",
    );
    has_line(
        &out,
        "      help: turn on time synchronisation: timedatectl set-ntp true",
    );
    has_line_starting(&out, "FAIL  certificate: no TLS connection to localhost (");
    has_line_starting(
        &out,
        &format!("FAIL  healthz: cannot reach https://localhost:{port}/healthz: "),
    );
    has_line(
        &out,
        "      help: start the service (systemctl start tokdrop) and check that the name leads to this machine (DNS, firewall, port forward)",
    );
    assert!(
        out.stdout.ends_with("doctor: 6 ok, 2 warnings, 4 failed\n"),
        "{}",
        out.stdout
    );
}

/// A certificate authority for the tests, trusted by `doctor --extra-ca`.
struct Ca {
    issuer: rcgen::Issuer<'static, rcgen::KeyPair>,
    pem: String,
}

fn ca() -> Ca {
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    params
        .distinguished_name
        .push(rcgen::DnType::OrganizationName, "Test Authority");
    let key = rcgen::KeyPair::generate().expect("key");
    let pem = params.self_signed(&key).expect("ca").pem();
    Ca {
        issuer: rcgen::Issuer::new(params, key),
        pem,
    }
}

/// A certificate for `names` signed by `ca`; `expired`: it ended in 2020.
fn leaf(ca: &Ca, names: &[&str], expired: bool) -> (String, String) {
    let mut params =
        rcgen::CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
            .expect("params");
    if expired {
        params.not_before = rcgen::date_time_ymd(2019, 1, 1);
        params.not_after = rcgen::date_time_ymd(2020, 1, 1);
    }
    let key = rcgen::KeyPair::generate().expect("key");
    let cert = params.signed_by(&key, &ca.issuer).expect("leaf");
    (cert.pem(), key.serialize_pem())
}

/// A TLS server on 127.0.0.1 that answers every request with `response`, as a misconfigured
/// proxy in front of tokdrop would; its port.
async fn responder(cert_pem: &str, key_pem: &str, response: &'static str) -> u16 {
    use rustls_pki_types::pem::PemObject;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let certs: Vec<_> = rustls_pki_types::CertificateDer::pem_slice_iter(cert_pem.as_bytes())
        .map(|c| c.expect("cert"))
        .collect();
    let key = rustls_pki_types::PrivateKeyDer::from_pem_slice(key_pem.as_bytes()).expect("key");
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("versions")
    .with_no_client_auth()
    .with_single_cert(certs, key)
    .expect("server config");
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("addr").port();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let mut buf = [0u8; 4096];
                let _ = tls.read(&mut buf).await;
                let _ = tls.write_all(response.as_bytes()).await;
                let _ = tls.shutdown().await;
            });
        }
    });
    port
}

const OK_ANSWER: &str = "HTTP/1.1 200 OK\r\ncontent-length: 3\r\nconnection: close\r\n\r\nok\n";

/// An expired certificate, one for another name, and a public_url that redirects: each is
/// named with what to do.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn doctor_names_what_is_wrong_with_the_certificate_and_the_redirect() {
    let sandbox = Sandbox::start(SandboxConfig::default())
        .await
        .expect("sandbox");
    let ca = ca();
    let cases: [(&[&str], bool, &str, &str); 3] = [
        (
            &["localhost"],
            true,
            OK_ANSWER,
            "FAIL  certificate: the certificate of localhost expired on 2020-01-01",
        ),
        (
            &["media.example.com"],
            false,
            OK_ANSWER,
            "FAIL  certificate: the certificate is not valid for localhost; it names media.example.com",
        ),
        (
            &["localhost"],
            false,
            "HTTP/1.1 301 Moved Permanently\r\nlocation: https://www.example.com/\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
            "FAIL  healthz: https://localhost:PORT/healthz redirects (301) to https://www.example.com/; TikTok does not follow redirects",
        ),
    ];
    for (names, expired, answer, line) in cases {
        let (cert, key) = leaf(&ca, names, expired);
        let port = responder(&cert, &key, answer).await;
        let d = Dir::empty();
        setup(&d, &sandbox, port, "{self_signed: true}", &ALL).await;
        d.write("ca.pem", &ca.pem);
        let (_d, out) = doctor(d, &["--extra-ca", "ca.pem"]).await;
        assert_eq!(out.code, 1, "{}", out.all());
        has_line(&out, &line.replace("PORT", &port.to_string()));
        if line.contains("healthz") {
            has_line_starting(
                &out,
                "ok    certificate: valid for localhost, issued by Test Authority, expires on ",
            );
        }
    }
    // Without the test authority, the same certificate is one TikTok would not trust either.
    let (cert, key) = leaf(&ca, &["localhost"], false);
    let port = responder(&cert, &key, OK_ANSWER).await;
    let d = Dir::empty();
    setup(&d, &sandbox, port, "{self_signed: true}", &ALL).await;
    let (_d, out) = doctor(d, &[]).await;
    has_line(
        &out,
        "FAIL  certificate: the certificate of localhost is not signed by an authority this system trusts (issuer: Test Authority)",
    );
    has_line(
        &out,
        &format!("ok    healthz: https://localhost:{port}/healthz answers from this host"),
    );
}

/// A done folder the service user cannot write (checked as an unprivileged user when the
/// tests run as root, where permissions do not bind).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn doctor_names_a_done_folder_the_user_cannot_write() {
    use std::os::unix::fs::PermissionsExt;
    let sandbox = Sandbox::start(SandboxConfig::default())
        .await
        .expect("sandbox");
    let d = Dir::empty();
    setup(&d, &sandbox, free_port(), "{self_signed: true}", &ALL).await;
    let chmod = |rel: &str, mode| {
        std::fs::set_permissions(d.path(rel), std::fs::Permissions::from_mode(mode)).expect("chmod")
    };
    chmod("done", 0o555);
    let root =
        std::fs::metadata("/proc/self").is_ok_and(|m| std::os::unix::fs::MetadataExt::uid(&m) == 0);
    let out = if root {
        // nobody may read the config and enter the folders, but write only where it is told.
        for rel in [".", "posts", "failed", "state", "watch.yaml", "secret"] {
            let mode = if rel.contains('.') && rel != "." {
                0o644
            } else {
                0o777
            };
            chmod(rel, mode);
        }
        let bin = env!("CARGO_BIN_EXE_tokdrop");
        let out = tokio::task::spawn_blocking({
            let dir = d.tmp.path().to_path_buf();
            move || {
                std::process::Command::new("setpriv")
                    .args([
                        "--reuid=65534",
                        "--regid=65534",
                        "--clear-groups",
                        bin,
                        "doctor",
                    ])
                    .current_dir(dir)
                    .output()
                    .expect("setpriv")
            }
        })
        .await
        .expect("join");
        Output {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    } else {
        doctor(d, &[]).await.1
    };
    assert_eq!(out.code, 1, "{}", out.all());
    has_line_starting(&out, "FAIL  folders: done is not writable by ");
    has_line_starting(&out, "      help: chown or chmod done so that ");
}
