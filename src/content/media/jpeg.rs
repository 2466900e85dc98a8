//! JPEG: SOI at the start, marker segments up to the first SOF (for the size), EOI at the end.

use std::io::{Read, Seek};

use super::{Facts, MediaError, incomplete, read_at};

const EXPECTED: &str = "JPEG";
/// How many bytes at the end are searched for EOI behind zero padding.
const TAIL: u64 = 4096;
/// At most this many marker segments are walked looking for SOF.
const MAX_SEGMENTS: usize = 4096;

fn not_recognized(reason: impl Into<String>) -> MediaError {
    MediaError::NotRecognized {
        expected: EXPECTED,
        reason: reason.into(),
    }
}

/// SOF0..SOF15 carry the frame size; C4 (DHT), C8 (JPG) and CC (DAC) share the range but do not.
fn is_sof(marker: u8) -> bool {
    (0xC0..=0xCF).contains(&marker) && !matches!(marker, 0xC4 | 0xC8 | 0xCC)
}

/// Markers that stand alone, without a length field.
fn is_standalone(marker: u8) -> bool {
    matches!(marker, 0x01 | 0xD0..=0xD7)
}

pub(super) fn probe<R: Read + Seek>(r: &mut R, len: u64) -> Result<Facts, MediaError> {
    let mut soi = [0u8; 2];
    let n = usize::try_from(len.min(2)).unwrap_or(2);
    read_at(r, 0, &mut soi[..n])?;
    if soi[..n] != [0xFF, 0xD8][..n] {
        return Err(not_recognized("no SOI marker at the start"));
    }
    // EOI first: a file still being written (or preallocated with zeros) lacks it, and
    // that must read as incomplete rather than as damage found by the walk.
    if !ends_with_eoi(r, len)? {
        return Err(incomplete(
            "no end-of-image marker: the file looks cut short",
        ));
    }
    read_frame_size(r, len)
}

/// Walks marker segments from just after SOI to the first SOF and reads its height and width.
/// Stops without a size at SOS or EOI (a SOF always comes before them in a valid file).
fn read_frame_size<R: Read + Seek>(r: &mut R, len: u64) -> Result<Facts, MediaError> {
    let mut pos = 2u64;
    let mut rotation = 0u16;
    for _ in 0..MAX_SEGMENTS {
        // A marker is 0xFF (possibly repeated as fill) followed by its code.
        let mut two = [0u8; 2];
        if len.saturating_sub(pos) < 2 {
            break;
        }
        read_at(r, pos, &mut two)?;
        if two[0] != 0xFF {
            return Err(not_recognized(format!(
                "expected a marker at byte {pos}, found 0x{:02X}",
                two[0]
            )));
        }
        let marker = two[1];
        if marker == 0xFF {
            pos += 1;
            continue;
        }
        pos += 2;
        if is_standalone(marker) {
            continue;
        }
        if matches!(marker, 0xD9 | 0xDA) {
            break;
        }
        let mut seg = [0u8; 7]; // length (2), precision (1), height (2), width (2)
        let present = len.saturating_sub(pos);
        if present < 2 {
            break;
        }
        read_at(r, pos, &mut seg[..2])?;
        let seg_len = u64::from(u16::from_be_bytes([seg[0], seg[1]]));
        if seg_len < 2 {
            return Err(not_recognized(format!(
                "marker 0x{marker:02X} at byte {} has a damaged length",
                pos - 2
            )));
        }
        if seg_len > present {
            return Err(incomplete(format!(
                "the 0x{marker:02X} segment runs past the end of the file (declares {seg_len} bytes, {present} present)"
            )));
        }
        if marker == 0xE1 && rotation == 0 {
            // APP1: EXIF, whose orientation says how the picture is turned when shown.
            let take = usize::try_from((seg_len - 2).min(MAX_EXIF)).unwrap_or(0);
            let mut body = vec![0u8; take];
            read_at(r, pos + 2, &mut body)?;
            rotation = exif_rotation(&body).unwrap_or(0);
        }
        if is_sof(marker) {
            if seg_len < 7 {
                return Err(not_recognized("the frame header (SOF) is too short"));
            }
            read_at(r, pos, &mut seg)?;
            let height = u32::from(u16::from_be_bytes([seg[3], seg[4]]));
            let width = u32::from(u16::from_be_bytes([seg[5], seg[6]]));
            return Ok(Facts {
                duration_ms: None,
                // A zero height is defined later by a DNL marker; we do not chase it.
                width: (width > 0).then_some(width),
                height: (height > 0).then_some(height),
                streams: crate::content::media::Streams {
                    rotation,
                    ..Default::default()
                },
            });
        }
        pos += seg_len;
    }
    Ok(Facts::default())
}

/// Most EXIF bytes read for the orientation.
const MAX_EXIF: u64 = 64 * 1024;

/// Clockwise degrees from the EXIF orientation tag (0x0112) of IFD0 in an APP1 body
/// (`Exif\0\0`, then a TIFF header). Mirrored orientations count as their rotation.
fn exif_rotation(app1: &[u8]) -> Option<u16> {
    let tiff = app1.strip_prefix(b"Exif\0\0")?;
    let big = match tiff.get(..2)? {
        b"MM" => true,
        b"II" => false,
        _ => return None,
    };
    let u16_at = |at: usize| -> Option<u16> {
        let b: [u8; 2] = tiff.get(at..at + 2)?.try_into().ok()?;
        Some(if big {
            u16::from_be_bytes(b)
        } else {
            u16::from_le_bytes(b)
        })
    };
    let u32_at = |at: usize| -> Option<u32> {
        let b: [u8; 4] = tiff.get(at..at + 4)?.try_into().ok()?;
        Some(if big {
            u32::from_be_bytes(b)
        } else {
            u32::from_le_bytes(b)
        })
    };
    let ifd = usize::try_from(u32_at(4)?).ok()?;
    let count = usize::from(u16_at(ifd)?).min(512);
    (0..count).find_map(|i| {
        let entry = ifd + 2 + i * 12;
        (u16_at(entry)? == 0x0112).then(|| match u16_at(entry + 8)? {
            3 | 4 => Some(180),
            5 | 6 => Some(90),
            7 | 8 => Some(270),
            _ => Some(0),
        })?
    })
}

/// Whether the file ends with FF D9, ignoring trailing zero padding within the last `TAIL` bytes.
fn ends_with_eoi<R: Read + Seek>(r: &mut R, len: u64) -> Result<bool, MediaError> {
    let take = len.min(TAIL);
    let mut tail = vec![0u8; usize::try_from(take).unwrap_or(0)];
    read_at(r, len - take, &mut tail)?;
    let end = tail.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
    Ok(tail[..end].ends_with(&[0xFF, 0xD9]))
}

#[cfg(test)]
mod tests {
    use crate::content::media::tests::{assert_every_cut_incomplete, probe_bytes};
    use crate::content::media::{ImageFormat, MediaKind};

    const JPEG: MediaKind = MediaKind::Image(ImageFormat::Jpeg);
    const SOI: [u8; 2] = [0xFF, 0xD8];
    const EOI: [u8; 2] = [0xFF, 0xD9];

    /// A marker segment: FF, marker, 16-bit length (counting itself), body.
    fn seg(marker: u8, body: &[u8]) -> Vec<u8> {
        let len = u16::try_from(body.len() + 2).expect("test segment fits");
        [&[0xFF, marker][..], &len.to_be_bytes(), body].concat()
    }

    fn sof(marker: u8, w: u16, h: u16) -> Vec<u8> {
        let body = [
            &[8u8][..],
            &h.to_be_bytes(),
            &w.to_be_bytes(),
            &[1, 1, 0x11, 0],
        ]
        .concat();
        seg(marker, &body)
    }

    /// SOI, APP0, DQT, DHT (0xC4, which must not be taken for a SOF), the given SOF, SOS,
    /// entropy-coded bytes (with a stuffed FF 00 and a restart marker), EOI.
    fn jpeg(sof_segment: Vec<u8>) -> Vec<u8> {
        let dht = seg(0xC4, &[0x00, 0x12, 0x34, 0x56, 0x78]);
        let entropy = [0x12, 0x34, 0xFF, 0x00, 0x56, 0xFF, 0xD0, 0x78, 0x9A];
        [
            SOI.to_vec(),
            seg(0xE0, b"JFIF\0\x01\x02\0\0\x01\0\x01\0\0"),
            seg(0xDB, &[0; 65]),
            dht,
            sof_segment,
            seg(0xDA, &[1, 1, 0, 0, 0x3F, 0]),
            entropy.to_vec(),
            EOI.to_vec(),
        ]
        .concat()
    }

    /// Baseline, progressive, padded and fill-byte variants probe Ok with their size.
    #[test]
    fn valid_files() {
        let with_fill = [
            SOI.to_vec(),
            vec![0xFF, 0xFF],
            sof(0xC0, 10, 20)[1..].to_vec(),
            EOI.to_vec(),
        ]
        .concat();
        let table: [(&str, Vec<u8>, (u32, u32)); 5] = [
            ("baseline", jpeg(sof(0xC0, 1920, 1080)), (1920, 1080)),
            ("progressive", jpeg(sof(0xC2, 1080, 1350)), (1080, 1350)),
            ("lossless SOF3", jpeg(sof(0xC3, 64, 48)), (64, 48)),
            (
                "zero padding after EOI",
                [jpeg(sof(0xC0, 800, 600)), vec![0; 100]].concat(),
                (800, 600),
            ),
            ("fill bytes before a marker", with_fill, (10, 20)),
        ];
        for (what, bytes, (w, h)) in table {
            let info = probe_bytes(JPEG, &bytes).unwrap_or_else(|e| panic!("{what}: {e}"));
            assert_eq!((info.width, info.height), (Some(w), Some(h)), "{what}");
            assert_eq!(info.duration_ms, None, "{what}");
        }
    }

    /// Every proper prefix of a JPEG is Incomplete.
    #[test]
    fn every_cut_is_incomplete() {
        assert_every_cut_incomplete(JPEG, &jpeg(sof(0xC0, 1920, 1080)));
    }

    /// Broken files fail with the right kind of error and a message saying what is wrong.
    #[test]
    fn broken_files() {
        let good = jpeg(sof(0xC0, 640, 480));
        let no_eoi = good[..good.len() - 2].to_vec();
        let zero_length = [SOI.to_vec(), vec![0xFF, 0xE1, 0, 0], EOI.to_vec()].concat();
        let not_marker = [SOI.to_vec(), vec![0x12, 0x34], EOI.to_vec()].concat();
        let table: [(&str, Vec<u8>, &str); 6] = [
            (
                "no EOI",
                no_eoi,
                "incomplete: no end-of-image marker: the file looks cut short",
            ),
            (
                "all zeros after the data",
                [good[..100].to_vec(), vec![0; 5000]].concat(),
                "incomplete: no end-of-image marker",
            ),
            (
                "PNG renamed",
                b"\x89PNG\r\n\x1a\n".to_vec(),
                "not a JPEG file (no SOI marker at the start)",
            ),
            (
                "text",
                b"just text".to_vec(),
                "not a JPEG file (no SOI marker at the start)",
            ),
            (
                "segment length below 2",
                zero_length,
                "not a JPEG file (marker 0xE1 at byte 2 has a damaged length)",
            ),
            (
                "no marker after SOI",
                not_marker,
                "not a JPEG file (expected a marker at byte 2",
            ),
        ];
        for (what, bytes, want) in table {
            let err = probe_bytes(JPEG, &bytes).expect_err(what);
            assert!(err.to_string().starts_with(want), "{what}: {err}");
        }
    }

    /// A zero height (defined later by DNL) leaves the height unknown rather than 0.
    #[test]
    fn dnl_height_is_unknown() {
        let info = probe_bytes(JPEG, &jpeg(sof(0xC1, 500, 0))).expect("valid");
        assert_eq!((info.width, info.height), (Some(500), None));
    }
}
