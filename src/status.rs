//! What the service is doing, for `tokdrop status` and systemd's `STATUS=`: items waiting (with
//! their place in their account's line and a typed [`Reason`]), the item in flight and its
//! stage, paused accounts. The service keeps a [`Board`] in
//! memory and writes it to `state_dir/status.json` (atomically) whenever it changes; `tokdrop
//! status` reads that file, so it works while the service runs, from another process.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use crate::diagnostic::printable;
use crate::fsops;

/// How the text of an item whose claim failed begins.
pub const CANNOT_TAKE: &str = "cannot take it";
/// How the text of an item that could not be moved to done/ or failed/ begins.
pub const CANNOT_FINISH: &str = "cannot finish";

/// Why an item waits: in its folder (most of them), or, claimed, for its worker.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Reason {
    /// Its files changed recently; it is looked at again once they stop changing.
    Settling,
    /// The folder requires a sidecar and the media file has none yet.
    WaitingForSidecar,
    /// A sidecar whose video or photo is not there (yet).
    SidecarWithoutMedia,
    /// Quiet, but the content check fails (`problem` says how); given up after
    /// `give_up_after`.
    Incomplete { problem: String },
    /// Its sidecar's `not_before` has not come yet.
    Scheduled { at: jiff::Timestamp },
    /// First in its account's line, and the account's worker is free: claimed right now.
    NextInLine,
    /// In line behind others while the worker is free (for a moment, as the first is claimed).
    InLine,
    /// In line while the account's worker publishes `publishing`.
    AccountBusy { publishing: String },
    /// In line while the account is paused; re-checked at `until` (or at a new login).
    AccountPaused { until: jiff::Timestamp, why: String },
    /// Claimed (moved into the work area and journaled), its worker takes it next.
    Claimed,
    /// Its claim failed; it stays in the folder and is tried again.
    CannotTake { problem: String },
    /// Published or failed, but its files cannot be moved to done/ or failed/ yet.
    CannotFinish { problem: String },
    /// Looking at its files took too long; tried again later.
    SlowCheck { limit_secs: u64 },
    /// Free text, as older versions wrote it in `status.json`.
    Note { text: String },
}

impl Reason {
    /// A reason as older versions wrote it (free text).
    fn from_text(text: String) -> Self {
        if text == "queued" {
            Reason::Claimed
        } else if text.starts_with("settling") {
            Reason::Settling
        } else {
            Reason::Note { text }
        }
    }

    /// Whether the item is in (or at the head of) its account's line, claimed or not.
    pub fn is_queued(&self) -> bool {
        matches!(
            self,
            Reason::NextInLine
                | Reason::InLine
                | Reason::AccountBusy { .. }
                | Reason::AccountPaused { .. }
                | Reason::Claimed
        )
    }
}

impl std::fmt::Display for Reason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Reason::Settling => f.write_str("settling: waiting until the files stop changing"),
            Reason::WaitingForSidecar => {
                f.write_str("waiting for sidecar (this folder requires one)")
            }
            Reason::SidecarWithoutMedia => {
                f.write_str("sidecar without a media file: waiting for its video or photo")
            }
            Reason::Incomplete { problem } => f.write_str(problem),
            Reason::Scheduled { at } => write!(f, "scheduled for {}", utc(*at, "%Y-%m-%d %H:%M")),
            Reason::NextInLine => f.write_str("next in line"),
            Reason::InLine => f.write_str("in line"),
            Reason::AccountBusy { publishing } => {
                write!(f, "account busy (publishing {publishing})")
            }
            Reason::AccountPaused { until, why } => {
                let why = why.strip_prefix("paused: ").unwrap_or(why);
                write!(f, "paused until {} ({why})", utc(*until, "%H:%M"))
            }
            Reason::Claimed => f.write_str("claimed: its account's worker takes it next"),
            Reason::CannotTake { problem } => {
                write!(f, "{CANNOT_TAKE}: {problem}; tokdrop tries again later")
            }
            Reason::CannotFinish { problem } => write!(f, "{problem}; tokdrop tries again"),
            Reason::SlowCheck { limit_secs } => write!(
                f,
                "checking the files took longer than {limit_secs} s (slow storage, or a crafted file); trying again later"
            ),
            Reason::Note { text } => f.write_str(text),
        }
    }
}

/// `at` in UTC with `format`, and " UTC".
fn utc(at: jiff::Timestamp, format: &str) -> String {
    format!("{} UTC", at.strftime(format))
}

/// Reads a reason written by this version (tagged) or an older one (free text).
fn reason_or_text<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Reason, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Either {
        Typed(Reason),
        Text(String),
    }
    Ok(match Either::deserialize(d)? {
        Either::Typed(r) => r,
        Either::Text(t) => Reason::from_text(t),
    })
}

/// Why an item has not been taken yet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Waiting {
    /// The media file or photo-set folder.
    pub path: PathBuf,
    #[serde(deserialize_with = "reason_or_text")]
    pub reason: Reason,
    /// Its place in its account's line (1: claimed next); none while not in line (settling,
    /// scheduled, …).
    #[serde(default)]
    pub place: Option<u32>,
    /// The account whose line it is in.
    #[serde(default)]
    pub account: Option<String>,
    /// Since when it waits for this reason (in line: since it became ready).
    pub since: jiff::Timestamp,
}

/// The item being published right now for one account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InFlight {
    pub id: String,
    pub item: String,
    pub account: String,
    /// "claimed", "creator_info", "init", "processing (polled 4×)", …
    pub stage: String,
    pub publish_id: Option<String>,
    pub bytes_fetched: Option<u64>,
    pub bytes_total: Option<u64>,
    pub started_at: jiff::Timestamp,
}

/// A folder the running service watches.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Folder {
    pub path: PathBuf,
    pub account: String,
    pub mode: crate::sidecar::Mode,
}

/// The whole snapshot written to `status.json`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Snapshot {
    pub pid: u32,
    pub updated_at: Option<jiff::Timestamp>,
    pub waiting: Vec<Waiting>,
    pub in_flight: Vec<InFlight>,
    /// account → why it is paused.
    pub paused: BTreeMap<String, String>,
    /// The watched folders (they change on a reload).
    #[serde(default)]
    pub folders: Vec<Folder>,
}

#[derive(Default)]
struct Inner {
    waiting: BTreeMap<PathBuf, Waiting>,
    in_flight: BTreeMap<String, InFlight>,
    paused: BTreeMap<String, String>,
    folders: Vec<Folder>,
    /// Per account with an item in flight: the worker's heartbeat.
    beats: BTreeMap<String, Beat>,
}

/// When a worker last showed progress, and until when it said it would be quiet (a back-off,
/// a paused account's wait).
#[derive(Debug, Clone, Copy)]
struct Beat {
    last: Instant,
    quiet_until: Option<Instant>,
}

impl Beat {
    fn now() -> Self {
        Beat {
            last: Instant::now(),
            quiet_until: None,
        }
    }
}

/// A worker that has shown no progress for too long (see [`Board::stalled`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stall {
    pub account: String,
    pub item: String,
    pub stage: String,
    pub silent: Duration,
}

impl std::fmt::Display for Stall {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "the worker of account {} has shown no progress for {} s (item {}, stage {})",
            self.account,
            self.silent.as_secs(),
            printable(&self.item),
            self.stage
        )
    }
}

/// The live status, shared by intake and the publishers.
#[derive(Clone)]
pub struct Board {
    inner: Arc<Mutex<Inner>>,
    /// Bumped on every change; each watcher (status.json writer, systemd) has its receiver.
    version: Arc<watch::Sender<u64>>,
}

impl Default for Board {
    fn default() -> Self {
        Self {
            inner: Arc::default(),
            version: Arc::new(watch::channel(0).0),
        }
    }
}

impl Board {
    fn edit(&self, f: impl FnOnce(&mut Inner)) {
        let mut g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut g);
        drop(g);
        self.version.send_modify(|v| *v = v.wrapping_add(1));
    }

    /// Records (or updates) why `path` waits, out of any line; keeps `since` while the kind
    /// of reason stays the same.
    pub fn wait(&self, path: &Path, reason: Reason) {
        self.edit(|i| set_waiting(i, path, reason, None, None));
    }

    /// Shows items in their account's line, in one change: (path, account, place, reason,
    /// in line since).
    pub fn line_up(&self, entries: Vec<(PathBuf, String, u32, Reason, jiff::Timestamp)>) {
        if entries.is_empty() {
            return;
        }
        self.edit(|i| {
            for (path, account, place, reason, since) in entries {
                set_waiting(i, &path, reason, Some((account, place)), Some(since));
            }
        });
    }

    pub fn unwait(&self, path: &Path) {
        self.edit(|i| {
            i.waiting.remove(path);
        });
    }

    /// Forgets why items under `folder` wait (the folder is no longer watched); items already
    /// claimed stay listed, they are still published.
    pub fn unwait_under(&self, folder: &Path) {
        self.edit(|i| {
            i.waiting
                .retain(|p, w| !p.starts_with(folder) || w.reason == Reason::Claimed);
        });
    }

    pub fn fly(&self, f: InFlight) {
        self.edit(|i| {
            i.beats.insert(f.account.clone(), Beat::now());
            i.in_flight.insert(f.account.clone(), f);
        });
    }

    /// Updates the in-flight entry of `account`, if any: progress, so also a heartbeat.
    pub fn update_flight(&self, account: &str, f: impl FnOnce(&mut InFlight)) {
        self.edit(|i| {
            if let Some(e) = i.in_flight.get_mut(account) {
                f(e);
                i.beats.insert(account.to_string(), Beat::now());
            }
        });
    }

    pub fn land(&self, account: &str) {
        self.edit(|i| {
            i.in_flight.remove(account);
            i.beats.remove(account);
        });
    }

    /// The worker of `account` is alive and will be quiet for up to `d` on purpose (a
    /// back-off, a paused account's wait): no stall is reported until `d` has passed.
    pub fn quiet_for(&self, account: &str, d: Duration) {
        let mut g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(b) = g.beats.get_mut(account) {
            let now = Instant::now();
            b.last = now;
            b.quiet_until = now.checked_add(d);
        }
    }

    /// Workers with an item in flight that have shown no progress for longer than `limit`
    /// (past any quiet time they announced): the pipeline is stuck somewhere inside.
    pub fn stalled(&self, limit: Duration) -> Vec<Stall> {
        let g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        g.beats
            .iter()
            .filter_map(|(account, b)| {
                let from = b.quiet_until.map_or(b.last, |q| q.max(b.last));
                let silent = now.saturating_duration_since(from);
                (silent > limit).then(|| {
                    let f = g.in_flight.get(account);
                    Stall {
                        account: account.clone(),
                        item: f.map(|f| f.item.clone()).unwrap_or_default(),
                        stage: f.map(|f| f.stage.clone()).unwrap_or_default(),
                        silent: now.saturating_duration_since(b.last),
                    }
                })
            })
            .collect()
    }

    pub fn pause(&self, account: &str, why: Option<String>) {
        self.edit(|i| match why {
            Some(w) => {
                i.paused.insert(account.to_string(), w);
            }
            None => {
                i.paused.remove(account);
            }
        });
    }

    /// The watched folders, as the config in force lists them.
    pub fn set_folders(&self, folders: Vec<Folder>) {
        self.edit(|i| i.folders = folders);
    }

    pub fn snapshot(&self) -> Snapshot {
        let g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        Snapshot {
            pid: std::process::id(),
            updated_at: Some(jiff::Timestamp::now()),
            waiting: ordered(g.waiting.values()),
            in_flight: g.in_flight.values().cloned().collect(),
            paused: g.paused.clone(),
            folders: g.folders.clone(),
        }
    }

    /// A receiver that sees every change from now on (`changed().await`).
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.version.subscribe()
    }
}

fn set_waiting(
    i: &mut Inner,
    path: &Path,
    reason: Reason,
    line: Option<(String, u32)>,
    since: Option<jiff::Timestamp>,
) {
    let (account, place) = line.map_or((None, None), |(a, p)| (Some(a), Some(p)));
    let now = since.unwrap_or_else(jiff::Timestamp::now);
    let entry = i
        .waiting
        .entry(path.to_path_buf())
        .or_insert_with(|| Waiting {
            path: path.to_path_buf(),
            reason: reason.clone(),
            place,
            account: account.clone(),
            since: now,
        });
    let kind_changed = std::mem::discriminant(&entry.reason) != std::mem::discriminant(&reason);
    if since.is_some() || kind_changed || entry.place.is_some() {
        entry.since = now;
    }
    entry.reason = reason;
    entry.place = place;
    entry.account = account;
}

/// Waiting items in the order `status` shows them: each account's line in claim order, then
/// everything else by path.
fn ordered<'a>(waiting: impl Iterator<Item = &'a Waiting>) -> Vec<Waiting> {
    let mut out: Vec<Waiting> = waiting.cloned().collect();
    out.sort_by(|a, b| {
        let key = |w: &Waiting| (w.place.is_none(), w.account.clone(), w.place);
        key(a).cmp(&key(b)).then_with(|| a.path.cmp(&b.path))
    });
    out
}

pub fn path(state_dir: &Path) -> PathBuf {
    state_dir.join("status.json")
}

/// Writes the snapshot file (atomically: readers never see half of it).
pub fn write(state_dir: &Path, snap: &Snapshot) -> std::io::Result<()> {
    let bytes = serde_json::to_vec_pretty(snap).map_err(std::io::Error::other)?;
    fsops::write_atomic(&path(state_dir), &bytes, crate::ledger::SHARED_MODE)
}

/// Reads the snapshot file; `None` when the service never ran here.
pub fn read(state_dir: &Path) -> std::io::Result<Option<Snapshot>> {
    match std::fs::read(path(state_dir)) {
        Ok(b) => serde_json::from_slice(&b)
            .map(Some)
            .map_err(std::io::Error::other),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// Whether the process that wrote `snap` is still running (Linux: `/proc/<pid>`).
pub fn is_running(snap: &Snapshot) -> bool {
    Path::new(&format!("/proc/{}", snap.pid)).exists()
}

/// How many items of one account's line `status` lists (`--json` lists all).
const SHOWN_IN_LINE: usize = 10;
/// How many items waiting out of line `status` lists.
const SHOWN_OTHERS: usize = 20;

/// The waiting items for people: each account's line with places (the first
/// [`SHOWN_IN_LINE`]), then the items not in line (settling, scheduled, …).
fn render_waiting(
    waiting: &[Waiting],
    ago: &dyn Fn(jiff::Timestamp) -> String,
    out: &mut dyn std::io::Write,
) -> std::io::Result<()> {
    let mut lines: BTreeMap<&str, Vec<&Waiting>> = BTreeMap::new();
    let mut others = Vec::new();
    for w in waiting {
        match (&w.account, w.place) {
            (Some(a), Some(_)) => lines.entry(a.as_str()).or_default().push(w),
            _ => others.push(w),
        }
    }
    for (account, line) in lines {
        for w in line.iter().take(SHOWN_IN_LINE) {
            writeln!(
                out,
                "waiting #{} ({}): {} — {} (in line since {})",
                w.place.unwrap_or_default(),
                printable(account),
                crate::diagnostic::display_path(&w.path),
                printable(&w.reason.to_string()),
                ago(w.since)
            )?;
        }
        if line.len() > SHOWN_IN_LINE {
            writeln!(
                out,
                "  … and {} more in line for {} (tokdrop status --json lists them all)",
                line.len() - SHOWN_IN_LINE,
                printable(account)
            )?;
        }
    }
    for w in others.iter().take(SHOWN_OTHERS) {
        writeln!(
            out,
            "waiting: {} — {} (since {})",
            crate::diagnostic::display_path(&w.path),
            printable(&w.reason.to_string()),
            ago(w.since)
        )?;
    }
    if others.len() > SHOWN_OTHERS {
        writeln!(
            out,
            "  … and {} more waiting (tokdrop status --json lists them all)",
            others.len() - SHOWN_OTHERS
        )?;
    }
    Ok(())
}

/// Prints `tokdrop status` for people: running or not, the item in flight, waiting items,
/// paused accounts, items the journal holds, and the last results.
/// `bars`: a progress bar of the bytes TikTok fetched under each item in flight
/// (`status --watch`).
pub fn render(
    snap: Option<&Snapshot>,
    journal: &[crate::journal::Record],
    recent: &[crate::outcome::ItemResult],
    bars: bool,
    out: &mut dyn std::io::Write,
) -> std::io::Result<()> {
    let now = jiff::Timestamp::now();
    let ago =
        |t: jiff::Timestamp| crate::duration::format(now.duration_since(t).unsigned_abs()) + " ago";
    match snap {
        Some(s) if is_running(s) => {
            writeln!(out, "tokdrop is running (pid {})", s.pid)?;
            for f in &s.folders {
                writeln!(
                    out,
                    "watching: {} (account {}, {})",
                    crate::diagnostic::display_path(&f.path),
                    f.account,
                    f.mode
                )?;
            }
        }
        Some(s) => writeln!(
            out,
            "tokdrop is not running (last seen {})",
            s.updated_at.map_or_else(|| "never".to_string(), ago)
        )?,
        None => writeln!(out, "tokdrop has not run with this state folder yet")?,
    }
    let running = snap.is_some_and(is_running);
    if let Some(s) = snap.filter(|_| running) {
        for f in &s.in_flight {
            let progress = match (f.bytes_fetched, f.bytes_total) {
                (Some(a), Some(b)) if b > 0 => {
                    format!(", TikTok fetched {} of {} bytes ({}%)", a, b, a * 100 / b)
                }
                _ => String::new(),
            };
            writeln!(
                out,
                "publishing ({}): {} — {}{progress}, started {}",
                f.account,
                printable(&f.item),
                printable(&f.stage),
                ago(f.started_at)
            )?;
            if let (true, Some(a), Some(b)) = (bars, f.bytes_fetched, f.bytes_total)
                && b > 0
            {
                let filled = usize::try_from((a.min(b) * 40 / b).min(40)).unwrap_or(40);
                writeln!(
                    out,
                    "  [{}{}] {}%",
                    "#".repeat(filled),
                    "-".repeat(40 - filled),
                    a.min(b) * 100 / b
                )?;
            }
        }
        for (account, why) in &s.paused {
            let why = why.strip_prefix("paused: ").unwrap_or(why);
            writeln!(out, "paused ({account}): {}", printable(why))?;
        }
        if s.waiting.is_empty() && s.in_flight.is_empty() {
            writeln!(out, "idle: nothing waiting")?;
        }
        render_waiting(&s.waiting, &ago, out)?;
    } else if !journal.is_empty() {
        writeln!(
            out,
            "{} item(s) will resume when the service starts:",
            journal.len()
        )?;
        for r in journal {
            writeln!(
                out,
                "  {} ({}): {}",
                printable(&r.item),
                r.account,
                r.stage.name()
            )?;
        }
    }
    if !recent.is_empty() {
        writeln!(out, "last results:")?;
        crate::ledger::render_table(recent, out)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn waiting(path: &str, reason: Reason, line: Option<(&str, u32)>) -> Waiting {
        Waiting {
            path: path.into(),
            reason,
            place: line.map(|(_, p)| p),
            account: line.map(|(a, _)| a.to_string()),
            since: jiff::Timestamp::now(),
        }
    }

    /// A status.json of an older version (free-text reasons, no places) still reads: "queued"
    /// was a claimed item, other texts are shown as they were written.
    #[test]
    fn older_status_files_read() {
        let old = r#"{"pid": 1, "updated_at": null, "in_flight": [], "paused": {},
            "waiting": [
              {"path": "/in/a.jpg", "reason": "queued", "since": "2026-01-01T00:00:00Z"},
              {"path": "/in/b.jpg", "reason": "settling: waiting until the files stop changing", "since": "2026-01-01T00:00:00Z"},
              {"path": "/in/c.mp4", "reason": "incomplete: no moov box", "since": "2026-01-01T00:00:00Z"}
            ]}"#;
        let snap: Snapshot = serde_json::from_str(old).expect("reads");
        let reasons: Vec<&Reason> = snap.waiting.iter().map(|w| &w.reason).collect();
        assert_eq!(
            reasons,
            [
                &Reason::Claimed,
                &Reason::Settling,
                &Reason::Note {
                    text: "incomplete: no moov box".into()
                }
            ]
        );
        assert!(snap.waiting.iter().all(|w| w.place.is_none()));
        let new = serde_json::to_string(&snap).expect("writes");
        let again: Snapshot = serde_json::from_str(&new).expect("reads its own");
        assert_eq!(again, snap);
    }

    /// Each row: a reason and what people read.
    #[test]
    fn reasons_read_plainly() {
        let at = jiff::Timestamp::from_second(1_800_000_000).expect("time");
        let cases = [
            (Reason::NextInLine, "next in line"),
            (
                Reason::AccountBusy {
                    publishing: "a.jpg".into(),
                },
                "account busy (publishing a.jpg)",
            ),
            (
                Reason::AccountPaused {
                    until: at,
                    why: "paused: daily post limit reached".into(),
                },
                "paused until 08:00 UTC (daily post limit reached)",
            ),
            (
                Reason::Scheduled { at },
                "scheduled for 2027-01-15 08:00 UTC",
            ),
            (
                Reason::CannotTake {
                    problem: "disk full".into(),
                },
                "cannot take it: disk full; tokdrop tries again later",
            ),
        ];
        for (reason, want) in cases {
            assert_eq!(reason.to_string(), want);
            let json = serde_json::to_string(&reason).expect("json");
            assert_eq!(serde_json::from_str::<Reason>(&json).expect("back"), reason);
        }
    }

    /// The board lists each account's line in claim order before the other waiting items;
    /// `status` shows places and why, the first ten of a line and how many more.
    #[test]
    fn lines_are_shown_in_order_with_places() {
        let board = Board::default();
        board.wait(Path::new("/in/new.mp4"), Reason::Settling);
        let busy = || Reason::AccountBusy {
            publishing: "p00.jpg".into(),
        };
        board.line_up(
            (1..=12u32)
                .rev()
                .map(|n| {
                    (
                        PathBuf::from(format!("/in/p{n:02}.jpg")),
                        "default".to_string(),
                        n,
                        busy(),
                        jiff::Timestamp::now(),
                    )
                })
                .collect(),
        );
        let mut snap = board.snapshot();
        let places: Vec<Option<u32>> = snap.waiting.iter().map(|w| w.place).collect();
        let mut want: Vec<Option<u32>> = (1..=12).map(Some).collect();
        want.push(None);
        assert_eq!(places, want);
        board.wait(Path::new("/in/p01.jpg"), Reason::Settling);
        let moved = board.snapshot();
        assert!(
            moved
                .waiting
                .iter()
                .any(|w| w.path == Path::new("/in/p01.jpg")
                    && w.place.is_none()
                    && w.account.is_none()),
            "out of line: no place"
        );
        snap.pid = std::process::id();
        snap.waiting
            .push(waiting("/in/x.jpg", Reason::NextInLine, Some(("brand", 1))));
        let mut out = Vec::new();
        render(Some(&snap), &[], &[], false, &mut out).expect("render");
        let text = String::from_utf8(out).expect("utf-8");
        assert!(
            text.contains("waiting #1 (default): /in/p01.jpg — account busy (publishing p00.jpg) (in line since "),
            "{text}"
        );
        assert!(
            text.contains("waiting #10 (default): /in/p10.jpg"),
            "{text}"
        );
        assert!(!text.contains("/in/p11.jpg"), "{text}");
        assert!(
            text.contains(
                "  … and 2 more in line for default (tokdrop status --json lists them all)"
            ),
            "{text}"
        );
        assert!(
            text.contains("waiting #1 (brand): /in/x.jpg — next in line"),
            "{text}"
        );
        assert!(
            text.contains(
                "waiting: /in/new.mp4 — settling: waiting until the files stop changing (since "
            ),
            "{text}"
        );
    }
}
