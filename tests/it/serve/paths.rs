//! Hostile request paths, methods, `/healthz` and verification files, sent
//! as raw HTTP/1.1 so no client normalises the path first.

use super::support::{self, raw_request, status_of};

/// Traversal, encoding tricks and malformed paths never get 200, 3xx or
/// 403: only a 404 (or a 400 from the HTTP parser), and never a Location.
#[tokio::test]
async fn traversal_corpus_is_refused() {
    let srv = support::start(|cfg, dir| {
        let verify = dir.join("verify");
        std::fs::create_dir(&verify).expect("mkdir");
        std::fs::write(verify.join("tiktok123.txt"), "proof").expect("write");
        std::fs::write(verify.join(".env"), "SECRET=1").expect("write");
        std::fs::write(dir.join("outside.txt"), "outside").expect("write");
        cfg.verification_dir = Some(verify);
    })
    .await;
    let (published, _) = srv.publish("t", "clip.mp4", 1000);
    let tok = &published.token;
    let long = "a".repeat(2000);
    let corpus: Vec<Vec<u8>> = [
        format!("/media/{tok}/../clip.mp4"),
        format!("/media/{tok}/..%2fclip.mp4"),
        format!("/media/{tok}/%2e%2e/clip.mp4"),
        format!("/media/{tok}/%2e%2e%2fclip.mp4"),
        format!("/media/{tok}/%252e%252e%252fclip.mp4"),
        format!("/media/{tok}/clip.mp4%00"),
        format!("/media/{tok}/clip.mp4%2f"),
        format!("/media/{tok}/clip%5cmp4"),
        format!("/media/{tok}/clip.mp4/"),
        format!("/media/{tok}/clip.mp4/extra"),
        format!("/media/{tok}//clip.mp4"),
        format!("/media/{tok}/other.mp4"),
        format!("/media/{tok}/CLIP.mp4"),
        format!("/media/{tok}/clip%2Emp4%2500"),
        format!("/media/{tok}/{long}"),
        format!("/media/{}/clip.mp4", tok.to_uppercase()),
        format!("/media/{}/clip.mp4", "0".repeat(32)),
        format!("/media/{}/clip.mp4", &tok[..31]),
        format!("/media/{tok}"),
        format!("/media/{tok}/"),
        format!("/media//{tok}/clip.mp4"),
        format!("/MEDIA/{tok}/clip.mp4"),
        "/media/".into(),
        "/media".into(),
        "/".into(),
        "//etc/passwd".into(),
        "/etc/passwd".into(),
        "/.env".into(),
        "/%2eenv".into(),
        "/../outside.txt".into(),
        "/%2e%2e/outside.txt".into(),
        "/%2e%2e%2foutside.txt".into(),
        "/verify/tiktok123.txt".into(),
        "/tiktok123.txt/".into(),
        "/healthz/".into(),
        "/healthz/../media".into(),
        format!("/{long}"),
    ]
    .into_iter()
    .map(String::into_bytes)
    .chain([
        format!("/media/{tok}/clip.mp4\\..\\x").into_bytes(),
        b"/\\etc\\passwd".to_vec(),
        b"/media/x/\x00".to_vec(),
    ])
    .collect();
    for target in &corpus {
        let head = raw_request(srv.addr, "GET", target).await;
        let status = status_of(&head);
        let shown = String::from_utf8_lossy(&target[..target.len().min(80)]).into_owned();
        assert!(matches!(status, 400 | 404), "{shown} gave {status}: {head}");
        assert!(!head.to_ascii_lowercase().contains("location:"), "{shown}");
    }
    // sanity: the legitimate requests on the same server do work
    assert_eq!(
        status_of(&raw_request(srv.addr, "GET", format!("/media/{tok}/clip.mp4").as_bytes()).await),
        200
    );
    assert_eq!(
        status_of(&raw_request(srv.addr, "GET", b"/tiktok123.txt").await),
        200
    );
    srv.stop().await;
}

/// Verification files: only `tiktok<letters and digits>.txt` files, regular and directly in
/// the dir; other names, symlinks and subdirectories are 404.
#[tokio::test]
async fn verification_files() {
    let srv = support::start(|cfg, dir| {
        let verify = dir.join("verify");
        std::fs::create_dir_all(verify.join("sub")).expect("mkdir");
        std::fs::write(
            verify.join("tiktokABC.txt"),
            "tiktok-developers-site-verification=ABC",
        )
        .expect("write");
        std::fs::write(verify.join("sub").join("x.txt"), "x").expect("write");
        std::fs::write(verify.join("default.json"), "{\"access_token\": \"x\"}").expect("write");
        std::fs::write(verify.join("tiktok.txt"), "x").expect("write");
        std::fs::write(dir.join("secret.txt"), "secret").expect("write");
        std::os::unix::fs::symlink(dir.join("secret.txt"), verify.join("link.txt")).expect("ln");
        cfg.verification_dir = Some(verify);
    })
    .await;
    let resp = crate::harness::http()
        .build()
        .expect("client")
        .get(srv.http("/tiktokABC.txt"))
        .send()
        .await
        .expect("get");
    assert_eq!(resp.status(), 200);
    assert_eq!(
        resp.text().await.expect("text"),
        "tiktok-developers-site-verification=ABC"
    );
    for path in [
        "/link.txt",
        "/default.json",
        "/tiktok.txt",
        "/sub",
        "/sub/x.txt",
        "/sub%2fx.txt",
        "/missing.txt",
    ] {
        let status = status_of(&raw_request(srv.addr, "GET", path.as_bytes()).await);
        assert_eq!(status, 404, "{path}");
    }
    srv.stop().await;
}

/// `/healthz` answers `ok` to GET and HEAD; other methods get 405 on known
/// paths and 404 elsewhere.
#[tokio::test]
async fn healthz_and_methods() {
    let srv = support::start(|_, _| {}).await;
    let (published, _) = srv.publish("m", "a.mp4", 10);
    let media = format!("/{}", published.url_path);
    let resp = crate::harness::http()
        .build()
        .expect("client")
        .get(srv.http("/healthz"))
        .send()
        .await
        .expect("get");
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.text().await.expect("text").trim(), "ok");
    assert_eq!(
        status_of(&raw_request(srv.addr, "HEAD", b"/healthz").await),
        200
    );
    for (method, path, want) in [
        ("POST", "/healthz", 405),
        ("DELETE", media.as_str(), 405),
        ("PUT", media.as_str(), 405),
        ("OPTIONS", "/healthz", 405),
        ("POST", "/nothing", 404),
        ("PUT", "/media/0123456789abcdef0123456789abcdef/a.mp4", 404),
    ] {
        let head = raw_request(srv.addr, method, path.as_bytes()).await;
        assert_eq!(status_of(&head), want, "{method} {path}");
    }
    srv.stop().await;
}
