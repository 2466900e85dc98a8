//! Prometheus metrics (OpenMetrics text) for the admin listener's `/metrics`.
//!
//! Events are counted where they happen (a finished item, a TikTok call, a served byte) into
//! one process-wide [`Metrics`]; what is a state rather than an event (the queue, paused
//! accounts, token expiry) is read from the status board and the token files at scrape time.
//! Every name starts with `tokdrop_`; the README lists them.

use std::sync::OnceLock;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::{Registry, Unit};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ItemLabels {
    pub folder: String,
    pub status: String,
    /// The error code, empty for a success.
    pub reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct FolderLabels {
    pub folder: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct AccountLabels {
    pub account: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PauseLabels {
    pub account: String,
    pub reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CallLabels {
    pub endpoint: String,
    /// TikTok's error code, `ok` for a success, or our transport code (`timeout`, …).
    pub code: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct BucketLabels {
    pub bucket: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct BuildLabels {
    pub version: String,
}

type FloatGauge = Gauge<f64, AtomicU64>;

/// Every metric tokdrop exports.
pub struct Metrics {
    registry: Registry,
    items: Family<ItemLabels, Counter>,
    queue_depth: Family<FolderLabels, Gauge>,
    queue_oldest: Family<FolderLabels, FloatGauge>,
    claim_to_init: Histogram,
    init_to_terminal: Histogram,
    pull_duration: Histogram,
    served_bytes: Counter,
    pulls_in_flight: Gauge,
    paused: Family<PauseLabels, Gauge>,
    token_expiry: Family<AccountLabels, FloatGauge>,
    refresh_expiry: Family<AccountLabels, FloatGauge>,
    tiktok_calls: Family<CallLabels, Counter>,
    rate_waits: Family<BucketLabels, Counter>,
    rate_wait_seconds: Family<BucketLabels, Counter<f64, AtomicU64>>,
    last_success: Family<AccountLabels, FloatGauge>,
}

/// The process-wide metrics.
pub fn metrics() -> &'static Metrics {
    static METRICS: OnceLock<Metrics> = OnceLock::new();
    METRICS.get_or_init(Metrics::new)
}

fn seconds_histogram(start: f64, length: u16) -> Histogram {
    Histogram::new(exponential_buckets(start, 2.0, length))
}

impl Metrics {
    fn new() -> Self {
        let m = Metrics {
            registry: Registry::with_prefix("tokdrop"),
            items: Family::default(),
            queue_depth: Family::default(),
            queue_oldest: Family::default(),
            // 1 s … ~4.5 h.
            claim_to_init: seconds_histogram(1.0, 15),
            init_to_terminal: seconds_histogram(1.0, 15),
            // 0.1 s … ~55 min.
            pull_duration: seconds_histogram(0.1, 16),
            served_bytes: Counter::default(),
            pulls_in_flight: Gauge::default(),
            paused: Family::default(),
            token_expiry: Family::default(),
            refresh_expiry: Family::default(),
            tiktok_calls: Family::default(),
            rate_waits: Family::default(),
            rate_wait_seconds: Family::default(),
            last_success: Family::default(),
        };
        let mut registry = Registry::with_prefix("tokdrop");
        let build: Family<BuildLabels, Gauge> = Family::default();
        build
            .get_or_create(&BuildLabels {
                version: env!("CARGO_PKG_VERSION").to_string(),
            })
            .set(1);
        registry.register("build_info", "tokdrop's version (always 1)", build);
        registry.register(
            "items",
            "Items finished into done/ or failed/, by watch folder, status and error code",
            m.items.clone(),
        );
        registry.register(
            "queue_depth",
            "Items found in a watch folder and not yet published (settling, queued, scheduled, refused)",
            m.queue_depth.clone(),
        );
        registry.register_with_unit(
            "queue_oldest_waiting",
            "How long the oldest waiting item of a watch folder has waited",
            Unit::Seconds,
            m.queue_oldest.clone(),
        );
        registry.register_with_unit(
            "claim_to_init",
            "From claiming an item to TikTok accepting its publish request",
            Unit::Seconds,
            m.claim_to_init.clone(),
        );
        registry.register_with_unit(
            "init_to_terminal",
            "From TikTok accepting the publish request to the post's final status",
            Unit::Seconds,
            m.init_to_terminal.clone(),
        );
        registry.register_with_unit(
            "pull_duration",
            "From TikTok's first request for an item's media to the last byte of every file",
            Unit::Seconds,
            m.pull_duration.clone(),
        );
        registry.register_with_unit(
            "served",
            "Media bytes sent by the media server (repeats included)",
            Unit::Bytes,
            m.served_bytes.clone(),
        );
        registry.register(
            "pulls_in_flight",
            "Media responses being sent right now",
            m.pulls_in_flight.clone(),
        );
        registry.register(
            "account_paused",
            "1 while an account is paused, with why",
            m.paused.clone(),
        );
        registry.register_with_unit(
            "access_token_expiry",
            "Seconds until the stored access token expires (tokdrop refreshes it before)",
            Unit::Seconds,
            m.token_expiry.clone(),
        );
        registry.register_with_unit(
            "refresh_token_expiry",
            "Seconds until the stored refresh token expires (then `tokdrop auth login` is needed)",
            Unit::Seconds,
            m.refresh_expiry.clone(),
        );
        registry.register(
            "tiktok_requests",
            "TikTok API answers by endpoint and error code (ok for a success)",
            m.tiktok_calls.clone(),
        );
        registry.register(
            "rate_limit_waits",
            "Calls that waited for room in tokdrop's own per-token rate budget",
            m.rate_waits.clone(),
        );
        registry.register_with_unit(
            "rate_limit_wait",
            "Time spent waiting for room in the rate budget",
            Unit::Seconds,
            m.rate_wait_seconds.clone(),
        );
        registry.register_with_unit(
            "last_success_timestamp",
            "When the account last published or sent to the inbox (Unix time)",
            Unit::Seconds,
            m.last_success.clone(),
        );
        Metrics { registry, ..m }
    }

    /// An item reached done/ or failed/.
    pub fn finished(&self, folder: &str, account: &str, status: &str, reason: &str, ok: bool) {
        self.items
            .get_or_create(&ItemLabels {
                folder: folder.to_string(),
                status: status.to_string(),
                reason: reason.to_string(),
            })
            .inc();
        if ok {
            self.last_success
                .get_or_create(&AccountLabels {
                    account: account.to_string(),
                })
                .set(now_unix());
        }
    }

    pub fn claim_to_init(&self, took: Duration) {
        self.claim_to_init.observe(took.as_secs_f64());
    }

    pub fn init_to_terminal(&self, took: Duration) {
        self.init_to_terminal.observe(took.as_secs_f64());
    }

    pub fn pull_done(&self, took: Duration) {
        self.pull_duration.observe(took.as_secs_f64());
    }

    pub fn served(&self, bytes: u64) {
        self.served_bytes.inc_by(bytes);
    }

    /// A media response started (`true`) or ended (`false`).
    pub fn pull_active(&self, started: bool) {
        if started {
            self.pulls_in_flight.inc();
        } else {
            self.pulls_in_flight.dec();
        }
    }

    /// One TikTok answer (or transport failure).
    pub fn tiktok_call(&self, endpoint: &str, code: &str) {
        self.tiktok_calls
            .get_or_create(&CallLabels {
                endpoint: endpoint.to_string(),
                code: code.to_string(),
            })
            .inc();
    }

    /// Shows `bucket`'s wait counters at 0 before the first wait (so `rate()` sees it).
    pub fn rate_bucket(&self, bucket: &str) {
        let labels = BucketLabels {
            bucket: bucket.to_string(),
        };
        drop(self.rate_waits.get_or_create(&labels));
        drop(self.rate_wait_seconds.get_or_create(&labels));
    }

    /// A call waited `took` for room in the rate budget of `bucket`.
    pub fn rate_wait(&self, bucket: &str, took: Duration) {
        let labels = BucketLabels {
            bucket: bucket.to_string(),
        };
        self.rate_waits.get_or_create(&labels).inc();
        self.rate_wait_seconds
            .get_or_create(&labels)
            .inc_by(took.as_secs_f64());
    }

    /// The scrape: the state gauges set from `state`, then everything encoded.
    pub fn render(&self, state: &State) -> String {
        self.set_state(state);
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }

    fn set_state(&self, state: &State) {
        self.queue_depth.clear();
        self.queue_oldest.clear();
        for q in &state.queues {
            let labels = FolderLabels {
                folder: q.folder.clone(),
            };
            self.queue_depth.get_or_create(&labels).set(q.depth as i64);
            self.queue_oldest
                .get_or_create(&labels)
                .set(q.oldest.as_secs_f64());
        }
        self.paused.clear();
        for (account, reason) in &state.paused {
            self.paused
                .get_or_create(&PauseLabels {
                    account: account.clone(),
                    reason: pause_kind(reason).to_string(),
                })
                .set(1);
        }
        self.token_expiry.clear();
        self.refresh_expiry.clear();
        let now = jiff::Timestamp::now();
        for t in &state.tokens {
            let labels = AccountLabels {
                account: t.account.clone(),
            };
            self.token_expiry
                .get_or_create(&labels)
                .set(now.duration_until(t.access).as_secs_f64());
            self.refresh_expiry
                .get_or_create(&labels)
                .set(now.duration_until(t.refresh).as_secs_f64());
        }
    }
}

/// What is a state rather than an event, read at scrape time.
#[derive(Debug, Clone, Default)]
pub struct State {
    pub queues: Vec<Queue>,
    /// (account, why it is paused).
    pub paused: Vec<(String, String)>,
    pub tokens: Vec<TokenExpiry>,
}

/// One watch folder's waiting items.
#[derive(Debug, Clone)]
pub struct Queue {
    pub folder: String,
    pub depth: usize,
    /// How long the oldest has waited.
    pub oldest: Duration,
}

/// When one account's stored tokens expire.
#[derive(Debug, Clone)]
pub struct TokenExpiry {
    pub account: String,
    pub access: jiff::Timestamp,
    pub refresh: jiff::Timestamp,
}

/// A short, bounded label for a pause reason (the full text stays in `tokdrop status`): the
/// error code in it when there is one, else the kind of pause.
pub fn pause_kind(reason: &str) -> &'static str {
    const KINDS: [(&str, &str); 7] = [
        ("auth login", "needs_login"),
        ("authoriz", "needs_login"),
        ("spam_risk_too_many_posts", "daily_post_cap"),
        ("daily", "daily_post_cap"),
        ("rate", "rate_limited"),
        ("unaudited", "unaudited_app"),
        ("privacy", "privacy"),
    ];
    let lower = reason.to_ascii_lowercase();
    KINDS
        .iter()
        .find(|(needle, _)| lower.contains(needle))
        .map_or("other", |(_, kind)| kind)
}

/// A watch folder as metrics label it: its absolute path.
pub fn folder_label(path: &std::path::Path) -> String {
    path.to_string_lossy().into_owned()
}

fn now_unix() -> f64 {
    jiff::Timestamp::now().as_millisecond() as f64 / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pause_reasons_are_bounded_labels() {
        assert_eq!(
            pause_kind("paused: TikTok refused the authorization — run `tokdrop auth login`"),
            "needs_login"
        );
        assert_eq!(
            pause_kind("paused: daily post cap reached (spam_risk_too_many_posts)"),
            "daily_post_cap"
        );
        assert_eq!(pause_kind("something new"), "other");
    }

    /// Counters keep their `_total` suffix and histograms their buckets, in OpenMetrics text.
    #[test]
    fn renders_openmetrics() {
        let m = Metrics::new();
        m.finished("/in", "default", "published", "", true);
        m.tiktok_call("video_init", "ok");
        m.claim_to_init(Duration::from_secs(3));
        let state = State {
            queues: vec![Queue {
                folder: "/in".into(),
                depth: 0,
                oldest: Duration::ZERO,
            }],
            paused: vec![("brand".into(), "paused: daily cap".into())],
            tokens: Vec::new(),
        };
        let text = m.render(&state);
        assert!(
            text.contains("tokdrop_items_total{folder=\"/in\",status=\"published\",reason=\"\"} 1")
        );
        assert!(
            text.contains("tokdrop_tiktok_requests_total{endpoint=\"video_init\",code=\"ok\"} 1")
        );
        assert!(text.contains("tokdrop_claim_to_init_seconds_bucket{le=\"4.0\"} 1"));
        assert!(text.contains("tokdrop_queue_depth{folder=\"/in\"} 0"));
        assert!(
            text.contains("tokdrop_account_paused{account=\"brand\",reason=\"daily_post_cap\"} 1")
        );
        assert!(text.contains("tokdrop_build_info{version=\""));
        assert!(text.ends_with("# EOF\n"));
    }
}
