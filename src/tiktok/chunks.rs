//! The FILE_UPLOAD chunk plan (tiktok-api.md §4.5, quirks 9 and 10): how a video of a given size
//! is split into sequential PUTs, and the rule check the emulator applies to a plan it receives.
//!
//! TikTok's "MB" is ambiguous (its worked example uses 10,000,000-byte chunks and calls
//! 4,194,304 bytes "4 MB"), so the plan picks values valid under both readings: one chunk up to
//! 64,000,000 bytes (quirk 9: multi-chunk uploads have failed where single ones worked), else
//! 10,000,000-byte chunks with `floor` so the last chunk absorbs the remainder (quirk 10).

use std::fmt;

/// Largest file sent as one chunk (64 MB in the decimal reading, the smaller one).
pub const SINGLE_CHUNK_MAX_BYTES: u64 = 64_000_000;
/// Chunk size of multi-chunk plans.
pub const CHUNK_BYTES: u64 = 10_000_000;
/// Smallest non-final chunk TikTok accepts (5 MB in the binary reading, the larger one).
pub const MIN_CHUNK_BYTES: u64 = 5 * 1024 * 1024;
/// Largest final chunk (128 MB, decimal reading).
pub const MAX_LAST_CHUNK_BYTES: u64 = 128_000_000;
/// TikTok's chunk count limit.
pub const MAX_CHUNKS: u64 = 1000;
/// TikTok's video size limit (4 GB, decimal reading).
pub const MAX_VIDEO_BYTES: u64 = 4_000_000_000;

/// `source_info` values of a FILE_UPLOAD init, and the chunks they imply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChunkPlan {
    pub video_size: u64,
    pub chunk_size: u64,
    pub total_chunk_count: u64,
}

/// One PUT of a plan: bytes `first_byte..=last_byte` (inclusive, as `Content-Range` counts).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Chunk {
    /// 0-based position in the plan.
    pub index: u64,
    pub first_byte: u64,
    pub last_byte: u64,
}

impl Chunk {
    pub fn len(&self) -> u64 {
        self.last_byte - self.first_byte + 1
    }

    pub fn is_empty(&self) -> bool {
        false
    }

    /// The `Content-Range` request header: `bytes FIRST-LAST/TOTAL`.
    pub fn content_range(&self, video_size: u64) -> String {
        format!(
            "bytes {}-{}/{}",
            self.first_byte, self.last_byte, video_size
        )
    }
}

/// A size TikTok cannot take.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChunkPlanError {
    #[error("the video file is empty")]
    Empty,
    #[error(
        "the video is {size_bytes} bytes; TikTok accepts at most {max_bytes} bytes (4 GB) by FILE_UPLOAD"
    )]
    TooLarge { size_bytes: u64, max_bytes: u64 },
    #[error("the video would need {chunks} chunks; TikTok accepts at most {max}")]
    TooManyChunks { chunks: u64, max: u64 },
}

impl ChunkPlan {
    /// The plan tokdrop sends for a video of `video_size` bytes.
    pub fn for_size(video_size: u64) -> Result<Self, ChunkPlanError> {
        if video_size == 0 {
            return Err(ChunkPlanError::Empty);
        }
        if video_size <= SINGLE_CHUNK_MAX_BYTES {
            return Ok(Self {
                video_size,
                chunk_size: video_size,
                total_chunk_count: 1,
            });
        }
        let total = video_size / CHUNK_BYTES;
        if total > MAX_CHUNKS {
            return Err(ChunkPlanError::TooManyChunks {
                chunks: total,
                max: MAX_CHUNKS,
            });
        }
        if video_size > MAX_VIDEO_BYTES {
            return Err(ChunkPlanError::TooLarge {
                size_bytes: video_size,
                max_bytes: MAX_VIDEO_BYTES,
            });
        }
        Ok(Self {
            video_size,
            chunk_size: CHUNK_BYTES,
            total_chunk_count: total,
        })
    }

    /// The chunks in upload order; the last one absorbs the remainder.
    pub fn chunks(&self) -> impl Iterator<Item = Chunk> + '_ {
        (0..self.total_chunk_count).map(move |index| {
            let first_byte = index * self.chunk_size;
            let last_byte = if index + 1 == self.total_chunk_count {
                self.video_size - 1
            } else {
                first_byte + self.chunk_size - 1
            };
            Chunk {
                index,
                first_byte,
                last_byte,
            }
        })
    }

    /// TikTok's rules for a received plan (tiktok-api.md §4.5), strictest reading; `Err` holds
    /// the message TikTok would send with `invalid_param`. Used by the emulator.
    pub fn check(&self) -> Result<(), &'static str> {
        let Self {
            video_size,
            chunk_size,
            total_chunk_count: total,
        } = *self;
        if video_size == 0 || video_size > MAX_VIDEO_BYTES {
            return Err("The video size is invalid");
        }
        if total == 0 || total > MAX_CHUNKS {
            return Err("The total chunk count is invalid");
        }
        if total == 1 {
            if chunk_size != video_size || video_size > SINGLE_CHUNK_MAX_BYTES {
                return Err("The chunk size is invalid");
            }
            return Ok(());
        }
        if !(MIN_CHUNK_BYTES..=SINGLE_CHUNK_MAX_BYTES).contains(&chunk_size) {
            return Err("The chunk size is invalid");
        }
        if video_size / chunk_size != total {
            return Err("The total chunk count is invalid");
        }
        if video_size - (total - 1) * chunk_size > MAX_LAST_CHUNK_BYTES {
            return Err("The chunk size is invalid");
        }
        Ok(())
    }
}

impl fmt::Display for ChunkPlan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "video_size={} chunk_size={} total_chunk_count={}",
            self.video_size, self.chunk_size, self.total_chunk_count
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1024 * 1024;

    /// Plans around every boundary: single chunk up to 64,000,000 B, floor above it.
    #[test]
    fn plans_follow_the_rules() {
        // (size, chunk_size, total, last chunk length)
        let cases = [
            (1, 1, 1, 1),
            (4_194_304, 4_194_304, 1, 4_194_304),
            (5 * MIB, 5 * MIB, 1, 5 * MIB),
            (5_000_000, 5_000_000, 1, 5_000_000),
            (15_000_000, 15_000_000, 1, 15_000_000),
            (64_000_000, 64_000_000, 1, 64_000_000),
            (64_000_001, 10_000_000, 6, 14_000_001),
            (64 * MIB, 10_000_000, 6, 17_108_864),
            (50_000_123, 50_000_123, 1, 50_000_123),
            (128 * MIB, 10_000_000, 13, 14_217_728),
            (4_000_000_000, 10_000_000, 400, 10_000_000),
        ];
        for (size, chunk_size, total, last_len) in cases {
            let plan = ChunkPlan::for_size(size).expect("plannable");
            assert_eq!(
                (plan.chunk_size, plan.total_chunk_count),
                (chunk_size, total),
                "{size}"
            );
            let chunks: Vec<Chunk> = plan.chunks().collect();
            assert_eq!(chunks.len() as u64, total);
            assert_eq!(chunks.last().map(Chunk::len), Some(last_len), "{size}");
            assert_eq!(chunks.iter().map(Chunk::len).sum::<u64>(), size);
            assert!(
                chunks
                    .windows(2)
                    .all(|w| w[0].last_byte + 1 == w[1].first_byte)
            );
            assert_eq!(
                plan.check(),
                Ok(()),
                "our own plan passes TikTok's rules: {size}"
            );
        }
    }

    /// Sizes TikTok cannot take are refused before any call.
    #[test]
    fn impossible_sizes_are_errors() {
        assert_eq!(ChunkPlan::for_size(0), Err(ChunkPlanError::Empty));
        assert!(matches!(
            ChunkPlan::for_size(4_000_000_001),
            Err(ChunkPlanError::TooLarge { .. })
        ));
        assert!(matches!(
            ChunkPlan::for_size(10 * 1024 * MIB + 1),
            Err(ChunkPlanError::TooManyChunks {
                chunks: 1073,
                max: 1000
            })
        ));
    }

    /// The documented worked example: 5 chunks, the last 10,000,123 bytes.
    #[test]
    fn worked_example_content_ranges() {
        let plan = ChunkPlan {
            video_size: 50_000_123,
            chunk_size: 10_000_000,
            total_chunk_count: 5,
        };
        assert_eq!(plan.check(), Ok(()));
        let ranges: Vec<String> = plan
            .chunks()
            .map(|c| c.content_range(plan.video_size))
            .collect();
        assert_eq!(ranges[0], "bytes 0-9999999/50000123");
        assert_eq!(ranges[4], "bytes 40000000-50000122/50000123");
    }

    /// The emulator's rule check rejects the classic mistakes.
    #[test]
    fn check_rejects_bad_plans() {
        let bad = [
            // ceil instead of floor: tiny last chunk
            (25_000_000, 10_000_000, 3),
            // quirk 10: one chunk but chunk_size != video_size
            (15_000_000, 10_000_000, 1),
            // too small non-final chunks
            (20_000_000, 4_000_000, 5),
            // single chunk above 64 MB
            (70_000_000, 70_000_000, 1),
            // last chunk above 128 MB
            (200_000_000, 64_000_000, 1),
            (0, 0, 0),
        ];
        for (video_size, chunk_size, total_chunk_count) in bad {
            let plan = ChunkPlan {
                video_size,
                chunk_size,
                total_chunk_count,
            };
            assert!(plan.check().is_err(), "{plan}");
        }
    }
}
