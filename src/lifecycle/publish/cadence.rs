//! How often a publish_id is polled (tiktok-api.md §10): every 5 s for the first two minutes,
//! every 20 s until 15 minutes, then every 3 minutes; a public post that is complete but has no
//! post id yet is polled every 5 minutes. All well inside 30 calls/min per token.

use std::time::Duration;

/// The wait before the next status poll, `elapsed` after the init was accepted.
pub fn next_poll(elapsed: Duration, awaiting_post_id: bool) -> Duration {
    if awaiting_post_id {
        return Duration::from_secs(300);
    }
    match elapsed.as_secs() {
        0..120 => Duration::from_secs(5),
        120..900 => Duration::from_secs(20),
        _ => Duration::from_secs(180),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The cadence slows down in steps and never exceeds TikTok's 30 status calls per minute.
    #[test]
    fn cadence_steps() {
        let cases = [
            (0, false, 5),
            (119, false, 5),
            (120, false, 20),
            (899, false, 20),
            (900, false, 180),
            (10, true, 300),
        ];
        for (secs, waiting, want) in cases {
            assert_eq!(
                next_poll(Duration::from_secs(secs), waiting),
                Duration::from_secs(want),
                "{secs}s"
            );
            assert!(60 / next_poll(Duration::from_secs(secs), waiting).as_secs() <= 30);
        }
    }
}
