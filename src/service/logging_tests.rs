//! Unit tests of logging: formats, journald priorities, filters, reload, rotation.

use super::*;
use std::sync::{Arc, Mutex};

/// An in-memory stderr.
#[derive(Clone, Default)]
struct Buf(Arc<Mutex<Vec<u8>>>);

impl Buf {
    fn text(&self) -> String {
        String::from_utf8(self.0.lock().expect("lock").clone()).expect("utf-8")
    }
}

impl std::io::Write for Buf {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("lock").extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Buf {
    type Writer = Buf;
    fn make_writer(&'a self) -> Buf {
        self.clone()
    }
}

fn settings(format: LogFormat, dir: Option<&Path>) -> LogSettings {
    LogSettings {
        dir: dir.map(Path::to_path_buf),
        format,
        ..LogSettings::default()
    }
}

fn log_with(cfg: &LogSettings, env: &Env, f: impl FnOnce()) -> (String, LogGuard) {
    let buf = Buf::default();
    let (dispatch, guard) = build_with(cfg, env, buf.clone()).expect("build");
    tracing::dispatcher::with_default(&dispatch, f);
    (buf.text(), guard)
}

fn transition() {
    tracing::info!(item = "clip one.mp4", publish_id = "v_pub_1", "published");
}

/// JSON lines parse, with level, target, message and the event's fields at the top.
#[test]
fn json_lines_parse() {
    let (out, _g) = log_with(
        &settings(LogFormat::Json, None),
        &Env::default(),
        transition,
    );
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 1, "{out}");
    let v: serde_json::Value = serde_json::from_str(lines[0]).expect("JSON");
    assert_eq!(v["level"], "INFO");
    assert_eq!(v["message"], "published");
    assert_eq!(v["item"], "clip one.mp4");
    assert_eq!(v["publish_id"], "v_pub_1");
    assert_eq!(v["target"], "tokdrop::service::logging::tests");
    assert!(
        v["timestamp"].as_str().is_some_and(|t| t.ends_with('Z')),
        "{v}"
    );
}

/// Outside journald, text lines start with an RFC 3339 timestamp; under it they do not
/// (journald stamps lines itself), and JSON drops its timestamp field likewise.
#[test]
fn timestamps_unless_journal() {
    let plain = Env::default();
    let journal = Env {
        journal: true,
        ..Env::default()
    };
    let (out, _g) = log_with(&settings(LogFormat::Text, None), &plain, transition);
    let stamp = out.split_whitespace().next().expect("a line");
    assert!(jiff::Timestamp::from_str(stamp).is_ok(), "{out}");
    assert!(
        out.contains("item=\"clip one.mp4\" publish_id=\"v_pub_1\""),
        "{out}"
    );

    let (out, _g) = log_with(&settings(LogFormat::Text, None), &journal, transition);
    assert!(
        out.starts_with("<6> INFO ") || out.starts_with("<6>INFO "),
        "{out:?}"
    );
    assert!(
        !out.contains('\u{1b}'),
        "no colours in the journal: {out:?}"
    );

    let (out, _g) = log_with(&settings(LogFormat::Json, None), &journal, transition);
    let json = out.trim().strip_prefix("<6>").expect("priority prefix");
    let v: serde_json::Value = serde_json::from_str(json).expect("JSON");
    assert!(v.get("timestamp").is_none(), "{v}");
}

/// Under journald every line carries its priority, so `journalctl -p err` finds errors.
#[test]
fn journal_lines_carry_their_priority() {
    let journal = Env {
        journal: true,
        ..Env::default()
    };
    let (out, _g) = log_with(&settings(LogFormat::Text, None), &journal, || {
        tracing::error!("cannot take it");
        tracing::warn!("paused");
        tracing::info!("finished");
        tracing::error!("the config is invalid:\nwatch.yaml:6:1: 'bogus'\n  help: remove it");
    });
    let prefixes: Vec<&str> = out.lines().map(|l| &l[..3]).collect();
    assert_eq!(
        prefixes,
        ["<3>", "<4>", "<6>", "<3>", "<3>", "<3>"],
        "every line of a multi-line error is an error: {out}"
    );
    let (out, _g) = log_with(&settings(LogFormat::Text, None), &Env::default(), || {
        tracing::error!("cannot take it")
    });
    assert!(!out.contains("<3>"), "only for journald: {out}");
}

/// A field value cannot add a log line: a file name with a newline and an escape sequence is
/// written escaped on the event's own line (text and JSON); messages keep their lines.
#[test]
fn field_values_stay_on_their_line() {
    let name = "x.mp4\n2026-12-01T00:00:00Z  INFO tokdrop: finished item=forged.mp4\u{1b}[2J";
    let (out, _g) = log_with(&settings(LogFormat::Text, None), &Env::default(), || {
        tracing::info!(item = %name, "claimed");
    });
    assert_eq!(out.lines().count(), 1, "{out}");
    assert!(out.contains("item=x.mp4\\n2026"), "{out}");
    assert!(!out.contains('\u{1b}'), "{out}");
    let (out, _g) = log_with(&settings(LogFormat::Json, None), &Env::default(), || {
        tracing::info!(item = %name, "claimed");
    });
    assert_eq!(out.lines().count(), 1, "{out}");
}

use std::str::FromStr;

/// `log.level` takes bare levels and filter strings; RUST_LOG overrides it; bad values
/// are errors naming where they came from.
#[test]
fn filters() {
    for ok in [
        "info",
        "debug",
        " warn ",
        "info,tokdrop::lifecycle::publish=trace",
        "off",
    ] {
        assert!(build_filter(ok).is_ok(), "{ok:?}");
    }
    let err = build_filter("loud").expect_err("not a level").to_string();
    assert!(
        err.starts_with("log.level: \"loud\" is not a log level"),
        "{err}"
    );
    assert!(err.contains("help:"), "{err}");

    let cfg = LogSettings {
        level: "error".into(),
        ..LogSettings::default()
    };
    let env = Env {
        rust_log: Some("debug".into()),
        ..Env::default()
    };
    let (out, guard) = log_with(&cfg, &env, || tracing::debug!("shown"));
    assert!(out.contains("shown"), "RUST_LOG=debug wins: {out}");
    assert!(
        !guard.set_level("error").expect("ok"),
        "RUST_LOG keeps winning"
    );

    let info = LogSettings::default();
    let (out, _g) = log_with(&info, &Env::default(), || {
        tracing::info!(target: "notify::inotify", "unable to remove watch descriptor");
        tracing::warn!(target: "notify::inotify", "watch limit reached");
    });
    assert!(
        !out.contains("descriptor") && out.contains("watch limit"),
        "notify's info noise is left out at info, its warnings are not: {out}"
    );

    let bad = Env {
        rust_log: Some("tokdrop=[".into()),
        ..Env::default()
    };
    let err = build_with(&cfg, &bad, Buf::default()).expect_err("bad RUST_LOG");
    assert!(err.to_string().starts_with("RUST_LOG: "), "{err}");
}

/// A reload changes which lines pass, on the same logger.
#[test]
fn set_level_reloads() {
    let buf = Buf::default();
    let (dispatch, guard) =
        build_with(&LogSettings::default(), &Env::default(), buf.clone()).expect("build");
    tracing::dispatcher::with_default(&dispatch, || {
        tracing::debug!("before");
        assert!(guard.set_level("debug").expect("valid"));
        tracing::debug!("after");
    });
    assert!(guard.set_level("nope").is_err());
    let out = buf.text();
    assert!(!out.contains("before") && out.contains("after"), "{out}");
}

/// With log.dir, every line reaches the file complete (non-lossy writer, flushed on drop).
#[test]
fn file_gets_every_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let logs = dir.path().join("logs");
    let cfg = LogSettings {
        rotation: Rotation::Never,
        ..settings(LogFormat::Json, Some(&logs))
    };
    let (_, guard) = log_with(&cfg, &Env::default(), || {
        for i in 0..20_000 {
            tracing::info!(i, item = "a.mp4", "line");
        }
    });
    drop(guard);
    let text = std::fs::read_to_string(logs.join("tokdrop.log")).expect("log file");
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 20_000);
    for (i, l) in lines.iter().enumerate() {
        let v: serde_json::Value = serde_json::from_str(l).expect("complete JSON line");
        assert_eq!(v["i"], i);
        assert!(v["timestamp"].is_string());
    }
}

/// Rotating files are dated, and opening the log prunes the oldest down to `keep` old
/// ones plus the current; files that are not ours are left alone.
#[test]
fn rotation_prunes_old_files() {
    let dir = tempfile::tempdir().expect("tempdir");
    let old = [
        "tokdrop.2020-01-01-00.log",
        "tokdrop.2020-01-01-01.log",
        "tokdrop.2020-01-01-02.log",
        "tokdrop.2020-01-01-03.log",
    ];
    for name in old {
        std::fs::write(dir.path().join(name), "old\n").expect("seed");
        // Pruning goes by creation time; keep it distinct.
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    std::fs::write(dir.path().join("notes.txt"), "mine").expect("seed");
    let cfg = LogSettings {
        rotation: Rotation::Hourly,
        keep: 2,
        ..settings(LogFormat::Text, Some(dir.path()))
    };
    let (_, guard) = log_with(&cfg, &Env::default(), transition);
    drop(guard);

    let mut names: Vec<String> = std::fs::read_dir(dir.path())
        .expect("read")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    let current = jiff::Timestamp::now()
        .strftime("tokdrop.%Y-%m-%d-%H.log")
        .to_string();
    assert_eq!(
        names,
        [
            "notes.txt",
            "tokdrop.2020-01-01-02.log",
            "tokdrop.2020-01-01-03.log",
            current.as_str()
        ],
        "the two newest old files and the current one"
    );
    let text = std::fs::read_to_string(dir.path().join(&current)).expect("current");
    assert!(text.contains("published") && text.ends_with('\n'), "{text}");
}

/// A log.dir that cannot be created is an error naming it.
#[test]
fn unusable_dir() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("a-file");
    std::fs::write(&file, "").expect("seed");
    let cfg = settings(LogFormat::Text, Some(&file.join("logs")));
    let err = build_with(&cfg, &Env::default(), Buf::default()).expect_err("not a dir");
    assert!(err.to_string().starts_with("log.dir "), "{err}");
    assert!(err.to_string().contains("a-file"), "{err}");
}

/// JOURNAL_STREAM counts only when it names our stderr's device and inode.
#[test]
fn journal_stream_must_match() {
    assert_eq!(parse_journal_stream("8:12345"), Some((8, 12345)));
    for bad in ["", "8", "8:x", ":1"] {
        assert_eq!(parse_journal_stream(bad), None, "{bad:?}");
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let f = std::fs::File::create(dir.path().join("f")).expect("file");
    use std::os::unix::fs::MetadataExt;
    let m = f.metadata().expect("meta");
    assert!(is_journal_stream(&format!("{}:{}", m.dev(), m.ino()), &f));
    assert!(!is_journal_stream(
        &format!("{}:{}", m.dev(), m.ino() + 1),
        &f
    ));
}
