//! Request bodies of the Content Posting API, field for field as tiktok-api.md §4 gives them.
//! Only what is sent is modelled here; nothing decides *what* to send (that is `post`).

use serde::Serialize;

/// `POST` paths of the three init endpoints (tiktok-api.md §4.2–4.4).
pub const VIDEO_INIT: &str = "/v2/post/publish/video/init/";
pub const INBOX_VIDEO_INIT: &str = "/v2/post/publish/inbox/video/init/";
pub const CONTENT_INIT: &str = "/v2/post/publish/content/init/";

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
}
