//! Benchmark (not a test; `cargo bench --bench probe`): what the media probe costs per file.
//! Each sample in `tests/data/media` (and, when ffmpeg is installed, a 60-second 1080x1920
//! H.264 phone-like video with a moov at the end) is probed 200 times from the page cache;
//! printed per file as the mean time, next to the time of reading its first 64 KiB in the same
//! run (the reference: what the size check alone already costs).

use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Instant;

const ROUNDS: u32 = 200;

fn main() {
    let mut files: Vec<PathBuf> =
        std::fs::read_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/media"))
            .expect("samples")
            .flatten()
            .map(|e| e.path())
            .filter(|p| tokdrop::content::media::MediaKind::from_path(p).is_some())
            .collect();
    files.sort();
    let tmp = tempfile::tempdir().expect("tmp");
    let long = tmp.path().join("phone_60s.mp4");
    let made = std::process::Command::new("ffmpeg")
        .args([
            "-hide_banner",
            "-loglevel",
            "error",
            "-y",
            "-f",
            "lavfi",
            "-i",
        ])
        .arg("testsrc=size=1080x1920:rate=30:duration=60")
        .args(["-c:v", "libx264", "-preset", "ultrafast", "-crf", "40"])
        .arg(&long)
        .status()
        .is_ok_and(|s| s.success());
    if made {
        files.push(long);
    } else {
        println!("(ffmpeg not found: the 60-second video is left out)");
    }
    println!(
        "{:<24} {:>12} {:>16} {:>8}",
        "file", "probe", "read 64 KiB", "ratio"
    );
    let mut worst = 0f64;
    for f in &files {
        let _ = tokdrop::content::media::probe(f); // warm the page cache
        let t = Instant::now();
        for _ in 0..ROUNDS {
            std::hint::black_box(tokdrop::content::media::probe(f).ok());
        }
        let probe = t.elapsed().as_secs_f64() / f64::from(ROUNDS);
        let t = Instant::now();
        for _ in 0..ROUNDS {
            let mut buf = vec![0u8; 64 * 1024];
            let mut file = std::fs::File::open(f).expect("open");
            std::hint::black_box(file.read(&mut buf).ok());
        }
        let read = t.elapsed().as_secs_f64() / f64::from(ROUNDS);
        worst = worst.max(probe);
        println!(
            "{:<24} {:>9.3} ms {:>13.3} ms {:>8.1}",
            f.file_name()
                .map(|n| n.to_string_lossy())
                .unwrap_or_default(),
            probe * 1e3,
            read * 1e3,
            probe / read
        );
    }
    println!(
        "slowest probe: {:.3} ms per file (budget 5 ms)",
        worst * 1e3
    );
}
