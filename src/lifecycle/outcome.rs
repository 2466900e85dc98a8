//! What happened to an item, in the shape of SPEC §5: the `.result.yaml` next to the moved
//! files and one line of `ledger.jsonl`. Only data lives here; `results` writes it.

use serde::{Deserialize, Serialize};

use crate::content::sidecar::Mode;

/// The final state of an item.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Published,
    SentToInbox,
    Failed,
    Unknown,
    Invalid,
}

impl Status {
    /// Published and sent-to-inbox items go to `done/`, everything else to `failed/`.
    pub fn is_success(self) -> bool {
        matches!(self, Status::Published | Status::SentToInbox)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Status::Published => "published",
            Status::SentToInbox => "sent_to_inbox",
            Status::Failed => "failed",
            Status::Unknown => "unknown",
            Status::Invalid => "invalid",
        }
    }
}

/// Where in the pipeline an error happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorStage {
    Validate,
    Authorize,
    Init,
    Transfer,
    Processing,
    Timeout,
    Restart,
}

/// The error block of a result: TikTok's code (or ours), the message, TikTok's log id, and what
/// the user can do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResultError {
    pub stage: ErrorStage,
    pub code: String,
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_id: Option<String>,
    pub hint: String,
}

/// An earlier attempt of the same item (a failed pull before an upload fallback).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PreviousAttempt {
    pub publish_id: Option<String>,
    pub transfer: String,
    pub fail_reason: String,
}

/// How much of the item TikTok fetched from the media server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fetched {
    pub bytes: u64,
    pub of_bytes: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_at: Option<jiff::Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub complete_at: Option<jiff::Timestamp>,
}

/// The result file and ledger line (SPEC §5), field order as documented.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ItemResult {
    pub status: Status,
    /// Original name in the watched folder (a photo set: its folder name).
    pub item: String,
    /// Names as moved, relative to the done/failed folder.
    #[serde(default)]
    pub files: Vec<String>,
    pub watch: String,
    pub account: String,
    pub mode: Mode,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transfer: Option<String>,
    #[serde(default)]
    pub previous_attempts: Vec<PreviousAttempt>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub publish_id: Option<String>,
    #[serde(default)]
    pub post_ids: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub post_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub privacy_level: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fetched: Option<Fetched>,
    pub queued_at: jiff::Timestamp,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<jiff::Timestamp>,
    pub finished_at: jiff::Timestamp,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ResultError>,
    /// The journal id, to tie a result to log lines.
    pub id: String,
}

/// Now, to the second (cut, never rounded up, so a time shown never comes after what it
/// precedes, such as TikTok's first fetch): result files and the ledger show times people read.
pub fn now() -> jiff::Timestamp {
    let t = jiff::Timestamp::now();
    t.round(
        jiff::TimestampRound::new()
            .smallest(jiff::Unit::Second)
            .mode(jiff::RoundMode::Trunc),
    )
    .unwrap_or(t)
}
