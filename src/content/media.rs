//! Structural checks and cheap probes of media files before they are published to TikTok.
//!
//! This module owns three questions about a dropped file:
//! 1. *Is it what its extension says?* ([`MediaKind::from_path`], [`MediaError::NotRecognized`])
//! 2. *Is it complete?* A file that is still being written or was cut short fails with
//!    [`MediaError::Incomplete`]. The checks are structural (container boxes, elements,
//!    markers and declared sizes); they do not decode a single frame.
//! 3. *Does it fit TikTok's limits?* [`probe`] reads the size, duration and dimensions,
//!    and [`check_limits`] turns them into plain-English [`Violation`]s.
//!
//! Everything is synchronous and bounded: only headers are read (by seeking), never the
//! whole file, and no allocation is sized by a number read from the file without a cap.
//! Watching folders, waiting for a file to settle, retrying, per-creator limits (such as
//! a creator's own maximum video duration) and uploading are left to the callers.

use std::io::{self, Read, Seek, SeekFrom};
use std::path::Path;

mod bounded;
mod jpeg;
mod rules;

pub use bounded::{MAX_BYTES as PROBE_MAX_BYTES, MAX_READS as PROBE_MAX_READS};
mod mp4;
mod webm;
mod webp;

/// What a file is, as told by its extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MediaKind {
    Video(VideoContainer),
    Image(ImageFormat),
}

/// Video container formats TikTok accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VideoContainer {
    Mp4,
    Mov,
    WebM,
}

/// Photo formats TikTok accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageFormat {
    Jpeg,
    WebP,
}

impl MediaKind {
    /// The kind for a path's extension (case-insensitive), or `None` if TikTok does not take it.
    pub fn from_path(path: &Path) -> Option<MediaKind> {
        let ext = path.extension()?.to_str()?.to_ascii_lowercase();
        Some(match ext.as_str() {
            "mp4" => MediaKind::Video(VideoContainer::Mp4),
            "mov" => MediaKind::Video(VideoContainer::Mov),
            "webm" => MediaKind::Video(VideoContainer::WebM),
            "jpg" | "jpeg" => MediaKind::Image(ImageFormat::Jpeg),
            "webp" => MediaKind::Image(ImageFormat::WebP),
            _ => return None,
        })
    }

    /// The MIME type to announce when uploading.
    pub fn mime_type(&self) -> &'static str {
        match self {
            MediaKind::Video(VideoContainer::Mp4) => "video/mp4",
            MediaKind::Video(VideoContainer::Mov) => "video/quicktime",
            MediaKind::Video(VideoContainer::WebM) => "video/webm",
            MediaKind::Image(ImageFormat::Jpeg) => "image/jpeg",
            MediaKind::Image(ImageFormat::WebP) => "image/webp",
        }
    }

    /// The format's short name, as used in messages ("MP4", "JPEG", ...).
    pub fn name(&self) -> &'static str {
        match self {
            MediaKind::Video(VideoContainer::Mp4) => "MP4",
            MediaKind::Video(VideoContainer::Mov) => "MOV",
            MediaKind::Video(VideoContainer::WebM) => "WebM",
            MediaKind::Image(ImageFormat::Jpeg) => "JPEG",
            MediaKind::Image(ImageFormat::WebP) => "WebP",
        }
    }

    pub fn is_video(&self) -> bool {
        matches!(self, MediaKind::Video(_))
    }

    pub fn is_image(&self) -> bool {
        matches!(self, MediaKind::Image(_))
    }
}

/// Facts read from a file that passed the structural checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaInfo {
    pub kind: MediaKind,
    pub size_bytes: u64,
    /// Duration of a video, when the container states it.
    pub duration_ms: Option<u64>,
    /// Stored width in pixels (for MP4/MOV before any rotation in the track matrix).
    pub width: Option<u32>,
    pub height: Option<u32>,
    /// Streams and display, where the container says (see [`Streams`]).
    pub streams: Streams,
}

/// What a container says about its streams and how it is shown.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Streams {
    /// The video codec by its common name (`H.264`, `H.265`, `VP9`, `AV1`, `ProRes`, …), or the
    /// container's own code when it is not one tokdrop knows.
    pub video_codec: Option<String>,
    pub audio_codec: Option<String>,
    /// Average frame rate in thousandths of a frame per second (29.97 fps is 29970).
    pub fps_milli: Option<u32>,
    /// The frame durations vary (a phone's variable frame rate).
    pub variable_fps: bool,
    /// Clockwise degrees the picture is turned when shown (MP4 matrix, EXIF orientation).
    pub rotation: u16,
}

impl MediaInfo {
    /// One line of what the probe found, for `tokdrop check`: codec, frame rate, size as
    /// shown and orientation, duration, file size and bitrate, audio.
    pub fn summary(&self) -> String {
        let s = &self.streams;
        let mut parts = Vec::new();
        if self.kind.is_video() {
            parts.push(
                s.video_codec
                    .clone()
                    .unwrap_or_else(|| "codec unknown".into()),
            );
            if let Some(fps) = s.fps_milli {
                let vfr = if s.variable_fps { " (variable)" } else { "" };
                parts.push(format!("{}{vfr}", rules::human_fps(fps)));
            }
        } else {
            parts.push(self.kind.name().to_string());
        }
        if let Some((w, h)) = self.shown_size() {
            let shape = match w.cmp(&h) {
                std::cmp::Ordering::Less => "portrait",
                std::cmp::Ordering::Greater => "landscape",
                std::cmp::Ordering::Equal => "square",
            };
            let turned = if s.rotation == 0 {
                String::new()
            } else {
                format!(", turned {}°", s.rotation)
            };
            parts.push(format!("{w}x{h} {shape}{turned}"));
        }
        if let Some(ms) = self.duration_ms {
            parts.push(format!("{:.1} s", ms as f64 / 1000.0));
        }
        parts.push(rules::human_size(self.size_bytes));
        if let Some(ms) = self.duration_ms.filter(|&ms| ms > 0) {
            parts.push(format!("{} kbit/s", self.size_bytes * 8 / ms));
        }
        if self.kind.is_video() {
            parts.push(match &s.audio_codec {
                Some(a) => format!("audio {a}"),
                None => "no audio".into(),
            });
        }
        parts.join(", ")
    }

    /// Width and height as shown (after the rotation).
    pub fn shown_size(&self) -> Option<(u32, u32)> {
        let (w, h) = (self.width?, self.height?);
        Some(if self.streams.rotation % 180 == 90 {
            (h, w)
        } else {
            (w, h)
        })
    }
}

/// Why a file cannot be used (yet).
#[derive(Debug, thiserror::Error)]
pub enum MediaError {
    #[error("cannot read the file: {0}")]
    Io(#[from] io::Error),
    /// The file is cut short or still being written; it may become complete later.
    #[error("incomplete: {reason}")]
    Incomplete { reason: String },
    /// The content does not match the extension (or is damaged beyond a truncation).
    #[error("not {} {expected} file ({reason})", article(expected))]
    NotRecognized {
        expected: &'static str,
        reason: String,
    },
    /// The extension is not one TikTok accepts.
    #[error(
        "unsupported file type {extension:?}: TikTok accepts .mp4, .mov and .webm videos \
         and .jpg, .jpeg and .webp photos"
    )]
    Unsupported { extension: String },
}

/// "an MP4", "a JPEG": the article for a format name in messages.
fn article(name: &str) -> &'static str {
    if name == "MP4" { "an" } else { "a" }
}

/// Facts a format parser found; `probe_file` adds the kind and size.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
struct Facts {
    duration_ms: Option<u64>,
    width: Option<u32>,
    height: Option<u32>,
    streams: Streams,
}

fn incomplete(reason: impl Into<String>) -> MediaError {
    MediaError::Incomplete {
        reason: reason.into(),
    }
}

/// Reads exactly `buf.len()` bytes at `offset`. Callers check the range against the
/// length they were given; if the file is shorter than that after all (it shrank, or
/// is still being replaced), the short read counts as an incomplete file.
fn read_at<R: Read + Seek>(r: &mut R, offset: u64, buf: &mut [u8]) -> Result<(), MediaError> {
    r.seek(SeekFrom::Start(offset))?;
    r.read_exact(buf).map_err(|e| {
        if e.kind() == io::ErrorKind::UnexpectedEof {
            incomplete("the file ended earlier than its size said (it may still be changing)")
        } else {
            MediaError::Io(e)
        }
    })
}

/// Opens `path`, picks the format from its extension, and probes it.
pub fn probe(path: &Path) -> Result<MediaInfo, MediaError> {
    let kind = MediaKind::from_path(path).ok_or_else(|| MediaError::Unsupported {
        extension: path
            .extension()
            .map(|e| e.to_string_lossy().into_owned())
            .unwrap_or_default(),
    })?;
    // `probe_file` reads through a buffered reader with a budget ([`bounded`]).
    let mut file = crate::support::fsops::open_regular(path)?;
    let len = file.metadata()?.len();
    let info = probe_file(kind, &mut file, len)?;
    if file.metadata()?.len() != len {
        return Err(incomplete(
            "the file changed size while it was being checked (it is probably still being written)",
        ));
    }
    Ok(info)
}

/// Checks that the first `len` bytes of `r` are a complete file of `kind` and reads its facts.
pub fn probe_file<R: Read + Seek>(
    kind: MediaKind,
    r: &mut R,
    len: u64,
) -> Result<MediaInfo, MediaError> {
    if len == 0 {
        return Err(incomplete("the file is empty"));
    }
    let actual = r.seek(SeekFrom::End(0))?;
    if actual < len {
        return Err(incomplete(format!(
            "only {actual} of the expected {len} bytes are there (the file may still be changing)"
        )));
    }
    let r = &mut bounded::Bounded::new(r);
    let facts = match kind {
        MediaKind::Video(VideoContainer::Mp4 | VideoContainer::Mov) => {
            mp4::probe(kind.name(), r, len)
        }
        MediaKind::Video(VideoContainer::WebM) => webm::probe(r, len),
        MediaKind::Image(ImageFormat::Jpeg) => jpeg::probe(r, len),
        MediaKind::Image(ImageFormat::WebP) => webp::probe(r, len),
    };
    let facts = facts.map_err(|e| match e {
        MediaError::Io(io) if io.get_ref().is_some_and(|i| i.is::<bounded::BudgetSpent>()) => {
            MediaError::NotRecognized {
                expected: kind.name(),
                reason: format!(
                    "checking it needed more than {} reads or {} MB of headers; a real file needs far fewer",
                    bounded::MAX_READS,
                    bounded::MAX_BYTES / 1_000_000
                ),
            }
        }
        other => other,
    })?;
    Ok(MediaInfo {
        kind,
        size_bytes: len,
        duration_ms: facts.duration_ms,
        width: facts.width,
        height: facts.height,
        streams: facts.streams,
    })
}

pub use rules::{
    MAX_IMAGE_BYTES, MAX_IMAGE_SHORT_SIDE_PX, MAX_VIDEO_BYTES, MAX_VIDEO_DURATION_MS,
    MAX_VIDEO_SIDE_PX, MIN_VIDEO_SIDE_PX, Violation, check_limits,
};

#[cfg(test)]
#[path = "media_tests.rs"]
pub(crate) mod tests;
