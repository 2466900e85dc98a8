//! `Range` / `If-Range` evaluation for a single representation (RFC 9110
//! §14.2, §13.1.5): one byte range gives 206, an unsatisfiable one 416,
//! anything else (absent, malformed, multi-range, stale `If-Range`) the full
//! 200 response.

use std::time::SystemTime;

use httpdate::HttpDate;

/// What to send for a GET.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum RangeDecision {
    /// 200 with the whole file.
    Full,
    /// 206 with bytes `start..=end` (inclusive, `end < size`).
    Partial { start: u64, end: u64 },
    /// 416 with `Content-Range: bytes */size`.
    Unsatisfiable,
}

/// Decides the response for a GET given the request's `Range` and
/// `If-Range` values and the file's validators.
pub(crate) fn evaluate(
    range: Option<&[u8]>,
    if_range: Option<&[u8]>,
    etag: &str,
    last_modified: SystemTime,
    size: u64,
) -> RangeDecision {
    let Some(range) = range else {
        return RangeDecision::Full;
    };
    if let Some(cond) = if_range
        && !if_range_matches(cond, etag, last_modified)
    {
        return RangeDecision::Full;
    }
    parse_range(range, size)
}

/// `If-Range`: a strong entity-tag equal to ours, or exactly our date.
fn if_range_matches(cond: &[u8], etag: &str, last_modified: SystemTime) -> bool {
    let Ok(cond) = std::str::from_utf8(cond) else {
        return false;
    };
    let cond = cond.trim();
    if cond.starts_with('"') {
        return cond == etag;
    }
    if cond.starts_with("W/") {
        return false; // weak tags never match (strong comparison)
    }
    match httpdate::parse_http_date(cond) {
        Ok(date) => HttpDate::from(date) == HttpDate::from(last_modified),
        Err(_) => false,
    }
}

/// Parses `bytes=<range-set>` against a representation of `size` bytes.
fn parse_range(value: &[u8], size: u64) -> RangeDecision {
    let Ok(value) = std::str::from_utf8(value) else {
        return RangeDecision::Full;
    };
    let Some((unit, set)) = value.trim().split_once('=') else {
        return RangeDecision::Full;
    };
    if !unit.trim().eq_ignore_ascii_case("bytes") {
        return RangeDecision::Full;
    }
    let mut specs = set.split(',').map(str::trim).filter(|s| !s.is_empty());
    let (Some(spec), None) = (specs.next(), specs.next()) else {
        return RangeDecision::Full; // empty or multi-range: send it all
    };
    let Some((first, last)) = spec.split_once('-') else {
        return RangeDecision::Full;
    };
    let (first, last) = (first.trim(), last.trim());
    if first.is_empty() {
        // suffix-range: the last N bytes
        let Some(n) = number(last) else {
            return RangeDecision::Full;
        };
        if n == 0 || size == 0 {
            return RangeDecision::Unsatisfiable;
        }
        return RangeDecision::Partial {
            start: size - n.min(size),
            end: size - 1,
        };
    }
    let Some(start) = number(first) else {
        return RangeDecision::Full;
    };
    let end = if last.is_empty() {
        u64::MAX
    } else {
        match number(last) {
            Some(end) if end >= start => end,
            _ => return RangeDecision::Full, // invalid: last-pos < first-pos
        }
    };
    if start >= size {
        return RangeDecision::Unsatisfiable;
    }
    RangeDecision::Partial {
        start,
        end: end.min(size - 1),
    }
}

/// 1*DIGIT, saturating on overflow (a huge position is just "past the end").
fn number(s: &str) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(s.bytes().fold(0u64, |n, d| {
        n.saturating_mul(10).saturating_add(u64::from(d - b'0'))
    }))
}

#[cfg(test)]
mod tests {
    use super::RangeDecision::{Full, Partial, Unsatisfiable};
    use super::*;
    use std::time::Duration;

    /// The RFC 9110 range cases, each against a 10 000-byte file.
    #[test]
    fn range_case_table() {
        let cases: &[(&str, RangeDecision)] = &[
            ("bytes=0-499", Partial { start: 0, end: 499 }),
            (
                "bytes=500-999",
                Partial {
                    start: 500,
                    end: 999,
                },
            ),
            (
                "bytes=-500",
                Partial {
                    start: 9500,
                    end: 9999,
                },
            ),
            (
                "bytes=9500-",
                Partial {
                    start: 9500,
                    end: 9999,
                },
            ),
            ("bytes=0-0", Partial { start: 0, end: 0 }),
            (
                "bytes=-1",
                Partial {
                    start: 9999,
                    end: 9999,
                },
            ),
            (
                "bytes=0-",
                Partial {
                    start: 0,
                    end: 9999,
                },
            ),
            (
                "bytes=9999-20000",
                Partial {
                    start: 9999,
                    end: 9999,
                },
            ),
            (
                "bytes=-20000",
                Partial {
                    start: 0,
                    end: 9999,
                },
            ),
            ("BYTES = 5-9", Partial { start: 5, end: 9 }),
            ("bytes= 5-9 ", Partial { start: 5, end: 9 }),
            ("bytes=5-9,", Partial { start: 5, end: 9 }),
            ("bytes=10000-", Unsatisfiable),
            ("bytes=10000-10001", Unsatisfiable),
            ("bytes=99999999999999999999999-", Unsatisfiable),
            ("bytes=-0", Unsatisfiable),
            ("bytes=0-499,1000-1499", Full),
            ("bytes=0-1,0-1", Full),
            ("bytes=500-400", Full),
            ("bytes=", Full),
            ("bytes=-", Full),
            ("bytes=a-b", Full),
            ("bytes=+1-2", Full),
            ("bytes=1", Full),
            ("items=0-1", Full),
            ("0-1", Full),
        ];
        let t = SystemTime::UNIX_EPOCH;
        for (header, want) in cases {
            let got = evaluate(Some(header.as_bytes()), None, "\"e\"", t, 10_000);
            assert_eq!(got, *want, "Range: {header}");
        }
    }

    /// An empty file satisfies no range, and no Range header means 200.
    #[test]
    fn empty_file_and_no_range() {
        let t = SystemTime::UNIX_EPOCH;
        assert_eq!(
            evaluate(Some(b"bytes=0-"), None, "\"e\"", t, 0),
            Unsatisfiable
        );
        assert_eq!(
            evaluate(Some(b"bytes=-5"), None, "\"e\"", t, 0),
            Unsatisfiable
        );
        assert_eq!(evaluate(None, Some(b"\"e\""), "\"e\"", t, 0), Full);
    }

    /// If-Range honours the range only for our strong ETag or exact date.
    #[test]
    fn if_range_table() {
        let modified = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let date = httpdate::fmt_http_date(modified);
        let earlier = httpdate::fmt_http_date(modified - Duration::from_secs(1));
        let part = Partial { start: 0, end: 9 };
        let cases: &[(&str, RangeDecision)] = &[
            ("\"abc\"", part),
            ("\"other\"", Full),
            ("W/\"abc\"", Full),
            (&date, part),
            (&earlier, Full),
            ("garbage", Full),
        ];
        for (cond, want) in cases {
            let got = evaluate(
                Some(b"bytes=0-9"),
                Some(cond.as_bytes()),
                "\"abc\"",
                modified,
                100,
            );
            assert_eq!(got, *want, "If-Range: {cond}");
        }
    }
}
