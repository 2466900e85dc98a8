//! The paths TikTok serves (tiktok-api.md §2–§4), as the emulator routes them.

/// Login Kit's authorize page (on www.tiktok.com at TikTok; here on the same host).
pub const AUTHORIZE: &str = "/v2/auth/authorize/";
pub const OAUTH_TOKEN: &str = "/v2/oauth/token/";
pub const OAUTH_REVOKE: &str = "/v2/oauth/revoke/";
pub const USER_INFO: &str = "/v2/user/info/";
pub const CREATOR_INFO: &str = "/v2/post/publish/creator_info/query/";
pub const VIDEO_INIT: &str = "/v2/post/publish/video/init/";
pub const INBOX_VIDEO_INIT: &str = "/v2/post/publish/inbox/video/init/";
pub const CONTENT_INIT: &str = "/v2/post/publish/content/init/";
pub const STATUS_FETCH: &str = "/v2/post/publish/status/fetch/";
pub const CANCEL: &str = "/v2/post/publish/cancel/";
/// Where the emulator's `upload_url`s point (TikTok: an opaque URL on an upload host).
pub const UPLOAD: &str = "/upload/";
/// Not TikTok's: runtime knobs and one-shot actions.
pub const CONTROL: &str = "/_sandbox/control";
/// Not TikTok's: the record of everything the emulator did.
pub const RECORD: &str = "/_sandbox/calls";

/// TikTok's comma-separated lists (`scope`, `scopes`, `fields`), blanks dropped.
pub fn split_list(list: &str) -> Vec<String> {
    list.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(String::from)
        .collect()
}
