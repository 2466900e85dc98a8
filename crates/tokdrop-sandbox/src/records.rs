//! What the emulator saw, for tests and `GET /_sandbox/calls`: every call (endpoint, time,
//! answer, the access token's fingerprint — never the token), every init with its body, every
//! pull download with its size and SHA-256, every upload chunk, and every post with its states.
//! Recording happens in the handlers; this file only holds the shapes and the queries on them.

use std::time::Duration;

use jiff::Timestamp;
use serde::Serialize;

use super::config::SandboxEndpoint;

/// One HTTP call to an emulated endpoint.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CallRecord {
    pub seq: u64,
    pub endpoint: SandboxEndpoint,
    pub at: Timestamp,
    /// First 8 hex digits of SHA-256 of the bearer token (or the OAuth grant's token).
    pub token_fingerprint: Option<String>,
    /// 0 when the connection was dropped instead of answering.
    pub http_status: u16,
    /// `error.code` / OAuth `error` of the answer, `ok` on success.
    pub code: String,
    pub dropped: bool,
    /// The grant type of a token call (`authorization_code`, `refresh_token`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// One init call with the body as received.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct InitRecord {
    pub seq: u64,
    pub endpoint: SandboxEndpoint,
    pub at: Timestamp,
    pub token_fingerprint: Option<String>,
    pub open_id: Option<String>,
    pub body: serde_json::Value,
    /// `ok` or the error code answered.
    pub code: String,
    pub publish_id: Option<String>,
    /// Fields TikTok ignores on this endpoint (e.g. `post_info` on inbox/video/init).
    pub dropped_fields: Vec<String>,
}

/// One PULL_FROM_URL download by the emulator.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DownloadRecord {
    pub publish_id: String,
    pub url: String,
    pub started_at: Timestamp,
    pub finished_at: Option<Timestamp>,
    /// `None` when no HTTP answer arrived.
    pub http_status: Option<u16>,
    /// The answer's `Content-Length`, when it had one.
    pub expected_bytes: Option<u64>,
    pub bytes: u64,
    /// Hex SHA-256 of the body, when it was read completely.
    pub sha256: Option<String>,
    /// Why the pull failed (redirect, HTTP status, connection, cancelled, injected).
    pub error: Option<String>,
}

/// One chunk PUT.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct UploadRecord {
    pub publish_id: Option<String>,
    pub at: Timestamp,
    pub content_range: Option<String>,
    pub bytes: u64,
    pub http_status: u16,
}

/// One `cancel` call that named a post of the caller.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CancelRecord {
    pub seq: u64,
    pub publish_id: String,
    pub at: Timestamp,
    /// `ok` (the download was stopped) or the error code answered.
    pub code: String,
    /// The post's status when the cancel arrived.
    pub status_before: String,
    pub downloaded_bytes: u64,
}

/// One `oauth/revoke` call.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RevokeRecord {
    pub seq: u64,
    pub at: Timestamp,
    pub token_fingerprint: String,
    /// The user whose grant ended (`None`: the token was unknown or expired).
    pub open_id: Option<String>,
    pub revoked: bool,
}

/// A post (one accepted init) and where it stands.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PostRecord {
    pub publish_id: String,
    pub open_id: String,
    pub endpoint: SandboxEndpoint,
    /// Direct post (`video/init`, content DIRECT_POST) rather than an inbox draft.
    pub direct: bool,
    pub photo: bool,
    /// `PULL_FROM_URL` or `FILE_UPLOAD`.
    pub source: String,
    pub privacy_level: Option<String>,
    pub title: Option<String>,
    pub status: String,
    pub fail_reason: Option<String>,
    pub post_ids: Vec<u64>,
    pub uploaded_bytes: u64,
    pub downloaded_bytes: u64,
    /// Hex SHA-256 of the uploaded file once all chunks arrived (FILE_UPLOAD).
    pub upload_sha256: Option<String>,
    /// Hex SHA-256 of each media file TikTok now holds for this post (pulled or uploaded),
    /// in order; empty until the media arrived.
    pub media_sha256: Vec<String>,
    pub created_at: Timestamp,
    /// Every status the post went through, with its time.
    pub history: Vec<(String, Timestamp)>,
}

impl PostRecord {
    /// PUBLISH_COMPLETE, SEND_TO_USER_INBOX or FAILED: nothing more happens by itself.
    pub fn is_terminal(&self) -> bool {
        matches!(
            self.status.as_str(),
            "PUBLISH_COMPLETE" | "SEND_TO_USER_INBOX" | "FAILED"
        )
    }

    /// A post or draft now exists on TikTok for this init.
    pub fn exists(&self) -> bool {
        matches!(
            self.status.as_str(),
            "PUBLISH_COMPLETE" | "SEND_TO_USER_INBOX"
        )
    }
}

/// Everything recorded so far.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Calls {
    pub calls: Vec<CallRecord>,
    pub inits: Vec<InitRecord>,
    pub downloads: Vec<DownloadRecord>,
    pub uploads: Vec<UploadRecord>,
    pub cancels: Vec<CancelRecord>,
    pub revokes: Vec<RevokeRecord>,
    pub posts: Vec<PostRecord>,
}

impl Calls {
    /// Calls of one endpoint.
    pub fn of(&self, endpoint: SandboxEndpoint) -> Vec<&CallRecord> {
        self.calls
            .iter()
            .filter(|c| c.endpoint == endpoint)
            .collect()
    }

    pub fn count(&self, endpoint: SandboxEndpoint) -> usize {
        self.of(endpoint).len()
    }

    /// Calls of any init endpoint.
    pub fn init_calls(&self) -> Vec<&CallRecord> {
        self.calls.iter().filter(|c| c.endpoint.is_init()).collect()
    }

    /// The largest number of calls matching `filter` that arrived within any `window`.
    pub fn max_in_window(&self, window: Duration, filter: impl Fn(&CallRecord) -> bool) -> usize {
        let times: Vec<Timestamp> = self
            .calls
            .iter()
            .filter(|c| filter(c))
            .map(|c| c.at)
            .collect();
        let window = jiff::SignedDuration::try_from(window).unwrap_or(jiff::SignedDuration::MAX);
        (0..times.len())
            .map(|i| {
                times[i..]
                    .iter()
                    .take_while(|t| t.duration_since(times[i]) < window)
                    .count()
            })
            .max()
            .unwrap_or(0)
    }

    pub fn post(&self, publish_id: &str) -> Option<&PostRecord> {
        self.posts.iter().find(|p| p.publish_id == publish_id)
    }

    /// Posts and drafts that exist on TikTok and were made from a file with this SHA-256:
    /// "exactly one post exists for this file" is `existing_posts_of(sha).len() == 1`.
    pub fn existing_posts_of(&self, sha256: &str) -> Vec<&PostRecord> {
        self.posts
            .iter()
            .filter(|p| p.exists() && p.media_sha256.iter().any(|s| s == sha256))
            .collect()
    }

    /// Posts whose media includes this SHA-256, whatever their status.
    pub fn posts_of(&self, sha256: &str) -> Vec<&PostRecord> {
        self.posts
            .iter()
            .filter(|p| p.media_sha256.iter().any(|s| s == sha256))
            .collect()
    }

    /// How many posts are in each status.
    pub fn posts_by_status(&self) -> std::collections::BTreeMap<String, usize> {
        let mut counts = std::collections::BTreeMap::new();
        for p in &self.posts {
            *counts.entry(p.status.clone()).or_insert(0) += 1;
        }
        counts
    }

    pub fn downloads_of(&self, publish_id: &str) -> Vec<&DownloadRecord> {
        self.downloads
            .iter()
            .filter(|d| d.publish_id == publish_id)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(seq: u64, at_ms: i64) -> CallRecord {
        CallRecord {
            seq,
            endpoint: SandboxEndpoint::VideoInit,
            at: Timestamp::from_millisecond(at_ms).expect("ts"),
            token_fingerprint: None,
            http_status: 200,
            code: "ok".into(),
            dropped: false,
            detail: None,
        }
    }

    /// The sliding-window count finds the densest window, end exclusive.
    #[test]
    fn max_in_window_counts_the_densest_window() {
        let calls = Calls {
            calls: [0, 10, 20, 1000, 1005, 1010, 1015]
                .iter()
                .enumerate()
                .map(|(i, &t)| call(i as u64, t))
                .collect(),
            ..Calls::default()
        };
        assert_eq!(calls.max_in_window(Duration::from_millis(100), |_| true), 4);
        assert_eq!(
            calls.max_in_window(Duration::from_millis(1000), |_| true),
            5
        );
        assert_eq!(calls.max_in_window(Duration::from_millis(1), |_| true), 1);
        assert_eq!(calls.count(SandboxEndpoint::VideoInit), 7);
    }
}
