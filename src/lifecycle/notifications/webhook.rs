//! The webhook: an HTTPS POST of the notification's JSON, signed with HMAC-SHA256 (RFC 2104)
//! over `<timestamp>.<body>` with the secret of `secret_file`, in the manner of Stripe's and
//! Slack's signatures (the timestamp lets receivers refuse replays):
//!
//! ```text
//! X-Tokdrop-Event: result | paused | needs_login
//! X-Tokdrop-Delivery: <id, the same on every retry>
//! X-Tokdrop-Timestamp: <unix seconds of this attempt>
//! X-Tokdrop-Signature: sha256=<hex HMAC-SHA256(secret, "<timestamp>.<body>")>
//! ```

use std::path::Path;
use std::time::Duration;

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use super::outbox::Entry;

pub const HEADER_EVENT: &str = "X-Tokdrop-Event";
pub const HEADER_DELIVERY: &str = "X-Tokdrop-Delivery";
pub const HEADER_TIMESTAMP: &str = "X-Tokdrop-Timestamp";
pub const HEADER_SIGNATURE: &str = "X-Tokdrop-Signature";

/// The `X-Tokdrop-Signature` value for `body` sent at `timestamp` (unix seconds).
pub fn signature(secret: &[u8], timestamp: i64, body: &[u8]) -> String {
    let mut mac =
        <Hmac<Sha256> as KeyInit>::new_from_slice(secret).expect("HMAC takes a key of any length");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// Reads the webhook secret: the file's content without trailing whitespace (the newline
/// `echo` adds). Errors name the file, never its content.
pub fn read_secret(path: &Path) -> Result<Vec<u8>, String> {
    match std::fs::read(path) {
        Ok(bytes) if bytes.trim_ascii().is_empty() => Err(format!(
            "the webhook secret file {} is empty",
            path.display()
        )),
        Ok(bytes) => Ok(bytes.trim_ascii_end().to_vec()),
        Err(e) => Err(format!(
            "cannot read the webhook secret file {}: {e}",
            path.display()
        )),
    }
}

/// How one POST ended.
#[derive(Debug, PartialEq)]
pub enum Sent {
    Delivered,
    /// Try again later (network error, timeout, 5xx, 408, 429); `after` from Retry-After.
    Retry {
        reason: String,
        after: Option<Duration>,
    },
    /// Trying again would not help (another 4xx, a redirect, an unreadable secret).
    GiveUp {
        reason: String,
    },
}

/// Posts `entry` to `url`.
pub async fn post(
    http: &reqwest::Client,
    url: &str,
    secret_file: &Path,
    timeout: Duration,
    entry: &Entry,
) -> Sent {
    let secret = match read_secret(secret_file) {
        Ok(s) => s,
        // The file may come back (a credential not mounted yet): retried within the budget.
        Err(reason) => {
            return Sent::Retry {
                reason,
                after: None,
            };
        }
    };
    let timestamp = jiff::Timestamp::now().as_second();
    let body = entry.body.as_bytes();
    let request = http
        .post(url)
        .timeout(timeout)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .header(HEADER_EVENT, entry.event.as_str())
        .header(HEADER_DELIVERY, &entry.delivery_id)
        .header(HEADER_TIMESTAMP, timestamp.to_string())
        .header(HEADER_SIGNATURE, signature(&secret, timestamp, body))
        .body(body.to_vec());
    drop(secret);
    match request.send().await {
        Ok(resp) => classify(resp.status(), retry_after(resp.headers())),
        Err(e) => Sent::Retry {
            reason: transport_reason(&e),
            after: None,
        },
    }
}

/// What an answer means for the delivery.
pub fn classify(status: reqwest::StatusCode, retry_after: Option<Duration>) -> Sent {
    let code = status.as_u16();
    match code {
        200..=299 => Sent::Delivered,
        408 | 429 | 500..=599 => Sent::Retry {
            reason: format!("the receiver answered HTTP {status}"),
            after: retry_after,
        },
        300..=399 => Sent::GiveUp {
            reason: format!(
                "the receiver answered a redirect (HTTP {status}); tokdrop does not follow redirects: put the final address in webhook.url"
            ),
        },
        _ => Sent::GiveUp {
            reason: format!("the receiver refused it (HTTP {status})"),
        },
    }
}

fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    let secs: u64 = headers
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()?;
    Some(Duration::from_secs(secs))
}

/// The cause of a failed request, without the URL (which may carry a token in its path).
fn transport_reason(e: &reqwest::Error) -> String {
    let what = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "could not connect"
    } else {
        "failed"
    };
    let mut cause = String::new();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        cause = s.to_string();
        source = s.source();
    }
    if cause.is_empty() {
        format!("the request {what}")
    } else {
        format!("the request {what}: {cause}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The `hmac` crate gives RFC 4231's HMAC-SHA256, and the signature is that over
    /// `<timestamp>.<body>`, as `openssl dgst -hmac` computes it (the README's recipe).
    #[test]
    fn signature_is_hmac_sha256_over_timestamp_dot_body() {
        // RFC 4231 test case 2: HMAC-SHA256("Jefe", "what do ya want for nothing?").
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(b"Jefe").expect("key");
        mac.update(b"what do ya want for nothing?");
        assert_eq!(
            hex::encode(mac.finalize().into_bytes()),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        // Ours: the same construction over "<timestamp>.<body>" (checked with
        // `printf '1700000000.{"a":1}' | openssl dgst -sha256 -hmac secret`).
        assert_eq!(
            signature(b"secret", 1_700_000_000, b"{\"a\":1}"),
            "sha256=49f24e537407743fa4a0242bb63b94b9a47ee99cbbe071ccd8a22550ae411686"
        );
    }

    #[test]
    fn answers_are_classified() {
        use reqwest::StatusCode as S;
        let cases = [
            (S::OK, "delivered"),
            (S::NO_CONTENT, "delivered"),
            (S::REQUEST_TIMEOUT, "retry"),
            (S::TOO_MANY_REQUESTS, "retry"),
            (S::INTERNAL_SERVER_ERROR, "retry"),
            (S::BAD_GATEWAY, "retry"),
            (S::BAD_REQUEST, "give up"),
            (S::UNAUTHORIZED, "give up"),
            (S::NOT_FOUND, "give up"),
            (S::MOVED_PERMANENTLY, "give up"),
        ];
        for (status, want) in cases {
            let got = match classify(status, None) {
                Sent::Delivered => "delivered",
                Sent::Retry { .. } => "retry",
                Sent::GiveUp { .. } => "give up",
            };
            assert_eq!(got, want, "{status}");
        }
    }

    /// A trailing newline in the secret file is not part of the key; an empty file is an
    /// error that names the file and not the content.
    #[test]
    fn secret_files() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("s");
        std::fs::write(&p, "hunter2\n").expect("write");
        assert_eq!(read_secret(&p).expect("secret"), b"hunter2");
        std::fs::write(&p, "\n").expect("write");
        let e = read_secret(&p).expect_err("empty");
        assert!(
            e.contains("is empty") && e.contains(&p.display().to_string()),
            "{e}"
        );
        let e = read_secret(&dir.path().join("missing")).expect_err("missing");
        assert!(e.contains("cannot read"), "{e}");
    }
}
