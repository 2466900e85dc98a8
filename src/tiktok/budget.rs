//! Per-access-token request budget (tiktok-api.md §8): a sliding one-minute window per endpoint
//! group that every call awaits before it is sent, so tokdrop itself never causes a 429. The
//! three init endpoints share one group. Also the retry back-off with jitter for 429/5xx.
//!
//! Waiting callers queue on a fair (FIFO) `tokio::sync::Mutex` per window, so a burst is
//! spread out in arrival order instead of stampeding when the window frees up.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sha2::{Digest, Sha256};
use tokio::time::Instant;

use super::error::Endpoint;
use super::secret::Secret;
use crate::support::backoff::Backoff;

/// Limits per access token. Defaults are TikTok's documented ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BudgetLimits {
    /// Length of TikTok's window (one minute).
    pub window: Duration,
    /// Extra spacing on top of the window, since TikTok counts arrivals and we count sends.
    pub margin: Duration,
    pub creator_info_per_window: usize,
    /// Shared by video/init, inbox/video/init and content/init.
    pub init_per_window: usize,
    pub status_per_window: usize,
    pub user_info_per_window: usize,
}

impl Default for BudgetLimits {
    fn default() -> Self {
        Self {
            window: Duration::from_secs(60),
            margin: Duration::from_secs(1),
            creator_info_per_window: 20,
            init_per_window: 6,
            status_per_window: 30,
            user_info_per_window: 600,
        }
    }
}

/// An endpoint group with its own window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Bucket {
    CreatorInfo,
    Init,
    Status,
    UserInfo,
}

/// Counts a wait for room in the budget (none when there was room at once).
fn note_wait(bucket: Bucket, began: Instant, now: Instant) {
    let waited = now.saturating_duration_since(began);
    if waited >= Duration::from_millis(1) {
        crate::support::metrics::metrics().rate_wait(bucket.name(), waited);
    }
}

impl Bucket {
    pub const ALL: [Bucket; 4] = [Self::CreatorInfo, Self::Init, Self::Status, Self::UserInfo];

    /// The label of the bucket in metrics.
    pub fn name(self) -> &'static str {
        match self {
            Self::CreatorInfo => "creator_info",
            Self::Init => "init",
            Self::Status => "status",
            Self::UserInfo => "user_info",
        }
    }

    /// The group an endpoint counts against; OAuth, cancel and uploads have no documented limit.
    pub fn for_endpoint(endpoint: Endpoint) -> Option<Self> {
        match endpoint {
            Endpoint::CreatorInfo => Some(Self::CreatorInfo),
            Endpoint::VideoInit | Endpoint::InboxVideoInit | Endpoint::ContentInit => {
                Some(Self::Init)
            }
            Endpoint::StatusFetch => Some(Self::Status),
            Endpoint::UserInfo => Some(Self::UserInfo),
            _ => None,
        }
    }
}

type Key = ([u8; 32], Bucket);

/// Send times of the calls in the current window.
#[derive(Debug, Default)]
struct Window {
    sent: VecDeque<Instant>,
}

impl Window {
    /// Forgets sends older than `span`; `None` when one more fits under `limit` now, else
    /// when the oldest send leaves the window.
    fn free_at(&mut self, now: Instant, limit: usize, span: Duration) -> Option<Instant> {
        while self
            .sent
            .front()
            .is_some_and(|&t| now.duration_since(t) >= span)
        {
            self.sent.pop_front();
        }
        match self.sent.front() {
            Some(&oldest) if self.sent.len() >= limit => Some(oldest + span),
            _ => None,
        }
    }
}

#[derive(Debug)]
struct Slot {
    window: Arc<tokio::sync::Mutex<Window>>,
    last_used: Instant,
}

/// The budget of every access token this process uses.
#[derive(Debug)]
pub struct RateBudget {
    limits: BudgetLimits,
    slots: Mutex<HashMap<Key, Slot>>,
}

impl RateBudget {
    pub fn new(limits: BudgetLimits) -> Self {
        for bucket in Bucket::ALL {
            crate::support::metrics::metrics().rate_bucket(bucket.name());
        }
        Self {
            limits,
            slots: Mutex::new(HashMap::new()),
        }
    }

    pub fn limits(&self) -> BudgetLimits {
        self.limits
    }

    fn limit(&self, bucket: Bucket) -> usize {
        match bucket {
            Bucket::CreatorInfo => self.limits.creator_info_per_window,
            Bucket::Init => self.limits.init_per_window,
            Bucket::Status => self.limits.status_per_window,
            Bucket::UserInfo => self.limits.user_info_per_window,
        }
        .max(1)
    }

    fn span(&self) -> Duration {
        self.limits.window + self.limits.margin
    }

    fn window(&self, token: &Secret, bucket: Bucket) -> Arc<tokio::sync::Mutex<Window>> {
        let key: Key = (Sha256::digest(token.expose().as_bytes()).into(), bucket);
        let now = Instant::now();
        let idle = self.span() * 2;
        let mut slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
        // Tokens rotate; forget windows nobody used for two spans (they are empty by then).
        slots.retain(|k, s| *k == key || now.duration_since(s.last_used) < idle);
        let slot = slots.entry(key).or_insert_with(|| Slot {
            window: Arc::default(),
            last_used: now,
        });
        slot.last_used = now;
        slot.window.clone()
    }

    /// Waits until one more call of `bucket` fits in `token`'s window, and books it.
    pub async fn acquire(&self, token: &Secret, bucket: Bucket) {
        let began = Instant::now();
        let window = self.window(token, bucket);
        let mut window = window.lock().await;
        let (limit, span) = (self.limit(bucket), self.span());
        loop {
            let now = Instant::now();
            match window.free_at(now, limit, span) {
                None => {
                    window.sent.push_back(now);
                    note_wait(bucket, began, now);
                    return;
                }
                Some(wake) => tokio::time::sleep_until(wake).await,
            }
        }
    }

    /// Waits until a call of `bucket` would be sent at once, without booking it: the publisher
    /// waits here *before* it journals that an init may be sent, so a kill during the wait
    /// cannot leave an item whose init "may have reached TikTok".
    pub async fn wait_for_slot(&self, token: &Secret, bucket: Bucket) {
        let began = Instant::now();
        let window = self.window(token, bucket);
        let (limit, span) = (self.limit(bucket), self.span());
        loop {
            let wake = window.lock().await.free_at(Instant::now(), limit, span);
            match wake {
                None => {
                    note_wait(bucket, began, Instant::now());
                    return;
                }
                Some(wake) => tokio::time::sleep_until(wake).await,
            }
        }
    }

    /// TikTok said 429 anyway (another client uses the token): treat the window as full now.
    pub async fn exhaust(&self, token: &Secret, bucket: Bucket) {
        let window = self.window(token, bucket);
        let mut window = window.lock().await;
        let now = Instant::now();
        while window.sent.len() < self.limit(bucket) {
            window.sent.push_back(now);
        }
    }
}

/// How calls are retried on transient errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Tries per call, the first included (1 = no retry).
    pub attempts: u32,
    /// Tries per upload chunk on 5xx or a broken connection.
    pub chunk_attempts: u32,
    /// First back-off; doubles per try.
    pub base_delay: Duration,
    pub max_delay: Duration,
    /// Wait after a 429 without `Retry-After`.
    pub rate_limited_wait: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            attempts: 3,
            chunk_attempts: 5,
            base_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(60),
            rate_limited_wait: Duration::from_secs(60),
        }
    }
}

impl RetryPolicy {
    /// Delay before try `attempt + 1`: exponential, with jitter in the upper half so retries
    /// of several callers spread out; never shorter than `retry_after`.
    pub fn delay(&self, attempt: u32, retry_after: Option<Duration>) -> Duration {
        let exp = self.backoff().delay(attempt + 1, None);
        let jittered = exp / 2 + exp.mul_f64(jitter_fraction() / 2.0);
        jittered.max(retry_after.unwrap_or_default().min(self.max_delay))
    }

    /// The shared back-off shape of these tries (jitter is added on top).
    pub fn backoff(&self) -> Backoff {
        Backoff {
            initial: self.base_delay,
            factor: 2.0,
            max: self.max_delay,
        }
    }
}

/// A number in [0, 1) from the OS RNG; 0.5 if it fails (jitter is not worth an error).
fn jitter_fraction() -> f64 {
    let mut buf = [0u8; 4];
    match getrandom::getrandom(&mut buf) {
        Ok(()) => f64::from(u32::from_le_bytes(buf)) / (f64::from(u32::MAX) + 1.0),
        Err(_) => 0.5,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn budget() -> RateBudget {
        RateBudget::new(BudgetLimits::default())
    }

    /// Six inits pass at once; the seventh waits one window plus the margin.
    #[tokio::test(start_paused = true)]
    async fn seventh_init_waits_a_window() {
        let b = budget();
        let token = Secret::new("act.a");
        let start = Instant::now();
        for _ in 0..6 {
            b.acquire(&token, Bucket::Init).await;
        }
        assert_eq!(start.elapsed(), Duration::ZERO);
        b.acquire(&token, Bucket::Init).await;
        assert_eq!(start.elapsed(), Duration::from_secs(61));
    }

    /// Waiting for a slot books nothing: it returns at once while the window has room, waits
    /// a full window after it filled (as a 429 makes it), and the next acquire still gets the
    /// slot without waiting again.
    #[tokio::test(start_paused = true)]
    async fn waiting_for_a_slot_books_nothing() {
        let b = budget();
        let token = Secret::new("act.w");
        let start = Instant::now();
        for _ in 0..10 {
            b.wait_for_slot(&token, Bucket::Init).await;
        }
        assert_eq!(start.elapsed(), Duration::ZERO);
        b.acquire(&token, Bucket::Init).await;
        b.exhaust(&token, Bucket::Init).await;
        b.wait_for_slot(&token, Bucket::Init).await;
        let waited = start.elapsed();
        assert!(waited >= Duration::from_secs(60), "{waited:?}");
        b.acquire(&token, Bucket::Init).await;
        assert_eq!(start.elapsed(), waited, "the slot was still free");
    }

    /// Tokens and groups have separate windows; the three init endpoints share one.
    #[tokio::test(start_paused = true)]
    async fn windows_are_per_token_and_group() {
        let b = budget();
        let (a, other) = (Secret::new("act.a"), Secret::new("act.b"));
        let start = Instant::now();
        for _ in 0..6 {
            b.acquire(&a, Bucket::Init).await;
            b.acquire(&other, Bucket::Init).await;
            b.acquire(&a, Bucket::Status).await;
        }
        assert_eq!(start.elapsed(), Duration::ZERO);
        assert_eq!(
            Bucket::for_endpoint(Endpoint::ContentInit),
            Some(Bucket::Init)
        );
        assert_eq!(
            Bucket::for_endpoint(Endpoint::InboxVideoInit),
            Some(Bucket::Init)
        );
        assert_eq!(Bucket::for_endpoint(Endpoint::Upload), None);
    }

    /// A concurrent burst of 50 never puts more than 6 sends in any window.
    #[tokio::test(start_paused = true)]
    async fn concurrent_burst_respects_the_window() {
        let b = Arc::new(budget());
        let token = Secret::new("act.burst");
        let start = Instant::now();
        let mut tasks = Vec::new();
        for _ in 0..50 {
            let (b, token) = (b.clone(), token.clone());
            tasks.push(tokio::spawn(async move {
                b.acquire(&token, Bucket::Init).await;
                Instant::now()
            }));
        }
        let mut times = Vec::new();
        for t in tasks {
            times.push(t.await.expect("task"));
        }
        times.sort();
        for (i, t) in times.iter().enumerate() {
            let in_window = times[i..]
                .iter()
                .take_while(|u| u.duration_since(*t) < Duration::from_secs(60))
                .count();
            assert!(in_window <= 6, "{in_window} sends within a minute");
        }
        assert_eq!(times[49].duration_since(start), Duration::from_secs(8 * 61));
    }

    /// After a 429 the window counts as full.
    #[tokio::test(start_paused = true)]
    async fn exhaust_blocks_a_full_window() {
        let b = budget();
        let token = Secret::new("act.a");
        let start = Instant::now();
        b.exhaust(&token, Bucket::Status).await;
        b.acquire(&token, Bucket::Status).await;
        assert_eq!(start.elapsed(), Duration::from_secs(61));
    }

    /// Back-off grows, stays within its cap, and honours a longer `retry_after`.
    #[test]
    fn backoff_grows_with_jitter() {
        let p = RetryPolicy::default();
        for attempt in 0..10 {
            let exp = Duration::from_secs(1 << attempt).min(p.max_delay);
            let d = p.delay(attempt, None);
            assert!(d >= exp / 2 && d <= exp, "{attempt}: {d:?}");
        }
        assert_eq!(
            p.delay(0, Some(Duration::from_secs(30))),
            Duration::from_secs(30)
        );
    }
}
