//! Finishing an item (SPEC §5): its files move from the work area into `done_dir` or
//! `failed_dir` (never overwriting: the whole group gets `-2`, `-3` … when a name is taken),
//! `<stem>.result.yaml` is written next to them, a line is appended to `state_dir/ledger.jsonl`,
//! and the journal entry is dropped. Every step is journaled first and safe to repeat, so a crash
//! anywhere in here finishes correctly on restart.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use crate::lifecycle::claim;
use crate::lifecycle::journal::{Journal, JournalError, Record, Stage};
use crate::lifecycle::ledger;
use crate::lifecycle::outcome::ItemResult;
use crate::support::diagnostic::printable;
use crate::support::fsops;

#[derive(Debug, thiserror::Error)]
pub enum FinishError {
    #[error("internal error: cannot finish {item} in stage {stage}")]
    NotTerminal { item: String, stage: &'static str },
    #[error(transparent)]
    Journal(#[from] JournalError),
    #[error("cannot finish {item}: {source}")]
    Handoff { item: String, source: HandoffError },
    #[error("cannot finish {item}: {what} {path}: {source}")]
    Io {
        item: String,
        what: &'static str,
        path: PathBuf,
        source: io::Error,
    },
}

/// Why the hand-over of a finished item (its notifications) failed.
pub type HandoffError = crate::lifecycle::notifications::OutboxError;

/// Where the finished files of an item end up.
#[derive(Debug, Clone, PartialEq)]
pub struct Finished {
    pub dest_dir: PathBuf,
    pub result_file: PathBuf,
    pub result: ItemResult,
}

/// The stem of an item's group: `clip` for `clip.mp4`, the folder name for a set.
fn group_stem(record: &Record) -> String {
    match record.kind {
        crate::content::sidecar::rules::Kind::PhotoSet => record.item.clone(),
        _ => Path::new(&record.item)
            .file_stem()
            .map_or_else(|| record.item.clone(), |s| s.to_string_lossy().into_owned()),
    }
}

/// Longest stem a result keeps (bytes): room is left for `-NN` and `.result.yaml` or the
/// longest extension within a file name's 255 bytes.
const MAX_STEM: usize = 200;

/// `stem`, cut to [`MAX_STEM`] bytes at a character boundary.
fn shortened(stem: &str) -> &str {
    if stem.len() <= MAX_STEM {
        return stem;
    }
    let mut end = MAX_STEM;
    while !stem.is_char_boundary(end) {
        end -= 1;
    }
    &stem[..end]
}

/// The name a file of the group gets under `stem` (`clip.mp4` → `clip-2.mp4`,
/// `clip.mp4.yaml` → `clip-2.mp4.yaml`).
fn renamed(name: &str, old_stem: &str, new_stem: &str) -> String {
    match name.strip_prefix(old_stem) {
        Some(rest) if rest.is_empty() || rest.starts_with('.') => format!("{new_stem}{rest}"),
        _ => name.to_string(),
    }
}

fn file_names(record: &Record) -> Vec<String> {
    record
        .paths
        .iter()
        .map(|p| {
            p.work
                .file_name()
                .map_or_else(String::new, |n| n.to_string_lossy().into_owned())
        })
        .collect()
}

/// Moves a terminal item to its folder, writes its result and ledger line, drops the journal
/// entry. `done_dir`/`failed_dir` come from the item's watch entry. `handoff` runs once the
/// result file is written and before the ledger line (its notifications, written durably so a
/// crash after the finish still delivers them); it is skipped when a finish repeated after a
/// crash finds its ledger line, since it ran before that line was written.
pub fn finish(
    journal: &Journal,
    state_dir: &Path,
    mut record: Record,
    done_dir: &Path,
    failed_dir: &Path,
    handoff: &dyn Fn(&ItemResult, &Path) -> Result<(), HandoffError>,
) -> Result<Finished, FinishError> {
    let item = record.item.clone();
    let io_err = |what, path: &Path, source| FinishError::Io {
        item: item.clone(),
        what,
        path: path.to_path_buf(),
        source,
    };
    // Only a finish repeated after a crash can find its own ledger line already written.
    let resumed = matches!(record.stage, Stage::Finishing { .. });
    let (result, dest_dir, stem) = match &record.stage {
        Stage::Finishing {
            result,
            dest_dir,
            stem,
        } => ((**result).clone(), dest_dir.clone(), stem.clone()),
        Stage::Terminal { result } => {
            let dest = if result.status.is_success() {
                done_dir
            } else {
                failed_dir
            };
            fs::create_dir_all(dest).map_err(|e| io_err("cannot create", dest, e))?;
            let base = group_stem(&record);
            let names = file_names(&record);
            let stem = fsops::free_stem(shortened(&base), |cand| {
                dest.join(format!("{cand}.result.yaml")).exists()
                    || names
                        .iter()
                        .any(|n| dest.join(renamed(n, &base, cand)).exists())
            });
            let mut result = (**result).clone();
            result.files = moved_names(&record, &base, &stem);
            journal.advance(
                &mut record,
                Stage::Finishing {
                    result: Box::new(result.clone()),
                    dest_dir: dest.to_path_buf(),
                    stem: stem.clone(),
                },
            )?;
            (result, dest.to_path_buf(), stem)
        }
        other => {
            return Err(FinishError::NotTerminal {
                item: record.item.clone(),
                stage: other.name(),
            });
        }
    };
    let base = group_stem(&record);
    for p in &record.paths {
        let name = p
            .work
            .file_name()
            .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
        let target = dest_dir.join(renamed(&name, &base, &stem));
        if !p.work.exists() && target.exists() {
            continue; // moved before a crash
        }
        fsops::move_no_replace(&p.work, &target).map_err(|e| io_err("cannot move", &p.work, e))?;
    }
    let result_file = dest_dir.join(format!("{stem}.result.yaml"));
    let yaml = render_result(&result);
    // Readable by the group of the service (in the packaged layout: the people who drop).
    fsops::write_atomic(&result_file, yaml.as_bytes(), 0o640)
        .map_err(|e| io_err("cannot write", &result_file, e))?;
    let logged = resumed
        && ledger::has_recent(state_dir, &result.id)
            .map_err(|e| io_err("cannot read", &ledger::path(state_dir), e))?;
    if !logged {
        handoff(&result, &result_file).map_err(|source| FinishError::Handoff {
            item: item.clone(),
            source,
        })?;
        ledger::append(state_dir, &result)
            .map_err(|e| io_err("cannot append to", &ledger::path(state_dir), e))?;
    }
    let _ = fs::remove_dir(claim::work_dir(&record.watch, &record.id));
    journal.remove(&record.id)?;
    Ok(Finished {
        dest_dir,
        result_file,
        result,
    })
}

/// The names the files will have in the destination folder (a set lists its images inside).
fn moved_names(record: &Record, base: &str, stem: &str) -> Vec<String> {
    let mut out = Vec::new();
    for p in &record.paths {
        let name = p
            .work
            .file_name()
            .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
        let new = renamed(&name, base, stem);
        if p.work.is_dir() {
            let mut inner: Vec<String> = fs::read_dir(&p.work)
                .map(|rd| {
                    rd.flatten()
                        .map(|e| format!("{new}/{}", e.file_name().to_string_lossy()))
                        .collect()
                })
                .unwrap_or_default();
            inner.sort_by(|a, b| crate::content::sidecar::rules::natural_cmp(a, b));
            out.extend(inner);
        } else {
            out.push(new);
        }
    }
    out
}

/// The `.result.yaml` text: a one-line summary comment for people, then the fields.
pub fn render_result(result: &ItemResult) -> String {
    // One comment line whatever the item is called: its name is the dropper's choice.
    let item = printable(&result.item);
    let summary = match (&result.error, &result.post_url) {
        (Some(e), _) => format!(
            "# {item}: {} — {}\n",
            result.status.as_str(),
            printable(&e.hint)
        ),
        (None, Some(url)) => format!(
            "# {item}: {} — {}\n",
            result.status.as_str(),
            printable(url)
        ),
        (None, None) => format!("# {item}: {}\n", result.status.as_str()),
    };
    let body = serde_saphyr::to_string(result).expect("result files always serialize");
    format!("{summary}{body}")
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::lifecycle::outcome::Status;

    /// A name with a newline cannot forge the result: the summary stays one comment line, and
    /// the YAML says the real status and keeps the name as it is.
    #[test]
    fn hostile_names_stay_in_their_field() {
        let mut r: ItemResult = serde_saphyr::from_str(
            "status: failed\nitem: x\nwatch: inbox\naccount: default\nmode: direct\nqueued_at: \"2026-12-01T00:00:00Z\"\nfinished_at: \"2026-12-01T00:00:01Z\"\nid: a\n",
        )
        .expect("a result");
        r.item = "x\nstatus: published\npost_url: https://evil.example/\u{1b}[2J.mp4".into();
        let text = render_result(&r);
        let first = text.lines().next().expect("a line");
        assert!(first.starts_with("# x\\nstatus: published"), "{first}");
        assert!(!first.contains('\u{1b}'), "{first}");
        assert!(
            text.lines()
                .skip(1)
                .all(|l| !l.starts_with("status: published")),
            "{text}"
        );
        let back: ItemResult = serde_saphyr::from_str(&text).expect("parses");
        assert_eq!(back.status, Status::Failed);
        assert_eq!(back.item, r.item);
    }

    /// The collision suffix goes after the stem, for every file of the group.
    #[test]
    fn long_stems_are_shortened_to_fit_a_result_name() {
        let long = "é".repeat(130); // 260 bytes
        let short = shortened(&long);
        assert!(short.len() <= MAX_STEM && long.starts_with(short));
        assert!(format!("{short}-99.result.yaml").len() <= 255);
        let name = format!("{long}.mp4");
        assert_eq!(renamed(&name[..], &long, short), format!("{short}.mp4"));
        assert_eq!(shortened("clip"), "clip");
    }

    #[test]
    fn renamed_keeps_extensions() {
        assert_eq!(renamed("clip.mp4", "clip", "clip-2"), "clip-2.mp4");
        assert_eq!(
            renamed("clip.mp4.yaml", "clip", "clip-2"),
            "clip-2.mp4.yaml"
        );
        assert_eq!(renamed("clip.yml", "clip", "clip-3"), "clip-3.yml");
        assert_eq!(renamed("trip", "trip", "trip-2"), "trip-2");
        assert_eq!(renamed("clipboard.mp4", "clip", "clip-2"), "clipboard.mp4");
    }
}
