//! WebM (Matroska): EBML header, Segment completeness, Info duration and the first video
//! track's pixel size.
//!
//! Completeness heuristic and its limits:
//! - A Segment with a known size is complete when that size fits in the file. Writers such
//!   as ffmpeg write the final size when they finish, so this is reliable for them.
//! - A Segment of unknown size (all ones; written live or by browsers' MediaRecorder) has
//!   no stated end. We then walk its top-level children to the end of the file, requiring
//!   each to fit and at least one Cluster to exist; an unknown-size Cluster is walked
//!   through its own children until the next top-level element, and one that runs to the
//!   end of the file must hold a block. A file cut exactly at the end of a Cluster or of a
//!   block therefore still looks complete, the inside of a known-size element is not
//!   checked, and nothing tells whether more Clusters were meant to follow. The caller's
//!   "size stopped changing" wait covers the rest.
//! - For a known-size Segment the walk stops at the first Cluster: Info and Tracks come
//!   before it in files written by common muxers; if they do not, the facts stay `None`.

use std::io::{Read, Seek};

use super::{Facts, MediaError, incomplete, read_at};

const EXPECTED: &str = "WebM";
const EBML: u32 = 0x1A45_DFA3;
const DOC_TYPE: u32 = 0x4282;
const SEGMENT: u32 = 0x1853_8067;
const SEEK_HEAD: u32 = 0x114D_9B74;
const INFO: u32 = 0x1549_A966;
const TRACKS: u32 = 0x1654_AE6B;
const CLUSTER: u32 = 0x1F43_B675;
const CUES: u32 = 0x1C53_BB6B;
const TAGS: u32 = 0x1254_C367;
const CHAPTERS: u32 = 0x1043_A770;
const ATTACHMENTS: u32 = 0x1941_A469;
const SIMPLE_BLOCK: u32 = 0xA3;
const BLOCK_GROUP: u32 = 0xA0;
const VOID: u32 = 0xEC;
const CRC32: u32 = 0xBF;
const TIMECODE_SCALE: u32 = 0x2A_D7B1;
const DURATION: u32 = 0x4489;
const TRACK_ENTRY: u32 = 0xAE;
const TRACK_TYPE: u32 = 0x83;
const VIDEO: u32 = 0xE0;
const PIXEL_WIDTH: u32 = 0xB0;
const PIXEL_HEIGHT: u32 = 0xBA;
const CODEC_ID: u32 = 0x86;
const DEFAULT_DURATION: u32 = 0x23_E383;

/// Largest EBML header, Info and Tracks element we read into memory.
const MAX_EBML_HEADER: u64 = 4 * 1024;
const MAX_INFO: u64 = 64 * 1024;
const MAX_TRACKS: u64 = 256 * 1024;

#[derive(Debug, PartialEq, Eq)]
enum Head {
    /// `size` is `None` for the reserved "unknown size" value.
    Ok {
        id: u32,
        size: Option<u64>,
        len: u64,
    },
    Short,
    Invalid,
}

/// Parses a variable-length integer of at most `max_len` bytes: `Some((value, length))`,
/// `None` if the bytes run out, `Err(())` if it is not a valid vint.
fn vint(b: &[u8], max_len: usize, keep_marker: bool) -> Result<Option<(u64, usize)>, ()> {
    let Some(&first) = b.first() else {
        return Ok(None);
    };
    let n = first.leading_zeros() as usize + 1;
    if n > max_len {
        return Err(());
    }
    let Some(rest) = b.get(1..n) else {
        return Ok(None);
    };
    let first = if keep_marker {
        first
    } else {
        first & 0xFFu8.checked_shr(n as u32).unwrap_or(0)
    };
    let v = rest
        .iter()
        .fold(u64::from(first), |v, &x| (v << 8) | u64::from(x));
    Ok(Some((v, n)))
}

/// Parses an element header (ID, then size) at the start of `b`.
fn parse_head(b: &[u8]) -> Head {
    let (id, n) = match vint(b, 4, true) {
        Ok(Some(v)) => v,
        Ok(None) => return Head::Short,
        Err(()) => return Head::Invalid,
    };
    let (size, m) = match vint(&b[n..], 8, false) {
        Ok(Some(v)) => v,
        Ok(None) => return Head::Short,
        Err(()) => return Head::Invalid,
    };
    let unknown = size == (1u64 << (7 * m)) - 1;
    Head::Ok {
        id: u32::try_from(id).unwrap_or(u32::MAX),
        size: (!unknown).then_some(size),
        len: (n + m) as u64,
    }
}

/// Reads and parses the element header at `pos`; the header must end by `limit`.
fn head_at<R: Read + Seek>(r: &mut R, pos: u64, limit: u64) -> Result<Head, MediaError> {
    let mut buf = [0u8; 12];
    let n = usize::try_from(limit.saturating_sub(pos)).map_or(12, |n| n.min(12));
    read_at(r, pos, &mut buf[..n])?;
    Ok(parse_head(&buf[..n]))
}

/// Iterates over the children of an element held in memory, stopping at anything malformed.
struct Children<'a>(&'a [u8]);

impl<'a> Iterator for Children<'a> {
    type Item = (u32, &'a [u8]);
    fn next(&mut self) -> Option<Self::Item> {
        let Head::Ok { id, size, len } = parse_head(self.0) else {
            return None;
        };
        let start = usize::try_from(len).ok()?;
        let end = start.checked_add(usize::try_from(size?).ok()?)?;
        let data = self.0.get(start..end)?;
        self.0 = &self.0[end..];
        Some((id, data))
    }
}

fn uint(b: &[u8]) -> Option<u64> {
    (b.len() <= 8).then(|| b.iter().fold(0u64, |v, &x| (v << 8) | u64::from(x)))
}

fn float(b: &[u8]) -> Option<f64> {
    match b.len() {
        4 => Some(f64::from(f32::from_be_bytes(b.try_into().ok()?))),
        8 => Some(f64::from_be_bytes(b.try_into().ok()?)),
        _ => None,
    }
}

fn name(id: u32) -> String {
    match id {
        SEGMENT => "Segment".into(),
        SEEK_HEAD => "SeekHead".into(),
        INFO => "Info".into(),
        TRACKS => "Tracks".into(),
        CLUSTER => "Cluster".into(),
        CUES => "Cues".into(),
        TAGS => "Tags".into(),
        CHAPTERS => "Chapters".into(),
        ATTACHMENTS => "Attachments".into(),
        VOID => "Void".into(),
        _ => format!("0x{id:X}"),
    }
}

fn not_recognized(reason: impl Into<String>) -> MediaError {
    MediaError::NotRecognized {
        expected: EXPECTED,
        reason: reason.into(),
    }
}

/// Reads the body at `pos` if it is at most `cap` bytes.
fn read_capped<R: Read + Seek>(
    r: &mut R,
    pos: u64,
    size: u64,
    cap: u64,
) -> Result<Option<Vec<u8>>, MediaError> {
    if size > cap {
        return Ok(None);
    }
    let mut buf = vec![0u8; usize::try_from(size).unwrap_or(0)];
    read_at(r, pos, &mut buf)?;
    Ok(Some(buf))
}

pub(super) fn probe<R: Read + Seek>(r: &mut R, len: u64) -> Result<Facts, MediaError> {
    let mut magic = [0u8; 4];
    let n = usize::try_from(len.min(4)).unwrap_or(4);
    read_at(r, 0, &mut magic[..n])?;
    if magic[..n] != EBML.to_be_bytes()[..n] {
        return Err(not_recognized("no EBML header at the start"));
    }
    let header = match head_at(r, 0, len)? {
        Head::Ok {
            size: Some(size),
            len: hl,
            ..
        } if size <= MAX_EBML_HEADER => (hl, size),
        Head::Short => return Err(incomplete("the file is cut short inside the EBML header")),
        _ => return Err(not_recognized("the EBML header is damaged")),
    };
    let header_end = header.0 + header.1;
    if header_end > len {
        return Err(incomplete("the file is cut short inside the EBML header"));
    }
    let body = read_capped(r, header.0, header.1, MAX_EBML_HEADER)?.unwrap_or_default();
    let doc_type = Children(&body)
        .find(|(id, _)| *id == DOC_TYPE)
        .map_or(b"matroska".as_slice(), |(_, d)| d);
    let doc_type = String::from_utf8_lossy(doc_type);
    let doc_type = doc_type.trim_end_matches('\0');
    if doc_type != "webm" && doc_type != "matroska" {
        return Err(not_recognized(format!(
            "its document type is {doc_type:?}, not \"webm\""
        )));
    }

    // The Segment follows, possibly after Void/CRC-32 padding.
    let mut pos = header_end;
    loop {
        if pos >= len {
            return Err(incomplete(
                "no Segment element: the file ends after the EBML header",
            ));
        }
        match head_at(r, pos, len)? {
            Head::Ok {
                id: VOID | CRC32,
                size: Some(size),
                len: hl,
            } if size <= len.saturating_sub(pos + hl) => {
                pos += hl + size;
            }
            Head::Ok {
                id: SEGMENT,
                size,
                len: hl,
            } => {
                let start = pos + hl;
                let present = len.saturating_sub(start);
                return match size {
                    Some(size) if size > present => Err(incomplete(format!(
                        "Segment element runs past the end of the file \
                         (declares {size} bytes, {present} present)"
                    ))),
                    Some(size) => walk_segment(r, start, start + size, false),
                    None => walk_segment(r, start, len, true),
                };
            }
            Head::Short => return Err(incomplete("the Segment header is cut short")),
            _ => return Err(not_recognized("no Segment element after the EBML header")),
        }
    }
}

/// The element header at `pos` as (ID, size, header length); `fail` words the error for a
/// header that is cut short or unreadable.
fn element_at<R: Read + Seek>(
    r: &mut R,
    pos: u64,
    end: u64,
    fail: &impl Fn(String) -> MediaError,
) -> Result<(u32, Option<u64>, u64), MediaError> {
    match head_at(r, pos, end)? {
        Head::Ok { id, size, len } => Ok((id, size, len)),
        Head::Short => Err(fail(format!(
            "the element header at byte {pos} is cut short"
        ))),
        Head::Invalid => Err(fail(format!(
            "unreadable data at byte {pos} where an element should start \
             (the file may still be being written, or it is damaged)"
        ))),
    }
}

/// Walks the Segment's children in `[pos, end)`. With `live` (unknown-size Segment) every
/// child must fit in the file and a Cluster must exist; otherwise the walk only looks for
/// Info and Tracks and stops at the first Cluster.
fn walk_segment<R: Read + Seek>(
    r: &mut R,
    mut pos: u64,
    end: u64,
    live: bool,
) -> Result<Facts, MediaError> {
    // Inside a Segment whose size fits, a bad child is damage, not truncation.
    let fail = |reason: String| {
        if live {
            incomplete(reason)
        } else {
            not_recognized(reason)
        }
    };
    let limit = if live { "the file" } else { "its Segment" };
    let mut facts = Facts::default();
    let mut have_cluster = false;
    while pos < end {
        let (id, size, hl) = element_at(r, pos, end, &fail)?;
        if id == CLUSTER && !live {
            return Ok(facts);
        }
        let body = pos + hl;
        let present = end.saturating_sub(body);
        let Some(size) = size else {
            if id != CLUSTER {
                return Err(fail(format!(
                    "{} element at byte {pos} has no size",
                    name(id)
                )));
            }
            have_cluster = true;
            pos = walk_open_cluster(r, body, end)?;
            continue;
        };
        if size > present {
            return Err(fail(format!(
                "{} element runs past the end of {limit} (declares {size} bytes, {present} present)",
                name(id)
            )));
        }
        match id {
            INFO => {
                if let Some(b) = read_capped(r, body, size, MAX_INFO)? {
                    facts.duration_ms = info_duration(&b);
                }
            }
            TRACKS => {
                if let Some(tracks) = read_capped(r, body, size, MAX_TRACKS)? {
                    if let Some((w, h)) = video_size(&tracks) {
                        (facts.width, facts.height) = (Some(w), Some(h));
                    }
                    facts.streams = streams(&tracks);
                }
            }
            CLUSTER => have_cluster = true,
            _ => {}
        }
        pos = body + size;
    }
    if live && !have_cluster {
        return Err(incomplete(
            "no Cluster element yet: the video has no frames",
        ));
    }
    Ok(facts)
}

/// Walks the children of an unknown-size Cluster starting at `pos`; returns where the next
/// top-level element starts (or `end`). A Cluster that runs to the end of the file must
/// hold at least one block.
fn walk_open_cluster<R: Read + Seek>(r: &mut R, mut pos: u64, end: u64) -> Result<u64, MediaError> {
    const TOP_LEVEL: [u32; 8] = [
        CLUSTER,
        CUES,
        TAGS,
        CHAPTERS,
        ATTACHMENTS,
        INFO,
        TRACKS,
        SEEK_HEAD,
    ];
    let mut has_block = false;
    while pos < end {
        let (id, size, hl) = element_at(r, pos, end, &|reason| incomplete(reason))?;
        if TOP_LEVEL.contains(&id) {
            return Ok(pos);
        }
        let present = end.saturating_sub(pos + hl);
        match size {
            Some(size) if size <= present => {
                has_block |= matches!(id, SIMPLE_BLOCK | BLOCK_GROUP);
                pos += hl + size;
            }
            Some(size) => {
                return Err(incomplete(format!(
                    "a block at byte {pos} runs past the end of the file \
                     (declares {size} bytes, {present} present)"
                )));
            }
            None => {
                return Err(incomplete(format!(
                    "element {} at byte {pos} has no size",
                    name(id)
                )));
            }
        }
    }
    if !has_block {
        return Err(incomplete("the last Cluster has no blocks yet"));
    }
    Ok(end)
}

/// Duration in ms from an Info body (TimecodeScale in ns, default 1 ms; Duration in ticks).
fn info_duration(info: &[u8]) -> Option<u64> {
    let mut scale = 1_000_000u64;
    let mut ticks = None;
    for (id, data) in Children(info) {
        match id {
            TIMECODE_SCALE => scale = uint(data).filter(|&s| s > 0)?,
            DURATION => ticks = float(data),
            _ => {}
        }
    }
    let ms = ticks? * scale as f64 / 1_000_000.0;
    (ms.is_finite() && ms > 0.0 && ms < u64::MAX as f64).then(|| ms.round() as u64)
}

/// PixelWidth and PixelHeight of the first video TrackEntry in a Tracks body.
fn video_size(tracks: &[u8]) -> Option<(u32, u32)> {
    Children(tracks)
        .filter(|(id, _)| *id == TRACK_ENTRY)
        .find_map(|(_, entry)| {
            let is_video = Children(entry).any(|(id, d)| id == TRACK_TYPE && uint(d) == Some(1));
            let (_, video) = Children(entry).find(|(id, _)| *id == VIDEO)?;
            let px = |want| {
                Children(video)
                    .find(|(id, _)| *id == want)
                    .and_then(|(_, d)| uint(d))
            };
            let (w, h) = (px(PIXEL_WIDTH)?, px(PIXEL_HEIGHT)?);
            is_video.then_some((u32::try_from(w).ok()?, u32::try_from(h).ok()?))
        })
}

/// Codecs of the first video and audio tracks, and the video's frame rate from its
/// DefaultDuration (nanoseconds per frame), when set.
fn streams(tracks: &[u8]) -> crate::content::media::Streams {
    let mut out = crate::content::media::Streams::default();
    for (_, entry) in Children(tracks).filter(|(id, _)| *id == TRACK_ENTRY) {
        let kind = Children(entry)
            .find(|(id, _)| *id == TRACK_TYPE)
            .and_then(|(_, d)| uint(d));
        let codec = Children(entry)
            .find(|(id, _)| *id == CODEC_ID)
            .map(|(_, d)| {
                String::from_utf8_lossy(d)
                    .trim_end_matches('\0')
                    .to_string()
            });
        match kind {
            Some(1) if out.video_codec.is_none() => {
                out.video_codec = codec.map(|c| codec_name(&c));
                out.fps_milli = Children(entry)
                    .find(|(id, _)| *id == DEFAULT_DURATION)
                    .and_then(|(_, d)| uint(d))
                    .filter(|&ns| ns > 0)
                    .and_then(|ns| u32::try_from(1_000_000_000_000 / ns).ok());
            }
            Some(2) if out.audio_codec.is_none() => out.audio_codec = codec.map(|c| codec_name(&c)),
            _ => {}
        }
    }
    out
}

/// A Matroska CodecID by its common name.
fn codec_name(id: &str) -> String {
    match id {
        "V_VP8" => "VP8".into(),
        "V_VP9" => "VP9".into(),
        "V_AV1" => "AV1".into(),
        "V_MPEG4/ISO/AVC" => "H.264".into(),
        "V_MPEGH/ISO/HEVC" => "H.265".into(),
        "A_OPUS" => "Opus".into(),
        "A_VORBIS" => "Vorbis".into(),
        "A_AAC" => "AAC".into(),
        other => crate::support::diagnostic::printable(other).into_owned(),
    }
}

#[cfg(test)]
#[path = "webm_tests.rs"]
mod tests;
