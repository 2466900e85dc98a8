//! Per-item download statistics: request and byte counters, access times,
//! changed-file refusals, and full-download detection from the union of
//! delivered byte ranges.

use std::time::SystemTime;

/// Past this many disjoint delivered ranges per file, coverage restarts.
const MAX_COVERAGE_RANGES: usize = 64;

/// Download statistics of one item.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ItemStats {
    /// Requests that named a valid token and name (any outcome).
    pub requests: u64,
    /// Every body byte sent, repeats included.
    pub bytes_sent: u64,
    /// Distinct bytes of the files delivered at least once (never more than their size):
    /// what "TikTok fetched" reports.
    pub distinct_bytes: u64,
    pub first_access: Option<SystemTime>,
    pub last_access: Option<SystemTime>,
    /// Times every byte of a file was delivered (one 200, or ranges that
    /// together cover the file).
    pub full_downloads: u64,
    /// Requests refused because the file changed since it was claimed.
    pub changed_refusals: u64,
    pub files: Vec<FileStats>,
}

/// Download statistics of one file of an item.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FileStats {
    pub name: String,
    pub requests: u64,
    pub bytes_sent: u64,
    /// Distinct bytes delivered at least once, at most the file's size.
    pub distinct_bytes: u64,
    pub full_downloads: u64,
}

/// Mutable statistics of one item, behind the item's mutex.
#[derive(Debug)]
pub(crate) struct StatsState {
    stats: ItemStats,
    /// Per file: sorted, disjoint, non-adjacent delivered byte ranges.
    coverage: Vec<Vec<(u64, u64)>>,
}

impl StatsState {
    /// Statistics of an item whose files have these names.
    pub(crate) fn new<'n>(names: impl IntoIterator<Item = &'n str>) -> Self {
        let files: Vec<FileStats> = names
            .into_iter()
            .map(|name| FileStats {
                name: name.to_string(),
                ..FileStats::default()
            })
            .collect();
        let coverage = vec![Vec::new(); files.len()];
        StatsState {
            stats: ItemStats {
                files,
                ..ItemStats::default()
            },
            coverage,
        }
    }

    pub(crate) fn snapshot(&self) -> ItemStats {
        self.stats.clone()
    }

    /// Whether every file has been delivered whole at least once.
    pub(crate) fn is_whole(&self) -> bool {
        !self.stats.files.is_empty() && self.stats.files.iter().all(|f| f.full_downloads > 0)
    }

    /// A request named this file (valid token and name).
    pub(crate) fn note_request(&mut self, index: usize) {
        let now = SystemTime::now();
        self.stats.requests += 1;
        self.stats.first_access.get_or_insert(now);
        self.stats.last_access = Some(now);
        if let Some(f) = self.stats.files.get_mut(index) {
            f.requests += 1;
        }
    }

    /// A request was refused because the file is not what was claimed.
    pub(crate) fn note_changed(&mut self) {
        self.stats.changed_refusals += 1;
    }

    /// `n` more body bytes of file `index` were handed to the connection.
    pub(crate) fn note_bytes(&mut self, index: usize, n: u64) {
        self.stats.bytes_sent += n;
        if let Some(f) = self.stats.files.get_mut(index) {
            f.bytes_sent += n;
        }
    }

    /// A response body ended after delivering `[start, start+len)`;
    /// `complete` says whether it delivered everything it promised.
    pub(crate) fn note_delivered(
        &mut self,
        index: usize,
        size: u64,
        start: u64,
        len: u64,
        complete: bool,
    ) {
        let full = if size == 0 {
            complete
        } else {
            let Some(cov) = self.coverage.get_mut(index) else {
                return;
            };
            add_range(cov, start, start.saturating_add(len));
            let full = cov.first().is_some_and(|&(a, b)| a == 0 && b >= size);
            let covered: u64 = cov
                .iter()
                .map(|&(a, b)| b.min(size).saturating_sub(a))
                .sum();
            let covered = if full { size } else { covered.min(size) };
            if let Some(f) = self.stats.files.get_mut(index)
                && covered > f.distinct_bytes
            {
                self.stats.distinct_bytes += covered - f.distinct_bytes;
                f.distinct_bytes = covered;
            }
            if full || cov.len() > MAX_COVERAGE_RANGES {
                cov.clear();
            }
            full
        };
        if full {
            self.stats.full_downloads += 1;
            if let Some(f) = self.stats.files.get_mut(index) {
                f.full_downloads += 1;
            }
        }
    }
}

/// Merges `[start, end)` into a sorted list of disjoint, non-adjacent ranges.
pub(crate) fn add_range(cov: &mut Vec<(u64, u64)>, start: u64, end: u64) {
    if start >= end {
        return;
    }
    let (mut s, mut e) = (start, end);
    cov.retain(|&(a, b)| {
        if b < s || a > e {
            true
        } else {
            s = s.min(a);
            e = e.max(b);
            false
        }
    });
    let at = cov.partition_point(|&(a, _)| a < s);
    cov.insert(at, (s, e));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one_file() -> StatsState {
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("a.mp4");
        std::fs::write(&path, [0u8; 10]).expect("write");
        StatsState::new(["a.mp4"])
    }

    /// "TikTok fetched" counts distinct bytes: 48 full downloads of a file are 100 %, not
    /// 4800 %, and overlapping ranges count once.
    #[test]
    fn fetched_counts_distinct_bytes_up_to_the_size() {
        let mut s = one_file();
        s.note_delivered(0, 1000, 0, 300, true);
        s.note_delivered(0, 1000, 200, 300, true);
        assert_eq!(s.snapshot().distinct_bytes, 500);
        for _ in 0..48 {
            s.note_delivered(0, 1000, 0, 1000, true);
        }
        let snap = s.snapshot();
        assert_eq!(snap.distinct_bytes, 1000);
        assert_eq!(snap.files[0].distinct_bytes, 1000);
        assert_eq!(snap.full_downloads, 48);
    }
}
