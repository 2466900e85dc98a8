//! Why an item waits, typed: what `status.json` stores for each waiting item and how people
//! read it. Older versions wrote free text; that still reads.

use serde::{Deserialize, Serialize};

/// How the text of an item whose claim failed begins.
pub const CANNOT_TAKE: &str = "cannot take it";
/// How the text of an item that could not be moved to done/ or failed/ begins.
pub const CANNOT_FINISH: &str = "cannot finish";

/// Why an item waits: in its folder (most of them), or, claimed, for its worker.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Reason {
    /// Its files changed recently; it is looked at again once they stop changing.
    Settling,
    /// The folder requires a sidecar and the media file has none yet.
    WaitingForSidecar,
    /// A sidecar whose video or photo is not there (yet).
    SidecarWithoutMedia,
    /// Quiet, but the content check fails (`problem` says how); given up after
    /// `give_up_after`.
    Incomplete { problem: String },
    /// Its sidecar's `not_before` has not come yet.
    Scheduled { at: jiff::Timestamp },
    /// First in its account's line, and the account's worker is free: claimed right now.
    NextInLine,
    /// In line behind others while the worker is free (for a moment, as the first is claimed).
    InLine,
    /// In line while the account's worker publishes `publishing`.
    AccountBusy { publishing: String },
    /// In line while the account is paused; re-checked at `until` (or at a new login).
    AccountPaused { until: jiff::Timestamp, why: String },
    /// Claimed (moved into the work area and journaled), its worker takes it next.
    Claimed,
    /// Its claim failed; it stays in the folder and is tried again.
    CannotTake { problem: String },
    /// Published or failed, but its files cannot be moved to done/ or failed/ yet.
    CannotFinish { problem: String },
    /// Looking at its files took too long; tried again later.
    SlowCheck { limit_secs: u64 },
    /// Free text, as older versions wrote it in `status.json`.
    Note { text: String },
}

impl Reason {
    /// A reason as older versions wrote it (free text).
    fn from_text(text: String) -> Self {
        if text == "queued" {
            Reason::Claimed
        } else if text.starts_with("settling") {
            Reason::Settling
        } else {
            Reason::Note { text }
        }
    }

    /// Whether the item is in (or at the head of) its account's line, claimed or not.
    pub fn is_queued(&self) -> bool {
        matches!(
            self,
            Reason::NextInLine
                | Reason::InLine
                | Reason::AccountBusy { .. }
                | Reason::AccountPaused { .. }
                | Reason::Claimed
        )
    }
}

impl std::fmt::Display for Reason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Reason::Settling => f.write_str("settling: waiting until the files stop changing"),
            Reason::WaitingForSidecar => {
                f.write_str("waiting for sidecar (this folder requires one)")
            }
            Reason::SidecarWithoutMedia => {
                f.write_str("sidecar without a media file: waiting for its video or photo")
            }
            Reason::Incomplete { problem } => f.write_str(problem),
            Reason::Scheduled { at } => write!(f, "scheduled for {}", utc(*at, "%Y-%m-%d %H:%M")),
            Reason::NextInLine => f.write_str("next in line"),
            Reason::InLine => f.write_str("in line"),
            Reason::AccountBusy { publishing } => {
                write!(f, "account busy (publishing {publishing})")
            }
            Reason::AccountPaused { until, why } => {
                let why = why.strip_prefix("paused: ").unwrap_or(why);
                write!(f, "paused until {} ({why})", utc(*until, "%H:%M"))
            }
            Reason::Claimed => f.write_str("claimed: its account's worker takes it next"),
            Reason::CannotTake { problem } => {
                write!(f, "{CANNOT_TAKE}: {problem}; tokdrop tries again later")
            }
            Reason::CannotFinish { problem } => write!(f, "{problem}; tokdrop tries again"),
            Reason::SlowCheck { limit_secs } => write!(
                f,
                "checking the files took longer than {limit_secs} s (slow storage, or a crafted file); trying again later"
            ),
            Reason::Note { text } => f.write_str(text),
        }
    }
}

/// `at` in UTC with `format`, and " UTC".
fn utc(at: jiff::Timestamp, format: &str) -> String {
    format!("{} UTC", at.strftime(format))
}

/// Reads a reason written by this version (tagged) or an older one (free text).
pub(super) fn reason_or_text<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Reason, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Either {
        Typed(Reason),
        Text(String),
    }
    Ok(match Either::deserialize(d)? {
        Either::Typed(r) => r,
        Either::Text(t) => Reason::from_text(t),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each row: a reason and what people read.
    #[test]
    fn reasons_read_plainly() {
        let at = jiff::Timestamp::from_second(1_800_000_000).expect("time");
        let cases = [
            (Reason::NextInLine, "next in line"),
            (
                Reason::AccountBusy {
                    publishing: "a.jpg".into(),
                },
                "account busy (publishing a.jpg)",
            ),
            (
                Reason::AccountPaused {
                    until: at,
                    why: "paused: daily post limit reached".into(),
                },
                "paused until 08:00 UTC (daily post limit reached)",
            ),
            (
                Reason::Scheduled { at },
                "scheduled for 2027-01-15 08:00 UTC",
            ),
            (
                Reason::CannotTake {
                    problem: "disk full".into(),
                },
                "cannot take it: disk full; tokdrop tries again later",
            ),
        ];
        for (reason, want) in cases {
            assert_eq!(reason.to_string(), want);
            let json = serde_json::to_string(&reason).expect("json");
            assert_eq!(serde_json::from_str::<Reason>(&json).expect("back"), reason);
        }
    }
}
