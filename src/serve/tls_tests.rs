//! Unit tests of certificate loading: precise errors for broken files,
//! self-signed generation and the atomic PEM write.

use super::*;

fn pair() -> (String, String) {
    let c = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).expect("rcgen");
    (c.cert.pem(), c.signing_key.serialize_pem())
}

fn load(dir: &Path, cert: &str, key: &str) -> Result<CertifiedKey, ServeError> {
    let (c, k) = (dir.join("cert.pem"), dir.join("key.pem"));
    fs::write(&c, cert).expect("write cert");
    fs::write(&k, key).expect("write key");
    load_files(&c, &k, &rustls::crypto::ring::default_provider())
}

/// Each broken input yields an error naming the file and the problem.
#[test]
fn broken_files_are_explained() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (cert, key) = pair();
    let (other_cert, _) = pair();
    assert!(load(dir.path(), &cert, &key).is_ok());
    let cases = [
        ("", key.as_str(), "cert.pem: file is empty"),
        ("\n  \n", key.as_str(), "cert.pem: file is empty"),
        (key.as_str(), key.as_str(), "cert.pem: no certificate found"),
        (cert.as_str(), "", "key.pem: file is empty"),
        (
            cert.as_str(),
            cert.as_str(),
            "key.pem: no private key found",
        ),
        (
            other_cert.as_str(),
            key.as_str(),
            "key.pem: private key does not match",
        ),
        (
            "-----BEGIN CERTIFICATE-----\nnot base64!\n",
            key.as_str(),
            "cert.pem: invalid PEM",
        ),
    ];
    for (c, k, want) in cases {
        let err = load(dir.path(), c, k).expect_err(want).to_string();
        assert!(err.contains(want), "got {err:?}, want {want:?}");
    }
    let missing = load_files(
        &dir.path().join("nope.pem"),
        &dir.path().join("key.pem"),
        &rustls::crypto::ring::default_provider(),
    );
    let err = missing.err().map(|e| e.to_string()).unwrap_or_default();
    assert!(err.contains("nope.pem: cannot read"), "{err}");
}

/// A self-signed setup writes a PEM that parses back to the served cert.
#[test]
fn self_signed_writes_matching_pem() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pem_path = dir.path().join("sub.pem");
    let provider = rustls::crypto::ring::default_provider();
    let names = vec!["localhost".to_owned(), "127.0.0.1".to_owned()];
    let key = self_signed(&names, &pem_path, &provider).expect("self-signed");
    let written = fs::read(&pem_path).expect("pem written");
    let parsed = CertificateDer::from_pem_slice(&written).expect("parse");
    assert_eq!(parsed, key.cert[0]);
    let leftovers: Vec<_> = fs::read_dir(dir.path()).expect("ls").collect();
    assert_eq!(leftovers.len(), 1, "no temp files left behind");
}

/// The atomic write replaces existing content in one step.
#[test]
fn atomic_write_replaces() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = dir.path().join("x.pem");
    write_atomically(&p, b"one").expect("first");
    write_atomically(&p, b"two").expect("second");
    assert_eq!(fs::read(&p).expect("read"), b"two");
}
