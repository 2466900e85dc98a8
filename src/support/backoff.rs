//! The one back-off policy of tokdrop's retries: the TikTok client's own tries
//! (`tiktok::budget::RetryPolicy`), chunk PUTs, the publisher's retries of creator_info and of
//! inits TikTok refused without creating anything, a claim or a finish that failed, a
//! notification that could not be delivered. Exponential from `initial` by `factor`,
//! capped at `max`; a `Retry-After` TikTok sent is honoured (within `max`). Pure: the caller
//! sleeps, cancellably.

use std::time::Duration;

/// Delays between tries of one call.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Backoff {
    /// The wait before the second try.
    pub initial: Duration,
    /// Each wait is this many times the one before.
    pub factor: f64,
    /// No wait is longer (a `Retry-After` included).
    pub max: Duration,
}

impl Backoff {
    /// The publisher's retries: 5 s, 10 s, 20 s, … up to 5 minutes.
    pub const PUBLISHER: Backoff = Backoff {
        initial: Duration::from_secs(5),
        factor: 2.0,
        max: Duration::from_secs(300),
    };

    /// Moving files that failed (a full disk, a folder that cannot be written): 2 s, 4 s, …
    /// up to 5 minutes.
    pub const FILES: Backoff = Backoff {
        initial: Duration::from_secs(2),
        factor: 2.0,
        max: Duration::from_secs(300),
    };

    /// Notifications (an `on_result` command, a webhook delivery): 10 s, 20 s, … up to 10
    /// minutes.
    pub const NOTIFY: Backoff = Backoff {
        initial: Duration::from_secs(10),
        factor: 2.0,
        max: Duration::from_secs(600),
    };

    /// The wait after `failures` failed tries (1 = the first failed): TikTok's `retry_after`
    /// when it sent one, else `initial × factor^(failures-1)`, never above `max`.
    pub fn delay(&self, failures: u32, retry_after: Option<Duration>) -> Duration {
        if let Some(wait) = retry_after {
            return wait.min(self.max);
        }
        let exp = i32::try_from(failures.saturating_sub(1).min(64)).unwrap_or(64);
        let secs = self.initial.as_secs_f64() * self.factor.max(1.0).powi(exp);
        if !secs.is_finite() || secs >= self.max.as_secs_f64() {
            return self.max;
        }
        Duration::from_secs_f64(secs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Doubling from the initial wait, capped; Retry-After wins, within the cap.
    #[test]
    fn delays_grow_to_the_cap_and_honour_retry_after() {
        let b = Backoff::PUBLISHER;
        let secs = |n, ra: Option<u64>| b.delay(n, ra.map(Duration::from_secs)).as_secs();
        let cases = [
            (1, None, 5),
            (2, None, 10),
            (3, None, 20),
            (7, None, 300),
            (200, None, 300),
            (1, Some(42), 42),
            (5, Some(1), 1),
            (1, Some(3600), 300),
        ];
        for (failures, retry_after, want) in cases {
            assert_eq!(
                secs(failures, retry_after),
                want,
                "{failures} {retry_after:?}"
            );
        }
        assert_eq!(b.delay(0, None), b.initial);
    }
}
