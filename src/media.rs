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

use std::fmt;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::Path;

mod bounded;
mod jpeg;

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
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Facts {
    duration_ms: Option<u64>,
    width: Option<u32>,
    height: Option<u32>,
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
    let mut file = crate::fsops::open_regular(path)?;
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
    })
}

// ---------------------------------------------------------------------------------------
// Limits
// ---------------------------------------------------------------------------------------

/// Largest video TikTok's API takes (4 GiB).
pub const MAX_VIDEO_BYTES: u64 = 4 * 1024 * 1024 * 1024;
/// Largest photo TikTok's API takes (20 MiB).
pub const MAX_IMAGE_BYTES: u64 = 20 * 1024 * 1024;
/// Both sides of a video must be at least this many pixels.
pub const MIN_VIDEO_SIDE_PX: u32 = 360;
/// Neither side of a video may exceed this many pixels.
pub const MAX_VIDEO_SIDE_PX: u32 = 4096;
/// The API's maximum video duration (10 minutes). A creator's own, often lower,
/// maximum comes from TikTok's creator info and is checked elsewhere.
pub const MAX_VIDEO_DURATION_MS: u64 = 600_000;
/// Photos may be at most 1080p: the shorter side must not exceed this.
pub const MAX_IMAGE_SHORT_SIDE_PX: u32 = 1080;

/// One way a file breaks TikTok's limits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// The `MediaInfo` field at fault: "size_bytes", "duration_ms" or "dimensions".
    pub field: &'static str,
    /// What is wrong and what to do, for the creator.
    pub message: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

fn human_size(bytes: u64) -> String {
    const MIB: f64 = 1024.0 * 1024.0;
    let mib = bytes as f64 / MIB;
    if mib >= 1024.0 {
        format!("{:.1} GiB", mib / 1024.0)
    } else {
        format!("{mib:.1} MiB")
    }
}

fn human_duration(ms: u64) -> String {
    let secs = ms / 1000;
    format!("{} min {} s", secs / 60, secs % 60)
}

/// TikTok's API limits that `info` breaks; empty means it may be published.
/// Facts that could not be read (`None`) are not checked.
pub fn check_limits(info: &MediaInfo) -> Vec<Violation> {
    let mut out = Vec::new();
    let mut push = |field, message: String| out.push(Violation { field, message });
    let sides = info.width.zip(info.height);
    match info.kind {
        MediaKind::Video(_) => {
            if info.size_bytes > MAX_VIDEO_BYTES {
                push(
                    "size_bytes",
                    format!(
                        "The video is {}; TikTok accepts videos up to 4 GiB. \
                         Export it at a lower bitrate or trim it.",
                        human_size(info.size_bytes)
                    ),
                );
            }
            if let Some(ms) = info.duration_ms.filter(|&ms| ms > MAX_VIDEO_DURATION_MS) {
                push(
                    "duration_ms",
                    format!(
                        "The video is {} long; TikTok accepts videos up to 10 minutes. \
                         Trim it to 10 minutes or less.",
                        human_duration(ms)
                    ),
                );
            }
            if let Some((w, h)) = sides {
                if w.min(h) < MIN_VIDEO_SIDE_PX {
                    push(
                        "dimensions",
                        format!(
                            "The video is {w}x{h} px; TikTok needs both sides to be at least \
                             {MIN_VIDEO_SIDE_PX} px. Export it at a higher resolution \
                             (for example 720x1280)."
                        ),
                    );
                }
                if w.max(h) > MAX_VIDEO_SIDE_PX {
                    push(
                        "dimensions",
                        format!(
                            "The video is {w}x{h} px; TikTok accepts sides up to \
                             {MAX_VIDEO_SIDE_PX} px. Scale it down (for example to 1080x1920)."
                        ),
                    );
                }
            }
        }
        MediaKind::Image(_) => {
            if info.size_bytes > MAX_IMAGE_BYTES {
                push(
                    "size_bytes",
                    format!(
                        "The photo is {}; TikTok accepts photos up to 20 MiB. \
                         Save it with stronger compression or scale it down.",
                        human_size(info.size_bytes)
                    ),
                );
            }
            if let Some((w, h)) = sides {
                let short = w.min(h);
                if short > MAX_IMAGE_SHORT_SIDE_PX {
                    push(
                        "dimensions",
                        format!(
                            "TikTok accepts photos up to 1080p: the shorter side is {short} px, \
                             scale it down to {MAX_IMAGE_SHORT_SIDE_PX} px or less"
                        ),
                    );
                }
            }
        }
    }
    out
}

#[cfg(test)]
#[path = "media_tests.rs"]
pub(crate) mod tests;
