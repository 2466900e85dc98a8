//! `tokdrop check`: everything the service would decide about an item before calling TikTok
//! (pairing, sidecar, field rules, file structure, TikTok's file limits), without publishing.
//! For each item it reports the exact init request that would be sent, or every error.

use std::io::{self, Write};
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::config::{Config, WatchConfig};
use crate::content::sidecar::Mode;
use crate::content::sidecar::rules::Kind;
use crate::lifecycle::inspect::{Inspection, file_name, inspect};
use crate::lifecycle::items::{self, Found, ItemFiles};
use crate::lifecycle::post::{self, InitRequest, Source};
use crate::support::diagnostic::Diagnostic;

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

/// Runs [`inspect`](crate::lifecycle::inspect::inspect) and previews the request with placeholder URLs.
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

/// A path relative to the current directory when it is below it.
pub fn display(p: &Path) -> String {
    crate::support::diagnostic::display_path(p)
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
                writeln!(out, "         {}", crate::support::diagnostic::printable(m))?;
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
                writeln!(out, "         {}", crate::support::diagnostic::printable(m))?;
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
