//! The emulator's knobs: [`SandboxConfig`] (read from YAML/JSON with defaults that behave like
//! TikTok per tiktok-api.md), its accounts, injected faults, and [`Control`], the body of
//! `POST /_sandbox/control` that changes them at runtime as an RFC 7386 JSON merge patch.
//! Applying the knobs is the handlers' business; this file only says what they are.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// Scopes an app may hold (tiktok-api.md §3.1); the sandbox app is approved for all of them
/// unless `approved_scopes` says otherwise.
pub const KNOWN_SCOPES: &[&str] = &[
    "user.info.basic",
    "user.info.profile",
    "user.info.stats",
    "video.publish",
    "video.upload",
    "video.list",
];

/// Added with Login Kit and not toggleable by the user (tiktok-api.md §3.1).
pub const BASIC_SCOPE: &str = "user.info.basic";

/// Login Kit's platform, chosen per app in the developer portal (tiktok-api.md §3.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Platform {
    /// Redirects `http` or `https` on `localhost`/`127.0.0.1` with a port (or `*`).
    Desktop,
    /// Redirects `https` only, matched exactly.
    Web,
}

/// How the `{data, error}` envelope is written: TikTok's variants seen in its docs and in the
/// wild (tiktok-api.md §2.1, §12.24), so clients can be tested against each.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Envelope {
    /// `log_id` (the JSON examples) or `logid` (the reference tables).
    pub log_id_field: String,
    /// `data` of an error answer: `empty` (`{}`), `absent`, or `null`.
    pub error_data: ErrorData,
    /// Optional fields without a value are sent as `null` instead of their empty value
    /// (status/fetch: `fail_reason: ""`, `publicaly_available_post_id: []`).
    pub explicit_nulls: bool,
    /// Answers carry fields no client knows (`sandbox_extra`), at the top and in `data`.
    pub extra_fields: bool,
}

impl Default for Envelope {
    fn default() -> Self {
        Self {
            log_id_field: "log_id".into(),
            error_data: ErrorData::Empty,
            explicit_nulls: false,
            extra_fields: false,
        }
    }
}

/// `data` of an error envelope.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorData {
    Empty,
    Absent,
    Null,
}

/// Everything the emulator can be told. `Default` is TikTok as documented, with the sandbox
/// app (`sbawtokdropsandbox` / `sandbox-secret`) and one auto-approved account.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SandboxConfig {
    pub client_key: String,
    /// The app secret the token endpoint expects. Never shown by `/_sandbox/calls`.
    pub client_secret: String,
    /// The app's Login Kit platform; decides which redirect URIs can be registered.
    pub platform: Platform,
    /// Registered redirect URIs: matched exactly, except a Desktop URI's `*` port, which
    /// matches any port. `Sandbox::start` refuses URIs the platform cannot register.
    pub redirect_uris: Vec<String>,
    /// Scopes the app is approved for; asking for another one fails the authorization
    /// (`invalid_scope`).
    pub approved_scopes: Vec<String>,
    /// The app passed TikTok's Content Posting audit. Unaudited (the default, as for every new
    /// app): direct posts only `SELF_ONLY`, only to private accounts, at most
    /// `unaudited_user_cap` creators per 24 h.
    pub audited: bool,
    /// Creators an unaudited app may post for in 24 h (`reached_active_user_cap` beyond).
    pub unaudited_user_cap: u32,
    /// Authorize requests must carry a PKCE challenge.
    pub require_pkce: bool,
    /// Accept an RFC 7636 base64url challenge as well as TikTok's hex one.
    pub accept_base64url_challenge: bool,
    /// Answer `/v2/auth/authorize/` with `error=access_denied` (the user clicked "cancel").
    pub deny_authorization: bool,
    /// The open_id that approves logins; `None`: the first account.
    pub authorize_as: Option<String>,
    /// Lifetime of authorization codes.
    pub code_secs: u64,
    /// `expires_in` of access tokens (7200 in the Nov-2026 docs, 86400 before).
    pub access_token_secs: u64,
    /// `refresh_expires_in` (15552000 = 180 d now, 31536000 before).
    pub refresh_token_secs: u64,
    /// Issue a new refresh token on every refresh and reject the old one afterwards.
    pub rotate_refresh_tokens: bool,
    /// HTTP status of flat OAuth errors (TikTok sends 200; set 400 for the RFC behaviour).
    pub oauth_error_status: u16,
    /// `invalid_param` (Content Posting pages) or `invalid_params` (global table, real answers).
    pub invalid_param_code: String,
    /// HTTP status of spam/cap errors from creator_info (200 "intentional" per the docs).
    pub creator_info_spam_status: u16,
    /// Overrides of the documented HTTP status per error code (e.g.
    /// `url_ownership_unverified: 200`, as reported in the wild).
    pub status_overrides: BTreeMap<String, u16>,
    pub rate_limits: RateLimits,
    /// Direct posts per account per 24 h (`spam_risk_too_many_posts` beyond).
    pub daily_post_cap: u32,
    /// Inbox drafts pending per account per 24 h (`spam_risk_too_many_pending_share` beyond).
    pub pending_share_cap: u32,
    /// URL prefixes verified for PULL_FROM_URL (`https://host/path/`, exact prefix match).
    pub verified_url_prefixes: Vec<String>,
    /// Accept media URLs whose host is an IP address (TikTok wants a domain; the sandbox
    /// usually runs on loopback).
    pub allow_ip_hosts: bool,
    /// PEM of extra CAs the puller trusts (tokdrop's self-signed sandbox certificate).
    pub extra_ca_pem: Option<String>,
    /// Same, from a file.
    pub extra_ca_file: Option<PathBuf>,
    /// A download fails (`video_pull_failed`) when it has not finished this long after the
    /// init (TikTok: 1 h).
    pub pull_timeout_ms: u64,
    /// Wait this long after an init before fetching the media (TikTok queues downloads; a
    /// pull may start long after the client stopped waiting for it).
    pub pull_delay_ms: u64,
    /// Read pulled media at most this fast (bytes per second; `None`: as fast as served), so
    /// a pull keeps going while the client does other things.
    pub pull_bytes_per_sec: Option<u64>,
    /// `cancel` is refused (`publish_not_cancellable`) once this share of the media (percent)
    /// has been downloaded: TikTok cancels only "while downloading, not near completion".
    pub cancel_refused_after_percent: u8,
    /// `status/fetch` and `cancel` answer `invalid_publish_id` for publish ids older than
    /// this (TikTok does not document how long they stay queryable); `None`: never.
    pub publish_id_ttl_secs: Option<u64>,
    /// The status strings reported instead of the documented ones (e.g.
    /// `PROCESSING_DOWNLOAD: PROCESSING`, an undocumented string seen in the wild).
    pub status_names: BTreeMap<String, String>,
    /// How envelopes are written.
    pub envelope: Envelope,
    /// Tests: while true, no download starts (they wait, as if TikTok's queue were long).
    pub hold_pulls: bool,
    /// Tests: while true, chunk PUTs hang unread (a stalled upload link); when released, each
    /// held PUT is answered 504 without storing anything, as after a gateway timeout.
    pub hold_uploads: bool,
    /// Processing checks the media as TikTok does (codec, frame rate, picture size; see
    /// `media_check`) and fails the post with TikTok's `fail_reason`. Off for tests that send
    /// bytes that are no media.
    pub check_media: bool,
    /// Seconds added to the `Date` header of every answer: TikTok's clock as seen from a
    /// machine whose own clock is off by the opposite amount.
    pub clock_offset_secs: i64,
    /// Time between the media being complete and the post's terminal status.
    pub processing_delay_ms: u64,
    /// Time after PUBLISH_COMPLETE before a public post gets its ids.
    pub moderation_delay_ms: u64,
    /// Lifetime of upload URLs (TikTok: 1 h).
    pub upload_url_secs: u64,
    /// Test-only: chunk plans are checked as if every size were this many times larger, so
    /// a test can upload a "multi-chunk" plan of a few kilobytes (1 = TikTok's rules).
    pub chunk_rule_scale: u64,
    /// The creators that can log in; the first one is the default.
    pub accounts: Vec<AccountConfig>,
    /// Injected errors, consumed in order per endpoint.
    pub faults: Vec<Fault>,
    /// The next posts end FAILED with these reasons, one per post, in order.
    pub fail_next_posts: Vec<String>,
    /// The next this many pulls fail (`video_pull_failed` / `photo_pull_failed`) without
    /// downloading.
    pub fail_next_pulls: u32,
}

impl Default for SandboxConfig {
    fn default() -> Self {
        Self {
            client_key: "sbawtokdropsandbox".into(),
            client_secret: "sandbox-secret".into(),
            platform: Platform::Desktop,
            redirect_uris: vec![
                "http://127.0.0.1:*/callback/".into(),
                "http://localhost:*/callback/".into(),
            ],
            approved_scopes: KNOWN_SCOPES.iter().map(|s| s.to_string()).collect(),
            audited: false,
            unaudited_user_cap: 5,
            require_pkce: true,
            accept_base64url_challenge: false,
            deny_authorization: false,
            authorize_as: None,
            code_secs: 600,
            access_token_secs: 7200,
            refresh_token_secs: 15_552_000,
            rotate_refresh_tokens: true,
            oauth_error_status: 200,
            invalid_param_code: "invalid_param".into(),
            creator_info_spam_status: 200,
            status_overrides: BTreeMap::new(),
            rate_limits: RateLimits::default(),
            daily_post_cap: 15,
            pending_share_cap: 5,
            verified_url_prefixes: Vec::new(),
            allow_ip_hosts: true,
            extra_ca_pem: None,
            extra_ca_file: None,
            pull_timeout_ms: 3_600_000,
            pull_delay_ms: 0,
            pull_bytes_per_sec: None,
            cancel_refused_after_percent: 90,
            publish_id_ttl_secs: None,
            status_names: BTreeMap::new(),
            envelope: Envelope::default(),
            hold_pulls: false,
            hold_uploads: false,
            clock_offset_secs: 0,
            check_media: true,
            processing_delay_ms: 200,
            moderation_delay_ms: 1000,
            upload_url_secs: 3600,
            chunk_rule_scale: 1,
            accounts: vec![AccountConfig::default()],
            faults: Vec::new(),
            fail_next_posts: Vec::new(),
            fail_next_pulls: 0,
        }
    }
}

impl SandboxConfig {
    /// The account that approves logins.
    pub fn authorizing_account(&self) -> Option<&AccountConfig> {
        match &self.authorize_as {
            Some(open_id) => self.accounts.iter().find(|a| &a.open_id == open_id),
            None => self.accounts.first(),
        }
    }

    pub fn account(&self, open_id: &str) -> Option<&AccountConfig> {
        self.accounts.iter().find(|a| a.open_id == open_id)
    }

    /// What TikTok's developer portal would refuse in this setup: redirect URIs the platform
    /// cannot register (tiktok-api.md §3.2), unknown scopes.
    pub fn check(&self) -> Result<(), String> {
        if self.redirect_uris.len() > 10 {
            return Err("at most 10 redirect URIs can be registered".into());
        }
        for uri in &self.redirect_uris {
            registrable(self.platform, uri)
                .map_err(|why| format!("redirect URI {uri:?}: {why}"))?;
        }
        if let Some(s) = self
            .approved_scopes
            .iter()
            .find(|s| !KNOWN_SCOPES.contains(&s.as_str()))
        {
            return Err(format!("unknown scope {s:?} in approved_scopes"));
        }
        Ok(())
    }

    /// The config as JSON with the client secret and CA PEM left out (for introspection).
    pub fn redacted(&self) -> serde_json::Value {
        let mut value = serde_json::to_value(self).unwrap_or_default();
        if let Some(map) = value.as_object_mut() {
            map.insert("client_secret".into(), "[redacted]".into());
            if map.get("extra_ca_pem").is_some_and(|v| !v.is_null()) {
                map.insert("extra_ca_pem".into(), "[pem]".into());
            }
        }
        value
    }
}

/// Whether `uri` can be registered for `platform` (tiktok-api.md §3.2): under 512 characters,
/// absolute, no query or fragment; Web: `https` only; Desktop: `http` or `https` on
/// `localhost` or `127.0.0.1` with a port, `*` allowed as the port.
pub fn registrable(platform: Platform, uri: &str) -> Result<(), &'static str> {
    if uri.len() >= 512 {
        return Err("must be shorter than 512 characters");
    }
    if uri.contains('?') || uri.contains('#') {
        return Err("must be static: no query parameters, no fragment");
    }
    let (scheme, rest) = uri.split_once("://").ok_or("must be an absolute URI")?;
    let authority = rest.split('/').next().unwrap_or("");
    if authority.is_empty() {
        return Err("must name a host");
    }
    match platform {
        Platform::Web => {
            if scheme != "https" {
                return Err("a Web app can only register https redirect URIs");
            }
            if authority.ends_with(":*") {
                return Err("a Web app cannot register a wildcard port");
            }
            Ok(())
        }
        Platform::Desktop => {
            if scheme != "http" && scheme != "https" {
                return Err("a Desktop app registers http or https redirect URIs");
            }
            let (host, port) = authority
                .rsplit_once(':')
                .ok_or("a Desktop redirect URI needs a port (or * for any port)")?;
            if host != "localhost" && host != "127.0.0.1" {
                return Err("a Desktop redirect URI's host must be localhost or 127.0.0.1");
            }
            if port != "*" && port.parse::<u16>().is_err() {
                return Err("a Desktop redirect URI needs a port (or * for any port)");
            }
            Ok(())
        }
    }
}

/// Whether the `redirect_uri` of an authorize request matches the registered `pattern`:
/// exactly, or with a Desktop pattern's `*` port standing for any port.
pub fn redirect_matches(platform: Platform, pattern: &str, uri: &str) -> bool {
    if pattern == uri {
        return true;
    }
    if platform != Platform::Desktop {
        return false;
    }
    let Some((head, tail)) = pattern.split_once(":*") else {
        return false;
    };
    let Some(rest) = uri.strip_prefix(head).and_then(|r| r.strip_prefix(':')) else {
        return false;
    };
    let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
    digits > 0 && rest[..digits].parse::<u16>().is_ok() && &rest[digits..] == tail
}

/// Per-token requests per window (tiktok-api.md §8).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RateLimits {
    /// Window length (one minute at TikTok; tests shrink it).
    pub window_ms: u64,
    pub creator_info: u32,
    /// Each init endpoint separately, as documented.
    pub init: u32,
    pub status_fetch: u32,
    pub user_info: u32,
}

impl Default for RateLimits {
    fn default() -> Self {
        Self {
            window_ms: 60_000,
            creator_info: 20,
            init: 6,
            status_fetch: 30,
            user_info: 600,
        }
    }
}

/// One creator.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AccountConfig {
    pub open_id: String,
    pub union_id: String,
    pub username: String,
    pub nickname: String,
    pub avatar_url: String,
    /// A private account (matters for unaudited mode and the default privacy options).
    pub private_account: bool,
    /// `None`: TikTok's options for a public or private account.
    pub privacy_level_options: Option<Vec<String>>,
    pub comment_disabled: bool,
    pub duet_disabled: bool,
    pub stitch_disabled: bool,
    pub max_video_post_duration_sec: u32,
    /// Scopes this user untoggles on the authorize page: granted is what the app asked for,
    /// less these (`user.info.basic` cannot be untoggled).
    pub deselect: Vec<String>,
    pub banned_from_posting: bool,
}

impl Default for AccountConfig {
    fn default() -> Self {
        Self {
            open_id: "sandbox-open-id-0001".into(),
            union_id: "sandbox-union-id-0001".into(),
            username: "tokdrop.sandbox".into(),
            nickname: "tokdrop sandbox".into(),
            avatar_url: "https://p16-sign.tiktokcdn-us.com/sandbox-avatar.jpeg".into(),
            private_account: true,
            privacy_level_options: None,
            comment_disabled: false,
            duet_disabled: false,
            stitch_disabled: false,
            max_video_post_duration_sec: 600,
            deselect: Vec::new(),
            banned_from_posting: false,
        }
    }
}

impl AccountConfig {
    pub fn privacy_options(&self) -> Vec<String> {
        match &self.privacy_level_options {
            Some(options) => options.clone(),
            None if self.private_account => {
                vec!["FOLLOWER_OF_CREATOR", "MUTUAL_FOLLOW_FRIENDS", "SELF_ONLY"]
                    .into_iter()
                    .map(String::from)
                    .collect()
            }
            None => vec!["PUBLIC_TO_EVERYONE", "MUTUAL_FOLLOW_FRIENDS", "SELF_ONLY"]
                .into_iter()
                .map(String::from)
                .collect(),
        }
    }
}

/// An emulator endpoint, as faults and introspection name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SandboxEndpoint {
    Authorize,
    Token,
    Revoke,
    UserInfo,
    CreatorInfo,
    VideoInit,
    InboxVideoInit,
    ContentInit,
    StatusFetch,
    Cancel,
    Upload,
}

impl SandboxEndpoint {
    pub fn name(self) -> &'static str {
        match self {
            Self::Authorize => "authorize",
            Self::Token => "token",
            Self::Revoke => "revoke",
            Self::UserInfo => "user_info",
            Self::CreatorInfo => "creator_info",
            Self::VideoInit => "video_init",
            Self::InboxVideoInit => "inbox_video_init",
            Self::ContentInit => "content_init",
            Self::StatusFetch => "status_fetch",
            Self::Cancel => "cancel",
            Self::Upload => "upload",
        }
    }

    pub fn is_init(self) -> bool {
        matches!(
            self,
            Self::VideoInit | Self::InboxVideoInit | Self::ContentInit
        )
    }
}

/// An injected error: the next `times` calls of `endpoint` get it instead of their answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fault {
    pub endpoint: SandboxEndpoint,
    #[serde(default = "Fault::default_status")]
    pub http_status: u16,
    /// `error.code` (or OAuth `error`); `None` sends a gateway's HTML page instead of JSON.
    #[serde(default)]
    pub code: Option<String>,
    /// A raw answer body instead of the envelope (with `content_type`, default JSON).
    #[serde(default)]
    pub body: Option<String>,
    #[serde(default)]
    pub content_type: Option<String>,
    #[serde(default)]
    pub message: Option<String>,
    #[serde(default = "Fault::default_times")]
    pub times: u32,
    /// Close the connection after reading the request instead of answering (a lost answer).
    #[serde(default)]
    pub drop_connection: bool,
    /// Process the request first, then answer with the fault (or drop the connection): the
    /// post exists or the chunk is stored, but the client hears an error or nothing.
    #[serde(default)]
    pub take_effect: bool,
}

impl Fault {
    fn default_status() -> u16 {
        500
    }

    fn default_times() -> u32 {
        1
    }

    /// `times` answers of `http_status` with `code`.
    pub fn error(endpoint: SandboxEndpoint, http_status: u16, code: &str, times: u32) -> Self {
        Self {
            endpoint,
            http_status,
            code: Some(code.to_string()),
            body: None,
            content_type: None,
            message: None,
            times,
            drop_connection: false,
            take_effect: false,
        }
    }

    /// The next call of `endpoint` loses its answer; with `take_effect` it is processed first.
    pub fn dropped(endpoint: SandboxEndpoint, take_effect: bool) -> Self {
        Self {
            drop_connection: true,
            take_effect,
            ..Self::error(endpoint, 500, "internal_error", 1)
        }
    }
}

/// Body of `POST /_sandbox/control`: a merge patch of the config plus one-shot actions.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Control {
    /// RFC 7386 merge patch applied to the current [`SandboxConfig`] (arrays are replaced).
    pub config: Option<serde_json::Value>,
    /// Every access token issued so far stops working (`access_token_invalid`).
    pub expire_access_tokens: bool,
    /// Every refresh token issued so far is rejected (`invalid_grant`).
    pub revoke_refresh_tokens: bool,
    /// Forget daily post and pending-share counts and rate windows.
    pub reset_counters: bool,
    /// Every publish id issued so far stops being known (`invalid_publish_id`).
    pub expire_publish_ids: bool,
}

/// RFC 7386 JSON merge patch: objects merge recursively, `null` deletes, the rest replaces.
pub fn merge_patch(target: &mut serde_json::Value, patch: &serde_json::Value) {
    let serde_json::Value::Object(patch) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = serde_json::Value::Object(Default::default());
    }
    if let serde_json::Value::Object(map) = target {
        for (key, value) in patch {
            if value.is_null() {
                map.remove(key);
            } else {
                merge_patch(
                    map.entry(key.clone()).or_insert(serde_json::Value::Null),
                    value,
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// A partial YAML-like JSON config fills the rest from TikTok's documented defaults.
    #[test]
    fn defaults_follow_the_docs() {
        let c: SandboxConfig =
            serde_json::from_value(json!({"daily_post_cap": 2})).expect("config");
        assert_eq!(c.daily_post_cap, 2);
        assert_eq!(c.pending_share_cap, 5);
        assert_eq!(
            (
                c.rate_limits.creator_info,
                c.rate_limits.init,
                c.rate_limits.status_fetch
            ),
            (20, 6, 30)
        );
        assert_eq!(c.accounts.len(), 1);
        assert_eq!(
            c.accounts[0].privacy_options(),
            vec!["FOLLOWER_OF_CREATOR", "MUTUAL_FOLLOW_FRIENDS", "SELF_ONLY"]
        );
        assert!(serde_json::from_value::<SandboxConfig>(json!({"daily_cap": 2})).is_err());
    }

    /// Merge patches replace scalars and arrays, merge objects and delete with null.
    #[test]
    fn merge_patch_follows_rfc_7386() {
        let mut target = json!({"a": 1, "b": {"c": 2, "d": 3}, "e": [1, 2]});
        merge_patch(
            &mut target,
            &json!({"a": 5, "b": {"c": null, "x": 1}, "e": [9]}),
        );
        assert_eq!(target, json!({"a": 5, "b": {"d": 3, "x": 1}, "e": [9]}));
    }

    /// The redacted view hides the client secret.
    #[test]
    fn redacted_hides_the_secret() {
        let c = SandboxConfig {
            client_secret: "MARKER".into(),
            ..SandboxConfig::default()
        };
        assert!(!c.redacted().to_string().contains("MARKER"));
    }
}
