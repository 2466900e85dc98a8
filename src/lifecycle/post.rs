//! Turns a checked [`PostSpec`] into the init request TikTok receives: which endpoint, and the
//! exact body. `tokdrop check` prints it with placeholder URLs; the publisher sends it.

use serde::Serialize;

use crate::content::sidecar::Mode;
use crate::content::sidecar::rules::{Kind, PostSpec};
use crate::tiktok::wire::{
    CONTENT_INIT, ContentInit, INBOX_VIDEO_INIT, InboxVideoInit, MediaType, PhotoPostInfo,
    PhotoSource, PostMode, PullFromUrl, VIDEO_INIT, VideoInit, VideoPostInfo, VideoSource,
};

/// An init call: the endpoint path and its JSON body.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct InitRequest {
    pub endpoint: &'static str,
    pub body: serde_json::Value,
}

/// How the media reaches TikTok for this request.
pub enum Source<'a> {
    /// One URL per file in `spec.files`, same order.
    Pull(&'a [String]),
    /// FILE_UPLOAD with TikTok's chunk plan (videos only).
    Upload {
        video_size: u64,
        chunk_size: u64,
        total_chunk_count: u64,
    },
}

/// Builds the init request for `spec`. Creator-dependent adjustments (forcing interactions off)
/// are applied to `spec` by the caller beforehand.
pub fn init_request(spec: &PostSpec, source: Source) -> InitRequest {
    let video_source = || match &source {
        Source::Pull(urls) => VideoSource::PullFromUrl {
            video_url: urls.first().cloned().unwrap_or_default(),
        },
        Source::Upload {
            video_size,
            chunk_size,
            total_chunk_count,
        } => VideoSource::FileUpload {
            video_size: *video_size,
            chunk_size: *chunk_size,
            total_chunk_count: *total_chunk_count,
        },
    };
    let (endpoint, body) = match (spec.kind, spec.mode) {
        (Kind::Video, Mode::Direct) => (
            VIDEO_INIT,
            to_value(&VideoInit {
                post_info: VideoPostInfo {
                    title: spec.title.clone(),
                    privacy_level: spec
                        .privacy_level
                        .map(|p| p.as_str().to_string())
                        .unwrap_or_default(),
                    disable_duet: spec.disable_duet,
                    disable_comment: spec.disable_comment,
                    disable_stitch: spec.disable_stitch,
                    video_cover_timestamp_ms: spec.cover_timestamp_ms,
                    brand_content_toggle: spec.brand_content_toggle,
                    brand_organic_toggle: spec.brand_organic_toggle,
                    is_aigc: spec.is_aigc,
                },
                source_info: video_source(),
            }),
        ),
        (Kind::Video, Mode::Inbox) => (
            INBOX_VIDEO_INIT,
            to_value(&InboxVideoInit {
                source_info: video_source(),
            }),
        ),
        (Kind::Photo | Kind::PhotoSet, mode) => {
            let direct = mode == Mode::Direct;
            let urls = match &source {
                Source::Pull(urls) => urls.to_vec(),
                Source::Upload { .. } => Vec::new(),
            };
            (
                CONTENT_INIT,
                to_value(&ContentInit {
                    post_info: PhotoPostInfo {
                        title: spec.title.clone(),
                        description: spec.description.clone(),
                        privacy_level: direct
                            .then(|| spec.privacy_level.map(|p| p.as_str().to_string()))
                            .flatten(),
                        disable_comment: direct.then_some(spec.disable_comment),
                        auto_add_music: direct.then_some(spec.auto_add_music),
                        brand_content_toggle: direct.then_some(spec.brand_content_toggle),
                        brand_organic_toggle: direct.then_some(spec.brand_organic_toggle),
                    },
                    source_info: PhotoSource {
                        source: PullFromUrl::PullFromUrl,
                        photo_images: urls,
                        photo_cover_index: spec.cover_index,
                    },
                    post_mode: if direct {
                        PostMode::DirectPost
                    } else {
                        PostMode::MediaUpload
                    },
                    media_type: MediaType::Photo,
                    is_aigc: (direct && spec.is_aigc).then_some(true),
                }),
            )
        }
    };
    InitRequest { endpoint, body }
}

fn to_value<T: Serialize>(v: &T) -> serde_json::Value {
    serde_json::to_value(v).expect("wire types always serialize to JSON")
}

/// The URL under which a file will be served: `public_url/media/<token>/<name>`, with the token
/// shown as a placeholder when the request is only being previewed.
pub fn media_url(public_url: &url::Url, token: &str, name: &str) -> String {
    // public_url always ends with '/' (config guarantees it); the name is one encoded segment.
    format!(
        "{}media/{token}/{}",
        public_url.as_str(),
        percent_encode_segment(name)
    )
}

/// Percent-encodes a file name for one URL path segment (RFC 3986 unreserved kept).
pub fn percent_encode_segment(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for b in name.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Names with spaces, quotes and unicode become one safe path segment.
    #[test]
    fn media_urls_encode_hostile_names() {
        let base = url::Url::parse("https://m.example.com/tok/").expect("url");
        assert_eq!(
            media_url(&base, "TOKEN", "my clip \"1\" é.mp4"),
            "https://m.example.com/tok/media/TOKEN/my%20clip%20%221%22%20%C3%A9.mp4"
        );
        assert_eq!(
            media_url(&base, "T", "a/../b.mp4"),
            "https://m.example.com/tok/media/T/a%2F..%2Fb.mp4"
        );
    }
}
