//! WebP: RIFF container whose declared size must match the file, and the canvas size from
//! the first chunk (VP8 lossy, VP8L lossless or VP8X extended).

use std::io::{Read, Seek};

use super::{Facts, MediaError, incomplete, read_at};

const EXPECTED: &str = "WebP";
/// RIFF header (12) + first chunk header (8) + the payload bytes holding the size (10).
const HEAD: usize = 30;

fn not_recognized(reason: impl Into<String>) -> MediaError {
    MediaError::NotRecognized {
        expected: EXPECTED,
        reason: reason.into(),
    }
}

fn le16(b: &[u8], at: usize) -> u32 {
    u32::from(b[at]) | u32::from(b[at + 1]) << 8
}

fn le24(b: &[u8], at: usize) -> u32 {
    le16(b, at) | u32::from(b[at + 2]) << 16
}

fn le32(b: &[u8], at: usize) -> u32 {
    le24(b, at) | u32::from(b[at + 3]) << 24
}

pub(super) fn probe<R: Read + Seek>(r: &mut R, len: u64) -> Result<Facts, MediaError> {
    let mut head = [0u8; HEAD];
    let n = usize::try_from(len).map_or(HEAD, |n| n.min(HEAD));
    let head = &mut head[..n];
    read_at(r, 0, head)?;
    let riff_ok = head[..n.min(4)] == b"RIFF"[..n.min(4)];
    let webp_ok = n <= 8 || head[8..n.min(12)] == b"WEBP"[..n.min(12) - 8];
    if !riff_ok || !webp_ok {
        return Err(not_recognized("no RIFF/WEBP header at the start"));
    }
    if n < 12 {
        return Err(incomplete("the file is cut short inside its RIFF header"));
    }
    let declared = u64::from(le32(head, 4)) + 8;
    // An odd RIFF size may be followed by one pad byte.
    let padded = declared % 2 == 1 && len == declared + 1;
    if declared > len {
        return Err(incomplete(format!(
            "the RIFF header declares {declared} bytes but only {len} are present"
        )));
    }
    if declared < len && !padded {
        return Err(not_recognized(format!(
            "{} unexpected bytes follow the end of the image ({declared} bytes declared)",
            len - declared
        )));
    }
    if n < 20 {
        return Err(not_recognized(
            "there is no image chunk after the RIFF header",
        ));
    }
    let chunk_size = u64::from(le32(head, 16));
    if 20 + chunk_size > declared {
        return Err(not_recognized(
            "the first chunk runs past the end of the RIFF data",
        ));
    }
    let payload_len = usize::try_from(chunk_size).map_or(n - 20, |c| c.min(n - 20));
    let payload = &head[20..20 + payload_len];
    let (width, height) = match &head[12..16] {
        b"VP8 " => {
            if payload_len < 10 || payload[3..6] != [0x9D, 0x01, 0x2A] {
                return Err(not_recognized("the VP8 frame header is damaged"));
            }
            (le16(payload, 6) & 0x3FFF, le16(payload, 8) & 0x3FFF)
        }
        b"VP8L" => {
            if payload_len < 5 || payload[0] != 0x2F {
                return Err(not_recognized("the VP8L header is damaged"));
            }
            let bits = le32(payload, 1);
            ((bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1)
        }
        b"VP8X" => {
            if payload_len < 10 {
                return Err(not_recognized("the VP8X header is damaged"));
            }
            (le24(payload, 4) + 1, le24(payload, 7) + 1)
        }
        other => {
            return Err(not_recognized(format!(
                "unknown first chunk {:?}",
                String::from_utf8_lossy(other)
            )));
        }
    };
    Ok(Facts {
        duration_ms: None,
        width: (width > 0).then_some(width),
        height: (height > 0).then_some(height),
        streams: Default::default(),
    })
}

#[cfg(test)]
mod tests {
    use crate::content::media::tests::{assert_every_cut_incomplete, probe_bytes};
    use crate::content::media::{ImageFormat, MediaKind};

    const WEBP: MediaKind = MediaKind::Image(ImageFormat::WebP);

    /// A chunk: fourcc, little-endian size, payload, pad byte if odd.
    fn chunk(fourcc: &[u8; 4], payload: &[u8]) -> Vec<u8> {
        let size = u32::try_from(payload.len()).expect("test chunk fits");
        let pad = if payload.len() % 2 == 1 {
            &[0u8][..]
        } else {
            &[]
        };
        [&fourcc[..], &size.to_le_bytes(), payload, pad].concat()
    }

    fn riff(chunks: &[Vec<u8>]) -> Vec<u8> {
        let body = chunks.concat();
        let size = u32::try_from(body.len() + 4).expect("test file fits");
        [&b"RIFF"[..], &size.to_le_bytes(), b"WEBP", &body].concat()
    }

    fn vp8(w: u16, h: u16) -> Vec<u8> {
        chunk(
            b"VP8 ",
            &[
                &[0x10, 0x02, 0x00, 0x9D, 0x01, 0x2A][..],
                &w.to_le_bytes(),
                &h.to_le_bytes(),
                &[1, 2, 3, 4],
            ]
            .concat(),
        )
    }

    fn vp8l(w: u32, h: u32) -> Vec<u8> {
        let bits = (w - 1) | (h - 1) << 14;
        chunk(
            b"VP8L",
            &[&[0x2F][..], &bits.to_le_bytes(), &[9, 9, 9]].concat(),
        )
    }

    fn vp8x(w: u32, h: u32) -> Vec<u8> {
        let w = (w - 1).to_le_bytes();
        let h = (h - 1).to_le_bytes();
        chunk(
            b"VP8X",
            &[0x10, 0, 0, 0, w[0], w[1], w[2], h[0], h[1], h[2]],
        )
    }

    /// Lossy, lossless and extended headers probe Ok with the canvas size.
    #[test]
    fn valid_files() {
        let table: [(&str, Vec<u8>, (u32, u32)); 5] = [
            ("VP8L", riff(&[vp8l(64, 48)]), (64, 48)),
            (
                "VP8L at the 14-bit maximum",
                riff(&[vp8l(16384, 1)]),
                (16384, 1),
            ),
            (
                "VP8X with alpha and image",
                riff(&[
                    vp8x(20000, 100),
                    chunk(b"ALPH", &[0; 3]),
                    vp8(20000 & 0x3FFF, 100),
                ]),
                (20000, 100),
            ),
            ("VP8 lossy", riff(&[vp8(320, 240)]), (320, 240)),
            (
                "VP8 with scaling bits",
                riff(&[vp8(0xC000 | 1080, 0x4000 | 1350)]),
                (1080, 1350),
            ),
        ];
        for (what, bytes, (w, h)) in table {
            let info = probe_bytes(WEBP, &bytes).unwrap_or_else(|e| panic!("{what}: {e}"));
            assert_eq!((info.width, info.height), (Some(w), Some(h)), "{what}");
        }
    }

    /// Every proper prefix of each header kind is Incomplete.
    #[test]
    fn every_cut_is_incomplete() {
        for bytes in [
            riff(&[vp8l(64, 48)]),
            riff(&[vp8x(100, 100), vp8(100, 100)]),
            riff(&[vp8(320, 240)]),
        ] {
            assert_every_cut_incomplete(WEBP, &bytes);
        }
    }

    /// Broken files fail with the right kind of error and a message saying what is wrong.
    #[test]
    fn broken_files() {
        let good = riff(&[vp8l(64, 48)]);
        let n = good.len();
        let mut bad_vp8 = riff(&[vp8(320, 240)]);
        bad_vp8[23] = 0;
        let mut chunk_too_big = good.clone();
        chunk_too_big[16] = 0xFF;
        let wave = [&b"RIFF"[..], &4u32.to_le_bytes(), b"WAVE"].concat();
        let table: [(&str, Vec<u8>, String); 8] = [
            (
                "cut short",
                good[..n - 3].to_vec(),
                format!(
                    "incomplete: the RIFF header declares {n} bytes but only {} are present",
                    n - 3
                ),
            ),
            (
                "extra bytes",
                [good.clone(), vec![0; 6]].concat(),
                format!(
                    "not a WebP file (6 unexpected bytes follow the end of the image ({n} bytes declared))"
                ),
            ),
            (
                "WAVE file",
                wave,
                "not a WebP file (no RIFF/WEBP header at the start)".into(),
            ),
            (
                "JPEG renamed",
                vec![0xFF, 0xD8, 0xFF, 0xE0, 0, 16],
                "not a WebP file (no RIFF/WEBP header".into(),
            ),
            (
                "unknown chunk",
                riff(&[chunk(b"JUNK", &[0; 10])]),
                "not a WebP file (unknown first chunk \"JUNK\")".into(),
            ),
            (
                "damaged VP8 start code",
                bad_vp8,
                "not a WebP file (the VP8 frame header is damaged)".into(),
            ),
            (
                "chunk past the RIFF end",
                chunk_too_big,
                "not a WebP file (the first chunk runs past".into(),
            ),
            (
                "no chunk",
                riff(&[]),
                "not a WebP file (there is no image chunk".into(),
            ),
        ];
        for (what, bytes, want) in table {
            let err = probe_bytes(WEBP, &bytes).expect_err(what);
            assert!(err.to_string().starts_with(&want), "{what}: {err}");
        }
    }

    /// An odd RIFF size followed by its one pad byte is accepted.
    #[test]
    fn odd_size_with_pad_byte() {
        // A 7-byte VP8L payload is padded to 8, but this writer left the pad out of the RIFF size.
        let mut bytes = riff(&[chunk(b"VP8L", &[0x2F, 1, 0x40, 0, 0, 9, 9])]);
        let odd = u32::try_from(bytes.len() - 9).expect("fits");
        bytes[4..8].copy_from_slice(&odd.to_le_bytes());
        assert!(probe_bytes(WEBP, &bytes).is_ok());
    }
}
