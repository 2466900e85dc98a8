//! Unit tests of the WebM/Matroska completeness probe.

use super::*;
use crate::content::media::tests::{assert_every_cut_incomplete, probe_bytes};
use crate::content::media::{MediaKind, VideoContainer};

const WEBM: MediaKind = MediaKind::Video(VideoContainer::WebM);
const UNKNOWN: [u8; 8] = [0x01, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF];

fn id_bytes(id: u32) -> Vec<u8> {
    let b = id.to_be_bytes();
    let skip = b.iter().position(|&x| x != 0).unwrap_or(3);
    b[skip..].to_vec()
}

/// An element with a known size (1-byte size when it fits, else 8 bytes).
fn el(id: u32, body: &[u8]) -> Vec<u8> {
    let size = if body.len() < 0x7F {
        vec![0x80 | body.len() as u8]
    } else {
        let mut s = (body.len() as u64).to_be_bytes();
        s[0] = 0x01;
        s.to_vec()
    };
    [id_bytes(id), size, body.to_vec()].concat()
}

/// An element of unknown size, as live writers produce.
fn el_open(id: u32, body: &[u8]) -> Vec<u8> {
    [id_bytes(id), UNKNOWN.to_vec(), body.to_vec()].concat()
}

fn header(doc_type: &str) -> Vec<u8> {
    el(
        EBML,
        &[el(0x4286, &[1]), el(DOC_TYPE, doc_type.as_bytes())].concat(),
    )
}

fn info(scale: u32, duration: &[u8]) -> Vec<u8> {
    el(
        INFO,
        &[
            el(TIMECODE_SCALE, &scale.to_be_bytes()),
            el(DURATION, duration),
        ]
        .concat(),
    )
}

fn tracks(w: u16, h: u16) -> Vec<u8> {
    let audio = el(TRACK_ENTRY, &[el(TRACK_TYPE, &[2])].concat());
    let video = el(
        VIDEO,
        &[
            el(PIXEL_WIDTH, &w.to_be_bytes()),
            el(PIXEL_HEIGHT, &h.to_be_bytes()),
        ]
        .concat(),
    );
    el(
        TRACKS,
        &[
            audio,
            el(TRACK_ENTRY, &[el(TRACK_TYPE, &[1]), video].concat()),
        ]
        .concat(),
    )
}

fn blocks() -> Vec<u8> {
    [
        el(0xE7, &[0]),
        el(0xA3, &[0x81, 0, 0, 0x80, 1, 2, 3, 4]),
        el(0xA3, &[0x81, 0, 1, 0, 5, 6]),
    ]
    .concat()
}

/// Info, Tracks and two clusters: the body of every test Segment.
fn children(open_clusters: bool) -> Vec<Vec<u8>> {
    let cluster = |b: &[u8]| {
        if open_clusters {
            el_open(CLUSTER, b)
        } else {
            el(CLUSTER, b)
        }
    };
    vec![
        info(1_000_000, &1500f64.to_be_bytes()),
        tracks(1080, 1920),
        cluster(&blocks()),
        cluster(&blocks()),
    ]
}

/// A webm file whose Segment (known or unknown size) holds `children`.
fn file(open: bool, children: &[Vec<u8>]) -> Vec<u8> {
    let body = children.concat();
    let segment = if open {
        el_open(SEGMENT, &body)
    } else {
        el(SEGMENT, &body)
    };
    [header("webm"), segment].concat()
}

fn known() -> Vec<u8> {
    file(false, &children(false))
}

fn live(open_clusters: bool) -> Vec<u8> {
    file(true, &children(open_clusters))
}

/// Known-size, live and Matroska files probe Ok with duration and the video track's size.
#[test]
fn valid_files() {
    let f32_duration = file(
        false,
        &[info(1_000_000, &2500f32.to_be_bytes()), tracks(1080, 1920)],
    );
    let micro_ticks = file(
        false,
        &[info(1000, &2e6f64.to_be_bytes()), tracks(1080, 1920)],
    );
    let void_first = [
        header("webm"),
        el(VOID, &[0; 5]),
        el(SEGMENT, &children(false).concat()),
    ]
    .concat();
    let matroska = [header("matroska"), el(SEGMENT, &children(false).concat())].concat();
    let table: [(&str, Vec<u8>, u64); 7] = [
        ("known-size segment", known(), 1500),
        ("live segment, known-size clusters", live(false), 1500),
        ("live segment, unknown-size clusters", live(true), 1500),
        ("32-bit float duration", f32_duration, 2500),
        ("microsecond timecode scale", micro_ticks, 2000),
        ("Void before the Segment", void_first, 1500),
        ("matroska doc type", matroska, 1500),
    ];
    for (what, bytes, ms) in table {
        let info = probe_bytes(WEBM, &bytes).unwrap_or_else(|e| panic!("{what}: {e}"));
        assert_eq!(info.duration_ms, Some(ms), "{what}");
        assert_eq!(
            (info.width, info.height),
            (Some(1080), Some(1920)),
            "{what}"
        );
    }
}

/// Every proper prefix of a known-size file is Incomplete.
#[test]
fn every_cut_of_known_size_is_incomplete() {
    assert_every_cut_incomplete(WEBM, &known());
}

/// In a live (unknown-size) file every cut is Incomplete except exactly at the end of a
/// Cluster or block once a block exists: the documented limit of the heuristic.
#[test]
fn cuts_of_live_files() {
    for open_clusters in [false, true] {
        let bytes = live(open_clusters);
        let kids = children(open_clusters);
        let mut boundary = bytes.len() - kids.concat().len();
        let mut ok_cuts = Vec::new();
        for (i, kid) in kids.iter().enumerate() {
            boundary += kid.len();
            if i >= 2 {
                ok_cuts.push(boundary);
            }
        }
        if open_clusters {
            // Inside an unknown-size Cluster, the end of every block is a possible end too.
            let first_cluster = bytes.len() - kids[3].len() - kids[2].len();
            let first_block_end = first_cluster + 4 + 8 + 3 + 10;
            ok_cuts.push(first_block_end);
            ok_cuts.push(first_block_end + kids[2].len());
        }
        for cut in 0..bytes.len() {
            let got = probe_bytes(WEBM, &bytes[..cut]);
            if ok_cuts.contains(&cut) {
                assert!(got.is_ok(), "open={open_clusters} cut {cut}: {got:?}");
            } else {
                assert!(
                    matches!(got, Err(MediaError::Incomplete { .. })),
                    "open={open_clusters} cut {cut}: {got:?}"
                );
            }
        }
    }
}

/// Broken files fail with the right kind of error and a message saying what is wrong.
#[test]
fn broken_files() {
    let mut past_end = known();
    past_end.truncate(past_end.len() - 10);
    let declared = known().len() - header("webm").len() - 5;
    let past_end_msg = format!(
        "incomplete: Segment element runs past the end of the file (declares {declared} bytes, {} present)",
        declared - 10
    );
    let huge_size = [0x01, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFE];
    let huge_segment = [
        header("webm"),
        id_bytes(SEGMENT),
        huge_size.to_vec(),
        vec![0; 16],
    ]
    .concat();
    let huge_child = file(true, &[id_bytes(CLUSTER), huge_size.to_vec()]);
    let no_cluster = file(
        true,
        &[info(1_000_000, &1f64.to_be_bytes()), tracks(640, 360)],
    );
    let zero_tail = [live(false), vec![0; 32]].concat();
    let table: [(&str, Vec<u8>, &str); 9] = [
        ("segment past EOF", past_end, past_end_msg.as_str()),
        (
            "segment size near 2^56",
            huge_segment,
            "incomplete: Segment element runs past the end of the file (declares 72057594037927934 bytes, 16 present)",
        ),
        (
            "child size near 2^56",
            huge_child,
            "incomplete: Cluster element runs past the end of the file (declares 72057594037927934 bytes, 0 present)",
        ),
        (
            "live without clusters",
            no_cluster,
            "incomplete: no Cluster element yet",
        ),
        (
            "zeros after the last element",
            zero_tail,
            "incomplete: unreadable data at byte",
        ),
        (
            "header only",
            header("webm"),
            "incomplete: no Segment element",
        ),
        (
            "other doc type",
            [header("mkvx"), el(SEGMENT, &[])].concat(),
            "not a WebM file (its document type is \"mkvx\"",
        ),
        (
            "MP4 renamed to .webm",
            b"\0\0\0\x18ftypisom".to_vec(),
            "not a WebM file (no EBML header at the start)",
        ),
        (
            "something else after the header",
            [header("webm"), el(CLUSTER, &[])].concat(),
            "not a WebM file (no Segment element",
        ),
    ];
    for (what, bytes, want) in table {
        let err = probe_bytes(WEBM, &bytes).expect_err(what);
        assert!(err.to_string().starts_with(want), "{what}: {err}");
    }
}

/// Variable-length integers: lengths, markers, the unknown-size value and invalid bytes.
#[test]
fn vints() {
    let ok = |id, size, len| Head::Ok { id, size, len };
    let table: [(&[u8], Head); 7] = [
        (&[0xEC, 0x81], ok(0xEC, Some(1), 2)),
        (&[0xEC, 0xFF], ok(0xEC, None, 2)),
        (&[0xEC, 0x40, 0x02], ok(0xEC, Some(2), 3)),
        (&[0x1A, 0x45, 0xDF], Head::Short),
        (&[0xEC, 0x00, 0x00], Head::Invalid),
        (&[0x08, 0x81], Head::Invalid),
        (&[], Head::Short),
    ];
    for (bytes, want) in table {
        assert_eq!(parse_head(bytes), want, "{bytes:02X?}");
    }
}
