//! The settle decision for one item, without I/O of its own beyond `stat` and the content
//! probe: per-file fingerprints and when they last changed, which files a writer closed (or a
//! rename brought in) at their current state, and for photo sets when the set of files changed.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use tokio::time::Instant;

use crate::content::media::{self, MediaError, MediaInfo};
use crate::content::sidecar::rules::Kind;
use crate::lifecycle::items::ItemFiles;

/// What identifies one version of a file: a rewrite, an append or a replacement changes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fingerprint {
    pub size: u64,
    pub mtime: SystemTime,
    pub ino: u64,
}

impl Fingerprint {
    pub fn of(path: &Path) -> Option<Fingerprint> {
        let m = std::fs::symlink_metadata(path).ok()?;
        Some(Fingerprint {
            size: m.len(),
            mtime: m.modified().ok()?,
            ino: m.ino(),
        })
    }
}

/// Where an item stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Readiness {
    /// Something changed recently; look again at `until`.
    Settling { until: Instant },
    /// Quiet but the content check fails; it becomes invalid at `give_up_at`.
    Incomplete { reason: String, give_up_at: Instant },
    /// Quiet, and every media file passes the content check (or fails it for good).
    Complete,
}

struct FileState {
    fp: Option<Fingerprint>,
    changed_at: Instant,
    closed_at: Option<Fingerprint>,
}

/// Tracks one item (media + sidecar, or a photo-set folder).
pub struct Tracker {
    settle: Duration,
    give_up_after: Duration,
    files: HashMap<PathBuf, FileState>,
    members_changed_at: Option<Instant>,
    last_touch: Option<Instant>,
    closed_pending: HashSet<PathBuf>,
    moved_in_pending: bool,
    moved_in: Option<BTreeMap<PathBuf, Option<Fingerprint>>>,
    /// Found by the first listing after start: files whose mtime is older than `settle` are
    /// quiet already (they were dropped while the service was down).
    trust_old_mtimes: bool,
    /// What the content check of the last look that found the item complete read, per media
    /// file: the offline rules reuse it rather than probing the files again.
    probed: Vec<(PathBuf, MediaInfo)>,
}

impl Tracker {
    /// The media the last complete look probed (each file with what it read).
    pub fn probed(&self) -> &[(PathBuf, MediaInfo)] {
        &self.probed
    }

    pub fn new(settle: Duration, trust_old_mtimes: bool) -> Self {
        Self {
            settle,
            give_up_after: Duration::from_secs(3600),
            files: HashMap::new(),
            members_changed_at: None,
            last_touch: None,
            closed_pending: HashSet::new(),
            moved_in_pending: false,
            moved_in: None,
            trust_old_mtimes,
            probed: Vec::new(),
        }
    }

    pub fn with_give_up_after(mut self, d: Duration) -> Self {
        self.give_up_after = d;
        self
    }

    /// The newest modification time among the item's files, as last observed.
    pub fn newest_mtime(&self) -> Option<SystemTime> {
        self.files
            .values()
            .filter_map(|s| s.fp.map(|f| f.mtime))
            .max()
    }

    /// A writer closed `path`: it is quiet at the state the next observation sees.
    pub fn closed(&mut self, path: &Path) {
        self.closed_pending.insert(path.to_path_buf());
    }

    /// The item itself was renamed in: every file is complete as the next observation sees it.
    pub fn moved_in(&mut self) {
        self.moved_in_pending = true;
    }

    /// Some file changed at `now` (a write event).
    pub fn touched(&mut self, now: Instant) {
        self.last_touch = Some(now);
    }

    /// Observes the item on disk at `now`. `fast_ok`: closes and renames may end the settle
    /// early (not for a lone media file, whose sidecar may still be on its way).
    pub fn observe(&mut self, item: &ItemFiles, now: Instant, fast_ok: bool) -> Readiness {
        let mut paths: Vec<PathBuf> = item.media.clone();
        paths.extend(item.sidecar.iter().cloned());
        let current: HashSet<&PathBuf> = paths.iter().collect();
        let before = self.files.len();
        self.files.retain(|p, _| current.contains(p));
        let mut membership_changed = self.files.len() != before;
        let touch = self.last_touch.take();
        for p in &paths {
            let fp = Fingerprint::of(p);
            match self.files.get_mut(p) {
                Some(st) => {
                    if st.fp != fp {
                        st.fp = fp;
                        st.changed_at = touch.filter(|t| *t > st.changed_at).unwrap_or(now);
                        st.closed_at = None;
                    }
                }
                None => {
                    membership_changed |= self.members_changed_at.is_some();
                    let old = self.trust_old_mtimes
                        && fp
                            .and_then(|f| SystemTime::now().duration_since(f.mtime).ok())
                            .is_some_and(|age| age >= self.settle);
                    let changed_at = if old {
                        now.checked_sub(self.settle).unwrap_or(now)
                    } else {
                        now
                    };
                    self.files.insert(
                        p.clone(),
                        FileState {
                            fp,
                            changed_at,
                            closed_at: None,
                        },
                    );
                }
            }
            if self.closed_pending.remove(p)
                && let Some(st) = self.files.get_mut(p)
            {
                st.closed_at = st.fp;
            }
        }
        self.closed_pending.clear();
        if membership_changed || self.members_changed_at.is_none() {
            let at = if self.members_changed_at.is_none() && self.trust_old_mtimes {
                now.checked_sub(self.settle).unwrap_or(now)
            } else {
                now
            };
            self.members_changed_at = Some(at);
        }
        let snapshot: BTreeMap<PathBuf, Option<Fingerprint>> =
            self.files.iter().map(|(p, s)| (p.clone(), s.fp)).collect();
        if std::mem::take(&mut self.moved_in_pending) {
            self.moved_in = Some(snapshot.clone());
        }
        if item.media.is_empty() {
            // An empty photo-set folder is not an item yet: look again when something arrives.
            return Readiness::Settling {
                until: now + Duration::from_secs(365 * 86_400),
            };
        }
        let moved_in_intact = self.moved_in.as_ref() == Some(&snapshot);
        let settle = self.settle;
        let quiet_at = |st: &FileState| {
            if fast_ok && st.closed_at.is_some() && st.closed_at == st.fp {
                now
            } else {
                st.changed_at + settle
            }
        };
        let mut until = self.files.values().map(quiet_at).max().unwrap_or(now);
        if item.kind == Kind::PhotoSet {
            until = until.max(self.members_changed_at.unwrap_or(now) + settle);
        }
        if moved_in_intact && (fast_ok || item.kind == Kind::PhotoSet) {
            until = now;
        }
        if until > now {
            return Readiness::Settling { until };
        }
        let last_change = self
            .files
            .values()
            .map(|s| s.changed_at)
            .max()
            .unwrap_or(now);
        self.probed.clear();
        for m in &item.media {
            let probe = media::probe(m);
            if let Ok(info) = &probe {
                self.probed.push((m.clone(), info.clone()));
            }
            if let Err(MediaError::Incomplete { reason }) = probe {
                let name = m
                    .file_name()
                    .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
                let reason = if item.kind == Kind::PhotoSet {
                    format!("{name} is incomplete: {reason}")
                } else {
                    format!("incomplete: {reason}")
                };
                return Readiness::Incomplete {
                    reason,
                    give_up_at: last_change + self.give_up_after,
                };
            }
        }
        Readiness::Complete
    }
}
