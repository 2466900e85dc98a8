//! TikTok's FILE_UPLOAD chunk rules (tiktok-api.md §4.5), as the emulator enforces them on an
//! init's `source_info` and on each `PUT`. Written from the documentation, not from any client:
//!
//! - `total_chunk_count = floor(video_size / chunk_size)`, between 1 and 1000;
//! - every chunk at least 5 MB and at most 64 MB, except the last, which takes the remainder
//!   and may reach 128 MB;
//! - files over 64 MB must be sent in several chunks; a file under 5 MB is one chunk whose
//!   `chunk_size` is the file size;
//! - a video is at most 4 GB.
//!
//! Where "MB" is ambiguous the emulator takes the reading that refuses more (a lower bound in
//! binary units, an upper bound in decimal ones), so a plan it accepts is accepted under both.

/// Lower bound of a non-final chunk: 5 MiB.
pub const MIN_CHUNK: u64 = 5 * 1024 * 1024;
/// Upper bound of a non-final chunk, and of a single-chunk file: 64,000,000 bytes.
pub const MAX_CHUNK: u64 = 64_000_000;
/// Upper bound of the final chunk: 128,000,000 bytes.
pub const MAX_FINAL_CHUNK: u64 = 128_000_000;
/// Upper bound of a video: 4,000,000,000 bytes.
pub const MAX_VIDEO: u64 = 4_000_000_000;
/// Upper bound of the chunk count.
pub const MAX_CHUNKS: u64 = 1000;

/// The three `source_info` numbers of a FILE_UPLOAD init.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UploadPlan {
    pub video_size: u64,
    pub chunk_size: u64,
    pub total_chunk_count: u64,
}

impl UploadPlan {
    /// Checks the plan; `scale` multiplies every size first (tests use small files to stand
    /// for large ones; 1 is TikTok). The error is TikTok's message for `invalid_param`.
    pub fn check(&self, scale: u64) -> Result<(), &'static str> {
        let scale = scale.max(1);
        let size = self.video_size.saturating_mul(scale);
        let chunk = self.chunk_size.saturating_mul(scale);
        let count = self.total_chunk_count;
        if size == 0 || size > MAX_VIDEO {
            return Err("The video size is invalid");
        }
        if chunk == 0 || count == 0 || count > MAX_CHUNKS || size / chunk != count {
            return Err("The total chunk count is invalid");
        }
        let last = size - (count - 1) * chunk;
        if count == 1 {
            // One chunk: the whole file, at most 64 MB. Below 5 MB it must be exactly the file.
            if size > MAX_CHUNK || (size < MIN_CHUNK && chunk != size) {
                return Err("The chunk size is invalid");
            }
            return Ok(());
        }
        if !(MIN_CHUNK..=MAX_CHUNK).contains(&chunk) || last > MAX_FINAL_CHUNK {
            return Err("The chunk size is invalid");
        }
        Ok(())
    }

    /// Bytes `first..=last` of chunk `index` (0-based), the last one absorbing the remainder.
    pub fn range(&self, index: u64) -> Option<(u64, u64)> {
        if index >= self.total_chunk_count {
            return None;
        }
        let first = index * self.chunk_size;
        let last = if index + 1 == self.total_chunk_count {
            self.video_size - 1
        } else {
            first + self.chunk_size - 1
        };
        Some((first, last))
    }

    /// The chunk that starts at byte `first`, if the plan has one.
    pub fn range_starting_at(&self, first: u64) -> Option<(u64, u64)> {
        if self.chunk_size == 0 || !first.is_multiple_of(self.chunk_size) {
            return None;
        }
        self.range(first / self.chunk_size)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(video_size: u64, chunk_size: u64, total_chunk_count: u64) -> UploadPlan {
        UploadPlan {
            video_size,
            chunk_size,
            total_chunk_count,
        }
    }

    /// The documented worked example and the edges of each rule.
    #[test]
    fn documented_rules() {
        let ok = [
            plan(50_000_123, 10_000_000, 5),
            plan(4_194_304, 4_194_304, 1),
            plan(1, 1, 1),
            plan(64_000_000, 64_000_000, 1),
            // Literal floor reading: one chunk whose last part exceeds chunk_size.
            plan(15_000_000, 10_000_000, 1),
            plan(3_999_999_999, 64_000_000, 62),
            // The last chunk absorbs the remainder beyond 64 MB (up to 128 MB).
            plan(200_000_000, 60_000_000, 3),
        ];
        for p in ok {
            assert_eq!(p.check(1), Ok(()), "{p:?}");
        }
        let bad = [
            (plan(0, 0, 0), "The video size is invalid"),
            (
                plan(4_000_000_001, 10_000_000, 400),
                "The video size is invalid",
            ),
            (
                plan(50_000_123, 10_000_000, 6),
                "The total chunk count is invalid",
            ),
            (
                plan(50_000_123, 10_000_000, 4),
                "The total chunk count is invalid",
            ),
            (plan(4_000_000, 1_000_000, 4), "The chunk size is invalid"),
            (plan(4_000_000, 2_000_000, 2), "The chunk size is invalid"),
            (plan(3_000_000, 2_000_000, 1), "The chunk size is invalid"),
            (plan(64_000_001, 64_000_001, 1), "The chunk size is invalid"),
            (
                plan(130_000_000, 65_000_000, 2),
                "The chunk size is invalid",
            ),
            (
                plan(200_000_000, 65_000_000, 3),
                "The chunk size is invalid",
            ),
            (
                plan(2_000_000_000, 1_000_000, 2000),
                "The total chunk count is invalid",
            ),
        ];
        for (p, message) in bad {
            assert_eq!(p.check(1), Err(message), "{p:?}");
        }
        // Scaled: 50 kB stands for 50 MB.
        assert_eq!(plan(50_000, 10_000, 5).check(1000), Ok(()));
        assert!(plan(50_000, 10_000, 5).check(1).is_err());
    }

    /// Ranges follow the worked example's Content-Range column.
    #[test]
    fn ranges() {
        let p = plan(50_000_123, 10_000_000, 5);
        assert_eq!(p.range(0), Some((0, 9_999_999)));
        assert_eq!(p.range(4), Some((40_000_000, 50_000_122)));
        assert_eq!(p.range(5), None);
        assert_eq!(
            p.range_starting_at(10_000_000),
            Some((10_000_000, 19_999_999))
        );
        assert_eq!(p.range_starting_at(5), None);
    }
}
