//! The media probe against a corpus made with ffmpeg at test time (issue 15): each file is
//! accepted or refused as TikTok's rules table says, with the exact words the creator reads
//! from `tokdrop check`. Without ffmpeg the test says so and skips — except under CI
//! (`CI=true`), where `.ci/run` installs it and a missing ffmpeg fails.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::harness::Dir;

/// Makes `name` in `dir` with ffmpeg `args` (inputs and options; the output is added).
fn make(dir: &Path, name: &str, args: &str) -> PathBuf {
    let out = dir.join(name);
    let status = Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-y"])
        .args(args.split_whitespace())
        .arg(&out)
        .status()
        .expect("ffmpeg");
    assert!(status.success(), "ffmpeg {args} {name}");
    out
}

fn have_ffmpeg() -> bool {
    let found = Command::new("ffmpeg")
        .arg("-version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        assert!(
            std::env::var("CI").is_err(),
            "ffmpeg is missing under CI; .ci/run installs it"
        );
        eprintln!(
            "SKIP: ffmpeg is not installed (apt-get install ffmpeg); the probe corpus is not checked"
        );
    }
    found
}

/// `testsrc` video of 1 s at `size` and `rate`.
fn video(size: &str, rate: u32) -> String {
    format!("-f lavfi -i testsrc=size={size}:rate={rate}:duration=1")
}

const SINE: &str = "-f lavfi -i sine=frequency=440:duration=1";
const X264: &str = "-c:v libx264 -preset ultrafast -pix_fmt yuv420p";

/// Inserts an EXIF APP1 segment with orientation `o` right after a JPEG's SOI marker.
fn with_exif_orientation(jpeg: &[u8], o: u16) -> Vec<u8> {
    let mut tiff = b"MM\0\x2a\0\0\0\x08".to_vec(); // big-endian TIFF, IFD0 at 8
    tiff.extend_from_slice(&1u16.to_be_bytes()); // one entry
    tiff.extend_from_slice(&0x0112u16.to_be_bytes()); // Orientation
    tiff.extend_from_slice(&3u16.to_be_bytes()); // SHORT
    tiff.extend_from_slice(&1u32.to_be_bytes()); // count 1
    tiff.extend_from_slice(&o.to_be_bytes());
    tiff.extend_from_slice(&[0, 0, 0, 0, 0, 0]); // value padding, next IFD 0
    let mut app1 = b"Exif\0\0".to_vec();
    app1.extend_from_slice(&tiff);
    let len = u16::try_from(app1.len() + 2).expect("small");
    let mut out = jpeg[..2].to_vec();
    out.extend_from_slice(&[0xFF, 0xE1]);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(&app1);
    out.extend_from_slice(&jpeg[2..]);
    out
}

/// What `tokdrop check` says about one file: whether valid, its findings line, its errors.
struct Checked {
    valid: bool,
    media: String,
    errors: Vec<String>,
}

fn check(d: &Dir, file: &Path) -> Checked {
    let out = d.run(&["check", "--json", file.to_str().expect("utf-8")]);
    let v: serde_json::Value = serde_json::from_str(&out.stdout).unwrap_or_else(|e| {
        panic!("{e}: {}", out.all());
    });
    let item = &v["items"][0];
    Checked {
        valid: item["errors"].as_array().is_some_and(Vec::is_empty),
        media: item["media"][0].as_str().unwrap_or_default().to_string(),
        // Each error as the text shows it: the message, then its help.
        errors: item["errors"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|e| {
                        let message = e["message"].as_str().unwrap_or_default();
                        match e["help"].as_str() {
                            Some(help) => format!("{message} {help}"),
                            None => message.to_string(),
                        }
                    })
                    .collect()
            })
            .unwrap_or_default(),
    }
}

#[test]
fn each_file_is_judged_as_the_rules_table_says() {
    if !have_ffmpeg() {
        return;
    }
    let d = Dir::new("inbox");
    let dir = d.path("corpus");
    std::fs::create_dir_all(&dir).expect("mkdir");
    let v = |size, rate| video(size, rate);
    // A phone's portrait video: landscape pixels and a 90° display matrix (ffmpeg's `rotate`
    // tag counts counter-clockwise).
    let landscape = make(
        &dir,
        "landscape.mp4",
        &format!("{} {X264} -an", v("640x360", 30)),
    );
    // (file, ffmpeg arguments, accepted?, the findings line or the exact error)
    let accepted: Vec<(&str, String, &str)> = vec![
        (
            "h264_aac.mp4",
            format!(
                "{} {SINE} {X264} -c:a aac -movflags +faststart",
                v("360x640", 30)
            ),
            "h264_aac.mp4: H.264, 30 fps, 360x640 portrait, 1.0 s,",
        ),
        (
            "h264_moov_at_end.mp4",
            format!("{} {SINE} {X264} -c:a aac", v("640x360", 30)),
            "h264_moov_at_end.mp4: H.264, 30 fps, 640x360 landscape, 1.0 s,",
        ),
        (
            "hevc.mp4",
            format!(
                "{} -c:v libx265 -preset ultrafast -tag:v hvc1 -x265-params log-level=error -an",
                v("360x640", 30)
            ),
            "hevc.mp4: H.265, 30 fps, 360x640 portrait,",
        ),
        (
            "vp9_opus.webm",
            format!(
                "{} {SINE} -c:v libvpx-vp9 -deadline realtime -cpu-used 8 -b:v 100k -c:a libopus",
                v("360x640", 30)
            ),
            "vp9_opus.webm: VP9, 30 fps, 360x640 portrait, 1.0 s,",
        ),
        (
            "vp8.webm",
            format!(
                "{} -c:v libvpx -deadline realtime -cpu-used 8 -b:v 100k -an",
                v("360x640", 25)
            ),
            "vp8.webm: VP8, 25 fps, 360x640 portrait,",
        ),
        (
            "rotated_portrait.mp4",
            format!(
                "-i {} -c copy -metadata:s:v:0 rotate=270",
                landscape.display()
            ),
            "rotated_portrait.mp4: H.264, 30 fps, 360x640 portrait, turned 90°,",
        ),
        (
            "variable.mp4",
            format!(
                "{} {X264} -an -vf select=mod(n\\,3) -fps_mode vfr",
                v("360x640", 60)
            ),
            // 2 of every 3 frames of 60 fps: 40 fps on average, frame durations varying.
            "variable.mp4: H.264, 40.",
        ),
    ];
    for (name, args, line) in &accepted {
        let file = make(&dir, name, args);
        let c = check(&d, &file);
        assert!(c.valid, "{name} refused: {:?}", c.errors);
        assert!(c.media.starts_with(line), "{name}: {}", c.media);
        // What tokdrop lets through, the emulator's processing takes.
        let bytes = std::fs::read(&file).expect("read");
        assert_eq!(
            tokdrop_sandbox::processing_verdict(&bytes, false),
            None,
            "{name}"
        );
    }
    let vfr = check(&d, &dir.join("variable.mp4"));
    assert!(
        vfr.media.contains(" fps (variable), 360x640 portrait,"),
        "{}",
        vfr.media
    );
    let no_audio = check(&d, &dir.join("hevc.mp4"));
    assert!(no_audio.media.ends_with("no audio"), "{}", no_audio.media);
    let with_audio = check(&d, &dir.join("vp9_opus.webm"));
    assert!(
        with_audio.media.ends_with("audio Opus"),
        "{}",
        with_audio.media
    );

    let convert = "-c:v libx264 -pix_fmt yuv420p -c:a aac -movflags +faststart";
    // (file, ffmpeg arguments, tokdrop's exact error, the emulator's fail_reason)
    let refused: Vec<(&str, String, String, &str)> = vec![
        (
            "av1.mp4",
            format!(
                "{} -c:v libaom-av1 -cpu-used 8 -b:v 100k -an",
                v("360x640", 30)
            ),
            format!(
                "The video is encoded as AV1; TikTok takes H.264, H.265, VP8 or VP9. convert it: ffmpeg -i av1.mp4 {convert} av1-tiktok.mp4"
            ),
            "file_format_check_failed",
        ),
        (
            "prores.mov",
            format!("{} -c:v prores_ks -profile:v 0 -an", v("360x640", 30)),
            format!(
                "The video is encoded as ProRes; TikTok takes H.264, H.265, VP8 or VP9. convert it: ffmpeg -i prores.mov {convert} prores-tiktok.mp4"
            ),
            "file_format_check_failed",
        ),
        (
            "screen_20fps.mp4",
            format!("{} {X264} -an", v("360x640", 20)),
            format!(
                "The video plays at 20 fps; TikTok takes 23 to 60 fps. convert it to 30 fps: ffmpeg -i screen_20fps.mp4 -r 30 {convert} screen_20fps-tiktok.mp4"
            ),
            "frame_rate_check_failed",
        ),
        (
            "slowmo_120fps.mp4",
            format!("{} {X264} -an", v("360x640", 120)),
            format!(
                "The video plays at 120 fps; TikTok takes 23 to 60 fps. convert it to 60 fps: ffmpeg -i slowmo_120fps.mp4 -r 60 {convert} slowmo_120fps-tiktok.mp4"
            ),
            "frame_rate_check_failed",
        ),
        (
            "wide_8000px.mp4",
            format!("{} {X264} -an -frames:v 3", v("8000x360", 30)),
            format!(
                "The video is 8000x360 px; TikTok takes sides up to 4096 px. scale it down: ffmpeg -i wide_8000px.mp4 -vf scale=w=1920:h=1920:force_original_aspect_ratio=decrease:force_divisible_by=2 {convert} wide_8000px-tiktok.mp4"
            ),
            "picture_size_check_failed",
        ),
    ];
    for (name, args, message, fail_reason) in &refused {
        let file = make(&dir, name, args);
        let c = check(&d, &file);
        assert!(!c.valid, "{name} accepted: {}", c.media);
        assert_eq!(c.errors, vec![message.clone()], "{name}");
        // The emulator's processing refuses the same file, as TikTok says it does.
        let bytes = std::fs::read(&file).expect("read");
        assert_eq!(
            tokdrop_sandbox::processing_verdict(&bytes, false),
            Some(*fail_reason),
            "{name}"
        );
    }

    // Photos: a JPEG turned by its EXIF orientation, a WebP, and a PNG named .jpg.
    let jpeg = make(
        &dir,
        "plain.jpg",
        "-f lavfi -i testsrc=size=640x480 -frames:v 1",
    );
    let turned = dir.join("turned.jpg");
    std::fs::write(
        &turned,
        with_exif_orientation(&std::fs::read(&jpeg).expect("jpeg"), 6),
    )
    .expect("write");
    let c = check(&d, &turned);
    assert!(c.valid, "{:?}", c.errors);
    let bytes = std::fs::read(&turned).expect("read");
    assert_eq!(tokdrop_sandbox::processing_verdict(&bytes, true), None);
    assert!(
        c.media
            .starts_with("turned.jpg: JPEG, 480x640 portrait, turned 90°,"),
        "{}",
        c.media
    );
    let webp = make(
        &dir,
        "photo.webp",
        "-f lavfi -i testsrc=size=640x480 -frames:v 1 -c:v libwebp",
    );
    let c = check(&d, &webp);
    assert!(c.valid, "{:?}", c.errors);
    assert!(
        c.media.starts_with("photo.webp: WebP, 640x480 landscape,"),
        "{}",
        c.media
    );
    let png = make(
        &dir,
        "png.png",
        "-f lavfi -i testsrc=size=640x480 -frames:v 1",
    );
    let renamed = dir.join("png_renamed.jpg");
    std::fs::rename(&png, &renamed).expect("mv");
    let c = check(&d, &renamed);
    let bytes = std::fs::read(&renamed).expect("read");
    assert_eq!(
        tokdrop_sandbox::processing_verdict(&bytes, true),
        Some("file_format_check_failed")
    );
    assert_eq!(
        c.errors,
        vec!["not a JPEG file (no SOI marker at the start) export it again as MP4/MOV/WebM (video) or JPEG/WebP (photo), with the matching extension".to_string()]
    );
}

/// End to end: a 20 fps screen recording dropped into the inbox ends `invalid` with the
/// creator's words and the ffmpeg command, and nothing reaches TikTok.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_20_fps_recording_ends_invalid_with_the_fix() {
    if !have_ffmpeg() {
        return;
    }
    let r = crate::service::start("", |_| {}).await;
    let outside = r.d.path("outside");
    std::fs::create_dir_all(&outside).expect("mkdir");
    let file = make(
        &outside,
        "screen.mp4",
        &format!("{} {X264} -an", video("360x640", 20)),
    );
    std::fs::rename(&file, r.d.path("inbox/screen.mp4")).expect("mv");
    let text = r.finished("screen.mp4", 60);
    assert!(text.contains("status: invalid"), "{text}");
    assert!(
        text.contains("The video plays at 20 fps; TikTok takes 23 to 60 fps. — convert it to 30 fps: ffmpeg -i screen.mp4 -r 30"),
        "{text}"
    );
    assert!(
        text.starts_with("# screen.mp4: invalid — fix screen.mp4 (convert it to 30 fps: ffmpeg -i screen.mp4 -r 30 "),
        "{text}"
    );
    assert!(r.emu.calls().init_calls().is_empty(), "nothing was sent");
    r.stop();
}
