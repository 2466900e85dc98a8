//! Randomized writers against the completeness decision (SPEC §3): seeded runs write sample
//! files in random pieces, with random pauses (up to twice `settle`), closes and reopens,
//! truncate-and-rewrite, and a random sidecar. After every piece the intake tracker is asked;
//! it must never say "complete" before the last byte is written, and must say so within
//! `settle` after it.
//!
//! Live-written WebM (unknown segment size) is left out on purpose: a writer that stalls longer
//! than `settle` exactly at a cluster boundary produces a file that is structurally complete;
//! only the settle time protects it (documented in `media::webm`).

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::time::Duration;

use tokdrop::content::sidecar::rules::Kind;
use tokdrop::lifecycle::intake::{Readiness, Tracker};
use tokdrop::lifecycle::items::ItemFiles;
use tokio::time::Instant;

use crate::harness::sample;

/// xorshift64*: deterministic, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

const SAMPLES: [(&str, &str, Kind); 5] = [
    ("h264_moov_at_end.mp4", "v.mp4", Kind::Video),
    ("h264_faststart.mp4", "v.mp4", Kind::Video),
    ("audio_first.mov", "v.mov", Kind::Video),
    ("vp9.webm", "v.webm", Kind::Video),
    ("photo.jpg", "p.jpg", Kind::Photo),
];

/// 1 200 seeded writers: never complete early, always complete within settle after the end.
#[test]
fn random_writers_are_never_taken_early() {
    let settle = Duration::from_millis(500);
    let dir = tempfile::tempdir().expect("tempdir");
    let mut rng = Rng(0x7064_7264_726f_7031);
    for run in 0..1200 {
        let (name, target, kind) = SAMPLES[(rng.below(SAMPLES.len() as u64)) as usize];
        let bytes = fs::read(sample(name)).expect("sample");
        let path = dir.path().join(format!("{run}-{target}"));
        let sidecar = (rng.below(2) == 0).then(|| dir.path().join(format!("{run}-{target}.yaml")));
        if let Some(s) = &sidecar {
            fs::write(s, "title: x\n").expect("sidecar");
        }
        let item = ItemFiles {
            kind,
            path: path.clone(),
            name: target.to_string(),
            media: vec![path.clone()],
            sidecar: sidecar.clone(),
            problems: Vec::new(),
        };
        let mut tracker = Tracker::new(settle, false);
        let mut now = Instant::now();
        let fast_ok = sidecar.is_some();
        // Optionally write a wrong start first, then truncate and rewrite from zero.
        if rng.below(5) == 0 {
            fs::write(&path, &bytes[..bytes.len() / 2]).expect("first try");
            now += Duration::from_millis(rng.below(1000));
            let _ = tracker.observe(&item, now, fast_ok);
            fs::write(&path, b"").expect("truncate");
            tracker.touched(now);
        }
        let pieces = 1 + rng.below(12) as usize;
        let mut written = 0usize;
        let mut file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .expect("open");
        for i in 0..pieces {
            let end = if i + 1 == pieces {
                bytes.len()
            } else {
                (written + 1 + rng.below((bytes.len() - written) as u64) as usize).min(bytes.len())
            };
            file.write_all(&bytes[written..end]).expect("write");
            written = end;
            tracker.touched(now);
            if rng.below(3) == 0 {
                // The writer closes and reopens between pieces (a close-write hint each time).
                drop(file);
                tracker.closed(&path);
                file = OpenOptions::new().append(true).open(&path).expect("reopen");
            }
            now += Duration::from_millis(rng.below(2 * settle.as_millis() as u64));
            let r = tracker.observe(&item, now, fast_ok);
            if written < bytes.len() {
                assert_ne!(
                    r,
                    Readiness::Complete,
                    "run {run} ({name}, {pieces} pieces): taken at {written} of {} bytes",
                    bytes.len()
                );
            }
            if written == bytes.len() {
                break;
            }
        }
        drop(file);
        tracker.closed(&path);
        let r = tracker.observe(&item, now, fast_ok);
        let done = match r {
            Readiness::Complete => true,
            Readiness::Settling { until } if until <= now + settle => {
                tracker.observe(&item, until, fast_ok) == Readiness::Complete
            }
            _ => false,
        };
        assert!(
            done,
            "run {run} ({name}): not complete within settle after the last byte: {r:?}"
        );
        let _ = fs::remove_file(&path);
        if let Some(s) = sidecar {
            let _ = fs::remove_file(s);
        }
    }
}
