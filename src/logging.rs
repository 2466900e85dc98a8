//! Logging set-up (SPEC §8, config `log:`): a tracing subscriber with an `EnvFilter` from
//! `log.level` (or `RUST_LOG`, which wins), text or JSON lines on stderr, and optionally the
//! same lines in rolling files under `log.dir` with old files pruned.
//!
//! Under systemd, stderr goes to the journal, which stamps every line itself: when
//! `JOURNAL_STREAM` names our stderr we leave our timestamps (and colours) out and start each
//! line with its priority (`<3>` …) instead. Files always
//! carry timestamps (UTC, RFC 3339). File lines go through tracing-appender's non-blocking
//! writer with `lossy(false)`: a slow disk slows logging down instead of dropping lines.
//!
//! What gets logged, and with which fields, is up to each module; this one only decides
//! where lines go and which pass. [`LogGuard`] must live until exit: dropping it flushes
//! the file writer.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use tracing::Dispatch;
use tracing_appender::non_blocking::{NonBlockingBuilder, WorkerGuard};
use tracing_appender::rolling::{self, RollingFileAppender};
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::{Layer, Layered, SubscriberExt};
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Registry, fmt, reload};

use crate::config::{LogConfig, LogFormat, Rotation};

/// The variable that overrides `log.level`.
pub const RUST_LOG: &str = "RUST_LOG";
/// Set by systemd to `DEVICE:INODE` of the journal stream on stdout/stderr.
pub const JOURNAL_STREAM: &str = "JOURNAL_STREAM";
/// Log files are `tokdrop.<date>.log` (`tokdrop.log` with `rotation: never`).
pub const FILE_PREFIX: &str = "tokdrop";
pub const FILE_SUFFIX: &str = "log";

/// What [`init`] needs from the `log:` section of the config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogSettings {
    /// Rolling log files go here in addition to stderr; `None`: stderr only.
    pub dir: Option<PathBuf>,
    pub rotation: Rotation,
    /// Rotated files kept besides the current one.
    pub keep: u32,
    pub format: LogFormat,
    /// A level (`info`) or a full `EnvFilter` string (`info,tokdrop::publish=debug`).
    pub level: String,
}

impl Default for LogSettings {
    /// stderr only, text, `info`: what runs before a config is read.
    fn default() -> Self {
        Self {
            dir: None,
            rotation: Rotation::Daily,
            keep: 14,
            format: LogFormat::Text,
            level: "info".to_string(),
        }
    }
}

impl From<&LogConfig> for LogSettings {
    fn from(c: &LogConfig) -> Self {
        Self {
            dir: c.dir.clone(),
            rotation: c.rotation,
            keep: c.keep,
            format: c.format,
            level: c.level.clone(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum LoggingError {
    #[error(
        "{origin}: {value:?} is not a log level or filter: {problem}\n  help: use error, warn, info, debug or trace, or a filter such as 'info,tokdrop=debug'"
    )]
    Filter {
        /// `log.level` or `RUST_LOG`.
        origin: &'static str,
        value: String,
        #[source]
        problem: FilterProblem,
    },
    #[error("log.dir {}: cannot open a log file there: {source}", .dir.display())]
    Dir {
        dir: PathBuf,
        #[source]
        source: rolling::InitError,
    },
    #[error("cannot install the logger: {0}")]
    Install(#[source] tracing_subscriber::util::TryInitError),
    #[error("cannot change the log level: the logger is gone ({0})")]
    Reload(#[source] reload::Error),
}

/// Keeps logging working: flushes the file writer when dropped, and changes the level on
/// reload. Hold it in `main` until the process exits.
#[derive(Debug)]
pub struct LogGuard {
    /// The file writer's worker; dropping it writes out what is queued.
    _file: Option<WorkerGuard>,
    filter: reload::Handle<EnvFilter, Registry>,
    /// `RUST_LOG` was set: it keeps overriding `log.level`, also after a reload.
    env_override: bool,
}

impl LogGuard {
    /// Applies a new `log.level` (SIGHUP). Returns `false` without change when `RUST_LOG`
    /// is set, since it overrides the config. Format and files need a restart.
    pub fn set_level(&self, level: &str) -> Result<bool, LoggingError> {
        if self.env_override {
            return Ok(false);
        }
        let filter = build_filter(level)?;
        self.filter.reload(filter).map_err(LoggingError::Reload)?;
        Ok(true)
    }
}

/// Parses `log.level`: a bare level or any `EnvFilter` directive string. `tokdrop check`
/// uses this to validate the config.
pub fn build_filter(level: &str) -> Result<EnvFilter, LoggingError> {
    parse_filter("log.level", level)
}

/// A single word must be a level: `EnvFilter` would read `inof` as a target name and
/// silently log nothing but that target. Write `tokdrop=trace` to name a target.
fn parse_filter(origin: &'static str, value: &str) -> Result<EnvFilter, LoggingError> {
    let refuse = |problem| LoggingError::Filter {
        origin,
        value: value.to_string(),
        problem,
    };
    let trimmed = value.trim();
    let bare_word = !trimmed.contains(['=', ',', '[', ':']);
    if bare_word && !LEVELS.contains(&trimmed.to_ascii_lowercase().as_str()) {
        return Err(refuse(FilterProblem::NotALevel));
    }
    // A bare `info` leaves out notify's own info lines (a watch removed twice when a folder
    // moves away): they say nothing to a user. Named targets are taken as written.
    let quiet = format!("{trimmed},notify=warn");
    let directives = if bare_word && trimmed.eq_ignore_ascii_case("info") {
        quiet.as_str()
    } else {
        trimmed
    };
    EnvFilter::builder()
        .parse(directives)
        .map_err(|e| refuse(FilterProblem::Syntax(e)))
}

const LEVELS: [&str; 6] = ["off", "error", "warn", "info", "debug", "trace"];

/// Why a level string was refused.
#[derive(Debug, thiserror::Error)]
pub enum FilterProblem {
    #[error("not one of off, error, warn, info, debug, trace")]
    NotALevel,
    #[error(transparent)]
    Syntax(tracing_subscriber::filter::ParseError),
}

/// Builds the logger and installs it for the whole process (also catching `log`-crate
/// records from dependencies such as rustls). Call once, early in `main`.
pub fn init(cfg: &LogSettings) -> Result<LogGuard, LoggingError> {
    let (dispatch, guard) = build(cfg)?;
    dispatch.try_init().map_err(LoggingError::Install)?;
    Ok(guard)
}

/// Builds the logger without installing it (tests use `tracing::dispatcher::with_default`).
pub fn build(cfg: &LogSettings) -> Result<(Dispatch, LogGuard), LoggingError> {
    build_with(cfg, &Env::from_process(), std::io::stderr)
}

/// What the process environment says about logging, read once.
#[derive(Debug, Clone, Default)]
struct Env {
    rust_log: Option<String>,
    /// stderr is connected to journald.
    journal: bool,
    /// stderr is a terminal (colours).
    terminal: bool,
}

impl Env {
    fn from_process() -> Self {
        let stderr = std::io::stderr();
        Self {
            rust_log: std::env::var(RUST_LOG)
                .ok()
                .filter(|s| !s.trim().is_empty()),
            journal: std::env::var(JOURNAL_STREAM)
                .ok()
                .is_some_and(|v| is_journal_stream(&v, &stderr)),
            terminal: stderr.is_terminal(),
        }
    }
}

/// Whether `JOURNAL_STREAM` (`DEVICE:INODE`) names the file behind `fd`, as systemd.exec(5)
/// asks: the variable is inherited by children whose stderr may be redirected elsewhere.
fn is_journal_stream(value: &str, fd: impl std::os::fd::AsFd) -> bool {
    let Ok(st) = rustix::fs::fstat(fd) else {
        return false;
    };
    parse_journal_stream(value) == Some((st.st_dev, st.st_ino))
}

fn parse_journal_stream(value: &str) -> Option<(u64, u64)> {
    let (dev, ino) = value.trim().split_once(':')?;
    Some((dev.parse().ok()?, ino.parse().ok()?))
}

type Base = Layered<reload::Layer<EnvFilter, Registry>, Registry>;
type BoxedLayer = Box<dyn Layer<Base> + Send + Sync>;

fn build_with<W>(
    cfg: &LogSettings,
    env: &Env,
    stderr: W,
) -> Result<(Dispatch, LogGuard), LoggingError>
where
    W: for<'a> MakeWriter<'a> + Send + Sync + 'static,
{
    let filter = match &env.rust_log {
        Some(value) => parse_filter(RUST_LOG, value)?,
        None => build_filter(&cfg.level)?,
    };
    let (filter, handle) = reload::Layer::new(filter);

    // Both layers see the same subscriber (`Vec<Box<dyn Layer>>` is one layer), so each
    // can pick its own timestamps and colours.
    let mut layers: Vec<BoxedLayer> = vec![if env.journal {
        line_layer(cfg.format, false, false, Prioritized(stderr))
    } else {
        line_layer(cfg.format, true, env.terminal, stderr)
    }];
    let worker = match &cfg.dir {
        Some(dir) => {
            let (writer, worker) = file_writer(dir, cfg.rotation, cfg.keep)?;
            layers.push(line_layer(cfg.format, true, false, writer));
            Some(worker)
        }
        None => None,
    };

    let subscriber = Registry::default().with(filter).with(layers);
    let guard = LogGuard {
        _file: worker,
        filter: handle,
        env_override: env.rust_log.is_some(),
    };
    Ok((Dispatch::new(subscriber), guard))
}

/// One formatting layer: text or JSON (one object per line, event fields at the top level).
fn line_layer<W>(format: LogFormat, timestamps: bool, ansi: bool, writer: W) -> BoxedLayer
where
    W: for<'a> MakeWriter<'a> + Send + Sync + 'static,
{
    let text = fmt::layer().with_ansi(ansi).with_writer(writer);
    match (format, timestamps) {
        (LogFormat::Text, true) => text.boxed(),
        (LogFormat::Text, false) => text.without_time().boxed(),
        (LogFormat::Json, true) => text.json().flatten_event(true).boxed(),
        (LogFormat::Json, false) => text.json().flatten_event(true).without_time().boxed(),
    }
}

/// Under journald, each line starts with its sd-daemon(3) priority (`<3>` error, `<4>` warn,
/// `<6>` info, `<7>` debug), which journald strips and records, so `journalctl -p err` finds
/// tokdrop's errors.
struct Prioritized<W>(W);

impl<'a, W: MakeWriter<'a>> MakeWriter<'a> for Prioritized<W> {
    type Writer = PrefixWriter<W::Writer>;

    fn make_writer(&'a self) -> Self::Writer {
        PrefixWriter {
            inner: self.0.make_writer(),
            prefix: None,
        }
    }

    fn make_writer_for(&'a self, meta: &tracing::Metadata<'_>) -> Self::Writer {
        let prefix = match *meta.level() {
            tracing::Level::ERROR => "<3>",
            tracing::Level::WARN => "<4>",
            tracing::Level::INFO => "<6>",
            _ => "<7>",
        };
        PrefixWriter {
            inner: self.0.make_writer_for(meta),
            prefix: Some(prefix),
        }
    }
}

/// Writes `prefix` at the start of every line of one event (journald makes each line an entry
/// of its own, so a multi-line error keeps its priority on every line), in one write so lines
/// from several threads do not interleave with their prefix.
struct PrefixWriter<W> {
    inner: W,
    prefix: Option<&'static str>,
}

impl<W: std::io::Write> std::io::Write for PrefixWriter<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let Some(p) = self.prefix else {
            return self.inner.write(buf);
        };
        let mut out = Vec::with_capacity(buf.len() + p.len() * 2);
        for line in buf.split_inclusive(|b| *b == b'\n') {
            out.extend_from_slice(p.as_bytes());
            out.extend_from_slice(line);
        }
        self.inner.write_all(&out)?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// The rolling file in `dir` behind a non-blocking, non-lossy writer thread.
///
/// tracing-appender prunes when it opens a file (start-up and each rollover), keeping
/// `max_log_files` including the new one, so `keep + 1`. After a restart within the same
/// period the current file counts as old, so briefly one fewer old file is kept.
fn file_writer(
    dir: &Path,
    rotation: Rotation,
    keep: u32,
) -> Result<(tracing_appender::non_blocking::NonBlocking, WorkerGuard), LoggingError> {
    let mut builder = RollingFileAppender::builder()
        .filename_prefix(FILE_PREFIX)
        .filename_suffix(FILE_SUFFIX);
    builder = match rotation {
        Rotation::Daily => builder.rotation(rolling::Rotation::DAILY),
        Rotation::Hourly => builder.rotation(rolling::Rotation::HOURLY),
        // One file that only grows: nothing to prune (and pruning would count it as old).
        Rotation::Never => builder.rotation(rolling::Rotation::NEVER),
    };
    if rotation != Rotation::Never {
        let max = usize::try_from(keep)
            .unwrap_or(usize::MAX)
            .saturating_add(1);
        builder = builder.max_log_files(max);
    }
    let appender = builder.build(dir).map_err(|source| LoggingError::Dir {
        dir: dir.to_path_buf(),
        source,
    })?;
    Ok(NonBlockingBuilder::default()
        .lossy(false)
        .thread_name("tokdrop-log")
        .finish(appender))
}

#[cfg(test)]
mod tests {
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
        assert_eq!(v["target"], "tokdrop::logging::tests");
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

    use std::str::FromStr;

    /// `log.level` takes bare levels and filter strings; RUST_LOG overrides it; bad values
    /// are errors naming where they came from.
    #[test]
    fn filters() {
        for ok in [
            "info",
            "debug",
            " warn ",
            "info,tokdrop::publish=trace",
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
}
