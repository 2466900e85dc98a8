//! `tokdrop check`: everything the service would decide about an item before calling TikTok
//! (pairing, sidecar, field rules, file structure, TikTok's file limits), without publishing.
//! For each item it reports the exact init request that would be sent, or every error.

use std::io::{self, Write};
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::config::{Config, WatchConfig};
use crate::diagnostic::Diagnostic;
use crate::items::{self, Found, ItemFiles};
use crate::media;
use crate::post::{self, InitRequest, Source};
use crate::sidecar::rules::{Kind, PostSpec, Target};
use crate::sidecar::{self, Mode};

/// Placeholder for the per-item random token in previewed URLs.
pub const TOKEN_PLACEHOLDER: &str = "<token>";

/// What `check` found about one item.
#[derive(Debug, Serialize)]
pub struct ItemReport {
    /// The media file or photo-set folder, as displayed.
    pub item: String,
    pub kind: Kind,
    pub sidecar: Option<String>,
    pub account: Option<String>,
    pub mode: Option<Mode>,
    pub request: Option<InitRequest>,
    pub not_before: Option<String>,
    /// What the probe found in each media file (`clip.mp4: H.264, 30 fps, …`).
    pub media: Vec<String>,
    pub errors: Vec<Diagnostic>,
    pub warnings: Vec<Diagnostic>,
}

impl ItemReport {
    pub fn is_valid(&self) -> bool {
        self.errors.is_empty()
    }
}

/// The whole run: config file, items, sidecars without media, and paths that are not items.
#[derive(Debug, Serialize)]
pub struct Report {
    pub config: PathBuf,
    pub items: Vec<ItemReport>,
    /// Sidecars with no media (they wait for it) and given paths that are not items.
    pub notes: Vec<Diagnostic>,
    /// Given paths that could not be checked at all (missing, unreadable).
    pub problems: Vec<Diagnostic>,
}

impl Report {
    pub fn invalid_count(&self) -> usize {
        self.items.iter().filter(|i| !i.is_valid()).count() + self.problems.len()
    }

    /// 0 when everything checked is valid, 1 otherwise (config errors exit 2 before this).
    pub fn exit_code(&self) -> u8 {
        u8::from(self.invalid_count() > 0)
    }
}

/// Checks `paths` (or everything in the watched folders when empty) against `config`.
/// `watch_override` picks the watch entry used for paths outside every watched folder.
pub fn run(config: &Config, paths: &[PathBuf], watch_override: Option<&Path>) -> Report {
    let mut report = Report {
        config: config.file.clone(),
        items: Vec::new(),
        notes: Vec::new(),
        problems: Vec::new(),
    };
    let fallback = watch_override
        .and_then(|p| config.watch_for(p))
        .or_else(|| config.watch.first());
    if paths.is_empty() {
        for w in &config.watch {
            match items::list_folder(w) {
                Ok(listing) => {
                    for item in &listing.items {
                        report.items.push(check_item(config, w, item));
                    }
                    report
                        .notes
                        .extend(listing.orphans.iter().map(|p| orphan_note(p)));
                }
                Err(e) => report.problems.push(
                    Diagnostic::file(&w.path, format!("cannot list the folder: {e}"))
                        .with_help("check that it exists and tokdrop may read it"),
                ),
            }
        }
        return report;
    }
    for path in paths {
        let Some(w) = config.watch_for(path).or(fallback) else {
            continue;
        };
        match items::item_at(path, w) {
            Ok(Found::Item(item)) => report.items.push(check_item(config, w, &item)),
            Ok(Found::Orphan(p)) => report.notes.push(orphan_note(&p)),
            Ok(Found::NotAnItem(p, why)) => {
                report
                    .notes
                    .push(Diagnostic::file(&p, format!("skipped: {why}")));
            }
            Err(e) => report.problems.push(
                Diagnostic::file(path, format!("cannot check it: {e}"))
                    .with_help("give the path of a media file, its sidecar or a photo-set folder"),
            ),
        }
    }
    report
}

fn orphan_note(path: &Path) -> Diagnostic {
    Diagnostic::file(
        path,
        "sidecar without a media file: it waits for its video or photo",
    )
    .with_help("name the sidecar after its media file (clip.mp4 + clip.yaml or clip.mp4.yaml)")
}

/// Everything the offline rules say about one item: the post to send when it is valid.
pub struct Inspection {
    pub spec: Option<PostSpec>,
    pub errors: Vec<Diagnostic>,
    pub warnings: Vec<Diagnostic>,
    pub media: Vec<media::MediaInfo>,
}

/// Runs every offline rule on one item: pairing problems, sidecar, media structure and
/// TikTok's file limits, field rules. Used by `check` and by the service before a claim.
pub fn inspect(w: &WatchConfig, item: &ItemFiles) -> Inspection {
    let mut errors = item.problems.clone();
    let mut warnings = Vec::new();
    let loaded = match &item.sidecar {
        Some(p) => match sidecar::load(p) {
            Ok(s) => {
                warnings.extend(s.warnings.iter().cloned());
                Some((p.as_path(), s))
            }
            Err(problems) => {
                errors.extend(problems);
                None
            }
        },
        None => None,
    };
    let mut infos = Vec::new();
    for file in &item.media {
        match media::probe(file) {
            Ok(info) => {
                for v in media::check_limits(&info, &file_name(file)) {
                    errors.push(Diagnostic::file(file, v.message.clone()).with_help(v.fix.clone()));
                }
                infos.push(info);
            }
            Err(e) => errors.push(media_diagnostic(file, &e)),
        }
    }
    let target = Target {
        kind: item.kind,
        files: item.media.iter().map(|m| file_name(m)).collect(),
        item_path: &item.path,
        folder_mode: w.mode,
        folder_account: &w.account,
    };
    let sidecar_failed = item.sidecar.is_some() && loaded.is_none();
    let resolved = sidecar::resolve(&w.defaults, loaded.as_ref().map(|(p, s)| (*p, s)), &target);
    warnings.extend(resolved.warnings);
    if !sidecar_failed {
        errors.extend(resolved.errors);
    }
    let spec = resolved.spec.filter(|_| errors.is_empty());
    if let (Some(spec), Some(info)) = (&spec, infos.first())
        && let (Some(cover), Some(dur)) = (spec.cover_timestamp_ms, info.duration_ms)
        && u64::from(cover) > dur
    {
        warnings.push(Diagnostic::at_key(
            &item.path,
            "cover_timestamp_ms",
            format!(
                "cover_timestamp_ms {cover} is past the end of the video ({dur} ms); TikTok will use the first frame"
            ),
        ));
    }
    Inspection {
        spec,
        errors,
        warnings,
        media: infos,
    }
}

/// Runs [`inspect`] and previews the request with placeholder URLs.
pub fn check_item(config: &Config, w: &WatchConfig, item: &ItemFiles) -> ItemReport {
    let Inspection {
        spec,
        errors,
        warnings,
        media,
    } = inspect(w, item);
    let request = spec.as_ref().map(|s| {
        let urls: Vec<String> = s
            .files
            .iter()
            .map(|f| post::media_url(&config.server.public_url, TOKEN_PLACEHOLDER, f))
            .collect();
        post::init_request(s, Source::Pull(&urls))
    });
    ItemReport {
        item: display(&item.path),
        kind: item.kind,
        sidecar: item.sidecar.as_deref().map(display),
        account: spec.as_ref().map(|s| s.account.clone()),
        mode: spec.as_ref().map(|s| s.mode),
        request,
        not_before: spec
            .as_ref()
            .and_then(|s| s.not_before.map(|t| t.to_string())),
        media: item
            .media
            .iter()
            .zip(&media)
            .map(|(p, m)| format!("{}: {}", file_name(p), m.summary()))
            .collect(),
        errors,
        warnings,
    }
}

fn media_diagnostic(file: &Path, e: &media::MediaError) -> Diagnostic {
    let help = match e {
        media::MediaError::Incomplete { .. } => {
            "if it is still being copied, wait; otherwise export or copy it again"
        }
        media::MediaError::NotRecognized { .. } => {
            "export it again as MP4/MOV/WebM (video) or JPEG/WebP (photo), with the matching extension"
        }
        media::MediaError::Io(e) if e.kind() == std::io::ErrorKind::InvalidInput => {
            "put the real file there instead (a copy, not a link, pipe or device)"
        }
        media::MediaError::Io(_) => "check the file's permissions",
        media::MediaError::Unsupported { .. } => "rename or convert it to a supported format",
    };
    Diagnostic::file(file, e.to_string()).with_help(help)
}

fn file_name(p: &Path) -> String {
    p.file_name()
        .map_or(String::new(), |n| n.to_string_lossy().into_owned())
}

/// A path relative to the current directory when it is below it.
pub fn display(p: &Path) -> String {
    crate::diagnostic::display_path(p)
}

/// Prints the report for people.
pub fn render_text(report: &Report, out: &mut dyn Write) -> io::Result<()> {
    for item in &report.items {
        let sidecar = item
            .sidecar
            .as_deref()
            .map(|s| format!(" + {}", file_name(Path::new(s))))
            .unwrap_or_default();
        if item.is_valid() {
            writeln!(out, "ok       {}{sidecar}", item.item)?;
            for m in &item.media {
                writeln!(out, "         {}", crate::diagnostic::printable(m))?;
            }
            if let (Some(acc), Some(mode), Some(req)) = (&item.account, item.mode, &item.request) {
                writeln!(
                    out,
                    "         account {acc}, mode {mode}: POST {}",
                    req.endpoint
                )?;
                let json = serde_json::to_string_pretty(&req.body).map_err(io::Error::other)?;
                for line in json.lines() {
                    writeln!(out, "           {line}")?;
                }
            }
            if let Some(t) = &item.not_before {
                writeln!(out, "         waits until {t}")?;
            }
        } else {
            writeln!(out, "INVALID  {}{sidecar}", item.item)?;
            for m in &item.media {
                writeln!(out, "         {}", crate::diagnostic::printable(m))?;
            }
        }
        for e in &item.errors {
            writeln!(out, "{}", indent("error: ", e))?;
        }
        for w in &item.warnings {
            writeln!(out, "{}", indent("warning: ", w))?;
        }
    }
    for p in &report.problems {
        writeln!(out, "{}", indent("error: ", p).trim_start())?;
    }
    for n in &report.notes {
        writeln!(out, "{}", indent("note: ", n).trim_start())?;
    }
    let total = report.items.len();
    let invalid = report.invalid_count();
    if total == 0 && report.problems.is_empty() {
        writeln!(out, "nothing to check: no items in the watched folders")?;
    } else {
        writeln!(
            out,
            "{total} item{} checked: {} valid, {invalid} invalid",
            if total == 1 { "" } else { "s" },
            total.saturating_sub(invalid.min(total)),
        )?;
    }
    Ok(())
}

fn indent(prefix: &str, d: &Diagnostic) -> String {
    let text = d.to_string().replace('\n', "\n  ");
    format!("  {prefix}{text}")
}
