//! Unit tests of the registry: tokens, names, expiry, revocation, coverage.

use super::*;
use crate::serve::stats::add_range;
use std::time::Duration;

fn served(dir: &std::path::Path, name: &str, data: &[u8]) -> ServedFile {
    let path = dir.join("f");
    std::fs::write(&path, data).expect("write");
    ServedFile::snapshot(name, &path).expect("snapshot")
}

/// Tokens are 32 hex chars, unique per file, and the URL path encodes the name.
#[test]
fn register_gives_unique_tokens_and_urls() {
    let dir = tempfile::tempdir().expect("tempdir");
    let reg = Registry::new(Duration::from_secs(60));
    let a = served(dir.path(), "a b.mp4", b"x");
    let b = ServedFile {
        name: "c.jpg".into(),
        ..a.clone()
    };
    let out = reg.register(ItemId::from(7), vec![a, b]).expect("register");
    assert_eq!(out.len(), 2);
    assert_ne!(out[0].token, out[1].token);
    assert!(
        out.iter()
            .all(|p| p.token.len() == 32 && p.token.bytes().all(|c| c.is_ascii_hexdigit()))
    );
    assert_eq!(out[0].url_path, format!("media/{}/a%20b.mp4", out[0].token));
    assert!(reg.lookup(&out[1].token).is_some());
}

/// Names that could not round-trip as one URL segment are refused.
#[test]
fn register_rejects_bad_names() {
    let dir = tempfile::tempdir().expect("tempdir");
    let reg = Registry::new(Duration::from_secs(60));
    let base = served(dir.path(), "ok", b"x");
    for bad in [
        "",
        ".",
        "..",
        "a/b",
        "a\\b",
        "a\0b",
        "a\nb",
        &"x".repeat(256),
    ] {
        let f = ServedFile {
            name: bad.into(),
            ..base.clone()
        };
        assert!(reg.register("i".into(), vec![f]).is_err(), "{bad:?}");
    }
    let rel = ServedFile {
        path: "rel/x".into(),
        ..base.clone()
    };
    assert!(matches!(
        reg.register("i".into(), vec![rel]),
        Err(RegisterError::RelativePath(_))
    ));
    let dup = vec![base.clone(), base.clone()];
    assert!(matches!(
        reg.register("i".into(), dup),
        Err(RegisterError::DuplicateName(_))
    ));
    assert!(matches!(
        reg.register("i".into(), vec![]),
        Err(RegisterError::NoFiles)
    ));
}

/// A link works until link_ttl has passed, then stops; stats survive expiry.
#[tokio::test(start_paused = true)]
async fn links_expire_after_ttl() {
    let dir = tempfile::tempdir().expect("tempdir");
    let reg = Registry::new(Duration::from_secs(60));
    let out = reg
        .register("i".into(), vec![served(dir.path(), "a", b"x")])
        .expect("register");
    tokio::time::advance(Duration::from_secs(59)).await;
    assert!(reg.lookup(&out[0].token).is_some());
    tokio::time::advance(Duration::from_secs(1)).await;
    assert!(reg.lookup(&out[0].token).is_none());
    assert!(reg.stats(&"i".into()).is_some());
}

/// Revoking and re-registering both kill the old links.
#[test]
fn revoke_and_reregister_invalidate() {
    let dir = tempfile::tempdir().expect("tempdir");
    let reg = Registry::new(Duration::from_secs(60));
    let f = served(dir.path(), "a", b"x");
    let first = reg.register("i".into(), vec![f.clone()]).expect("register");
    let second = reg.register("i".into(), vec![f]).expect("register");
    assert!(reg.lookup(&first[0].token).is_none());
    assert!(reg.lookup(&second[0].token).is_some());
    assert!(reg.revoke(&"i".into()).is_some());
    assert!(reg.lookup(&second[0].token).is_none());
    assert!(reg.stats(&"i".into()).is_none());
}

/// Ranges that together cover the file count as one full download.
#[test]
fn coverage_counts_full_downloads() {
    let dir = tempfile::tempdir().expect("tempdir");
    let reg = Registry::new(Duration::from_secs(60));
    let out = reg
        .register("i".into(), vec![served(dir.path(), "a", &[0u8; 100])])
        .expect("register");
    let (entry, i) = reg.lookup(&out[0].token).expect("live");
    entry.note_delivered(i, 50, 50, true);
    entry.note_delivered(i, 0, 30, true);
    assert_eq!(entry.stats().full_downloads, 0);
    entry.note_delivered(i, 20, 40, false);
    assert_eq!(entry.stats().full_downloads, 1);
    entry.note_delivered(i, 0, 100, true);
    assert_eq!(entry.stats().full_downloads, 2);
    assert_eq!(entry.stats().files[0].full_downloads, 2);
}

/// The interval merge keeps ranges sorted and disjoint.
#[test]
fn add_range_merges() {
    let mut cov = Vec::new();
    add_range(&mut cov, 10, 20);
    add_range(&mut cov, 30, 40);
    add_range(&mut cov, 0, 5);
    assert_eq!(cov, vec![(0, 5), (10, 20), (30, 40)]);
    add_range(&mut cov, 20, 30);
    assert_eq!(cov, vec![(0, 5), (10, 40)]);
    add_range(&mut cov, 3, 12);
    assert_eq!(cov, vec![(0, 40)]);
}

/// A restored item answers on the tokens it had (a fresh registry after a restart); tokens
/// that are not ours in shape, or not one per file, are refused.
#[test]
fn restore_keeps_the_old_tokens() {
    let dir = tempfile::tempdir().expect("tempdir");
    let before = Registry::new(Duration::from_secs(60));
    let file = served(dir.path(), "a.jpg", b"x");
    let out = before
        .register(ItemId::from(1), vec![file.clone()])
        .expect("register");
    let after = Registry::new(Duration::from_secs(60));
    let again = after
        .restore(
            ItemId::from(1),
            vec![file.clone()],
            vec![out[0].token.clone()],
        )
        .expect("restore");
    assert_eq!(again, out);
    assert!(after.lookup(&out[0].token).is_some());
    for bad in [vec![], vec!["../x".to_string()], vec!["A".repeat(32)]] {
        assert!(
            matches!(
                after.restore(ItemId::from(2), vec![file.clone()], bad),
                Err(RegisterError::BadToken(_))
            ),
            "refused"
        );
    }
}
