//! TikTok's `fail_reason` values of FAILED statuses (tiktok-api.md §7.2): what kind of failure
//! each is and what the user can do. A FAILED status always ends the item; the kind tells the
//! publisher whether a FILE_UPLOAD fallback makes sense and the result file what to say.

/// What a `fail_reason` means for the item.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailKind {
    /// The media itself does not fit TikTok's rules: fix the file.
    Media,
    /// TikTok could not fetch the URL(s): a FILE_UPLOAD fallback (videos) may work.
    Pull,
    /// TikTok's own problem: putting the file back may work.
    TikTok,
    /// The post was cancelled through the cancel API.
    Cancelled,
    /// The user removed tokdrop's access while the post was processing.
    AuthRemoved,
    /// The account's daily post cap or a ban.
    Account,
    /// The caption or request was judged spam: change the text.
    Spam,
    /// Not documented.
    Unknown,
}

/// Classifies a `fail_reason`.
pub fn fail_kind(reason: &str) -> FailKind {
    match reason {
        "file_format_check_failed"
        | "duration_check_failed"
        | "frame_rate_check_failed"
        | "picture_size_check_failed" => FailKind::Media,
        "video_pull_failed" | "photo_pull_failed" => FailKind::Pull,
        "internal" => FailKind::TikTok,
        "publish_cancelled" => FailKind::Cancelled,
        "auth_removed" => FailKind::AuthRemoved,
        "spam_risk_too_many_posts" | "spam_risk_user_banned_from_posting" => FailKind::Account,
        "spam_risk_text" | "spam_risk" => FailKind::Spam,
        _ => FailKind::Unknown,
    }
}

/// What the user can do about a `fail_reason`, for result files.
pub fn fail_reason_hint(reason: &str) -> String {
    let hint = match reason {
        "file_format_check_failed" => {
            "TikTok could not read the media format; re-encode it (H.264 + AAC in MP4 is safest) and put it back"
        }
        "duration_check_failed" => {
            "the video is too short or longer than this account may post; trim it and put it back"
        }
        "frame_rate_check_failed" => "the frame rate must be 23-60 fps; re-encode and put it back",
        "picture_size_check_failed" => {
            "the resolution or size is outside TikTok's limits (video 360-4096 px, photos at most 1080p and 20 MB); resize and put it back"
        }
        "internal" => "TikTok had an internal problem; put the file back to try again",
        "video_pull_failed" | "photo_pull_failed" => {
            "TikTok could not download the media from server.public_url; check that it is reachable from the internet over HTTPS"
        }
        "publish_cancelled" => "the post was cancelled",
        "auth_removed" => "the account removed tokdrop's access; run `tokdrop auth login` again",
        "spam_risk_too_many_posts" => {
            "TikTok's daily post limit for this account was reached; put the file back tomorrow"
        }
        "spam_risk_user_banned_from_posting" => {
            "TikTok does not let this account post right now; check the account in the TikTok app"
        }
        "spam_risk_text" => "TikTok judged the caption as spam; change the title and put it back",
        "spam_risk" => "TikTok judged the post as risky and refused it",
        _ => "",
    };
    if hint.is_empty() {
        format!("TikTok failed the post with `{reason}`")
    } else {
        hint.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every documented fail_reason has a kind and a specific hint; unknown ones name the code.
    #[test]
    fn every_documented_reason_is_explained() {
        let cases = [
            ("file_format_check_failed", FailKind::Media),
            ("duration_check_failed", FailKind::Media),
            ("frame_rate_check_failed", FailKind::Media),
            ("picture_size_check_failed", FailKind::Media),
            ("internal", FailKind::TikTok),
            ("video_pull_failed", FailKind::Pull),
            ("photo_pull_failed", FailKind::Pull),
            ("publish_cancelled", FailKind::Cancelled),
            ("auth_removed", FailKind::AuthRemoved),
            ("spam_risk_too_many_posts", FailKind::Account),
            ("spam_risk_user_banned_from_posting", FailKind::Account),
            ("spam_risk_text", FailKind::Spam),
            ("spam_risk", FailKind::Spam),
        ];
        for (reason, kind) in cases {
            assert_eq!(fail_kind(reason), kind, "{reason}");
            assert!(
                !fail_reason_hint(reason).contains('`') || reason == "auth_removed",
                "{reason}"
            );
        }
        assert_eq!(fail_kind("new_reason"), FailKind::Unknown);
        assert_eq!(
            fail_reason_hint("new_reason"),
            "TikTok failed the post with `new_reason`"
        );
    }
}
