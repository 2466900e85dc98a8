//! Unit tests of the media probes against the committed ffmpeg samples and hand-made cases.

use super::*;
use std::io::Cursor;
use std::path::PathBuf;

/// Path of a committed test file under `tests/data/media/`.
pub(crate) fn data(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/media")
        .join(name)
}

pub(crate) fn probe_bytes(kind: MediaKind, bytes: &[u8]) -> Result<MediaInfo, MediaError> {
    probe_file(kind, &mut Cursor::new(bytes), bytes.len() as u64)
}

/// Asserts that every proper prefix of `bytes` (including the empty one) is Incomplete.
pub(crate) fn assert_every_cut_incomplete(kind: MediaKind, bytes: &[u8]) {
    for cut in 0..bytes.len() {
        match probe_bytes(kind, &bytes[..cut]) {
            Err(MediaError::Incomplete { .. }) => {}
            other => panic!("cut at {cut} of {}: {other:?}", bytes.len()),
        }
    }
}

/// A tiny xorshift64 generator, enough to shake the parsers without extra crates.
pub(crate) struct XorShift(pub(crate) u64);

impl XorShift {
    pub(crate) fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    pub(crate) fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

const MP4: MediaKind = MediaKind::Video(VideoContainer::Mp4);
const MOV: MediaKind = MediaKind::Video(VideoContainer::Mov);
const WEBM: MediaKind = MediaKind::Video(VideoContainer::WebM);
const JPEG: MediaKind = MediaKind::Image(ImageFormat::Jpeg);
const WEBP: MediaKind = MediaKind::Image(ImageFormat::WebP);

/// Extensions map to kinds case-insensitively, and unknown or missing ones to None.
#[test]
fn kind_from_extension() {
    let table = [
        ("a.mp4", Some(MP4)),
        ("dir.x/A.MOV", Some(MOV)),
        ("clip.WebM", Some(WEBM)),
        ("p.jpg", Some(JPEG)),
        ("p.JPEG", Some(JPEG)),
        ("p.webp", Some(WEBP)),
        ("p.png", None),
        ("mp4", None),
        ("archive.mp4.part", None),
    ];
    for (path, want) in table {
        assert_eq!(MediaKind::from_path(Path::new(path)), want, "{path}");
    }
}

/// Each kind announces the MIME type TikTok expects, and is either a video or an image.
#[test]
fn mime_types_and_helpers() {
    let table = [
        (MP4, "video/mp4"),
        (MOV, "video/quicktime"),
        (WEBM, "video/webm"),
        (JPEG, "image/jpeg"),
        (WEBP, "image/webp"),
    ];
    for (kind, mime) in table {
        assert_eq!(kind.mime_type(), mime);
        assert_eq!(kind.is_video(), mime.starts_with("video/"));
        assert_ne!(kind.is_video(), kind.is_image());
    }
}

/// Error messages read as plain sentences and name the expected format.
#[test]
fn error_messages() {
    let io = MediaError::Io(io::Error::new(io::ErrorKind::PermissionDenied, "denied"));
    assert_eq!(io.to_string(), "cannot read the file: denied");
    assert_eq!(
        incomplete("no moov box").to_string(),
        "incomplete: no moov box"
    );
    let nr = MediaError::NotRecognized {
        expected: "JPEG",
        reason: "no SOI marker at the start".into(),
    };
    assert_eq!(
        nr.to_string(),
        "not a JPEG file (no SOI marker at the start)"
    );
    let err = probe(Path::new("notes.txt")).expect_err("txt is unsupported");
    assert!(err.to_string().contains("\"txt\""), "{err}");
}

/// Every proper prefix of every committed file is Incomplete, except for the live WebM,
/// whose cuts at Cluster and block ends look complete (see `webm.rs`).
#[test]
fn every_cut_of_real_files_is_incomplete() {
    let files = [
        ("h264_moov_at_end.mp4", MP4),
        ("h264_faststart.mp4", MP4),
        ("audio_first.mov", MOV),
        ("vp9.webm", WEBM),
        ("photo.jpg", JPEG),
        ("photo_lossy.webp", WEBP),
        ("photo_lossless.webp", WEBP),
    ];
    for (name, kind) in files {
        let bytes = std::fs::read(data(name)).expect("committed test file");
        assert_every_cut_incomplete(kind, &bytes);
    }
}

/// A file that turns out shorter than the length it was probed with (it is being
/// replaced or truncated) reads as Incomplete, for every format.
#[test]
fn shrinking_file_is_incomplete() {
    let files = [
        ("h264_faststart.mp4", MP4),
        ("vp9.webm", WEBM),
        ("photo.jpg", JPEG),
        ("photo_lossy.webp", WEBP),
    ];
    for (name, kind) in files {
        let bytes = std::fs::read(data(name)).expect("committed test file");
        let cut = &bytes[..bytes.len() / 2];
        let got = probe_file(kind, &mut Cursor::new(cut), bytes.len() as u64);
        assert!(
            matches!(got, Err(MediaError::Incomplete { .. })),
            "{name}: {got:?}"
        );
    }
}

/// A missing file is an Io error, not a panic.
#[test]
fn missing_file_is_io_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let err = probe(&dir.path().join("gone.mp4")).expect_err("missing");
    assert!(matches!(err, MediaError::Io(_)), "{err:?}");
}

/// Every committed ffmpeg file probes Ok with the right facts, passes TikTok's limits,
/// and copies cut at 50%, 90% and size-1 bytes are Incomplete.
#[test]
fn real_files() {
    // (file, kind, duration range in ms, width, height)
    let table = [
        ("h264_moov_at_end.mp4", MP4, Some((900, 1100)), 360, 640),
        ("h264_faststart.mp4", MP4, Some((900, 1100)), 360, 640),
        ("audio_first.mov", MOV, Some((900, 1100)), 360, 640),
        ("vp9.webm", WEBM, Some((900, 1100)), 360, 640),
        ("vp9_live.webm", WEBM, None, 360, 640),
        ("photo.jpg", JPEG, None, 320, 240),
        ("photo_lossy.webp", WEBP, None, 320, 240),
        ("photo_lossless.webp", WEBP, None, 64, 48),
    ];
    let dir = tempfile::tempdir().expect("tempdir");
    for (name, kind, duration, width, height) in table {
        let info = probe(&data(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(info.kind, kind, "{name}");
        match (duration, info.duration_ms) {
            (Some((lo, hi)), Some(ms)) => assert!((lo..=hi).contains(&ms), "{name}: {ms}"),
            (None, None) => {}
            (want, got) => panic!("{name}: duration {got:?}, wanted {want:?}"),
        }
        assert_eq!(
            (info.width, info.height),
            (Some(width), Some(height)),
            "{name}"
        );
        assert_eq!(check_limits(&info, "clip.mp4"), vec![], "{name}");

        let bytes = std::fs::read(data(name)).expect("committed test file");
        let len = bytes.len();
        for cut in [len / 2, len * 9 / 10, len - 1] {
            let path = dir.path().join(name);
            std::fs::write(&path, &bytes[..cut]).expect("write the cut copy");
            match probe(&path) {
                Err(MediaError::Incomplete { .. }) => {}
                other => panic!("{name} cut at {cut} of {len}: {other:?}"),
            }
        }
    }
}

/// probe_file never panics on random bytes, nor on random cuts and mutations of real
/// files, nor when the stated length is longer than the data.
#[test]
fn fuzz_never_panics() {
    let kinds = [MP4, MOV, WEBM, JPEG, WEBP];
    let magic: [&[u8]; 5] = [
        b"\0\0\0\x14ftypisom\0\0\0\0isom",
        b"\0\0\0\x08wide",
        b"\x1a\x45\xdf\xa3\x84\x42\x82\x81w",
        b"\xff\xd8\xff\xe0",
        b"RIFF\x20\0\0\0WEBPVP8L",
    ];
    let mut rng = XorShift(0x9E37_79B9_7F4A_7C15);
    for i in 0..2000 {
        let k = i % kinds.len();
        let mut buf: Vec<u8> = (0..rng.below(600)).map(|_| rng.next() as u8).collect();
        if i % 2 == 0 {
            buf.splice(0..buf.len().min(magic[k].len()), magic[k].iter().copied());
        }
        let extra = if i % 7 == 0 { rng.below(64) as u64 } else { 0 };
        let _ = probe_file(kinds[k], &mut Cursor::new(&buf), buf.len() as u64 + extra);
    }
    let files = [
        ("h264_moov_at_end.mp4", MP4),
        ("h264_faststart.mp4", MP4),
        ("audio_first.mov", MOV),
        ("vp9.webm", WEBM),
        ("vp9_live.webm", WEBM),
        ("photo.jpg", JPEG),
        ("photo_lossy.webp", WEBP),
        ("photo_lossless.webp", WEBP),
    ];
    for (name, kind) in files {
        let original = std::fs::read(data(name)).expect("committed test file");
        for _ in 0..150 {
            let mut buf = original.clone();
            buf.truncate(rng.below(buf.len() + 1));
            for _ in 0..rng.below(8) {
                if buf.is_empty() {
                    break;
                }
                let at = rng.below(buf.len());
                // Mostly single bytes; sometimes a whole 32-bit word, to hit size fields.
                let word = rng.next().to_be_bytes();
                let n = if rng.below(4) == 0 { 4 } else { 1 };
                for (j, b) in word.iter().take(n).enumerate() {
                    if let Some(slot) = buf.get_mut(at + j) {
                        *slot = *b;
                    }
                }
            }
            let _ = probe_bytes(kind, &buf);
        }
    }
}

fn info(kind: MediaKind, size_bytes: u64, duration_ms: Option<u64>, w: u32, h: u32) -> MediaInfo {
    MediaInfo {
        kind,
        size_bytes,
        duration_ms,
        width: Some(w),
        height: Some(h),
        streams: Default::default(),
    }
}

/// check_limits flags exactly the limits a file breaks, naming the field at fault.
#[test]
fn limits() {
    const MIB: u64 = 1024 * 1024;
    let table: [(&str, MediaInfo, &[&str]); 12] = [
        (
            "1080p landscape photo",
            info(JPEG, MIB, None, 1920, 1080),
            &[],
        ),
        (
            "photo taller than 1080p",
            info(WEBP, MIB, None, 1440, 1920),
            &["dimensions"],
        ),
        (
            "21 MiB photo",
            info(JPEG, 21 * MIB, None, 1080, 1080),
            &["size_bytes"],
        ),
        (
            "20,000,000 byte photo exactly",
            info(JPEG, 20_000_000, None, 1080, 1350),
            &[],
        ),
        (
            "20 MiB photo (over 20,000,000 bytes)",
            info(JPEG, 20 * MIB, None, 1080, 1350),
            &["size_bytes"],
        ),
        (
            "4.1 GB video (under 4 GiB, over 4,000,000,000 bytes)",
            info(MP4, 4_100_000_000, Some(1000), 720, 1280),
            &["size_bytes"],
        ),
        (
            "ordinary video",
            info(MP4, 50 * MIB, Some(30_000), 1080, 1920),
            &[],
        ),
        (
            "11 minute video",
            info(MP4, 50 * MIB, Some(660_000), 1080, 1920),
            &["duration_ms"],
        ),
        (
            "10 minute video exactly",
            info(MOV, MIB, Some(600_000), 720, 1280),
            &[],
        ),
        (
            "200x200 video",
            info(WEBM, MIB, Some(1000), 200, 200),
            &["dimensions"],
        ),
        (
            "8K video",
            info(MP4, MIB, Some(1000), 7680, 4320),
            &["dimensions"],
        ),
        (
            "5 GiB video",
            info(MP4, 5 * 1024 * MIB, Some(1000), 720, 1280),
            &["size_bytes"],
        ),
    ];
    for (what, info, fields) in table {
        let got: Vec<&str> = check_limits(&info, "clip.mp4")
            .iter()
            .map(|v| v.field)
            .collect();
        assert_eq!(got, fields, "{what}");
    }
}

/// Limit messages say the limit, the file's value and what to do.
#[test]
fn limit_messages() {
    let photo = check_limits(&info(JPEG, 1000, None, 1440, 1920), "my photo.jpg");
    assert_eq!(
        photo[0].to_string(),
        "TikTok takes photos up to 1080p: the shorter side is 1440 px. scale it down to 1080 px: \
         ffmpeg -i 'my photo.jpg' -vf scale=w=1080:h=1080:force_original_aspect_ratio=increase \
         -q:v 3 'my photo-tiktok.jpg'"
    );
    let long = check_limits(&info(MP4, 1000, Some(660_000), 720, 1280), "clip.mp4");
    assert!(long[0].message.contains("11 min 0 s"), "{}", long[0]);
    assert!(long[0].message.contains("up to 10 minutes"), "{}", long[0]);
    let big = check_limits(&info(JPEG, 21 * 1024 * 1024, None, 100, 100), "clip.mp4");
    assert!(big[0].message.contains("22.0 MB"), "{}", big[0]);
    let small = check_limits(&info(MP4, 1000, None, 200, 200), "clip.mp4");
    assert!(small[0].message.contains("at least 360 px"), "{}", small[0]);
}

/// Facts that could not be read are not checked.
#[test]
fn unknown_facts_pass() {
    let mut i = info(MP4, 1000, None, 0, 0);
    (i.width, i.height) = (None, None);
    assert!(check_limits(&i, "clip.mp4").is_empty());
}
