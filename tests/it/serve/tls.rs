//! TLS end to end: self-signed certificate trusted via the written PEM,
//! HTTP/2 and HTTP/1.1 by ALPN, hot reload on demand and on file change.

use std::path::Path;

use reqwest::Version;
use tokdrop::serve::TlsSource;

use super::support::{self, bounded, make_cert, replace_file, tls_client};

/// A self-signed server is trusted through the PEM it wrote; a default
/// client negotiates HTTP/2 and an HTTP/1-only client still works.
#[tokio::test]
async fn self_signed_h2_and_h1() {
    let srv = support::start(|cfg, dir| {
        cfg.tls = Some(TlsSource::SelfSigned {
            hostnames: vec!["localhost".into(), "127.0.0.1".into()],
            write_pem_to: dir.join("self.pem"),
        });
    })
    .await;
    let pem = std::fs::read(srv.dir.path().join("self.pem")).expect("pem written");
    let (published, data) = srv.publish("s", "clip.mp4", 2 * 1024 * 1024);

    let client = tls_client(&pem, srv.addr);
    let resp = bounded(client.get(srv.https(&published.url_path)).send())
        .await
        .expect("h2 get");
    assert_eq!(resp.version(), Version::HTTP_2);
    assert!(bounded(resp.bytes()).await.expect("body") == data);

    let h1 = crate::harness::http()
        .tls_certs_only([reqwest::Certificate::from_pem(&pem).expect("cert")])
        .resolve("localhost", srv.addr)
        .http1_only()
        .build()
        .expect("client");
    let resp = bounded(h1.get(srv.https("/healthz")).send())
        .await
        .expect("h1 get");
    assert_eq!(resp.version(), Version::HTTP_11);
    assert_eq!(resp.status(), 200);

    let untrusting = tls_client(make_cert().0.as_bytes(), srv.addr);
    assert!(untrusting.get(srv.https("/healthz")).send().await.is_err());
    srv.stop().await;
}

fn write_pair(dir: &Path, cert: &str, key: &str) {
    replace_file(&dir.join("cert.pem"), cert.as_bytes());
    replace_file(&dir.join("key.pem"), key.as_bytes());
}

/// reload() swaps the certificate for new handshakes while an established
/// connection (trusting only the old one) keeps working.
#[tokio::test]
async fn explicit_reload_keeps_old_connections() {
    let (cert_a, key_a) = make_cert();
    let (cert_b, key_b) = make_cert();
    let srv = support::start(|cfg, dir| {
        write_pair(dir, &cert_a, &key_a);
        cfg.tls = Some(TlsSource::Files {
            cert: dir.join("cert.pem"),
            key: dir.join("key.pem"),
        });
    })
    .await;
    let client_a = tls_client(cert_a.as_bytes(), srv.addr);
    let url = srv.https("/healthz");
    assert_eq!(
        bounded(client_a.get(&url).send())
            .await
            .expect("a")
            .status(),
        200
    );

    write_pair(srv.dir.path(), &cert_b, &key_b);
    srv.tls
        .as_ref()
        .expect("tls handle")
        .reload()
        .expect("reload");

    let client_b = tls_client(cert_b.as_bytes(), srv.addr);
    assert_eq!(
        bounded(client_b.get(&url).send())
            .await
            .expect("b")
            .status(),
        200
    );
    // the pooled connection from before the reload still works …
    assert_eq!(
        bounded(client_a.get(&url).send())
            .await
            .expect("a again")
            .status(),
        200
    );
    // … but a new connection trusting only A is refused
    let fresh_a = tls_client(cert_a.as_bytes(), srv.addr);
    assert!(fresh_a.get(&url).send().await.is_err());
    srv.stop().await;
}

/// Changed files are picked up by the watcher; a broken replacement is
/// rejected with a clear error and the previous certificate stays.
#[tokio::test]
async fn file_change_reload_and_broken_files() {
    let (cert_a, key_a) = make_cert();
    let (cert_b, key_b) = make_cert();
    let srv = support::start(|cfg, dir| {
        write_pair(dir, &cert_a, &key_a);
        cfg.tls = Some(TlsSource::Files {
            cert: dir.join("cert.pem"),
            key: dir.join("key.pem"),
        });
        cfg.tls_poll_interval = std::time::Duration::from_millis(50);
    })
    .await;
    let handle = srv.tls.clone().expect("tls handle");
    let mut generation = handle.subscribe();
    let url = srv.https("/healthz");

    // broken: key does not match the certificate → explicit reload errors
    write_pair(srv.dir.path(), &cert_b, &key_a);
    let err = handle.reload().expect_err("mismatched pair must fail");
    assert!(err.to_string().contains("does not match"), "{err}");
    let fresh_a = tls_client(cert_a.as_bytes(), srv.addr);
    assert_eq!(
        bounded(fresh_a.get(&url).send()).await.expect("a").status(),
        200
    );

    // fixed by the watcher, no explicit reload
    write_pair(srv.dir.path(), &cert_b, &key_b);
    bounded(generation.changed())
        .await
        .expect("watcher reloaded");
    let fresh_b = tls_client(cert_b.as_bytes(), srv.addr);
    assert_eq!(
        bounded(fresh_b.get(&url).send()).await.expect("b").status(),
        200
    );
    srv.stop().await;
}
