//! Request and response bodies of the Content Posting API and OAuth, field for field as
//! tiktok-api.md §3–4 gives them, plus the endpoint paths. Nothing here decides *what* to send
//! (that is `post`) or how to react to an answer (that is [`super::error`]).
//!
//! Responses are parsed leniently (missing optional fields default, unknown fields are
//! ignored) because TikTok's docs and its real answers disagree in places (tiktok-api.md §12.24).

use serde::{Deserialize, Deserializer, Serialize};

use super::secret::Secret;

/// `POST` paths of the three init endpoints (tiktok-api.md §4.2–4.4).
pub const VIDEO_INIT: &str = "/v2/post/publish/video/init/";
pub const INBOX_VIDEO_INIT: &str = "/v2/post/publish/inbox/video/init/";
pub const CONTENT_INIT: &str = "/v2/post/publish/content/init/";
/// Other API paths (tiktok-api.md §3.4–3.8, §4.1, §4.7, §4.8).
pub const CREATOR_INFO: &str = "/v2/post/publish/creator_info/query/";
pub const STATUS_FETCH: &str = "/v2/post/publish/status/fetch/";
pub const CANCEL: &str = "/v2/post/publish/cancel/";
pub const USER_INFO: &str = "/v2/user/info/";
pub const OAUTH_TOKEN: &str = "/v2/oauth/token/";
pub const OAUTH_REVOKE: &str = "/v2/oauth/revoke/";
/// On the authorize host, not the API host; the trailing slash is part of the documented URL.
pub const AUTHORIZE: &str = "/v2/auth/authorize/";
/// Fields tokdrop asks `/v2/user/info/` for (`username` needs `user.info.profile`).
pub const USER_INFO_FIELDS: &str = "open_id,union_id,avatar_url,display_name,username";

/// Body of `video/init` (direct post).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VideoInit {
    pub post_info: VideoPostInfo,
    pub source_info: VideoSource,
}

/// `post_info` of a direct video post. `video_cover_timestamp_ms` belongs here, not in
/// `source_info` (where TikTok silently ignores it).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VideoPostInfo {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    pub privacy_level: String,
    pub disable_duet: bool,
    pub disable_comment: bool,
    pub disable_stitch: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub video_cover_timestamp_ms: Option<u32>,
    pub brand_content_toggle: bool,
    pub brand_organic_toggle: bool,
    pub is_aigc: bool,
}

/// `source_info` of the video endpoints.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "source")]
pub enum VideoSource {
    #[serde(rename = "PULL_FROM_URL")]
    PullFromUrl { video_url: String },
    #[serde(rename = "FILE_UPLOAD")]
    FileUpload {
        video_size: u64,
        chunk_size: u64,
        total_chunk_count: u64,
    },
}

/// Body of `inbox/video/init`: TikTok documents only `source_info` here.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct InboxVideoInit {
    pub source_info: VideoSource,
}

/// Body of `content/init` (photo posts, direct or to the inbox).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ContentInit {
    pub post_info: PhotoPostInfo,
    pub source_info: PhotoSource,
    pub post_mode: PostMode,
    pub media_type: MediaType,
    /// Top level on the photo endpoint per the 2026-09 docs (placement uncertain); sent only
    /// when true so a wrong guess cannot break ordinary posts.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub is_aigc: Option<bool>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum PostMode {
    DirectPost,
    MediaUpload,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum MediaType {
    Photo,
}

/// `post_info` of a photo post; the DIRECT_POST-only fields are `None` for MEDIA_UPLOAD.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PhotoPostInfo {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub privacy_level: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub disable_comment: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auto_add_music: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub brand_content_toggle: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub brand_organic_toggle: Option<bool>,
}

/// `source_info` of a photo post: always PULL_FROM_URL.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PhotoSource {
    pub source: PullFromUrl,
    pub photo_images: Vec<String>,
    pub photo_cover_index: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum PullFromUrl {
    #[serde(rename = "PULL_FROM_URL")]
    PullFromUrl,
}

// ---------------------------------------------------------------------------------------------
// Responses
// ---------------------------------------------------------------------------------------------

/// The `{data, error}` envelope of Content Posting and user-info answers, with `data` kept raw
/// so an error answer with `data: {}` (or none) still parses (tiktok-api.md §2.1).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Envelope {
    #[serde(default)]
    pub data: Option<serde_json::Value>,
    #[serde(default)]
    pub error: Option<ErrorBody>,
}

/// `error` of the envelope. The reference tables say `logid`, the examples `log_id`: both are
/// read, `log_id` wins.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
pub struct ErrorBody {
    #[serde(default)]
    pub code: String,
    #[serde(default)]
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_id: Option<String>,
    #[serde(default, skip_serializing)]
    pub logid: Option<String>,
}

impl ErrorBody {
    pub fn is_ok(&self) -> bool {
        self.code == "ok"
    }

    pub fn log_id(&self) -> Option<&str> {
        fn non_empty(s: &Option<String>) -> Option<&str> {
            s.as_deref().filter(|s| !s.is_empty())
        }
        non_empty(&self.log_id).or(non_empty(&self.logid))
    }
}

/// The flat OAuth error (RFC 6749 style), which TikTok also sends with HTTP 200
/// (tiktok-api.md §2.2).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct OAuthErrorBody {
    pub error: String,
    #[serde(default)]
    pub error_description: String,
    #[serde(default)]
    pub log_id: Option<String>,
}

/// Success body of `/v2/oauth/token/`, for both grants (tiktok-api.md §3.4–3.5). Lifetimes
/// are *remaining* seconds.
#[derive(Debug, Clone, Deserialize)]
pub struct TokenResponse {
    pub open_id: String,
    #[serde(default)]
    pub scope: String,
    pub access_token: Secret,
    pub expires_in: i64,
    pub refresh_token: Secret,
    pub refresh_expires_in: i64,
    #[serde(default)]
    pub token_type: Option<String>,
}

impl TokenResponse {
    /// Granted scopes, split on commas (TikTok's separator) and trimmed.
    pub fn scopes(&self) -> Vec<String> {
        split_scopes(&self.scope)
    }
}

/// Splits a comma-separated scope list as TikTok sends it (`scope`, `scopes`).
pub fn split_scopes(list: &str) -> Vec<String> {
    list.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

/// `data` of `creator_info/query` (tiktok-api.md §4.1).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct CreatorInfo {
    #[serde(default)]
    pub creator_avatar_url: String,
    #[serde(default)]
    pub creator_username: String,
    #[serde(default)]
    pub creator_nickname: String,
    #[serde(default)]
    pub privacy_level_options: Vec<String>,
    #[serde(default)]
    pub comment_disabled: bool,
    #[serde(default)]
    pub duet_disabled: bool,
    #[serde(default)]
    pub stitch_disabled: bool,
    #[serde(default)]
    pub max_video_post_duration_sec: u32,
}

/// `data` of `/v2/user/info/`: the user sits one level down.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct UserInfoData {
    pub user: UserInfo,
}

/// Identity fields of `/v2/user/info/` (tiktok-api.md §3.8); absent ones were not granted.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
pub struct UserInfo {
    #[serde(default)]
    pub open_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub union_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub avatar_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
}

/// `data` of the three init endpoints. `upload_url` only for FILE_UPLOAD.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct InitResponse {
    pub publish_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upload_url: Option<String>,
}

/// Body of `status/fetch` and `cancel`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct PublishIdBody {
    pub publish_id: String,
}

/// `data` of `status/fetch` as sent (tiktok-api.md §4.7), before interpretation.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
pub struct StatusData {
    #[serde(default)]
    pub status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fail_reason: Option<String>,
    /// (sic) TikTok's spelling. 19-digit int64 numbers, read exactly; strings are tolerated.
    #[serde(default, deserialize_with = "post_ids")]
    pub publicaly_available_post_id: Vec<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uploaded_bytes: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub downloaded_bytes: Option<u64>,
}

/// One post id as a JSON number (documented) or a numeric string (tolerated).
#[derive(Deserialize)]
#[serde(untagged)]
enum PostIdRepr {
    Number(u64),
    Text(String),
}

fn post_ids<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<u64>, D::Error> {
    let raw = Option::<Vec<PostIdRepr>>::deserialize(deserializer)?.unwrap_or_default();
    raw.into_iter()
        .map(|id| match id {
            PostIdRepr::Number(n) => Ok(n),
            PostIdRepr::Text(s) => s
                .trim()
                .parse::<u64>()
                .map_err(|_| serde::de::Error::custom(format!("post id {s:?} is not a number"))),
        })
        .collect()
}

/// Where a publish stands, interpreted from [`StatusData`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PublishState {
    /// FILE_UPLOAD: chunks arriving or being processed.
    ProcessingUpload,
    /// PULL_FROM_URL: TikTok is fetching.
    ProcessingDownload,
    /// Inbox / MEDIA_UPLOAD: the draft reached the creator. Terminal success for tokdrop.
    SentToUserInbox,
    /// Posted. `post_ids` may still be empty (private post, or moderation running).
    PublishComplete,
    /// Terminal failure; see [`PublishStatus::fail_reason`].
    Failed,
    /// A status string TikTok does not document; treated as still processing.
    Other(String),
}

impl PublishState {
    pub fn parse(status: &str) -> Self {
        match status {
            "PROCESSING_UPLOAD" => Self::ProcessingUpload,
            "PROCESSING_DOWNLOAD" => Self::ProcessingDownload,
            "SEND_TO_USER_INBOX" => Self::SentToUserInbox,
            "PUBLISH_COMPLETE" => Self::PublishComplete,
            "FAILED" => Self::Failed,
            other => Self::Other(other.to_string()),
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            Self::ProcessingUpload => "PROCESSING_UPLOAD",
            Self::ProcessingDownload => "PROCESSING_DOWNLOAD",
            Self::SentToUserInbox => "SEND_TO_USER_INBOX",
            Self::PublishComplete => "PUBLISH_COMPLETE",
            Self::Failed => "FAILED",
            Self::Other(s) => s,
        }
    }

    /// Terminal for tokdrop: inbox delivery, publish complete, failed. Unknown strings are not.
    pub fn is_terminal(&self) -> bool {
        matches!(
            self,
            Self::SentToUserInbox | Self::PublishComplete | Self::Failed
        )
    }
}

/// A status answer, interpreted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublishStatus {
    pub state: PublishState,
    pub fail_reason: Option<String>,
    pub post_ids: Vec<u64>,
    pub uploaded_bytes: Option<u64>,
    pub downloaded_bytes: Option<u64>,
}

impl From<StatusData> for PublishStatus {
    fn from(data: StatusData) -> Self {
        Self {
            state: PublishState::parse(&data.status),
            fail_reason: data.fail_reason.filter(|r| !r.is_empty()),
            post_ids: data.publicaly_available_post_id,
            uploaded_bytes: data.uploaded_bytes,
            downloaded_bytes: data.downloaded_bytes,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// The video body serializes to the documented shape, cover timestamp inside post_info.
    #[test]
    fn video_init_matches_the_documented_shape() {
        let body = VideoInit {
            post_info: VideoPostInfo {
                title: Some("t".into()),
                privacy_level: "SELF_ONLY".into(),
                disable_duet: true,
                disable_comment: true,
                disable_stitch: true,
                video_cover_timestamp_ms: Some(1000),
                brand_content_toggle: false,
                brand_organic_toggle: false,
                is_aigc: false,
            },
            source_info: VideoSource::PullFromUrl {
                video_url: "https://m.example.com/a.mp4".into(),
            },
        };
        assert_eq!(
            serde_json::to_value(&body).expect("serializes"),
            json!({
                "post_info": {"title": "t", "privacy_level": "SELF_ONLY", "disable_duet": true,
                    "disable_comment": true, "disable_stitch": true, "video_cover_timestamp_ms": 1000,
                    "brand_content_toggle": false, "brand_organic_toggle": false, "is_aigc": false},
                "source_info": {"source": "PULL_FROM_URL", "video_url": "https://m.example.com/a.mp4"}
            })
        );
    }

    /// The photo body carries post_mode, media_type and the PULL_FROM_URL source.
    #[test]
    fn content_init_matches_the_documented_shape() {
        let body = ContentInit {
            post_info: PhotoPostInfo {
                title: Some("cat".into()),
                description: None,
                privacy_level: None,
                disable_comment: None,
                auto_add_music: None,
                brand_content_toggle: None,
                brand_organic_toggle: None,
            },
            source_info: PhotoSource {
                source: PullFromUrl::PullFromUrl,
                photo_images: vec!["https://m.example.com/1.jpg".into()],
                photo_cover_index: 0,
            },
            post_mode: PostMode::MediaUpload,
            media_type: MediaType::Photo,
            is_aigc: None,
        };
        assert_eq!(
            serde_json::to_value(&body).expect("serializes"),
            json!({
                "post_info": {"title": "cat"},
                "source_info": {"source": "PULL_FROM_URL", "photo_images": ["https://m.example.com/1.jpg"], "photo_cover_index": 0},
                "post_mode": "MEDIA_UPLOAD", "media_type": "PHOTO"
            })
        );
    }

    /// Error envelopes parse with `data: {}`, without data, and with `logid` instead of `log_id`.
    #[test]
    fn error_envelopes_parse_leniently() {
        let cases = [
            (
                r#"{"data":{},"error":{"code":"invalid_param","message":"m","log_id":"L1"}}"#,
                "invalid_param",
                Some("L1"),
            ),
            (
                r#"{"error":{"code":"rate_limit_exceeded","message":"m","logid":"L2"}}"#,
                "rate_limit_exceeded",
                Some("L2"),
            ),
            (
                r#"{"data":null,"error":{"code":"internal_error"}}"#,
                "internal_error",
                None,
            ),
            (
                r#"{"error":{"code":"x","log_id":"","logid":"L3"}}"#,
                "x",
                Some("L3"),
            ),
        ];
        for (body, code, log_id) in cases {
            let env: Envelope = serde_json::from_str(body).expect(body);
            let error = env.error.expect("error present");
            assert_eq!(error.code, code, "{body}");
            assert_eq!(error.log_id(), log_id, "{body}");
            assert!(!error.is_ok());
        }
    }

    /// 19-digit post ids survive exactly; numeric strings are accepted; garbage is an error.
    #[test]
    fn post_ids_are_exact_u64() {
        let data: StatusData = serde_json::from_str(
            r#"{"status":"PUBLISH_COMPLETE","publicaly_available_post_id":[7678907398077074696, "7412345678901234567"]}"#,
        )
        .expect("parses");
        assert_eq!(
            data.publicaly_available_post_id,
            vec![7678907398077074696, 7412345678901234567]
        );
        let empty: StatusData =
            serde_json::from_str(r#"{"status":"FAILED","publicaly_available_post_id":null}"#)
                .expect("parses");
        assert!(empty.publicaly_available_post_id.is_empty());
        assert!(
            serde_json::from_str::<StatusData>(
                r#"{"status":"X","publicaly_available_post_id":["abc"]}"#
            )
            .is_err()
        );
        assert!(
            serde_json::from_str::<StatusData>(
                r#"{"status":"X","publicaly_available_post_id":[1.5]}"#
            )
            .is_err()
        );
    }

    /// Documented statuses map to their states; unknown ones count as still processing.
    #[test]
    fn statuses_are_interpreted() {
        let cases = [
            ("PROCESSING_UPLOAD", PublishState::ProcessingUpload, false),
            (
                "PROCESSING_DOWNLOAD",
                PublishState::ProcessingDownload,
                false,
            ),
            ("SEND_TO_USER_INBOX", PublishState::SentToUserInbox, true),
            ("PUBLISH_COMPLETE", PublishState::PublishComplete, true),
            ("FAILED", PublishState::Failed, true),
            (
                "PUBLISH_SUCCESS",
                PublishState::Other("PUBLISH_SUCCESS".into()),
                false,
            ),
            ("", PublishState::Other(String::new()), false),
        ];
        for (text, state, terminal) in cases {
            let parsed = PublishState::parse(text);
            assert_eq!(parsed, state, "{text}");
            assert_eq!(parsed.is_terminal(), terminal, "{text}");
            assert_eq!(parsed.as_str(), text);
        }
        let status = PublishStatus::from(StatusData {
            status: "FAILED".into(),
            fail_reason: Some("picture_size_check_failed".into()),
            uploaded_bytes: Some(10000),
            ..StatusData::default()
        });
        assert_eq!(
            status.fail_reason.as_deref(),
            Some("picture_size_check_failed")
        );
    }

    /// Token, creator_info, user/info and init answers parse from the documented examples.
    #[test]
    fn documented_success_bodies_parse() {
        let token: TokenResponse = serde_json::from_str(
            r#"{"access_token":"act.example","expires_in":86400,"open_id":"afd97af1","refresh_expires_in":31536000,
                "refresh_token":"rft.example","scope":"user.info.basic, video.list","token_type":"Bearer"}"#,
        )
        .expect("token parses");
        assert_eq!(token.access_token.expose(), "act.example");
        assert_eq!(token.scopes(), vec!["user.info.basic", "video.list"]);
        assert!(!format!("{token:?}").contains("act.example"));

        let creator: CreatorInfo = serde_json::from_value(json!({
            "creator_avatar_url": "https://a", "creator_username": "tiktok", "creator_nickname": "TikTok Official",
            "privacy_level_options": ["PUBLIC_TO_EVERYONE", "MUTUAL_FOLLOW_FRIENDS", "SELF_ONLY"],
            "comment_disabled": false, "duet_disabled": false, "stitch_disabled": true,
            "max_video_post_duration_sec": 300
        }))
        .expect("creator parses");
        assert_eq!(creator.max_video_post_duration_sec, 300);
        assert!(creator.stitch_disabled);

        let user: UserInfoData =
            serde_json::from_value(json!({"user": {"open_id": "o", "display_name": "Tik Toker"}}))
                .expect("user parses");
        assert_eq!(user.user.display_name.as_deref(), Some("Tik Toker"));
        assert_eq!(user.user.username, None);

        let init: InitResponse =
            serde_json::from_value(json!({"publish_id": "v_pub_url~v2.1"})).expect("init parses");
        assert_eq!(init.upload_url, None);
    }

    /// The OAuth error is recognised by its flat `error` string.
    #[test]
    fn oauth_error_parses() {
        let e: OAuthErrorBody = serde_json::from_str(
            r#"{"error":"invalid_grant","error_description":"Authorization code is expired.","log_id":"L"}"#,
        )
        .expect("parses");
        assert_eq!(e.error, "invalid_grant");
        assert_eq!(split_scopes(" a,,b ,"), vec!["a", "b"]);
    }
}
