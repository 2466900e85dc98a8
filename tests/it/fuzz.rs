//! Fuzzing the readers of hostile input (issue 17): every media probe and the sidecar reader,
//! on arbitrary bytes and on mutations of real files. They must never panic, and a probe must
//! never read more than its budget ([`tokdrop::content::media::PROBE_MAX_READS`] reads,
//! [`tokdrop::content::media::PROBE_MAX_BYTES`] bytes) — a bound on time that needs no clock.
//!
//! CI runs proptest's default 256 cases per property; the long run sets `PROPTEST_CASES`
//! (see README: Running the tests).

use std::io::{Cursor, Read, Seek, SeekFrom};
use std::path::Path;

use proptest::prelude::*;
use tokdrop::content::media::{self, ImageFormat, MediaKind, VideoContainer};

/// Counts what a probe reads from the "file".
struct Counting {
    inner: Cursor<Vec<u8>>,
    reads: u64,
    bytes: u64,
}

impl Read for Counting {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.reads += 1;
        let n = self.inner.read(buf)?;
        self.bytes += n as u64;
        Ok(n)
    }
}

impl Seek for Counting {
    fn seek(&mut self, to: SeekFrom) -> std::io::Result<u64> {
        self.inner.seek(to)
    }
}

const KINDS: [MediaKind; 5] = [
    MediaKind::Video(VideoContainer::Mp4),
    MediaKind::Video(VideoContainer::Mov),
    MediaKind::Video(VideoContainer::WebM),
    MediaKind::Image(ImageFormat::Jpeg),
    MediaKind::Image(ImageFormat::WebP),
];

/// Probes `bytes` as `kind` and checks the budget held, whatever the verdict.
fn probe_within_budget(kind: MediaKind, bytes: Vec<u8>) {
    let len = bytes.len() as u64;
    let mut file = Counting {
        inner: Cursor::new(bytes),
        reads: 0,
        bytes: 0,
    };
    let _ = media::probe_file(kind, &mut file, len);
    assert!(
        file.reads <= media::PROBE_MAX_READS && file.bytes <= media::PROBE_MAX_BYTES,
        "{kind:?}: {} reads, {} bytes",
        file.reads,
        file.bytes
    );
}

fn seeds() -> Vec<(MediaKind, Vec<u8>)> {
    [
        "h264_faststart.mp4",
        "h264_moov_at_end.mp4",
        "audio_first.mov",
        "vp9.webm",
        "vp9_live.webm",
        "photo.jpg",
        "photo_lossy.webp",
        "photo_lossless.webp",
    ]
    .iter()
    .map(|name| {
        let path = crate::harness::sample(name);
        let kind = MediaKind::from_path(&path).expect("kind");
        let mut bytes = std::fs::read(&path).expect("sample");
        // Keep the mutated inputs small enough for many cases.
        bytes.truncate(256 * 1024);
        (kind, bytes)
    })
    .collect()
}

proptest! {
    #[test]
    fn probes_survive_arbitrary_bytes(kind in 0usize..5, bytes in proptest::collection::vec(any::<u8>(), 0..4096)) {
        probe_within_budget(KINDS[kind], bytes);
    }

    #[test]
    fn probes_survive_mutated_real_files(
        seed in 0usize..8,
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..16),
        cut in any::<prop::sample::Index>(),
        do_cut in any::<bool>(),
    ) {
        let (kind, mut bytes) = seeds().swap_remove(seed);
        for (at, value) in edits {
            let i = at.index(bytes.len());
            bytes[i] = value;
        }
        if do_cut {
            bytes.truncate(cut.index(bytes.len() + 1));
        }
        probe_within_budget(kind, bytes);
    }

    #[test]
    fn the_sidecar_reader_survives_arbitrary_text(text in "\\PC{0,400}") {
        let _ = tokdrop::content::sidecar::parse(Path::new("fuzz.yaml"), &text);
    }

    #[test]
    fn the_sidecar_reader_survives_yaml_shaped_text(
        lines in proptest::collection::vec(
            prop_oneof![
                "(title|description|privacy_level|images|cover_index|not_before|mode|account|disable_comment|brand_content_toggle): .{0,40}",
                "  - .{0,20}",
                "&a \\[\\*a, \\*a\\]",
                "[{}\\[\\]&*!|>'\"#:,-]{1,20}",
            ],
            0..30,
        )
    ) {
        let _ = tokdrop::content::sidecar::parse(Path::new("fuzz.yaml"), &lines.join("\n"));
    }
}

/// Finding 6 of issue 17: a file of 100,000 empty boxes after its `ftyp` is refused by the
/// box count, within the budget, not walked box by box.
#[test]
fn a_file_of_empty_boxes_is_refused_within_the_budget() {
    let mut bytes = b"\0\0\0\x10ftypisom\0\0\0\0".to_vec();
    for _ in 0..100_000 {
        bytes.extend_from_slice(b"\0\0\0\x08free");
    }
    let len = bytes.len() as u64;
    let mut file = Counting {
        inner: Cursor::new(bytes),
        reads: 0,
        bytes: 0,
    };
    let err = media::probe_file(MediaKind::Video(VideoContainer::Mp4), &mut file, len)
        .expect_err("refused");
    assert_eq!(
        err.to_string(),
        "not an MP4 file (it has more than 10000 top-level boxes, far more than any video)"
    );
    assert!(file.reads < 100, "{} reads", file.reads);
}
