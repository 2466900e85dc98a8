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

use crate::support::diagnostic::printable;
use crate::support::fsops;

mod reason;
mod render;
mod step;

use reason::reason_or_text;
pub use reason::{CANNOT_FINISH, CANNOT_TAKE, Reason};
pub use render::render;
pub use step::Step;
use step::step_or_text;

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
    /// Where its worker is with it.
    #[serde(deserialize_with = "step_or_text")]
    pub stage: Step,
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
    pub mode: crate::content::sidecar::Mode,
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
    /// Its step, as people read it (empty if the worker holds no item).
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
                        stage: f.map(|f| f.stage.to_string()).unwrap_or_default(),
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
    fsops::write_atomic(
        &path(state_dir),
        &bytes,
        crate::lifecycle::ledger::SHARED_MODE,
    )
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
