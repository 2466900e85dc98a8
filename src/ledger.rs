//! `state_dir/ledger.jsonl`: one JSON line per finished item (the result file's fields), the
//! history users review with `tokdrop results`. Appends are synced; a line is never written twice
//! for the same item, even when a crash repeats the finish step.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use crate::fsops;
use crate::outcome::{ItemResult, Status};

pub fn path(state_dir: &Path) -> PathBuf {
    state_dir.join("ledger.jsonl")
}

/// How far back from the end a repeated finish looks for its own line: a crash can only
/// separate the append from the journal update by a few lines.
const RECENT_BYTES: u64 = 256 * 1024;

/// Appends `result` unless a line with its id is already among the recent lines (a finish
/// repeated after a crash).
pub fn append_once(state_dir: &Path, result: &ItemResult) -> io::Result<()> {
    if recent_ids(&path(state_dir))?.contains(&result.id) {
        return Ok(());
    }
    append(state_dir, result)
}

/// Appends `result` as one synced line.
pub fn append(state_dir: &Path, result: &ItemResult) -> io::Result<()> {
    let line = serde_json::to_string(result).map_err(io::Error::other)?;
    fsops::append_line(&path(state_dir), &line)
}

fn recent_ids(p: &Path) -> io::Result<Vec<String>> {
    let mut f = match File::open(p) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let len = f.metadata()?.len();
    f.seek(SeekFrom::Start(len.saturating_sub(RECENT_BYTES)))?;
    let mut bytes = Vec::new();
    f.take(RECENT_BYTES).read_to_end(&mut bytes)?;
    // The cut may fall inside a character: the first (partial) line is ignored anyway.
    let tail = String::from_utf8_lossy(&bytes);
    Ok(tail
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|v| v.get("id").and_then(|i| i.as_str()).map(String::from))
        .collect())
}

/// Every readable line, oldest first. Lines that do not parse (a torn last line after a power
/// cut) are skipped and counted.
pub fn read(state_dir: &Path) -> io::Result<(Vec<ItemResult>, usize)> {
    let f = match File::open(path(state_dir)) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok((Vec::new(), 0)),
        Err(e) => return Err(e),
    };
    let mut out = Vec::new();
    let mut bad = 0;
    for line in BufReader::new(f).lines() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        match serde_json::from_str(&line) {
            Ok(r) => out.push(r),
            Err(_) => bad += 1,
        }
    }
    Ok((out, bad))
}

/// Which results `tokdrop results` shows.
pub struct Filter {
    pub failed_only: bool,
    pub since: Option<jiff::Timestamp>,
}

/// Newest first, filtered.
pub fn select(results: Vec<ItemResult>, filter: &Filter) -> Vec<ItemResult> {
    let mut v: Vec<ItemResult> = results
        .into_iter()
        .filter(|r| !filter.failed_only || !r.status.is_success())
        .filter(|r| filter.since.is_none_or(|s| r.finished_at >= s))
        .collect();
    v.sort_by_key(|r| std::cmp::Reverse(r.finished_at));
    v
}

/// The human table: time, item, status, then the post URL or the error code and hint.
pub fn render_table(results: &[ItemResult], out: &mut dyn Write) -> io::Result<()> {
    if results.is_empty() {
        return writeln!(out, "no results yet");
    }
    use crate::diagnostic::printable;
    let width = results
        .iter()
        .map(|r| printable(&r.item).chars().count())
        .max()
        .unwrap_or(4)
        .clamp(4, 40);
    writeln!(
        out,
        "{:<20}  {:<width$}  {:<13}  DETAILS",
        "FINISHED (UTC)", "ITEM", "STATUS"
    )?;
    for r in results {
        let when = r.finished_at.strftime("%Y-%m-%d %H:%M:%S").to_string();
        let detail = match (&r.error, &r.post_url, r.status) {
            (Some(e), _, _) => format!("{}: {}", e.code, e.hint),
            (None, Some(url), _) => url.clone(),
            (None, None, Status::Published)
                if r.privacy_level.as_deref() != Some("PUBLIC_TO_EVERYONE") =>
            {
                format!(
                    "posted as {} (not public, so TikTok gives no link; see the profile)",
                    r.privacy_level.as_deref().unwrap_or("private")
                )
            }
            (None, None, Status::Published) => {
                "published (TikTok has not shown the post id yet)".into()
            }
            (None, None, Status::SentToInbox) => {
                "in the creator's TikTok inbox: finish it in the app".into()
            }
            (None, None, _) => String::new(),
        };
        let name = printable(&r.item);
        let item: String = if name.chars().count() > width {
            name.chars()
                .take(width - 1)
                .chain(std::iter::once('…'))
                .collect()
        } else {
            name.into_owned()
        };
        writeln!(
            out,
            "{when:<20}  {item:<width$}  {:<13}  {}",
            r.status.as_str(),
            printable(&detail)
        )?;
    }
    Ok(())
}
