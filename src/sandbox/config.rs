//! The emulator's knobs: [`SandboxConfig`] (read from YAML/JSON with defaults that behave like
//! TikTok per tiktok-api.md), its accounts, injected faults, and [`Control`], the body of
//! `POST /_sandbox/control` that changes them at runtime as an RFC 7386 JSON merge patch.
//! Applying the knobs is the handlers' business; this file only says what they are.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// Scopes an app may hold (tiktok-api.md §3.1); the sandbox app is approved for all of them.
pub const KNOWN_SCOPES: &[&str] = &[
    "user.info.basic",
    "user.info.profile",
    "user.info.stats",
    "video.publish",
    "video.upload",
    "video.list",
];

/// Everything the emulator can be told. `Default` is TikTok as documented, with the sandbox
/// app (`sbawtokdropsandbox` / `sandbox-secret`) and one auto-approved account.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SandboxConfig {
    pub client_key: String,
    /// The app secret the token endpoint expects. Never shown by `/_sandbox/calls`.
    pub client_secret: String,
    /// Registered redirect URIs (exact match). Loopback URIs are also accepted when
    /// `allow_loopback_redirects` is set, as for a desktop app with a wildcard port.
    pub redirect_uris: Vec<String>,
    pub allow_loopback_redirects: bool,
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
    /// Unaudited client: only `SELF_ONLY`, and only on private accounts.
    pub unaudited: bool,
    /// URL prefixes verified for PULL_FROM_URL (`https://host/path/`, exact prefix match).
    pub verified_url_prefixes: Vec<String>,
    /// Accept media URLs whose host is an IP address (TikTok wants a domain; the sandbox
    /// usually runs on loopback).
    pub allow_ip_hosts: bool,
    /// PEM of extra CAs the puller trusts (tokdrop's self-signed sandbox certificate).
    pub extra_ca_pem: Option<String>,
    /// Same, from a file.
    pub extra_ca_file: Option<PathBuf>,
    /// Give up a pull after this long (TikTok: 1 h).
    pub pull_timeout_ms: u64,
    /// Wait this long after an init before fetching the media (TikTok queues downloads).
    pub pull_delay_ms: u64,
    /// Tests: while true, no download starts (they wait, as if TikTok's queue were long).
    pub hold_pulls: bool,
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
            redirect_uris: Vec::new(),
            allow_loopback_redirects: true,
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
            unaudited: false,
            verified_url_prefixes: Vec::new(),
            allow_ip_hosts: true,
            extra_ca_pem: None,
            extra_ca_file: None,
            pull_timeout_ms: 3_600_000,
            pull_delay_ms: 0,
            hold_pulls: false,
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
    /// Scopes this user grants when asked (a user may deselect some); `None`: all asked.
    pub grants: Option<Vec<String>>,
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
            grants: None,
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
    /// `error.code` (or OAuth `error`); `None` with a 5xx sends a non-JSON gateway page.
    #[serde(default)]
    pub code: Option<String>,
    #[serde(default)]
    pub message: Option<String>,
    #[serde(default = "Fault::default_times")]
    pub times: u32,
    /// Close the connection after reading the request instead of answering (a lost answer).
    #[serde(default)]
    pub drop_connection: bool,
    /// With `drop_connection`: process the request first (the post exists, the answer is lost).
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
