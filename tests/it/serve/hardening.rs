//! Abuse resistance: hundreds of idle/slowloris connections, the connection
//! cap, header/handshake and idle timeouts, the shutdown deadline, and bind
//! errors that say what is wrong.

use std::time::{Duration, Instant};

use tokdrop::serve::{Listen, Server, TlsSource};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::support::{self, bounded, tls_client};

/// Waits until the server closes `stream` (EOF or reset) and returns how long it took.
async fn closed_after(stream: &mut TcpStream) -> Duration {
    let start = Instant::now();
    let mut buf = [0u8; 1024];
    loop {
        match bounded(stream.read(&mut buf)).await {
            Ok(0) | Err(_) => return start.elapsed(),
            Ok(_) => {}
        }
    }
}

/// With 500 idle or slowloris connections open, a multi-MiB TLS download
/// completes and /healthz answers; on cancel the server returns within
/// shutdown_grace plus a small margin even with a stalled download.
#[tokio::test]
async fn slowloris_crowd_then_bounded_shutdown() {
    let grace = Duration::from_millis(800);
    let srv = support::start(|cfg, dir| {
        cfg.tls = Some(TlsSource::SelfSigned {
            hostnames: vec!["localhost".into()],
            write_pem_to: dir.join("self.pem"),
        });
        cfg.shutdown_grace = grace;
    })
    .await;
    let pem = std::fs::read(srv.dir.path().join("self.pem")).expect("pem");
    let (published, data) = srv.publish("big", "big.mp4", 24 * 1024 * 1024);

    let mut crowd = Vec::new();
    for i in 0..500 {
        let mut s = bounded(TcpStream::connect(srv.addr))
            .await
            .expect("connect");
        if i % 2 == 0 {
            // the start of a TLS ClientHello record, never completed
            s.write_all(&[0x16, 0x03, 0x01, 0x02])
                .await
                .expect("partial hello");
        }
        crowd.push(s);
    }

    let client = tls_client(&pem, srv.addr);
    let body = bounded(async {
        client
            .get(srv.https(&published.url_path))
            .send()
            .await?
            .bytes()
            .await
    })
    .await
    .expect("download");
    assert!(body == data, "download corrupted");
    let health = bounded(client.get(srv.https("/healthz")).send())
        .await
        .expect("healthz");
    assert_eq!(health.status(), 200);

    // a download whose client stops reading: only the deadline can end it
    let stalled = tls_client(&pem, srv.addr);
    let stalled_resp = bounded(stalled.get(srv.https(&published.url_path)).send())
        .await
        .expect("stalled response head");

    let start = Instant::now();
    srv.cancel.cancel();
    bounded(srv.task).await.expect("join").expect("run");
    let took = start.elapsed();
    assert!(
        took < grace + Duration::from_millis(1500),
        "shutdown took {took:?}"
    );
    drop((stalled_resp, crowd));
}

/// Beyond max_connections new connections are closed at once, while the
/// admitted ones are still served.
#[tokio::test]
async fn connection_cap() {
    let srv = support::start(|cfg, _| cfg.max_connections = 3).await;
    let mut held = Vec::new();
    for _ in 0..3 {
        let mut s = bounded(TcpStream::connect(srv.addr))
            .await
            .expect("connect");
        s.write_all(b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n")
            .await
            .expect("write");
        let mut buf = [0u8; 256];
        let n = bounded(s.read(&mut buf)).await.expect("read");
        assert!(buf[..n].starts_with(b"HTTP/1.1 200"));
        held.push(s); // keep-alive: still holds its slot
    }
    let mut extra = bounded(TcpStream::connect(srv.addr))
        .await
        .expect("connect");
    let _ = extra
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n")
        .await;
    let mut buf = [0u8; 256];
    let got = bounded(extra.read(&mut buf)).await;
    assert!(
        matches!(got, Ok(0) | Err(_)),
        "over-cap connection was served"
    );
    drop(held);
    srv.stop().await;
}

/// A request head that never completes, a TLS handshake that never
/// starts, and a silent connection are all closed by their timeouts.
#[tokio::test]
async fn header_handshake_and_idle_timeouts() {
    let srv = support::start(|cfg, _| {
        cfg.header_timeout = Duration::from_millis(300);
        cfg.idle_timeout = Duration::from_secs(30);
    })
    .await;
    let mut slow = bounded(TcpStream::connect(srv.addr))
        .await
        .expect("connect");
    slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: t\r\nX-Slow:")
        .await
        .expect("write");
    let took = closed_after(&mut slow).await;
    assert!(
        took < Duration::from_secs(5),
        "header timeout took {took:?}"
    );
    srv.stop().await;

    let srv = support::start(|cfg, dir| {
        cfg.header_timeout = Duration::from_millis(300);
        cfg.tls = Some(TlsSource::SelfSigned {
            hostnames: vec!["localhost".into()],
            write_pem_to: dir.join("c.pem"),
        });
    })
    .await;
    let mut silent = bounded(TcpStream::connect(srv.addr))
        .await
        .expect("connect");
    let took = closed_after(&mut silent).await;
    assert!(
        took < Duration::from_secs(5),
        "handshake timeout took {took:?}"
    );
    srv.stop().await;

    let srv = support::start(|cfg, _| {
        cfg.header_timeout = Duration::from_secs(30);
        cfg.idle_timeout = Duration::from_millis(300);
    })
    .await;
    let mut idle = bounded(TcpStream::connect(srv.addr))
        .await
        .expect("connect");
    let took = closed_after(&mut idle).await;
    assert!(took < Duration::from_secs(5), "idle timeout took {took:?}");
    srv.stop().await;
}

/// Binding a port that is taken fails with an "already in use" hint.
#[tokio::test]
async fn bind_conflict_is_explained() {
    let srv = support::start(|_, _| {}).await;
    let err = match Server::bind(tokdrop::serve::ServeConfig::new(Listen::Addr(srv.addr))).await {
        Ok(_) => panic!("second bind succeeded"),
        Err(e) => e.to_string(),
    };
    assert!(err.contains("already in use"), "{err}");
    srv.stop().await;
}

/// Without systemd's environment, socket activation fails with a clear error.
#[tokio::test]
async fn systemd_without_socket_is_explained() {
    let err = match Server::bind(tokdrop::serve::ServeConfig::new(Listen::Systemd)).await {
        Ok(_) => panic!("systemd bind succeeded without a socket"),
        Err(e) => e.to_string(),
    };
    assert!(err.contains("no socket was passed"), "{err}");
}
