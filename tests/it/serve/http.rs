//! File serving over plain HTTP: headers, HEAD, ranges, If-Range,
//! statistics, expiry, revocation and changed-file refusal.

use std::time::Duration;

use reqwest::StatusCode;
use reqwest::header::HeaderMap;
use tokdrop::serve::{ItemId, Registry, ServedFile};

use super::support::{self, bounded};

const SIZE: usize = 3 * 1024 * 1024 + 12_345;

async fn get(url: &str, headers: &[(&str, &str)]) -> (StatusCode, HeaderMap, Vec<u8>) {
    let client = crate::harness::http().build().expect("client");
    let mut req = client.get(url);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = bounded(req.send()).await.expect("send");
    let (status, headers) = (resp.status(), resp.headers().clone());
    let body = bounded(resp.bytes()).await.expect("body").to_vec();
    (status, headers, body)
}

fn h<'a>(headers: &'a HeaderMap, name: &str) -> &'a str {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
}

/// A full GET returns every byte with exact, cache-proof headers; HEAD
/// returns the same headers without a body; stats count it.
#[tokio::test]
async fn full_get_and_head() {
    let srv = support::start(|_, _| {}).await;
    let (pub_file, data) = srv.publish("item1", "clip.mp4", SIZE);
    let url = srv.http(&pub_file.url_path);
    let (status, headers, body) = get(&url, &[]).await;
    assert_eq!(status, StatusCode::OK);
    assert!(body == data, "body differs from the file");
    assert_eq!(h(&headers, "content-length"), SIZE.to_string());
    assert_eq!(h(&headers, "content-type"), "video/mp4");
    assert_eq!(h(&headers, "accept-ranges"), "bytes");
    assert_eq!(h(&headers, "cache-control"), "no-store");
    assert!(h(&headers, "etag").starts_with('"'));
    assert!(!h(&headers, "last-modified").is_empty());

    let head = bounded(
        crate::harness::http()
            .build()
            .expect("client")
            .head(&url)
            .send(),
    )
    .await
    .expect("head");
    assert_eq!(head.status(), StatusCode::OK);
    for name in [
        "content-length",
        "content-type",
        "etag",
        "last-modified",
        "accept-ranges",
    ] {
        assert_eq!(h(head.headers(), name), h(&headers, name), "HEAD {name}");
    }
    assert!(bounded(head.bytes()).await.expect("head body").is_empty());

    let stats = srv.registry.stats(&ItemId::from("item1")).expect("stats");
    assert_eq!(stats.requests, 2);
    assert_eq!(stats.bytes_sent, SIZE as u64);
    assert_eq!(stats.full_downloads, 1);
    assert!(stats.first_access.is_some() && stats.last_access.is_some());
    srv.stop().await;
}

/// Single ranges give 206 with the right bytes; suffix and open ranges work;
/// past-the-end gives 416 with `*/size`; multi-range gives the full 200;
/// ranges that together cover the whole file count as a full download.
#[tokio::test]
async fn byte_ranges() {
    let srv = support::start(|_, _| {}).await;
    let (pub_file, data) = srv.publish("r", "v.webm", SIZE);
    let url = srv.http(&pub_file.url_path);
    let n = SIZE as u64;

    let (s, _, b) = get(&url, &[("range", "bytes=0-1,5-9")]).await;
    assert_eq!(s, StatusCode::OK);
    assert!(b == data);

    let (s, hd, b) = get(&url, &[("range", "bytes=100-1099")]).await;
    assert_eq!(s, StatusCode::PARTIAL_CONTENT);
    assert_eq!(h(&hd, "content-range"), format!("bytes 100-1099/{n}"));
    assert_eq!(h(&hd, "content-length"), "1000");
    assert!(b == data[100..1100]);

    let (s, hd, b) = get(&url, &[("range", "bytes=-500")]).await;
    assert_eq!(s, StatusCode::PARTIAL_CONTENT);
    assert_eq!(
        h(&hd, "content-range"),
        format!("bytes {}-{}/{n}", n - 500, n - 1)
    );
    assert!(b == data[SIZE - 500..]);

    let (s, _, b) = get(&url, &[("range", "bytes=1100-")]).await;
    assert_eq!(s, StatusCode::PARTIAL_CONTENT);
    assert!(b == data[1100..]);

    let (s, hd, _) = get(&url, &[("range", &format!("bytes={n}-"))]).await;
    assert_eq!(s, StatusCode::RANGE_NOT_SATISFIABLE);
    assert_eq!(h(&hd, "content-range"), format!("bytes */{n}"));

    let stats = srv.registry.stats(&ItemId::from("r")).expect("stats");
    assert_eq!(
        stats.full_downloads, 1,
        "only the multi-range 200 was complete"
    );
    let (s, _, _) = get(&url, &[("range", "bytes=0-99")]).await;
    assert_eq!(s, StatusCode::PARTIAL_CONTENT);
    let stats = srv.registry.stats(&ItemId::from("r")).expect("stats");
    assert_eq!(stats.full_downloads, 2, "ranges now cover the whole file");
    srv.stop().await;
}

/// If-Range with our ETag or date keeps the range; anything else sends 200.
#[tokio::test]
async fn if_range() {
    let srv = support::start(|_, _| {}).await;
    let (pub_file, data) = srv.publish("ir", "a.jpg", 10_000);
    let url = srv.http(&pub_file.url_path);
    let (_, hd, _) = get(&url, &[]).await;
    let etag = h(&hd, "etag").to_owned();
    let date = h(&hd, "last-modified").to_owned();
    for (cond, want) in [
        (etag.as_str(), StatusCode::PARTIAL_CONTENT),
        (date.as_str(), StatusCode::PARTIAL_CONTENT),
        ("\"stale\"", StatusCode::OK),
        ("Mon, 01 Jan 2001 00:00:00 GMT", StatusCode::OK),
    ] {
        let (s, _, b) = get(&url, &[("range", "bytes=0-9"), ("if-range", cond)]).await;
        assert_eq!(s, want, "If-Range: {cond}");
        let want_len = if want == StatusCode::OK {
            data.len()
        } else {
            10
        };
        assert_eq!(b.len(), want_len);
    }
    srv.stop().await;
}

/// Revoked links and expired links (ttl 0) are plain 404s.
#[tokio::test]
async fn revoke_and_expiry() {
    let srv = support::start(|_, _| {}).await;
    let (pub_file, _) = srv.publish("rv", "a.mp4", 1000);
    let url = srv.http(&pub_file.url_path);
    assert_eq!(get(&url, &[]).await.0, StatusCode::OK);
    let stats = srv.registry.revoke(&ItemId::from("rv")).expect("stats");
    assert_eq!(stats.full_downloads, 1);
    assert_eq!(get(&url, &[]).await.0, StatusCode::NOT_FOUND);
    srv.stop().await;

    let srv = support::start_with_registry(Registry::new(Duration::ZERO), |_, _| {}).await;
    let (pub_file, _) = srv.publish("ex", "a.mp4", 1000);
    assert_eq!(
        get(&srv.http(&pub_file.url_path), &[]).await.0,
        StatusCode::NOT_FOUND
    );
    srv.stop().await;
}

/// A file modified, replaced, or swapped for a symlink after registration
/// is refused with 404 and counted as a changed refusal.
#[tokio::test]
async fn changed_files_are_refused() {
    let srv = support::start(|_, _| {}).await;
    let dir = srv.dir.path();
    let mut refused = 0;
    for case in ["modified", "replaced", "symlink"] {
        let (path, _) = support::random_file(dir, case, 5000);
        let file = ServedFile::snapshot("x.mp4", &path).expect("snapshot");
        let published = srv
            .registry
            .register(ItemId::from(case), vec![file])
            .expect("reg");
        let url = srv.http(&published[0].url_path);
        assert_eq!(get(&url, &[]).await.0, StatusCode::OK, "{case} before");
        match case {
            "modified" => {
                std::fs::OpenOptions::new()
                    .append(true)
                    .open(&path)
                    .and_then(|mut f| std::io::Write::write_all(&mut f, b"more"))
                    .expect("append");
            }
            "replaced" => support::replace_file(&path, &std::fs::read(&path).expect("read")),
            _ => {
                let (other, _) = support::random_file(dir, "other", 5000);
                std::fs::remove_file(&path).expect("rm");
                std::os::unix::fs::symlink(&other, &path).expect("symlink");
            }
        }
        let (status, _, body) = get(&url, &[]).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{case} after");
        assert!(body.len() < 100);
        let stats = srv.registry.stats(&ItemId::from(case)).expect("stats");
        assert_eq!(stats.changed_refusals, 1, "{case}");
        refused += 1;
    }
    assert_eq!(refused, 3);
    srv.stop().await;
}

/// Names with spaces, quotes, unicode and a literal `%20` survive
/// register → URL → GET.
#[tokio::test]
async fn hostile_names_round_trip() {
    let srv = support::start(|_, _| {}).await;
    let names = [
        "a b.mp4",
        "quote\"s 'single'.mp4",
        "ünïcødé 🎬 clip.mov",
        "100%20real.mp4",
        "semi;colon?q=1#frag.jpg",
        "plus+and&amp=.webp",
        "..dots..mp4",
        "%2e%2e",
    ];
    for (i, name) in names.iter().enumerate() {
        let (pub_file, data) = srv.publish(&format!("h{i}"), name, 2000 + i);
        let (status, _, body) = get(&srv.http(&pub_file.url_path), &[]).await;
        assert_eq!(status, StatusCode::OK, "{name:?} via {}", pub_file.url_path);
        assert!(body == data, "{name:?}");
    }
    srv.stop().await;
}
