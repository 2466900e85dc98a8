//! TikTok's media rules (tiktok-api.md §6), in one table: what a video or photo must be for
//! TikTok to take it, each broken rule told in the creator's words with an ffmpeg command
//! that fixes the file. Used by intake and `tokdrop check`; the emulator keeps its own,
//! independent copy. Sizes use the strict readings (4,000,000,000 and 20,000,000 bytes).

use std::fmt;

use super::{MediaInfo, MediaKind};

/// Largest video TikTok's API takes (4 GB, read strictly).
pub const MAX_VIDEO_BYTES: u64 = 4_000_000_000;
/// Largest photo TikTok's API takes (20 MB, read strictly).
pub const MAX_IMAGE_BYTES: u64 = 20_000_000;
/// Both sides of a video must be at least this many pixels.
pub const MIN_VIDEO_SIDE_PX: u32 = 360;
/// Neither side of a video may exceed this many pixels.
pub const MAX_VIDEO_SIDE_PX: u32 = 4096;
/// The API's maximum video duration (10 minutes). A creator's own, often lower,
/// maximum comes from TikTok's creator info and is checked at posting time.
pub const MAX_VIDEO_DURATION_MS: u64 = 600_000;
/// Photos may be at most 1080p: the shorter side must not exceed this.
pub const MAX_IMAGE_SHORT_SIDE_PX: u32 = 1080;
/// Frame rates TikTok takes, in thousandths of a frame per second (23–60 fps).
pub const MIN_FPS_MILLI: u32 = 23_000;
pub const MAX_FPS_MILLI: u32 = 60_000;
/// Video codecs TikTok takes, by the names the probe gives.
pub const VIDEO_CODECS: [&str; 4] = ["H.264", "H.265", "VP8", "VP9"];

/// One way a file breaks TikTok's rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// The fact at fault: "size_bytes", "duration_ms", "dimensions", "codec" or "fps".
    pub field: &'static str,
    /// What is wrong, in the creator's words.
    pub message: String,
    /// What to do: the ffmpeg command that fixes the file.
    pub fix: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.message, self.fix)
    }
}

/// Sizes as people read them: `4.1 GB`, `812.4 MB`.
pub(crate) fn human_size(bytes: u64) -> String {
    if bytes >= 1_000_000_000 {
        format!("{:.1} GB", bytes as f64 / 1e9)
    } else if bytes >= 1_000_000 {
        format!("{:.1} MB", bytes as f64 / 1e6)
    } else {
        format!("{:.1} kB", bytes as f64 / 1e3)
    }
}

pub(crate) fn human_duration(ms: u64) -> String {
    let secs = ms / 1000;
    format!("{} min {} s", secs / 60, secs % 60)
}

pub(crate) fn human_fps(milli: u32) -> String {
    if milli.is_multiple_of(1000) {
        format!("{} fps", milli / 1000)
    } else {
        format!("{:.2} fps", f64::from(milli) / 1000.0)
    }
}

/// `name` quoted for a POSIX shell.
fn quoted(name: &str) -> String {
    if name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"._-/".contains(&b))
    {
        name.to_string()
    } else {
        format!("'{}'", name.replace('\'', r"'\''"))
    }
}

/// `ffmpeg -i NAME ARGS OUT`, OUT being NAME's stem with `-tiktok` and `ext`.
fn ffmpeg(name: &str, args: &str, ext: &str) -> String {
    let stem = std::path::Path::new(name)
        .file_stem()
        .map_or_else(|| name.to_string(), |s| s.to_string_lossy().into_owned());
    format!(
        "ffmpeg -i {} {args} {}",
        quoted(name),
        quoted(&format!("{stem}-tiktok.{ext}"))
    )
}

/// Re-encoding to what TikTok recommends: H.264 (yuv420p) and AAC in MP4.
const REENCODE: &str = "-c:v libx264 -pix_fmt yuv420p -c:a aac -movflags +faststart";

/// TikTok's rules that the file `name` described by `info` breaks; empty means TikTok takes
/// it. Facts the probe could not read are not judged.
pub fn check_limits(info: &MediaInfo, name: &str) -> Vec<Violation> {
    let mut out = Vec::new();
    let mut push = |field, text: String| {
        // Each text is "problem. Fix: command"; the problem holds no ". ", file names come later.
        let (message, fix) = match text.find(". ") {
            Some(at) => {
                // "Convert it: …" reads as "fix clip.mp4 (convert it: …)" in a result.
                let fix = &text[at + 2..];
                let mut chars = fix.chars();
                let fix = chars
                    .next()
                    .map(|c| c.to_lowercase().chain(chars).collect())
                    .unwrap_or_default();
                (text[..=at].to_string(), fix)
            }
            None => (text.clone(), String::new()),
        };
        out.push(Violation {
            field,
            message,
            fix,
        })
    };
    let sides = info.width.zip(info.height);
    let s = &info.streams;
    match info.kind {
        MediaKind::Video(_) => {
            if let Some(codec) = s
                .video_codec
                .as_deref()
                .filter(|c| !VIDEO_CODECS.contains(c))
            {
                push(
                    "codec",
                    format!(
                        "The video is encoded as {codec}; TikTok takes H.264, H.265, VP8 or VP9. \
                         Convert it: {}",
                        ffmpeg(name, REENCODE, "mp4")
                    ),
                );
            }
            if let Some(fps) = s.fps_milli {
                let target = if fps < MIN_FPS_MILLI { 30 } else { 60 };
                if !(MIN_FPS_MILLI..=MAX_FPS_MILLI).contains(&fps) {
                    push(
                        "fps",
                        format!(
                            "The video plays at {}{}; TikTok takes 23 to 60 fps. Convert it to \
                             {target} fps: {}",
                            human_fps(fps),
                            if s.variable_fps { " on average" } else { "" },
                            ffmpeg(name, &format!("-r {target} {REENCODE}"), "mp4")
                        ),
                    );
                }
            }
            if info.size_bytes > MAX_VIDEO_BYTES {
                push(
                    "size_bytes",
                    format!(
                        "The video is {}; TikTok takes videos up to 4 GB. Re-encode it smaller: {}",
                        human_size(info.size_bytes),
                        ffmpeg(name, &format!("-crf 26 {REENCODE}"), "mp4")
                    ),
                );
            }
            if let Some(ms) = info.duration_ms.filter(|&ms| ms > MAX_VIDEO_DURATION_MS) {
                push(
                    "duration_ms",
                    format!(
                        "The video is {} long; TikTok takes videos up to 10 minutes. Trim it: {}",
                        human_duration(ms),
                        ffmpeg(name, "-t 600 -c copy", extension(name))
                    ),
                );
            }
            if let Some((w, h)) = sides {
                if w.min(h) < MIN_VIDEO_SIDE_PX {
                    push(
                        "dimensions",
                        format!(
                            "The video is {w}x{h} px; TikTok needs both sides to be at least \
                             {MIN_VIDEO_SIDE_PX} px. Scale it up: {}",
                            ffmpeg(
                                name,
                                &format!(
                                    "-vf scale=w=720:h=720:force_original_aspect_ratio=increase:force_divisible_by=2 {REENCODE}"
                                ),
                                "mp4"
                            )
                        ),
                    );
                }
                if w.max(h) > MAX_VIDEO_SIDE_PX {
                    push(
                        "dimensions",
                        format!(
                            "The video is {w}x{h} px; TikTok takes sides up to \
                             {MAX_VIDEO_SIDE_PX} px. Scale it down: {}",
                            ffmpeg(
                                name,
                                &format!(
                                    "-vf scale=w=1920:h=1920:force_original_aspect_ratio=decrease:force_divisible_by=2 {REENCODE}"
                                ),
                                "mp4"
                            )
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
                        "The photo is {}; TikTok takes photos up to 20 MB. Save it smaller: {}",
                        human_size(info.size_bytes),
                        ffmpeg(name, "-q:v 3", "jpg")
                    ),
                );
            }
            if let Some((w, h)) = sides {
                let short = w.min(h);
                if short > MAX_IMAGE_SHORT_SIDE_PX {
                    push(
                        "dimensions",
                        format!(
                            "TikTok takes photos up to 1080p: the shorter side is {short} px. \
                             Scale it down to {MAX_IMAGE_SHORT_SIDE_PX} px: {}",
                            ffmpeg(
                                name,
                                "-vf scale=w=1080:h=1080:force_original_aspect_ratio=increase -q:v 3",
                                "jpg"
                            )
                        ),
                    );
                }
            }
        }
    }
    out
}

fn extension(name: &str) -> &str {
    std::path::Path::new(name)
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or("mp4")
}
