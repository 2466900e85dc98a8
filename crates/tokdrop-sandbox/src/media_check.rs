//! TikTok's processing checks (tiktok-api.md §6 and §7.2), read independently of tokdrop's
//! own probe: the emulator looks into the bytes it fetched or received and fails the post with
//! the `fail_reason` TikTok uses — `file_format_check_failed` (container or codec),
//! `frame_rate_check_failed` (outside 23–60 fps), `picture_size_check_failed` (sides, photo
//! size). Files it cannot read end `file_format_check_failed`, as at TikTok.

/// Media larger than this is not kept for the check (and passes it).
pub(crate) const MAX_CHECKED_BYTES: usize = 64 * 1024 * 1024;

const VIDEO_FOURCCS: [&[u8; 4]; 6] = [b"avc1", b"avc3", b"hvc1", b"hev1", b"vp08", b"vp09"];
const VIDEO_CODEC_IDS: [&str; 4] = ["V_VP8", "V_VP9", "V_MPEG4/ISO/AVC", "V_MPEGH/ISO/HEVC"];

/// The fail_reason processing gives `bytes`, or `None` when TikTok would take the file.
pub(crate) fn verdict(bytes: &[u8], photo: bool) -> Option<&'static str> {
    if photo {
        return photo_verdict(bytes);
    }
    let video = if bytes.starts_with(&[0x1A, 0x45, 0xDF, 0xA3]) {
        webm_video(bytes)
    } else {
        mp4_video(bytes)
    };
    let Some(v) = video else {
        return Some("file_format_check_failed");
    };
    if !v.codec_ok {
        return Some("file_format_check_failed");
    }
    if let Some(fps) = v.fps
        && !(23.0..=60.5).contains(&fps)
    {
        return Some("frame_rate_check_failed");
    }
    if let Some((w, h)) = v.size
        && !(360..=4096).contains(&w.min(h)) | !(360..=4096).contains(&w.max(h))
    {
        return Some("picture_size_check_failed");
    }
    None
}

struct Video {
    codec_ok: bool,
    fps: Option<f64>,
    size: Option<(u64, u64)>,
}

fn be(b: &[u8], at: usize, n: usize) -> Option<u64> {
    let s = b.get(at..at.checked_add(n)?)?;
    Some(s.iter().fold(0u64, |acc, &x| (acc << 8) | u64::from(x)))
}

/// The boxes directly inside `b`: (type, body).
fn boxes(b: &[u8]) -> Vec<([u8; 4], &[u8])> {
    let mut out = Vec::new();
    let mut at = 0usize;
    while at + 8 <= b.len() && out.len() < 10_000 {
        let size = be(b, at, 4).unwrap_or(0) as usize;
        let typ: [u8; 4] = b[at + 4..at + 8].try_into().unwrap_or_default();
        let (head, size) = match size {
            1 => (16, be(b, at + 8, 8).unwrap_or(0) as usize),
            0 => (8, b.len() - at),
            n => (8, n),
        };
        if size < head || at + size > b.len() {
            break;
        }
        out.push((typ, &b[at + head..at + size]));
        at += size;
    }
    out
}

fn child<'a>(b: &'a [u8], typ: &[u8; 4]) -> Option<&'a [u8]> {
    boxes(b)
        .into_iter()
        .find(|(t, _)| t == typ)
        .map(|(_, body)| body)
}

fn mp4_video(bytes: &[u8]) -> Option<Video> {
    let moov = child(bytes, b"moov")?;
    for (typ, trak) in boxes(moov) {
        if &typ != b"trak" {
            continue;
        }
        let mdia = child(trak, b"mdia")?;
        if child(mdia, b"hdlr").and_then(|h| h.get(8..12)) != Some(b"vide") {
            continue;
        }
        let tkhd = child(trak, b"tkhd")?;
        let size_at = if tkhd.first() == Some(&1) { 88 } else { 76 };
        let size = Some((be(tkhd, size_at, 2)?, be(tkhd, size_at + 4, 2)?));
        let mdhd = child(mdia, b"mdhd")?;
        let timescale = be(mdhd, if mdhd.first() == Some(&1) { 20 } else { 12 }, 4)?;
        let stbl = child(child(mdia, b"minf")?, b"stbl")?;
        let stsd = child(stbl, b"stsd")?;
        let fourcc = stsd.get(12..16)?;
        let codec_ok = VIDEO_FOURCCS.iter().any(|f| &f[..] == fourcc);
        let fps = child(stbl, b"stts").and_then(|stts| {
            let n = be(stts, 4, 4)? as usize;
            let (mut frames, mut ticks) = (0u64, 0u64);
            for i in 0..n.min(100_000) {
                let count = be(stts, 8 + i * 8, 4)?;
                frames += count;
                ticks += count * be(stts, 12 + i * 8, 4)?;
            }
            (ticks > 0).then(|| frames as f64 * timescale as f64 / ticks as f64)
        });
        return Some(Video {
            codec_ok,
            fps,
            size,
        });
    }
    None
}

/// One EBML element at `at`: (id, body range), or `None` at the end or on damage.
fn element(b: &[u8], at: usize) -> Option<(u32, usize, usize)> {
    let vint = |at: usize, keep_marker: bool| -> Option<(u64, usize)> {
        let first = *b.get(at)?;
        let len = first.leading_zeros() as usize + 1;
        if len > 8 {
            return None;
        }
        let mut v = if keep_marker {
            u64::from(first)
        } else {
            u64::from(first) & (0xFF >> len)
        };
        for i in 1..len {
            v = (v << 8) | u64::from(*b.get(at + i)?);
        }
        Some((v, len))
    };
    let (id, id_len) = vint(at, true)?;
    let (size, size_len) = vint(at + id_len, false)?;
    let start = at + id_len + size_len;
    let all_ones = size == (1u64 << (7 * size_len)) - 1;
    let end = if all_ones {
        b.len()
    } else {
        start.checked_add(size as usize)?.min(b.len())
    };
    Some((id as u32, start, end))
}

fn elements(b: &[u8]) -> Vec<(u32, &[u8])> {
    let mut out = Vec::new();
    let mut at = 0;
    while let Some((id, start, end)) = element(b, at) {
        out.push((id, &b[start..end]));
        if end <= at || out.len() > 100_000 {
            break;
        }
        at = end;
    }
    out
}

fn webm_video(bytes: &[u8]) -> Option<Video> {
    let segment = elements(bytes)
        .into_iter()
        .find(|(id, _)| *id == 0x1853_8067)?
        .1;
    let tracks = elements(segment)
        .into_iter()
        .find(|(id, _)| *id == 0x1654_AE6B)?
        .1;
    for (id, entry) in elements(tracks) {
        if id != 0xAE {
            continue;
        }
        let fields = elements(entry);
        let get = |want: u32| fields.iter().find(|(i, _)| *i == want).map(|(_, d)| *d);
        let uint = |d: &[u8]| d.iter().fold(0u64, |acc, &x| (acc << 8) | u64::from(x));
        if get(0x83).map(uint) != Some(1) {
            continue;
        }
        let codec = get(0x86).map(|d| String::from_utf8_lossy(d).into_owned());
        let codec_ok = codec.is_some_and(|c| VIDEO_CODEC_IDS.contains(&c.as_str()));
        let fps = get(0x23_E383)
            .map(uint)
            .filter(|&ns| ns > 0)
            .map(|ns| 1e9 / ns as f64);
        let size = get(0xE0).and_then(|video| {
            let px = elements(video);
            let find = |want| px.iter().find(|(i, _)| *i == want).map(|(_, d)| uint(d));
            Some((find(0xB0)?, find(0xBA)?))
        });
        return Some(Video {
            codec_ok,
            fps,
            size,
        });
    }
    None
}

fn photo_verdict(bytes: &[u8]) -> Option<&'static str> {
    let size = if bytes.starts_with(&[0xFF, 0xD8]) {
        jpeg_size(bytes)
    } else if bytes.starts_with(b"RIFF") && bytes.get(8..12) == Some(b"WEBP") {
        webp_size(bytes)
    } else {
        return Some("file_format_check_failed");
    };
    let Some((w, h)) = size else {
        return Some("file_format_check_failed");
    };
    if w.min(h) > 1080 || bytes.len() > 20_000_000 {
        return Some("picture_size_check_failed");
    }
    None
}

fn jpeg_size(b: &[u8]) -> Option<(u64, u64)> {
    let mut at = 2;
    while at + 4 <= b.len() {
        if b[at] != 0xFF {
            return None;
        }
        let marker = b[at + 1];
        let len = be(b, at + 2, 2)? as usize;
        if matches!(marker, 0xC0..=0xC3 | 0xC5..=0xC7 | 0xC9..=0xCB | 0xCD..=0xCF) {
            return Some((be(b, at + 7, 2)?, be(b, at + 5, 2)?));
        }
        at += 2 + len;
    }
    None
}

fn webp_size(b: &[u8]) -> Option<(u64, u64)> {
    let le = |at: usize, n: usize| -> Option<u64> {
        let s = b.get(at..at + n)?;
        Some(
            s.iter()
                .rev()
                .fold(0u64, |acc, &x| (acc << 8) | u64::from(x)),
        )
    };
    match b.get(12..16)? {
        b"VP8 " => Some((le(26, 2)? & 0x3FFF, le(28, 2)? & 0x3FFF)),
        b"VP8L" => {
            let bits = le(21, 4)?;
            Some(((bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1))
        }
        b"VP8X" => Some((le(24, 3)? + 1, le(27, 3)? + 1)),
        _ => None,
    }
}
