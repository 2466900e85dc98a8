//! Deciding when a dropped item is complete and when it is its turn (SPEC §3–4): notify hints
//! and periodic listings feed per-file fingerprints (size, mtime, inode); an item is ready once
//! every file is quiet — closed or renamed in at its current state, or unchanged for `settle` —
//! its content passes the structural check, its sidecar (when required) is there and its
//! `not_before` has come. Files that stay incomplete go on as invalid after `give_up_after`.
//!
//! The folder is the queue: a ready item waits in its folder, in its account's [`Line`], until
//! that account's worker is free ([`WorkerStates`]); then the first in line is looked at once
//! more (settle, content check, sidecar rules, as it is *now*) and handed on to be claimed.
//! Invalid and given-up items are handed on at once (they need no worker). `status` shows each
//! waiting item's place and why it waits.
//!
//! A media file without a sidecar always waits `settle`, even after a rename, so a sidecar
//! written right after it is not missed; a photo-set folder renamed in is complete at once.
//! Nothing here moves files: `pipeline` claims what this hands on.

mod line;
mod look;
mod tracker;
mod turns;

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::config::{Config, WatchConfig};
use crate::lifecycle::claim::WORK_DIR;
use crate::lifecycle::inspect::Inspection;
use crate::lifecycle::items::{self, ItemFiles};
use crate::lifecycle::status::{Board, Reason};
use crate::lifecycle::watch::{FolderWatcher, Hint, HintKind, top_entry};
use crate::lifecycle::worker_state::{Ticket, WorkerStates};
use crate::support::backoff::Backoff;

use look::{Inspected, Seen};

pub use line::Line;
pub use tracker::{Fingerprint, Readiness, Tracker};

/// How often every folder is listed again, whatever the events said.
pub const RESCAN_EVERY: Duration = Duration::from_secs(60);
/// Longest wait for one look at an item (listing, probes, sidecar) before intake moves on.
const LOOK_LIMIT: Duration = Duration::from_secs(30);

/// An item intake hands on: complete (with what the offline rules say about it) or given up.
pub struct Candidate {
    /// The config the item was judged by (a reload may have replaced it since).
    pub config: Arc<Config>,
    pub watch_index: usize,
    pub item: ItemFiles,
    /// When it became ready (its place in line), or complete for an item not lined up.
    pub completed_at: jiff::Timestamp,
    pub verdict: Verdict,
    /// An item handed on to be published holds its account's worker until it takes it.
    pub ticket: Option<Ticket>,
}

impl Candidate {
    /// The watch entry of the folder the item was found in.
    pub fn watch(&self) -> &WatchConfig {
        &self.config.watch[self.watch_index]
    }
}

pub enum Verdict {
    Complete(Box<Inspection>),
    /// Still incomplete after `give_up_after` unchanged.
    GaveUp {
        reason: String,
    },
}

/// The longest wait before an item whose claim failed is tried again (the first wait is the
/// folder's `settle`, doubling each time).
pub const CLAIM_RETRY_MAX: Duration = Duration::from_secs(5 * 60);

/// The intake task's state.
pub struct Intake {
    config: Arc<Config>,
    trackers: HashMap<PathBuf, (usize, Tracker)>,
    timers: BinaryHeap<Reverse<(Instant, PathBuf)>>,
    /// Keys handed on and not yet gone from the folder (the claim moves them).
    handed: HashSet<PathBuf>,
    /// Items whose claim failed: not handed on again before the instant; the failure count.
    backoff: HashMap<PathBuf, (Instant, u32)>,
    board: Board,
    out: mpsc::Sender<Candidate>,
    /// True during the first listing: files found then may already be old and quiet.
    starting: bool,
    /// Ready items waiting in their folders, per account, in claim order.
    line: Line,
    /// What each account's worker is doing: an item is handed on only to a free one.
    workers: WorkerStates,
    /// What the board shows of each item in line (place, reason), so only changes are sent.
    shown: HashMap<PathBuf, (u32, Reason)>,
}

/// How [`Intake::evaluate`] looks at an item.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Purpose {
    /// Something may have changed: update where it stands.
    Follow,
    /// It is first in line and its worker is free: check it all again and hand it on.
    Claim,
}

impl Intake {
    pub fn new(
        config: Arc<Config>,
        board: Board,
        workers: WorkerStates,
        out: mpsc::Sender<Candidate>,
    ) -> Self {
        Self {
            config,
            trackers: HashMap::new(),
            timers: BinaryHeap::new(),
            handed: HashSet::new(),
            backoff: HashMap::new(),
            board,
            out,
            starting: true,
            line: Line::default(),
            workers,
            shown: HashMap::new(),
        }
    }

    /// Runs until `cancel`: hints from `hints`, timers, periodic rescans, new configs from
    /// `reloads` (SIGHUP), items the pipeline could not claim from `retries`, and workers
    /// becoming free (their states change). After each, the next item of every free account
    /// is handed on and the board shows the lines.
    pub async fn run(
        mut self,
        mut hints: mpsc::Receiver<Hint>,
        mut watcher: FolderWatcher,
        mut reloads: watch::Receiver<Arc<Config>>,
        mut retries: mpsc::UnboundedReceiver<PathBuf>,
        cancel: CancellationToken,
    ) {
        let mut turns = self.workers.subscribe();
        self.rescan_at_start().await;
        let mut rescan = tokio::time::interval_at(Instant::now() + RESCAN_EVERY, RESCAN_EVERY);
        let mut reloadable = true;
        loop {
            self.serve().await;
            self.show_line();
            let next = self.timers.peek().map(|Reverse((t, _))| *t);
            tokio::select! {
                () = cancel.cancelled() => break,
                r = reloads.changed(), if reloadable => match r {
                    Ok(()) => {
                        let config = reloads.borrow_and_update().clone();
                        self.reconfigure(config, &mut watcher).await;
                    }
                    Err(_) => reloadable = false,
                },
                Some(h) = hints.recv() => self.on_hint(h).await,
                Some(key) = retries.recv() => self.retry_later(key),
                r = turns.changed() => if r.is_err() { break },
                () = watcher.overflow_notify.notified() => {
                    if watcher.overflow.swap(false, Ordering::SeqCst) {
                        tracing::warn!("file events were dropped; listing every folder again");
                        self.rescan().await;
                    }
                }
                () = sleep_until(next), if next.is_some() => self.fire_timers().await,
                _ = rescan.tick() => self.rescan().await,
            }
        }
    }

    /// The claim of `key` failed (the files are back in the folder): take it again later, after
    /// the folder's `settle`, then twice as long each time, up to [`CLAIM_RETRY_MAX`].
    fn retry_later(&mut self, key: PathBuf) {
        self.handed.remove(&key);
        let Some((wi, w)) = self.watch_of(&key) else {
            return;
        };
        let tracker = Tracker::new(w.settle, true).with_give_up_after(w.give_up_after);
        let failures = self.backoff.get(&key).map_or(0, |(_, n)| *n) + 1;
        let wait = Backoff {
            initial: w.settle,
            factor: 2.0,
            max: CLAIM_RETRY_MAX,
        }
        .delay(failures, None);
        let at = Instant::now() + wait;
        self.trackers.insert(key.clone(), (wi, tracker));
        self.backoff.insert(key.clone(), (at, failures));
        self.timers.push(Reverse((at, key)));
    }

    /// Takes a reloaded config: watches the new folder list, forgets items of folders no
    /// longer watched (claimed ones go on), and looks at every waiting item afresh under the
    /// new settings (they settle again from now).
    async fn reconfigure(&mut self, config: Arc<Config>, watcher: &mut FolderWatcher) {
        let folders: Vec<PathBuf> = config.watch.iter().map(|w| w.path.clone()).collect();
        for old in &self.config.watch {
            if !folders.contains(&old.path) {
                self.board.unwait_under(&old.path);
                self.line.forget_missing(&old.path, |_| false);
                self.handed.retain(|k| !k.starts_with(&old.path));
                self.backoff.retain(|k, _| !k.starts_with(&old.path));
            }
        }
        for e in watcher.set_folders(&folders) {
            tracing::error!("{e}");
        }
        self.config = config;
        self.trackers.clear();
        self.timers.clear();
        self.line.step_out_all();
        self.shown.clear();
        self.rescan().await;
    }

    fn watch_of(&self, path: &Path) -> Option<(usize, &WatchConfig)> {
        self.config
            .watch
            .iter()
            .enumerate()
            .find(|(_, w)| path.starts_with(&w.path))
    }

    async fn on_hint(&mut self, hint: Hint) {
        let Some((wi, w)) = self.watch_of(&hint.path) else {
            return;
        };
        let Some(top) = top_entry(&w.path, &hint.path) else {
            return;
        };
        let Some(raw) = top.file_name() else {
            return;
        };
        if raw.to_str().is_none() || hint.path.to_str().is_none() {
            // Renamed to a UTF-8 name; the rename's own event brings it back.
            items::fix_names(&w.path);
            return;
        }
        let name = raw.to_string_lossy().into_owned();
        if name == WORK_DIR || w.excludes(&name) && hint.path == top {
            return;
        }
        let (settle, give_up) = (w.settle, w.give_up_after);
        let keys = self.keys_for(wi, &top);
        for key in keys {
            if hint.kind == HintKind::Gone {
                self.handed.remove(&key);
                self.backoff.remove(&key);
                // Only items being watched care that something went away.
                let Some((_, tracker)) = self.trackers.get_mut(&key) else {
                    self.forget(&key);
                    continue;
                };
                tracker.touched(Instant::now());
                self.evaluate(&key, Purpose::Follow).await;
                continue;
            }
            let (_, tracker) = self
                .trackers
                .entry(key.clone())
                .or_insert_with(|| (wi, Tracker::new(settle, false).with_give_up_after(give_up)));
            match hint.kind {
                HintKind::Closed => tracker.closed(&hint.path),
                HintKind::MovedIn if hint.path == key => tracker.moved_in(),
                HintKind::MovedIn => tracker.closed(&hint.path),
                HintKind::Changed | HintKind::Gone => tracker.touched(Instant::now()),
            }
            self.evaluate(&key, Purpose::Follow).await;
        }
    }

    /// The item keys a top-level entry concerns: itself, or the media files a sidecar belongs to.
    fn keys_for(&self, wi: usize, top: &Path) -> Vec<PathBuf> {
        let w = &self.config.watch[wi];
        let name = top
            .file_name()
            .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
        let is_sidecar = name.ends_with(".yaml") || name.ends_with(".yml");
        if !is_sidecar {
            return vec![top.to_path_buf()];
        }
        let owners = items::sidecar_owners(top, w);
        if owners.is_empty() && top.exists() {
            self.board.wait(top, Reason::SidecarWithoutMedia);
        } else {
            self.board.unwait(top);
        }
        owners
    }

    /// How many items wait in line (all accounts).
    pub fn in_line(&self) -> usize {
        self.line.len()
    }

    /// The first listing after start: files older than `settle` count as quiet already.
    pub async fn rescan_at_start(&mut self) {
        self.starting = true;
        self.rescan().await;
        self.starting = false;
    }

    /// Lists every watched folder and evaluates every item found.
    pub async fn rescan(&mut self) {
        let config = self.config.clone();
        for (wi, w) in config.watch.iter().enumerate() {
            items::fix_names(&w.path);
            let listing = match items::list_folder(w) {
                Ok(l) => l,
                Err(e) => {
                    tracing::error!(folder = %w.path.display(), "cannot list the watched folder: {e}");
                    continue;
                }
            };
            for orphan in &listing.orphans {
                self.board.wait(orphan, Reason::SidecarWithoutMedia);
            }
            let present: HashSet<PathBuf> = listing.items.iter().map(|i| i.path.clone()).collect();
            self.handed
                .retain(|k| !k.starts_with(&w.path) || present.contains(k));
            self.backoff
                .retain(|k, _| !k.starts_with(&w.path) || present.contains(k));
            self.line
                .forget_missing(&w.path, |k| present.contains(k) || self.handed.contains(k));
            let line = &self.line;
            self.shown.retain(|k, _| line.contains(k));
            for item in listing.items {
                let starting = self.starting;
                self.trackers.entry(item.path.clone()).or_insert_with(|| {
                    (
                        wi,
                        Tracker::new(w.settle, starting).with_give_up_after(w.give_up_after),
                    )
                });
                self.evaluate(&item.path, Purpose::Follow).await;
            }
        }
    }

    async fn fire_timers(&mut self) {
        let now = Instant::now();
        let mut due = Vec::new();
        while let Some(Reverse((t, _))) = self.timers.peek() {
            if *t > now {
                break;
            }
            if let Some(Reverse((_, key))) = self.timers.pop() {
                due.push(key);
            }
        }
        due.sort();
        due.dedup();
        for key in due {
            self.evaluate(&key, Purpose::Follow).await;
        }
    }

    /// Looks at one item now and decides: line it up, hand it on, wait (with a timer), or
    /// forget it. The look itself (listing, fingerprints, probes, sidecar) is file-system
    /// work: it runs on a blocking thread, one item at a time, and at most `LOOK_LIMIT` is
    /// waited for. An item already in line is followed by its fingerprints and content check
    /// alone; its sidecar rules run again when it is its turn ([`Purpose::Claim`]).
    async fn evaluate(&mut self, key: &Path, purpose: Purpose) {
        if self.handed.contains(key) {
            return;
        }
        if let Some((at, _)) = self.backoff.get(key)
            && *at > Instant::now()
        {
            // The board still says why the claim failed.
            let at = *at;
            self.leave_line(key);
            self.timers.push(Reverse((at, key.to_path_buf())));
            return;
        }
        let Some((wi, tracker)) = self.trackers.remove(key) else {
            self.leave_line(key);
            return;
        };
        let config = self.config.clone();
        let owned = key.to_path_buf();
        let now = Instant::now();
        let inspect = purpose == Purpose::Claim || !self.line.contains(key);
        let look = tokio::task::spawn_blocking(move || {
            look::look(&config, wi, &owned, tracker, now, inspect)
        });
        let (tracker, seen) = match tokio::time::timeout(LOOK_LIMIT, look).await {
            Ok(Ok(result)) => result,
            Ok(Err(e)) => {
                self.leave_line(key);
                tracing::error!(path = %crate::support::diagnostic::display_path(key), error = %e, "checking an item failed");
                return;
            }
            Err(_) => {
                self.look_timed_out(key, wi);
                return;
            }
        };
        let Some(Seen {
            item,
            readiness,
            inspected,
            newest_mtime,
        }) = seen
        else {
            self.backoff.remove(key);
            self.forget(key);
            self.board.unwait(key);
            return;
        };
        self.trackers.insert(key.to_path_buf(), (wi, tracker));
        let give_up_after = self.config.watch[wi].give_up_after;
        if let Some(s) = &item.sidecar {
            self.board.unwait(s);
        }
        match readiness {
            Readiness::Settling { until } => {
                self.leave_line(key);
                self.board.wait(key, Reason::Settling);
                self.timers.push(Reverse((until, key.to_path_buf())));
            }
            Readiness::Incomplete { reason, give_up_at } => {
                self.leave_line(key);
                if now >= give_up_at {
                    let reason = format!(
                        "{reason} (unchanged for {})",
                        crate::support::duration::format(give_up_after)
                    );
                    self.hand_on(wi, item, Verdict::GaveUp { reason }, None)
                        .await;
                } else {
                    self.board.wait(key, Reason::Incomplete { problem: reason });
                    self.timers.push(Reverse((give_up_at, key.to_path_buf())));
                }
            }
            Readiness::Complete => match inspected {
                Inspected::Skipped => {} // still in line, unchanged
                Inspected::NeedsSidecar => {
                    self.leave_line(key);
                    self.board.wait(key, Reason::WaitingForSidecar);
                }
                Inspected::Done(inspection) => {
                    let ready_at = match newest_mtime {
                        Some(m) if self.starting => jiff::Timestamp::try_from(m).map_or_else(
                            |_| crate::lifecycle::outcome::now(),
                            |m| m.min(crate::lifecycle::outcome::now()),
                        ),
                        _ => crate::lifecycle::outcome::now(),
                    };
                    self.ready(wi, item, *inspection, purpose, ready_at).await;
                }
            },
        }
    }

    /// Looking at `key` took longer than [`LOOK_LIMIT`]: the blocking thread keeps the old
    /// tracker; this item starts afresh later.
    fn look_timed_out(&mut self, key: &Path, wi: usize) {
        let w = &self.config.watch[wi];
        tracing::warn!(
            path = %crate::support::diagnostic::display_path(key),
            "checking the files took longer than {}; trying again later",
            crate::support::duration::format(LOOK_LIMIT)
        );
        let tracker = Tracker::new(w.settle, false).with_give_up_after(w.give_up_after);
        self.leave_line(key);
        self.board.wait(
            key,
            Reason::SlowCheck {
                limit_secs: LOOK_LIMIT.as_secs(),
            },
        );
        self.trackers.insert(key.to_path_buf(), (wi, tracker));
        self.timers
            .push(Reverse((Instant::now() + RESCAN_EVERY, key.to_path_buf())));
    }

    async fn hand_on(
        &mut self,
        wi: usize,
        item: ItemFiles,
        verdict: Verdict,
        ticket: Option<Ticket>,
    ) {
        self.trackers.remove(&item.path);
        self.leave_line(&item.path);
        self.handed.insert(item.path.clone());
        let c = Candidate {
            config: self.config.clone(),
            watch_index: wi,
            completed_at: self
                .line
                .ready_at(&item.path)
                .unwrap_or_else(crate::lifecycle::outcome::now),
            item,
            verdict,
            ticket,
        };
        if self.out.send(c).await.is_err() {
            tracing::debug!("the pipeline stopped; intake hands on nothing more");
        }
    }
}

async fn sleep_until(t: Option<Instant>) {
    match t {
        Some(t) => tokio::time::sleep_until(t).await,
        None => std::future::pending().await,
    }
}
