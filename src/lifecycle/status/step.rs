//! Where the item in flight is, typed: what `status.json` stores for it, what `tokdrop status`,
//! systemd's `STATUS=` and `/healthz` show. Older versions wrote free text; that still reads.

use serde::{Deserialize, Serialize};

/// The step the worker is at with its item.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "step", rename_all = "snake_case")]
pub enum Step {
    /// Taken by its worker; nothing asked of TikTok yet.
    Claimed,
    /// Taken again after a restart: TikTok already has its publish request.
    Resuming,
    /// Asking TikTok what the creator may post (`creator_info`).
    CreatorInfo,
    /// Waiting for room in TikTok's rate limit.
    RateLimit,
    /// Sending the publish request.
    Init,
    /// TikTok did not take the publish request (nothing was created); sent again in `secs`.
    BackingOff { secs: u64 },
    /// Sending the file to TikTok (FILE_UPLOAD), `resumed` where a restart cut it short.
    Uploading { resumed: bool },
    /// TikTok has the request; its status was read `polls` times.
    Processing { polls: u32 },
    /// Asking TikTok to cancel a pull it never started.
    Cancelling,
    /// Done with TikTok; the files are moved to done/ or failed/.
    Finishing,
    /// Free text, as older versions wrote it.
    Note { text: String },
}

impl std::fmt::Display for Step {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Step::Claimed => f.write_str("claimed"),
            Step::Resuming => f.write_str("resuming after a restart"),
            Step::CreatorInfo => f.write_str("creator_info"),
            Step::RateLimit => f.write_str("waiting for TikTok's rate limit"),
            Step::Init => f.write_str("init"),
            Step::BackingOff { secs } => {
                write!(f, "waiting to send the publish request again ({secs} s)")
            }
            Step::Uploading { resumed: false } => f.write_str("uploading"),
            Step::Uploading { resumed: true } => f.write_str("uploading (resumed)"),
            Step::Processing { polls } => write!(f, "processing (polled {polls}×)"),
            Step::Cancelling => f.write_str("cancelling a pull TikTok never started"),
            Step::Finishing => f.write_str("finishing"),
            Step::Note { text } => f.write_str(text),
        }
    }
}

/// Reads a step written by this version (tagged) or an older one (free text).
pub(super) fn step_or_text<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Step, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Either {
        Typed(Step),
        Text(String),
    }
    Ok(match Either::deserialize(d)? {
        Either::Typed(s) => s,
        Either::Text(text) => Step::Note { text },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_round_trip_and_old_text_still_reads() {
        #[derive(Serialize, Deserialize)]
        struct Holder {
            #[serde(deserialize_with = "step_or_text")]
            step: Step,
        }
        for step in [
            Step::Claimed,
            Step::BackingOff { secs: 20 },
            Step::Uploading { resumed: true },
            Step::Processing { polls: 4 },
        ] {
            let json = serde_json::to_string(&Holder { step: step.clone() }).expect("json");
            let back: Holder = serde_json::from_str(&json).expect("read back");
            assert_eq!(back.step, step, "{json}");
        }
        let old: Holder =
            serde_json::from_str(r#"{"step":"processing (polled 2×)"}"#).expect("old text");
        assert_eq!(old.step.to_string(), "processing (polled 2×)");
        assert_eq!(
            Step::Processing { polls: 2 }.to_string(),
            "processing (polled 2×)"
        );
    }
}
