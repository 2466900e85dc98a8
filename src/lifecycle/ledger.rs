//! `state_dir/ledger.jsonl`: one JSON line per finished item (the result file's fields), the
//! history users review with `tokdrop results`. Appends are synced; a line is never written twice
//! for the same item, even when a crash repeats the finish step. Past [`ROTATE_BYTES`] the file
//! is renamed `ledger.<time>.jsonl` (kept, never deleted) and a new one begins; readers go
//! across all of them.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use crate::lifecycle::outcome::{ItemResult, Status};
use crate::support::fsops;

pub fn path(state_dir: &Path) -> PathBuf {
    state_dir.join("ledger.jsonl")
}

/// Size past which the ledger is rotated before the next append. `TOKDROP_LEDGER_ROTATE_BYTES`
/// overrides it (tests).
pub const ROTATE_BYTES: u64 = 64 * 1024 * 1024;

fn rotate_bytes() -> u64 {
    std::env::var("TOKDROP_LEDGER_ROTATE_BYTES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(ROTATE_BYTES)
}

/// Every ledger file, oldest first: the rotated ones by name (their time), then the current.
pub fn files(state_dir: &Path) -> io::Result<Vec<PathBuf>> {
    let mut rotated: Vec<PathBuf> = match std::fs::read_dir(state_dir) {
        Ok(entries) => entries
            .flatten()
            .map(|e| e.path())
            .filter(|p| {
                p.file_name().and_then(|n| n.to_str()).is_some_and(|n| {
                    n.starts_with("ledger.") && n.ends_with(".jsonl") && n != "ledger.jsonl"
                })
            })
            .collect(),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(e),
    };
    rotated.sort();
    let current = path(state_dir);
    if current.exists() {
        rotated.push(current);
    }
    Ok(rotated)
}

/// Renames a full ledger to `ledger.<time>.jsonl` (never over another), so appends start a
/// new file.
fn rotate_if_full(state_dir: &Path) -> io::Result<()> {
    let current = path(state_dir);
    let len = match std::fs::metadata(&current) {
        Ok(m) => m.len(),
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    if len < rotate_bytes() {
        return Ok(());
    }
    let now = jiff::Timestamp::now();
    // Sortable by name: to the nanosecond.
    let stamp = format!(
        "{}{:09}Z",
        now.strftime("%Y%m%dT%H%M%S"),
        now.subsec_nanosecond()
    );
    let stem = fsops::free_stem(&format!("ledger.{stamp}"), |cand| {
        state_dir.join(format!("{cand}.jsonl")).exists()
    });
    fsops::move_no_replace(&current, &state_dir.join(format!("{stem}.jsonl")))
}

/// How far back from the end a repeated finish looks for its own line: a crash can only
/// separate the append from the journal update by a few lines.
const RECENT_BYTES: u64 = 256 * 1024;

/// Appends `result` unless a line with its id is already among the recent lines (a finish
/// repeated after a crash) — of the current file, and of the last rotated one.
pub fn append_once(state_dir: &Path, result: &ItemResult) -> io::Result<()> {
    if has_recent(state_dir, &result.id)? {
        return Ok(());
    }
    append(state_dir, result)
}

/// The ledger's mode: readable by the service's group, so its members can run `tokdrop
/// results` (and `status`) without sudo. Secrets never go into it.
pub const SHARED_MODE: u32 = 0o640;

/// Whether a line with `id` is among the recent lines of the current file or the last rotated
/// one (a finish repeated after a crash finds its own line there).
pub fn has_recent(state_dir: &Path, id: &str) -> io::Result<bool> {
    let all = files(state_dir)?;
    for f in all.iter().rev().take(2) {
        if recent_ids(f)?.iter().any(|i| i == id) {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Appends `result` as one synced line (rotating a full ledger first).
pub fn append(state_dir: &Path, result: &ItemResult) -> io::Result<()> {
    let line = serde_json::to_string(result).map_err(io::Error::other)?;
    rotate_if_full(state_dir)?;
    fsops::append_line(&path(state_dir), &line, SHARED_MODE)
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

/// Which results `tokdrop results` shows.
pub struct Filter {
    pub failed_only: bool,
    pub since: Option<jiff::Timestamp>,
}

/// Lines are appended as items finish, so they are in `finished_at` order give or take the
/// few seconds two finishes can overlap; reading back stops this far before `since`.
const SINCE_SLACK: jiff::SignedDuration = jiff::SignedDuration::from_secs(3600);
/// Bytes read from the end at a time.
const BLOCK: u64 = 64 * 1024;

/// The newest results that pass `filter`, newest first, read from the end of the ledger:
/// at most `limit` of them, and none older than `filter.since`. Reads only as much of the file
/// as that takes, in constant memory besides the results kept. Also counts unreadable lines.
pub fn newest(
    state_dir: &Path,
    filter: &Filter,
    limit: Option<usize>,
) -> io::Result<(Vec<ItemResult>, usize)> {
    let mut out = Vec::new();
    if limit == Some(0) {
        return Ok((out, 0));
    }
    let bad = scan_newest(state_dir, filter, |r| {
        out.push(r);
        Ok(limit.is_none_or(|n| out.len() < n))
    })?;
    out.sort_by_key(|r| std::cmp::Reverse(r.finished_at));
    Ok((out, bad))
}

/// Hands `visit` each result that passes `filter`, from the end of the ledger backwards (newest
/// first, as the lines were appended), until it answers `false`, an error, or the results are
/// older than `filter.since`. Holds one 64 KiB block at a time, whatever the ledger's size.
/// Returns how many lines could not be read.
pub fn scan_newest(
    state_dir: &Path,
    filter: &Filter,
    mut visit: impl FnMut(ItemResult) -> io::Result<bool>,
) -> io::Result<usize> {
    let cutoff = filter.since.and_then(|s| s.checked_sub(SINCE_SLACK).ok());
    let mut bad = 0;
    for p in files(state_dir)?.into_iter().rev() {
        let f = match File::open(&p) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        if !scan_file(f, filter, cutoff, &mut visit, &mut bad)? {
            break;
        }
    }
    Ok(bad)
}

/// [`scan_newest`] in one file, from its end; `false` when the visitor or the cutoff stopped
/// it (older files need not be read).
fn scan_file(
    mut f: File,
    filter: &Filter,
    cutoff: Option<jiff::Timestamp>,
    visit: &mut impl FnMut(ItemResult) -> io::Result<bool>,
    bad: &mut usize,
) -> io::Result<bool> {
    let mut end = f.metadata()?.len();
    // Bytes after the last line break seen so far, not yet a whole line.
    let mut carry: Vec<u8> = Vec::new();
    while end > 0 {
        let start = end.saturating_sub(BLOCK);
        let mut block = vec![0u8; usize::try_from(end - start).unwrap_or(0)];
        f.seek(SeekFrom::Start(start))?;
        f.read_exact(&mut block)?;
        block.extend_from_slice(&carry);
        end = start;
        // Every line but the first is whole; the first may continue in the block before.
        let mut lines: Vec<&[u8]> = block.split(|&b| b == b'\n').collect();
        let first = if start > 0 {
            lines.remove(0).to_vec()
        } else {
            Vec::new()
        };
        for line in lines.into_iter().rev() {
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            let Ok(r) = serde_json::from_slice::<ItemResult>(line) else {
                *bad += 1;
                continue;
            };
            if cutoff.is_some_and(|c| r.finished_at < c) {
                return Ok(false);
            }
            if (!filter.failed_only || !r.status.is_success())
                && filter.since.is_none_or(|s| r.finished_at >= s)
                && !visit(r)?
            {
                return Ok(false);
            }
        }
        carry = first;
    }
    Ok(true)
}

/// The human table: time, item, status, then the post URL or the error code and hint.
pub fn render_table(results: &[ItemResult], out: &mut dyn Write) -> io::Result<()> {
    if results.is_empty() {
        return writeln!(out, "no results yet");
    }
    let table = Table::start(results, out)?;
    results.iter().try_for_each(|r| table.row(r, out))
}

/// The human table written row by row (the ledger streamed, not held): the item column is as
/// wide as the longest name of a sample of the first rows, 4 to 40 characters.
pub struct Table {
    width: usize,
}

impl Table {
    /// Prints the header, sized for `sample`.
    pub fn start(sample: &[ItemResult], out: &mut dyn Write) -> io::Result<Self> {
        use crate::support::diagnostic::printable;
        let width = sample
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
        Ok(Self { width })
    }

    /// One result; a longer name is cut with an ellipsis.
    pub fn row(&self, r: &ItemResult, out: &mut dyn Write) -> io::Result<()> {
        use crate::support::diagnostic::printable;
        let width = self.width;
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
        Ok(())
    }
}
