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
    /// A level (`info`) or a full `EnvFilter` string (`info,tokdrop::lifecycle::publish=debug`).
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
    let fields = || {
        use tracing_subscriber::field::MakeExt;
        // Field values can carry names a dropper chose (`item=…`): their control characters
        // are escaped, so a name cannot add a log line of its own. Messages keep their lines
        // (multi-line errors are written line by line, each with its priority).
        fmt::format::debug_fn(|w, field, value| {
            if field.name() == "message" {
                write!(w, "{value:?}")
            } else {
                let shown = format!("{value:?}");
                write!(
                    w,
                    "{}={}",
                    field.name(),
                    crate::support::diagnostic::printable(&shown)
                )
            }
        })
        .delimited(" ")
    };
    match (format, timestamps) {
        (LogFormat::Text, true) => text.fmt_fields(fields()).boxed(),
        (LogFormat::Text, false) => text.fmt_fields(fields()).without_time().boxed(),
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
#[path = "logging_tests.rs"]
mod tests;
