//! The emulator's memory: issued codes and tokens, posts, rate windows, caps and the records.
//! One [`Shared`] per emulator, behind std mutexes that are never held across an `.await`.
//! Every change bumps a `watch` counter so tests can wait for an event instead of sleeping.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use jiff::Timestamp;
use sha2::Sha256;
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::chunks::UploadPlan;
use super::config::{Fault, SandboxConfig, SandboxEndpoint};
use super::pkce::{random_string, random_u64};
use super::records::{CallRecord, Calls, PostRecord};

/// An authorization code waiting for its exchange.
#[derive(Debug, Clone)]
pub(super) struct CodeGrant {
    pub open_id: String,
    pub redirect_uri: String,
    pub challenge: String,
    pub scopes: Vec<String>,
    pub expires: Instant,
}

/// An access or refresh token.
#[derive(Debug, Clone)]
pub(super) struct TokenGrant {
    pub open_id: String,
    pub scopes: Vec<String>,
    pub expires: Instant,
    /// The login this token belongs to (a refresh keeps it).
    pub grant_id: u64,
}

/// How a post's media arrives.
#[derive(Debug, Clone)]
pub(super) enum Media {
    Pull {
        urls: Vec<String>,
    },
    Upload {
        plan: UploadPlan,
        upload_id: String,
        upload_token: String,
        expires: Instant,
        hasher: Sha256,
    },
}

/// One accepted init.
#[derive(Debug, Clone)]
pub(super) struct Post {
    pub record: PostRecord,
    pub media: Media,
    pub created: Instant,
    /// Stops the pull when the post is cancelled or the emulator shuts down.
    pub cancel: CancellationToken,
    /// Injected at init: the post ends FAILED with this reason.
    pub forced_fail: Option<String>,
    /// Injected at init: the pull fails without downloading.
    pub forced_pull_failure: bool,
    /// TikTok no longer knows this publish id (`expire_publish_ids`).
    pub forgotten: bool,
    /// The media as received (pulled files, or the uploaded video), for processing's checks;
    /// `None` once a file was too large to keep.
    pub received: Option<Vec<Vec<u8>>>,
}

#[derive(Debug, Default)]
pub(super) struct State {
    pub seq: u64,
    pub codes: HashMap<String, CodeGrant>,
    pub access: HashMap<String, TokenGrant>,
    pub refresh: HashMap<String, TokenGrant>,
    pub posts: Vec<Post>,
    pub rate: HashMap<(String, SandboxEndpoint), VecDeque<Instant>>,
    /// Posts before this instant do not count towards caps (`reset_counters`).
    pub counters_since: Option<Instant>,
    pub records: Calls,
}

impl State {
    pub fn next_seq(&mut self) -> u64 {
        self.seq += 1;
        self.seq
    }

    pub fn post_mut(&mut self, publish_id: &str) -> Option<&mut Post> {
        self.posts
            .iter_mut()
            .find(|p| p.record.publish_id == publish_id)
    }

    /// Whether `post` counts towards today's caps: made in the last 24 h, after the last
    /// counter reset.
    pub fn counts(&self, post: &Post) -> bool {
        let day = Duration::from_secs(24 * 3600);
        Instant::now().duration_since(post.created) < day
            && self
                .counters_since
                .is_none_or(|since| post.created >= since)
    }

    /// Whether an unaudited app's daily quota of posting creators (tiktok-api.md §8) keeps
    /// `open_id` from posting: `cap` others already made direct posts today.
    pub fn creator_cap_reached(&self, open_id: &str, cap: u32) -> bool {
        let mut posters: Vec<&str> = self
            .posts
            .iter()
            .filter(|p| p.record.direct && self.counts(p))
            .map(|p| p.record.open_id.as_str())
            .collect();
        posters.sort_unstable();
        posters.dedup();
        !posters.contains(&open_id) && posters.len() >= cap as usize
    }

    /// Posts of `open_id` that count towards today's caps and match `f`.
    pub fn recent_posts(&self, open_id: &str, f: impl Fn(&Post) -> bool) -> usize {
        self.posts
            .iter()
            .filter(|p| p.record.open_id == open_id && self.counts(p) && f(p))
            .count()
    }
}

/// Shared by the router, the post tasks and the handle.
#[derive(Debug)]
pub(super) struct Shared {
    /// `http://127.0.0.1:PORT`, without a trailing slash.
    pub base_url: String,
    pub config: Mutex<SandboxConfig>,
    pub state: Mutex<State>,
    /// Bumped on every change; receivers wait on it.
    pub changed: watch::Sender<u64>,
    /// Cancelled at shutdown: stops the server and every post task.
    pub shutdown: CancellationToken,
    /// The puller's HTTP client and the CA settings it was built with.
    pub puller: Mutex<Option<(PullerKey, reqwest::Client)>>,
}

pub(super) type PullerKey = (Option<String>, Option<std::path::PathBuf>);

impl Shared {
    pub fn new(base_url: String, config: SandboxConfig) -> Arc<Self> {
        Arc::new(Self {
            base_url,
            config: Mutex::new(config),
            state: Mutex::new(State::default()),
            changed: watch::Sender::new(0),
            shutdown: CancellationToken::new(),
            puller: Mutex::new(None),
        })
    }

    pub fn config(&self) -> MutexGuard<'_, SandboxConfig> {
        self.config.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn notify(&self) {
        self.changed.send_modify(|n| *n += 1);
    }

    /// Takes one use of the first fault injected for `endpoint`.
    pub fn take_fault(&self, endpoint: SandboxEndpoint) -> Option<Fault> {
        let mut config = self.config();
        let index = config
            .faults
            .iter()
            .position(|f| f.endpoint == endpoint && f.times > 0)?;
        let fault = config.faults[index].clone();
        config.faults[index].times -= 1;
        if config.faults[index].times == 0 {
            config.faults.remove(index);
        }
        Some(fault)
    }

    /// The HTTP status for an error `code` whose documented status is `documented`.
    pub fn status_for(&self, code: &str, documented: u16) -> u16 {
        self.config()
            .status_overrides
            .get(code)
            .copied()
            .unwrap_or(documented)
    }

    pub fn record_call(&self, mut call: CallRecord) {
        let mut state = self.state();
        call.seq = state.next_seq();
        tracing::debug!(
            endpoint = call.endpoint.name(),
            token = call.token_fingerprint.as_deref().unwrap_or("-"),
            status = call.http_status,
            code = %call.code,
            "sandbox call"
        );
        state.records.calls.push(call);
        drop(state);
        self.notify();
    }

    /// Books one call of `endpoint` for the token with fingerprint `fp`; `false` when the
    /// window is full (429).
    pub fn rate_admit(&self, fp: &str, endpoint: SandboxEndpoint) -> bool {
        let limits = self.config().rate_limits.clone();
        let limit = match endpoint {
            SandboxEndpoint::CreatorInfo => limits.creator_info,
            SandboxEndpoint::VideoInit
            | SandboxEndpoint::InboxVideoInit
            | SandboxEndpoint::ContentInit => limits.init,
            SandboxEndpoint::StatusFetch => limits.status_fetch,
            SandboxEndpoint::UserInfo => limits.user_info,
            _ => return true,
        } as usize;
        let window = Duration::from_millis(limits.window_ms);
        let now = Instant::now();
        let mut state = self.state();
        let sent = state.rate.entry((fp.to_string(), endpoint)).or_default();
        while sent
            .front()
            .is_some_and(|&t| now.duration_since(t) >= window)
        {
            sent.pop_front();
        }
        if sent.len() >= limit {
            return false;
        }
        sent.push_back(now);
        true
    }

    /// Sets a post's status (recording the transition) and notifies.
    pub fn set_status(&self, publish_id: &str, status: &str, fail_reason: Option<&str>) {
        let mut state = self.state();
        if let Some(post) = state.post_mut(publish_id) {
            if post.record.status == "FAILED" {
                return;
            }
            post.record.status = status.to_string();
            post.record.fail_reason = fail_reason.map(str::to_string);
            post.record
                .history
                .push((status.to_string(), Timestamp::now()));
            if status == "FAILED" {
                post.cancel.cancel();
            }
        }
        drop(state);
        self.notify();
    }
}

/// TikTok-looking log id: UTC time to the second plus 18 hex digits.
pub(super) fn log_id() -> String {
    let time = jiff::fmt::strtime::format("%Y%m%d%H%M%S", Timestamp::now()).unwrap_or_default();
    let noise = format!("{:016X}{:02X}", random_u64(), random_u64() as u8);
    format!("{time}{noise}")
}

/// A random token with TikTok's prefix (`act.`, `rft.`); random source failures degrade to a
/// time-based value, which is fine for an emulator.
pub(super) fn random_token(prefix: &str, len: usize) -> String {
    format!("{prefix}{}", random_string(len))
}

/// A random number with `digits` decimal digits (no leading zero), up to 19.
pub(super) fn random_digits(digits: u32) -> u64 {
    let digits = digits.clamp(1, 19);
    let low = 10u64.pow(digits - 1);
    let span = if digits == 19 {
        u64::MAX - low
    } else {
        10u64.pow(digits) - low
    };
    low + random_u64() % span
}

/// A 19-digit post id above 2^53 (so a JavaScript-style parser would corrupt it), like
/// TikTok's `7678907398077074696`.
pub(super) fn post_id() -> u64 {
    7_000_000_000_000_000_000 + random_digits(18)
}

/// The fingerprint of a token as records show it.
pub(super) fn fingerprint(token: &str) -> String {
    use sha2::Digest;
    hex::encode(&Sha256::digest(token.as_bytes())[..4])
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Post ids are 19 digits and beyond JavaScript's exact integer range.
    #[test]
    fn post_ids_are_19_digits() {
        for _ in 0..100 {
            let id = post_id();
            assert_eq!(id.to_string().len(), 19, "{id}");
            assert!(id > 1 << 53);
        }
        assert_eq!(random_digits(9).to_string().len(), 9);
        assert_eq!(log_id().len(), 14 + 18);
    }
}
