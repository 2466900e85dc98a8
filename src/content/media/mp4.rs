//! MP4 / MOV (ISO BMFF and QuickTime): top-level box walk, `mvhd` duration, and of the first
//! video track its `tkhd` dimensions and rotation, codec (`stsd`) and frame rate (`stts` over
//! the `mdhd` timescale); the first audio track's codec.

use std::io::{Read, Seek};

use super::{Facts, MediaError, incomplete, read_at};

/// Types accepted as the first box. ISO files start with `ftyp`; QuickTime files may start
/// with any of the others (`pnot` is a QuickTime preview atom). Both extensions accept the
/// whole list, since `.mp4` and `.mov` are often swapped by tools.
const FIRST_BOX_TYPES: [&[u8; 4]; 7] = [
    b"ftyp", b"wide", b"free", b"skip", b"mdat", b"moov", b"pnot",
];

/// At most this many children are looked at in one box inside `moov`, and at most this
/// many tracks, so a hostile `moov` cannot keep us seeking for long.
const MAX_CHILDREN: usize = 1024;
/// Most top-level boxes a file may have (a fragmented 10-minute video has a few thousand).
const MAX_TOP_LEVEL_BOXES: usize = 10_000;
const MAX_TRACKS: usize = 64;

/// A box header: type, where its body starts and where the box ends.
#[derive(Debug, Clone, Copy)]
struct BoxHeader {
    typ: [u8; 4],
    body: u64,
    end: u64,
}

/// What is wrong with a box header read inside `[pos, limit)`.
enum HeaderProblem {
    /// Fewer than `need` bytes are left for the header.
    Cut { need: u64, present: u64 },
    /// The size is smaller than the header itself.
    BadSize { typ: [u8; 4], size: u64 },
    /// The box declares `size` bytes but only `present` are left.
    PastEnd {
        typ: [u8; 4],
        size: u64,
        present: u64,
    },
}

enum Header {
    Ok(BoxHeader),
    Problem(HeaderProblem),
}

/// Reads the box header at `pos`; the box must end at or before `limit`.
fn read_header<R: Read + Seek>(r: &mut R, pos: u64, limit: u64) -> Result<Header, MediaError> {
    use HeaderProblem::*;
    let present = limit.saturating_sub(pos);
    if present < 8 {
        return Ok(Header::Problem(Cut { need: 8, present }));
    }
    let mut head = [0u8; 8];
    read_at(r, pos, &mut head)?;
    let typ = [head[4], head[5], head[6], head[7]];
    let (size, header_len) = match u32::from_be_bytes([head[0], head[1], head[2], head[3]]) {
        0 => (present, 8),
        1 => {
            if present < 16 {
                return Ok(Header::Problem(Cut { need: 16, present }));
            }
            let mut large = [0u8; 8];
            read_at(r, pos + 8, &mut large)?;
            (u64::from_be_bytes(large), 16)
        }
        n => (u64::from(n), 8),
    };
    if size < header_len {
        return Ok(Header::Problem(BadSize { typ, size }));
    }
    if size > present {
        return Ok(Header::Problem(PastEnd { typ, size, present }));
    }
    // `size <= present = limit - pos`, so neither sum overflows.
    Ok(Header::Ok(BoxHeader {
        typ,
        body: pos + header_len,
        end: pos + size,
    }))
}

/// A box type for messages: the four characters if printable, else hex.
fn type_name(typ: &[u8; 4]) -> String {
    if typ.iter().all(|b| b.is_ascii_graphic() || *b == b' ') {
        String::from_utf8_lossy(typ).into_owned()
    } else {
        format!("0x{:08x}", u32::from_be_bytes(*typ))
    }
}

fn is_printable(typ: &[u8; 4]) -> bool {
    typ.iter().all(|b| (0x20..0x7f).contains(b) || *b == 0xa9) // '©' starts QuickTime atoms
}

/// Walks the top-level boxes; every box must fit in the file and `moov` and `mdat` must be there.
pub(super) fn probe<R: Read + Seek>(
    expected: &'static str,
    r: &mut R,
    len: u64,
) -> Result<Facts, MediaError> {
    let not_recognized = |reason: String| MediaError::NotRecognized { expected, reason };
    let mut pos = 0u64;
    let mut moov = None;
    let mut have_mdat = false;
    if len >= 8 {
        // Judge the first box by its type before any size complaint: random bytes
        // usually look like a huge box and must not be mistaken for a cut file.
        let mut typ = [0u8; 4];
        read_at(r, 4, &mut typ)?;
        if !FIRST_BOX_TYPES.contains(&&typ) {
            return Err(not_recognized(format!(
                "it starts with '{}' instead of an ftyp box",
                type_name(&typ)
            )));
        }
    }
    let mut boxes = 0usize;
    while pos < len {
        boxes += 1;
        if boxes > MAX_TOP_LEVEL_BOXES {
            return Err(not_recognized(format!(
                "it has more than {MAX_TOP_LEVEL_BOXES} top-level boxes, far more than any video"
            )));
        }
        let b = match read_header(r, pos, len)? {
            Header::Ok(b) if pos == 0 || is_printable(&b.typ) => b,
            Header::Ok(_) => {
                return Err(incomplete(format!(
                    "unreadable data at byte {pos} where a box should start \
                     (the file may still be being written, or it is damaged)"
                )));
            }
            Header::Problem(HeaderProblem::Cut { need, present }) => {
                return Err(incomplete(format!(
                    "the box header at byte {pos} is cut short ({present} of {need} bytes present)"
                )));
            }
            Header::Problem(HeaderProblem::BadSize { typ, size }) => {
                return Err(not_recognized(format!(
                    "box '{}' at byte {pos} declares an impossible size of {size} bytes",
                    type_name(&typ)
                )));
            }
            Header::Problem(HeaderProblem::PastEnd { typ, size, present }) => {
                return Err(incomplete(format!(
                    "{} box runs past the end of the file (declares {size} bytes, {present} present)",
                    type_name(&typ)
                )));
            }
        };
        match &b.typ {
            b"moov" if moov.is_none() => moov = Some(b),
            b"mdat" => have_mdat = true,
            _ => {}
        }
        pos = b.end;
    }
    let moov = moov.ok_or_else(|| incomplete("no moov box"))?;
    if !have_mdat {
        return Err(incomplete("no mdat box"));
    }
    read_moov(r, moov)
}

/// Calls `f` for each well-formed child of `parent`, stopping at the first malformed one
/// (odd QuickTime terminators included) or after `MAX_CHILDREN`.
fn for_each_child<R: Read + Seek>(
    r: &mut R,
    parent: BoxHeader,
    mut f: impl FnMut(&mut R, BoxHeader) -> Result<bool, MediaError>,
) -> Result<(), MediaError> {
    let mut pos = parent.body;
    for _ in 0..MAX_CHILDREN {
        if pos >= parent.end {
            break;
        }
        match read_header(r, pos, parent.end)? {
            Header::Ok(child) => {
                if !f(r, child)? {
                    break;
                }
                pos = child.end;
            }
            Header::Problem(_) => break,
        }
    }
    Ok(())
}

/// Reads up to `buf.len()` bytes of a box body; returns how many were read.
fn read_body<R: Read + Seek>(r: &mut R, b: BoxHeader, buf: &mut [u8]) -> Result<usize, MediaError> {
    let n = usize::try_from(b.end - b.body).map_or(buf.len(), |n| n.min(buf.len()));
    read_at(r, b.body, &mut buf[..n])?;
    Ok(n)
}

fn be32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

fn be64(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_be_bytes(b.get(at..at + 8)?.try_into().ok()?))
}

/// Duration in ms from an `mvhd` body; `None` if unknown (zero, all ones) or unreadable.
fn mvhd_duration(body: &[u8]) -> Option<u64> {
    let (timescale, duration, all_ones) = match body.first()? {
        0 => {
            let d = be32(body, 16)?;
            (be32(body, 12)?, u64::from(d), d == u32::MAX)
        }
        1 => {
            let d = be64(body, 24)?;
            (be32(body, 20)?, d, d == u64::MAX)
        }
        _ => return None,
    };
    if timescale == 0 || duration == 0 || all_ones {
        return None;
    }
    u64::try_from(u128::from(duration) * 1000 / u128::from(timescale)).ok()
}

/// Width and height from a `tkhd` body (16.16 fixed point, integer part).
fn tkhd_size(body: &[u8]) -> Option<(u32, u32)> {
    let at = match body.first()? {
        0 => 76,
        1 => 88,
        _ => return None,
    };
    Some((be32(body, at)? >> 16, be32(body, at + 4)? >> 16))
}

/// Reads `mvhd`, and the first video and audio tracks, by seeking through `moov`'s children.
fn read_moov<R: Read + Seek>(r: &mut R, moov: BoxHeader) -> Result<Facts, MediaError> {
    let mut facts = Facts::default();
    let mut tracks = 0usize;
    let mut have_video = false;
    let mut buf = [0u8; 96];
    for_each_child(r, moov, |r, child| {
        match &child.typ {
            b"mvhd" => {
                let n = read_body(r, child, &mut buf)?;
                facts.duration_ms = mvhd_duration(&buf[..n]);
            }
            b"trak" => {
                tracks += 1;
                let t = read_track(r, child)?;
                match &t.handler {
                    b"vide" if !have_video => {
                        have_video = true;
                        if let Some((w, h)) = t.size {
                            facts.width = Some(w);
                            facts.height = Some(h);
                        }
                        facts.streams.video_codec = t.codec.map(|c| video_codec_name(&c));
                        facts.streams.rotation = t.rotation;
                        if let Some(st) = t.timing {
                            facts.streams.fps_milli = st.fps_milli(t.timescale);
                            facts.streams.variable_fps = st.min_delta != st.max_delta;
                        }
                    }
                    b"soun" if facts.streams.audio_codec.is_none() => {
                        facts.streams.audio_codec = t.codec.map(|c| audio_codec_name(&c));
                    }
                    _ => {}
                }
            }
            _ => {}
        }
        Ok(tracks < MAX_TRACKS)
    })?;
    Ok(facts)
}

/// What one `trak` says.
#[derive(Default)]
struct Track {
    handler: [u8; 4],
    size: Option<(u32, u32)>,
    rotation: u16,
    timescale: u32,
    /// The first sample description's format (`avc1`, `mp4a`, …).
    codec: Option<[u8; 4]>,
    timing: Option<Timing>,
}

/// Sample timing from `stts`.
#[derive(Clone, Copy)]
struct Timing {
    samples: u64,
    total_delta: u64,
    min_delta: u32,
    max_delta: u32,
}

impl Timing {
    fn fps_milli(&self, timescale: u32) -> Option<u32> {
        if self.total_delta == 0 || timescale == 0 {
            return None;
        }
        let milli =
            u128::from(self.samples) * u128::from(timescale) * 1000 / u128::from(self.total_delta);
        u32::try_from(milli).ok()
    }
}

/// Most `stts` entries read (a variable-frame-rate phone video has one per frame run).
const MAX_STTS_ENTRIES: usize = 64 * 1024;

fn read_track<R: Read + Seek>(r: &mut R, trak: BoxHeader) -> Result<Track, MediaError> {
    let mut t = Track::default();
    let mut buf = [0u8; 96];
    for_each_child(r, trak, |r, child| {
        match &child.typ {
            b"tkhd" => {
                let n = read_body(r, child, &mut buf)?;
                t.size = tkhd_size(&buf[..n]);
                t.rotation = tkhd_rotation(&buf[..n]);
            }
            b"mdia" => for_each_child(r, child, |r, m| {
                match &m.typ {
                    b"hdlr" => {
                        let mut hdlr = [0u8; 12];
                        if read_body(r, m, &mut hdlr)? == 12 {
                            t.handler.copy_from_slice(&hdlr[8..12]);
                        }
                    }
                    b"mdhd" => {
                        let n = read_body(r, m, &mut buf)?;
                        t.timescale = mdhd_timescale(&buf[..n]).unwrap_or(0);
                    }
                    b"minf" => for_each_child(r, m, |r, stbl| {
                        if &stbl.typ == b"stbl" {
                            read_stbl(r, stbl, &mut t)?;
                        }
                        Ok(true)
                    })?,
                    _ => {}
                }
                Ok(true)
            })?,
            _ => {}
        }
        Ok(true)
    })?;
    Ok(t)
}

fn read_stbl<R: Read + Seek>(r: &mut R, stbl: BoxHeader, t: &mut Track) -> Result<(), MediaError> {
    for_each_child(r, stbl, |r, b| {
        match &b.typ {
            b"stsd" => {
                let mut head = [0u8; 16];
                if read_body(r, b, &mut head)? == 16 && be32(&head, 4).is_some_and(|n| n > 0) {
                    t.codec = Some([head[12], head[13], head[14], head[15]]);
                }
            }
            b"stts" => {
                let mut head = [0u8; 8];
                if read_body(r, b, &mut head)? < 8 {
                    return Ok(true);
                }
                let count = be32(&head, 4)
                    .map_or(0, |n| n as usize)
                    .min(MAX_STTS_ENTRIES);
                let want = count * 8;
                let have = usize::try_from(b.end - b.body).unwrap_or(usize::MAX);
                if want == 0 || have < 8 + want {
                    return Ok(true);
                }
                let mut entries = vec![0u8; want];
                read_at(r, b.body + 8, &mut entries)?;
                let mut timing = Timing {
                    samples: 0,
                    total_delta: 0,
                    min_delta: u32::MAX,
                    max_delta: 0,
                };
                for e in entries.chunks_exact(8) {
                    let (n, delta) = (be32(e, 0).unwrap_or(0), be32(e, 4).unwrap_or(0));
                    if n == 0 {
                        continue;
                    }
                    timing.samples += u64::from(n);
                    timing.total_delta += u64::from(n) * u64::from(delta);
                    timing.min_delta = timing.min_delta.min(delta);
                    timing.max_delta = timing.max_delta.max(delta);
                }
                // One odd last frame (an encoder's rounding) does not make a variable rate.
                if count >= 2 {
                    let last = &entries[want - 8..];
                    if be32(last, 0) == Some(1) {
                        let mut steady = timing;
                        steady.min_delta = u32::MAX;
                        steady.max_delta = 0;
                        for e in entries[..want - 8].chunks_exact(8) {
                            let delta = be32(e, 4).unwrap_or(0);
                            steady.min_delta = steady.min_delta.min(delta);
                            steady.max_delta = steady.max_delta.max(delta);
                        }
                        timing.min_delta = steady.min_delta;
                        timing.max_delta = steady.max_delta;
                    }
                }
                if timing.samples > 0 {
                    t.timing = Some(timing);
                }
            }
            _ => {}
        }
        Ok(true)
    })
}

/// The media timescale from an `mdhd` body.
fn mdhd_timescale(body: &[u8]) -> Option<u32> {
    match body.first()? {
        0 => be32(body, 12),
        1 => be32(body, 20),
        _ => None,
    }
}

/// Clockwise rotation from a `tkhd` matrix (a, b, c, d in 16.16 fixed point).
fn tkhd_rotation(body: &[u8]) -> u16 {
    let at = match body.first() {
        Some(0) => 40,
        Some(1) => 52,
        _ => return 0,
    };
    let m = |i: usize| be32(body, at + i * 4).map(|v| v as i32);
    match (m(0), m(1), m(3), m(4)) {
        (Some(0), Some(b), Some(c), Some(0)) if b > 0 && c < 0 => 90,
        (Some(0), Some(b), Some(c), Some(0)) if b < 0 && c > 0 => 270,
        (Some(a), Some(0), Some(0), Some(d)) if a < 0 && d < 0 => 180,
        _ => 0,
    }
}

/// A video sample format by its common name.
fn video_codec_name(fourcc: &[u8; 4]) -> String {
    match fourcc {
        b"avc1" | b"avc3" => "H.264".into(),
        b"hvc1" | b"hev1" => "H.265".into(),
        b"vp08" => "VP8".into(),
        b"vp09" => "VP9".into(),
        b"av01" => "AV1".into(),
        b"apch" | b"apcn" | b"apcs" | b"apco" | b"ap4h" | b"ap4x" => "ProRes".into(),
        b"mp4v" => "MPEG-4 Part 2".into(),
        b"jpeg" | b"mjpa" | b"mjpb" => "Motion JPEG".into(),
        other => type_name(other),
    }
}

/// An audio sample format by its common name.
fn audio_codec_name(fourcc: &[u8; 4]) -> String {
    match fourcc {
        b"mp4a" => "AAC".into(),
        b"Opus" => "Opus".into(),
        b"ac-3" => "AC-3".into(),
        b"ec-3" => "E-AC-3".into(),
        b"fLaC" => "FLAC".into(),
        b"lpcm" | b"sowt" | b"twos" | b"in24" | b"in32" | b"fl32" => "PCM".into(),
        b".mp3" => "MP3".into(),
        other => type_name(other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::content::media::tests::{assert_every_cut_incomplete, data, probe_bytes};
    use crate::content::media::{MediaKind, VideoContainer};

    const MP4: MediaKind = MediaKind::Video(VideoContainer::Mp4);
    const MOV: MediaKind = MediaKind::Video(VideoContainer::Mov);

    fn bx(typ: &[u8; 4], body: &[u8]) -> Vec<u8> {
        let size = u32::try_from(body.len() + 8).expect("test box fits in 32 bits");
        [&size.to_be_bytes()[..], typ, body].concat()
    }

    fn ftyp() -> Vec<u8> {
        bx(b"ftyp", b"isom\0\0\x02\0isomiso2avc1mp41")
    }

    fn mvhd_v0(timescale: u32, duration: u32) -> Vec<u8> {
        let mut body = vec![0u8; 100];
        body[12..16].copy_from_slice(&timescale.to_be_bytes());
        body[16..20].copy_from_slice(&duration.to_be_bytes());
        bx(b"mvhd", &body)
    }

    fn mvhd_v1(timescale: u32, duration: u64) -> Vec<u8> {
        let mut body = vec![0u8; 112];
        body[0] = 1;
        body[20..24].copy_from_slice(&timescale.to_be_bytes());
        body[24..32].copy_from_slice(&duration.to_be_bytes());
        bx(b"mvhd", &body)
    }

    /// A track whose `tkhd` says `w`x`h` (version 0 or 1) and whose handler is `handler`.
    fn trak(version: u8, handler: &[u8; 4], w: u32, h: u32) -> Vec<u8> {
        let at = if version == 0 { 76 } else { 88 };
        let mut tkhd = vec![0u8; at + 8];
        tkhd[0] = version;
        tkhd[at..at + 4].copy_from_slice(&(w << 16).to_be_bytes());
        tkhd[at + 4..at + 8].copy_from_slice(&(h << 16).to_be_bytes());
        let hdlr = [&[0u8; 8][..], handler, &[0u8; 13]].concat();
        let mdia = bx(
            b"mdia",
            &[bx(b"mdhd", &[0u8; 24]), bx(b"hdlr", &hdlr)].concat(),
        );
        bx(b"trak", &[bx(b"tkhd", &tkhd), mdia].concat())
    }

    fn moov(mvhd: Vec<u8>) -> Vec<u8> {
        let tracks = [trak(0, b"soun", 0, 0), trak(1, b"vide", 720, 1280)].concat();
        bx(b"moov", &[mvhd, tracks].concat())
    }

    fn mdat(n: usize) -> Vec<u8> {
        bx(b"mdat", &vec![0xAB; n])
    }

    /// ftyp, mdat, moov: what ffmpeg writes by default.
    fn moov_at_end() -> Vec<u8> {
        [ftyp(), mdat(300), moov(mvhd_v0(1000, 15_000))].concat()
    }

    /// ftyp, moov, mdat: `-movflags +faststart`.
    fn faststart() -> Vec<u8> {
        [ftyp(), moov(mvhd_v0(90_000, 1_350_000)), mdat(300)].concat()
    }

    /// Well-formed box sequences probe Ok with the duration and the video track's size.
    #[test]
    fn valid_layouts() {
        let large_mdat = [
            &1u32.to_be_bytes()[..],
            b"mdat",
            &40u64.to_be_bytes(),
            &[7u8; 24],
        ]
        .concat();
        let open_mdat = [&0u32.to_be_bytes()[..], b"mdat", &[7u8; 50]].concat();
        let table: [(&str, MediaKind, Vec<u8>, Option<u64>); 8] = [
            ("moov at end", MP4, moov_at_end(), Some(15_000)),
            ("faststart", MP4, faststart(), Some(15_000)),
            (
                "mvhd version 1",
                MP4,
                [ftyp(), moov(mvhd_v1(600, 6_000)), mdat(10)].concat(),
                Some(10_000),
            ),
            (
                "largesize mdat",
                MP4,
                [ftyp(), moov(mvhd_v0(1, 2)), large_mdat].concat(),
                Some(2000),
            ),
            (
                "size 0 last box",
                MP4,
                [ftyp(), moov(mvhd_v0(1, 3)), open_mdat].concat(),
                Some(3000),
            ),
            (
                "QuickTime wide+mdat+moov",
                MOV,
                [bx(b"wide", &[]), mdat(20), moov(mvhd_v0(600, 600))].concat(),
                Some(1000),
            ),
            (
                "QuickTime starting with moov",
                MOV,
                [moov(mvhd_v0(600, 1200)), mdat(20)].concat(),
                Some(2000),
            ),
            (
                "unknown duration",
                MP4,
                [ftyp(), moov(mvhd_v0(1000, u32::MAX)), mdat(1)].concat(),
                None,
            ),
        ];
        for (what, kind, bytes, duration) in table {
            let info = probe_bytes(kind, &bytes).unwrap_or_else(|e| panic!("{what}: {e}"));
            assert_eq!(info.duration_ms, duration, "{what}");
            assert_eq!((info.width, info.height), (Some(720), Some(1280)), "{what}");
            assert_eq!(info.size_bytes, bytes.len() as u64, "{what}");
        }
    }

    /// Every proper prefix of both layouts is Incomplete: never Ok, never a panic.
    #[test]
    fn every_cut_is_incomplete() {
        assert_every_cut_incomplete(MP4, &moov_at_end());
        assert_every_cut_incomplete(MP4, &faststart());
    }

    /// Broken files fail with the right kind of error and a message saying what is wrong.
    #[test]
    fn broken_files() {
        let past_eof = [
            ftyp(),
            moov(mvhd_v0(1, 1)),
            120_000u32.to_be_bytes().to_vec(),
            b"mdat".to_vec(),
            vec![0; 79_992],
        ]
        .concat();
        let huge = [
            ftyp(),
            moov(mvhd_v0(1, 1)),
            [&1u32.to_be_bytes()[..], b"mdat", &[0xFF; 8]].concat(),
        ]
        .concat();
        let tiny = [ftyp(), 4u32.to_be_bytes().to_vec(), b"mdat".to_vec()].concat();
        let small_large = [
            ftyp(),
            [&1u32.to_be_bytes()[..], b"mdat", &8u64.to_be_bytes()].concat(),
        ]
        .concat();
        let zero_tail = [faststart(), vec![0; 64]].concat();
        let png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR".to_vec();
        let table: [(&str, Vec<u8>, &str); 9] = [
            (
                "mdat past EOF",
                past_eof,
                "incomplete: mdat box runs past the end of the file (declares 120000 bytes, 80000 present)",
            ),
            (
                "size overflowing u64",
                huge,
                "incomplete: mdat box runs past the end of the file (declares 18446744073709551615 bytes",
            ),
            (
                "no moov",
                [ftyp(), mdat(10)].concat(),
                "incomplete: no moov box",
            ),
            (
                "no mdat",
                [ftyp(), moov(mvhd_v0(1, 1))].concat(),
                "incomplete: no mdat box",
            ),
            ("empty", Vec::new(), "incomplete: the file is empty"),
            (
                "zeros after the last box",
                zero_tail,
                "incomplete: unreadable data at byte",
            ),
            (
                "box smaller than its header",
                tiny,
                "not an MP4 file (box 'mdat' at byte 32 declares an impossible size of 4 bytes)",
            ),
            (
                "largesize smaller than its header",
                small_large,
                "not an MP4 file (box 'mdat'",
            ),
            (
                "PNG renamed to .mp4",
                png,
                "not an MP4 file (it starts with '0x0d0a1a0a' instead",
            ),
        ];
        for (what, bytes, want) in table {
            let err = probe_bytes(MP4, &bytes).expect_err(what);
            assert!(err.to_string().starts_with(want), "{what}: {err}");
        }
    }

    /// Random bytes and text are NotRecognized, not Incomplete, even though they look like huge boxes.
    #[test]
    fn garbage_is_not_recognized() {
        let mut rng = crate::content::media::tests::XorShift(42);
        let random: Vec<u8> = (0..4096).map(|_| rng.next() as u8).collect();
        for bytes in [random, b"hello, this is just some text in a file".to_vec()] {
            let err = probe_bytes(MP4, &bytes).expect_err("garbage");
            assert!(
                matches!(
                    err,
                    MediaError::NotRecognized {
                        expected: "MP4",
                        ..
                    }
                ),
                "{err}"
            );
        }
    }

    /// mvhd arithmetic survives extreme values: no overflow, unknown durations are None.
    #[test]
    fn mvhd_extremes() {
        let body = |b: Vec<u8>| b[8..].to_vec();
        assert_eq!(mvhd_duration(&body(mvhd_v0(0, 100))), None);
        assert_eq!(mvhd_duration(&body(mvhd_v0(1000, 0))), None);
        assert_eq!(mvhd_duration(&body(mvhd_v1(1, u64::MAX))), None);
        assert_eq!(mvhd_duration(&body(mvhd_v1(1, u64::MAX - 1))), None);
        assert_eq!(
            mvhd_duration(&body(mvhd_v1(u32::MAX, u64::MAX - 1))),
            Some(4_294_967_296_999)
        );
        assert_eq!(mvhd_duration(&[0, 0, 0]), None);
    }

    /// Offsets and types of the top-level boxes of a real file (test helper).
    fn top_level(bytes: &[u8]) -> Vec<(usize, [u8; 4])> {
        let mut out = Vec::new();
        let mut pos = 0;
        while pos + 8 <= bytes.len() {
            let size = u32::from_be_bytes(bytes[pos..pos + 4].try_into().expect("4 bytes"));
            out.push((pos, bytes[pos + 4..pos + 8].try_into().expect("4 bytes")));
            pos += size as usize;
        }
        out
    }

    /// The real ffmpeg files have the layouts their names say, and cutting the moov off the
    /// default (moov at end) file reports "no moov box".
    #[test]
    fn real_file_without_its_moov() {
        let end = std::fs::read(data("h264_moov_at_end.mp4")).expect("committed test file");
        let fast = std::fs::read(data("h264_faststart.mp4")).expect("committed test file");
        let order = |b: &[u8]| {
            top_level(b)
                .iter()
                .map(|(_, t)| *t)
                .filter(|t| t == b"moov" || t == b"mdat")
                .collect::<Vec<_>>()
        };
        assert_eq!(order(&end), [*b"mdat", *b"moov"]);
        assert_eq!(order(&fast), [*b"moov", *b"mdat"]);
        let (moov_at, _) = top_level(&end)
            .into_iter()
            .find(|(_, t)| t == b"moov")
            .expect("a moov box");
        let err = probe_bytes(MP4, &end[..moov_at]).expect_err("no moov");
        assert_eq!(err.to_string(), "incomplete: no moov box");
    }
}
