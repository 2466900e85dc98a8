//! The corpus of bad configs and sidecars under `tests/data/bad/`: each file names, in its
//! header comments, the one error (`# expect:`) and fix (`# help:`) `tokdrop check` must print.
//! Sidecar cases also say which item they belong to (`# item: video | photo | set`) and the
//! folder's mode (`# mode:`).

use std::fs;
use std::path::{Path, PathBuf};

use crate::harness::{CONFIG, Dir};

fn cases(kind: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/bad")
        .join(kind);
    let mut v: Vec<PathBuf> = fs::read_dir(dir)
        .expect("corpus folder")
        .map(|e| e.expect("entry").path())
        .collect();
    v.sort();
    v
}

fn header<'a>(text: &'a str, key: &str) -> &'a str {
    let prefix = format!("# {key}: ");
    text.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .unwrap_or_else(|| panic!("case lacks '# {key}:'"))
}

/// Asserts the output holds exactly one error, equal to `expect` with its `help` line.
fn assert_one_error(
    case: &Path,
    out: &str,
    error_prefix: &str,
    expect: &str,
    help: &str,
    help_indent: &str,
) {
    let errors: Vec<&str> = out
        .lines()
        .filter(|l| l.trim_start().starts_with(error_prefix))
        .collect();
    let want = format!("{error_prefix}{expect}");
    let want_help = format!("{help_indent}help: {help}");
    let ok =
        errors.len() == 1 && errors[0].trim_start() == want && out.lines().any(|l| l == want_help);
    assert!(
        ok,
        "{}:\n--- expected one error:\n{want}\n{want_help}\n--- got:\n{out}",
        case.display()
    );
}

/// Every bad config is refused (exit 2) with one precise message: file:line:col, key, fix.
#[test]
fn bad_configs_each_give_one_precise_error() {
    let cases = cases("config");
    assert!(
        cases.len() >= 40,
        "the config corpus has {} cases",
        cases.len()
    );
    for case in cases {
        let text = fs::read_to_string(&case).expect("case");
        let d = Dir::empty();
        d.write("watch.yaml", &text);
        let out = d.run(&["check", "--config", "watch.yaml"]);
        assert_eq!(out.code, 2, "{}: exit code\n{}", case.display(), out.all());
        assert!(
            out.stderr.contains("(1 problem)"),
            "{}: {}",
            case.display(),
            out.stderr
        );
        assert_one_error(
            &case,
            &out.stderr,
            "watch.yaml:",
            header(&text, "expect").trim_start_matches("watch.yaml:"),
            header(&text, "help"),
            "  ",
        );
    }
}

/// Every bad sidecar makes its item invalid (exit 1) with one precise message.
#[test]
fn bad_sidecars_each_give_one_precise_error() {
    let cases = cases("sidecar");
    assert!(
        cases.len() >= 28,
        "the sidecar corpus has {} cases",
        cases.len()
    );
    for case in cases {
        let text = fs::read_to_string(&case).expect("case");
        let d = Dir::empty();
        d.write("watch.yaml", &CONFIG.replace("MODE", header(&text, "mode")));
        match header(&text, "item") {
            "video" => {
                d.copy_sample("h264_faststart.mp4", "inbox/clip.mp4");
                d.write("inbox/clip.yaml", &text);
            }
            "photo" => {
                d.copy_sample("photo.jpg", "inbox/pic.jpg");
                d.write("inbox/pic.yaml", &text);
            }
            "set" => {
                for n in ["1.jpg", "2.jpg", "3.jpg"] {
                    d.copy_sample("photo.jpg", &format!("inbox/trip/{n}"));
                }
                d.write("inbox/trip/post.yaml", &text);
            }
            other => panic!("{}: unknown item kind {other}", case.display()),
        }
        let out = d.run(&["check"]);
        assert_eq!(out.code, 1, "{}: exit code\n{}", case.display(), out.all());
        assert!(
            out.stdout.contains("INVALID  inbox/"),
            "{}: {}",
            case.display(),
            out.stdout
        );
        assert_one_error(
            &case,
            &out.stdout,
            "error: ",
            header(&text, "expect"),
            header(&text, "help"),
            "    ",
        );
    }
}

/// Sidecars and configs over 64 KiB are refused before parsing, with the limit in the message.
#[test]
fn oversized_yaml_is_refused() {
    let d = Dir::new("direct");
    d.copy_sample("h264_faststart.mp4", "inbox/clip.mp4");
    d.write(
        "inbox/clip.yaml",
        &format!("title: \"{}\"\n", "a".repeat(70_000)),
    );
    let out = d.run(&["check"]);
    assert_eq!(out.code, 1);
    assert!(
        out.stdout.contains(
            "error: inbox/clip.yaml: the file is 70010 bytes; YAML files here may be at most 64 KiB"
        ),
        "{}",
        out.stdout
    );
    d.write("watch.yaml", &format!("{CONFIG}# {}\n", "x".repeat(70_000)));
    let out = d.run(&["check", "--config", "watch.yaml"]);
    assert_eq!(out.code, 2);
    assert!(
        out.stderr.contains("watch.yaml: the file is"),
        "{}",
        out.stderr
    );
}

/// A sidecar that is not UTF-8 text is an error naming the byte offset, not a crash.
#[test]
fn non_utf8_sidecar_is_refused() {
    let d = Dir::new("direct");
    d.copy_sample("h264_faststart.mp4", "inbox/clip.mp4");
    fs::write(d.path("inbox/clip.yaml"), b"title: caf\xe9\n").expect("write");
    let out = d.run(&["check"]);
    assert_eq!(out.code, 1);
    assert!(
        out.stdout.contains(
            "error: inbox/clip.yaml: the file is not UTF-8 text (invalid byte at offset 10)"
        ),
        "{}",
        out.stdout
    );
}
