//! The crash-safe memory of every item between claim and finish: one small JSON file per item
//! in `state_dir/journal/`, replaced atomically (and synced) *before* the step it protects.
//! Replaying the folder on start tells exactly where each item stopped (SPEC §4 "Restart").
//!
//! Stages: `claiming` (files about to move into the work area) → `claimed` → `init_intent`
//! (an init request may reach TikTok from now on) → `published` (TikTok gave a publish_id) →
//! `published` again with `revoked` (a pull TikTok never started: links revoked, cancel sent) →
//! `terminal` (the outcome is known) → `finishing` (destination names chosen) → file removed
//! once the ledger line is written. The journal knows nothing of TikTok or folders' meaning;
//! `results` finishes items, the publisher moves them through the middle stages.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::content::sidecar::Mode;
use crate::content::sidecar::rules::Kind;
use crate::lifecycle::outcome::ItemResult;
use crate::support::fsops;

/// One file (or photo-set folder) of a claimed item: where it was and where it is now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClaimedPath {
    pub original: PathBuf,
    pub work: PathBuf,
}

/// Who a file is: device, inode, size and change times. A file replaced, rewritten or
/// swapped for another since it was stamped has a different stamp.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileStamp {
    pub dev: u64,
    pub ino: u64,
    pub size: u64,
    pub mtime_ns: i128,
    pub ctime_ns: i128,
}

impl FileStamp {
    pub fn of(meta: &std::fs::Metadata) -> Self {
        use std::os::unix::fs::MetadataExt;
        FileStamp {
            dev: meta.dev(),
            ino: meta.ino(),
            size: meta.len(),
            mtime_ns: i128::from(meta.mtime()) * 1_000_000_000 + i128::from(meta.mtime_nsec()),
            ctime_ns: i128::from(meta.ctime()) * 1_000_000_000 + i128::from(meta.ctime_nsec()),
        }
    }
}

/// Where an item stands; see the module doc for the order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "stage", rename_all = "snake_case")]
pub enum Stage {
    Claiming,
    Claimed,
    InitIntent {
        at: jiff::Timestamp,
        transfer: String,
    },
    Published {
        publish_id: String,
        transfer: String,
        /// The media URL tokens TikTok was given (pull): served again after a restart, so a
        /// download TikTok starts (or retries) then still finds the files.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        url_tokens: Vec<String>,
        /// When TikTok accepted the init (TikTok's download hour and `publish_timeout` count
        /// from it, across restarts). Absent in journals of older versions.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        init_at: Option<jiff::Timestamp>,
        /// FILE_UPLOAD's `upload_url` (valid an hour): an upload cut short by a restart goes
        /// on where TikTok says it stopped.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        upload_url: Option<String>,
        /// The pull's links were revoked (TikTok never came for the media; a cancel was
        /// sent): a restart must not serve them again. Absent (false) in older journals.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        revoked: bool,
    },
    Terminal {
        result: Box<ItemResult>,
    },
    Finishing {
        result: Box<ItemResult>,
        /// Destination folder and the stem chosen for the group (collision suffix applied).
        dest_dir: PathBuf,
        stem: String,
    },
}

impl Stage {
    pub fn name(&self) -> &'static str {
        match self {
            Stage::Claiming => "claiming",
            Stage::Claimed => "claimed",
            Stage::InitIntent { .. } => "init_intent",
            Stage::Published { .. } => "published",
            Stage::Terminal { .. } => "terminal",
            Stage::Finishing { .. } => "finishing",
        }
    }
}

/// The journal entry of one item.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    /// Unique, sortable id: `YYYYMMDDTHHMMSSZ-<8 hex>`.
    pub id: String,
    /// The watched folder and its index in the config at claim time.
    pub watch: PathBuf,
    pub watch_index: usize,
    /// The name in the watched folder (`clip.mp4`, or the set folder `trip`).
    pub item: String,
    pub kind: Kind,
    pub account: String,
    pub mode: Mode,
    /// The media file (or set folder) first, then the sidecar when there is one.
    pub paths: Vec<ClaimedPath>,
    pub queued_at: jiff::Timestamp,
    pub started_at: Option<jiff::Timestamp>,
    pub stage: Stage,
    /// Where the item ends, as its folder's entry said at claim time: a reload that changes or
    /// removes the folder does not send it elsewhere. Absent in journals of older versions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub done_dir: Option<PathBuf>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failed_dir: Option<PathBuf>,
    /// Every earlier attempt of this item that TikTok answered (its publish_id, if it gave
    /// one, and how it ended), so the result names all of them even across restarts.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub previous_attempts: Vec<crate::lifecycle::outcome::PreviousAttempt>,
    /// The creator's username from creator_info (for post links), kept so that a resumed
    /// post is followed without asking creator_info again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub creator: Option<String>,
    /// Each media file as it was when claimed (by its work path): every later read (pull,
    /// upload) refuses a file that is not that one any more.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub stamps: std::collections::BTreeMap<PathBuf, FileStamp>,
}

impl Record {
    /// The work-area path of the media file or set folder.
    pub fn work_item(&self) -> &Path {
        &self.paths[0].work
    }
}

/// Observes journal transitions (tests use it to crash the process at each one).
pub type Observer = std::sync::Arc<dyn Fn(&Record) + Send + Sync>;

/// The journal folder.
#[derive(Clone)]
pub struct Journal {
    dir: PathBuf,
    observer: Option<Observer>,
}

#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    #[error("cannot write the journal {path}: {source}")]
    Write { path: PathBuf, source: io::Error },
    #[error("cannot read the journal {path}: {source}")]
    Read { path: PathBuf, source: io::Error },
}

impl Journal {
    /// Opens (creating) `state_dir/journal`.
    pub fn open(state_dir: &Path) -> Result<Self, JournalError> {
        let dir = state_dir.join("journal");
        fs::create_dir_all(&dir).map_err(|source| JournalError::Write {
            path: dir.clone(),
            source,
        })?;
        Ok(Self {
            dir,
            observer: None,
        })
    }

    /// The journal folder itself.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn with_observer(mut self, observer: Observer) -> Self {
        self.observer = Some(observer);
        self
    }

    fn path(&self, id: &str) -> PathBuf {
        self.dir.join(format!("{id}.json"))
    }

    /// Writes `record` durably; returns only once it is on disk.
    pub fn write(&self, record: &Record) -> Result<(), JournalError> {
        let path = self.path(&record.id);
        let bytes = serde_json::to_vec_pretty(record).expect("journal records always serialize");
        fsops::write_atomic(&path, &bytes, 0o600)
            .map_err(|source| JournalError::Write { path, source })?;
        if let Some(obs) = &self.observer {
            obs(record);
        }
        Ok(())
    }

    /// Moves `record` to `stage` and writes it.
    pub fn advance(&self, record: &mut Record, stage: Stage) -> Result<(), JournalError> {
        record.stage = stage;
        self.write(record)
    }

    /// Forgets a finished item (its ledger line is written).
    pub fn remove(&self, id: &str) -> Result<(), JournalError> {
        let path = self.path(id);
        match fs::remove_file(&path) {
            Ok(()) => {
                fsops::sync_dir(&self.dir).map_err(|source| JournalError::Write { path, source })
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(source) => Err(JournalError::Write { path, source }),
        }
    }

    /// Every record, oldest first. Unreadable files are returned as errors, not skipped.
    pub fn replay(&self) -> Result<Vec<Record>, JournalError> {
        let read_err = |source| JournalError::Read {
            path: self.dir.clone(),
            source,
        };
        let mut out = Vec::new();
        for entry in fs::read_dir(&self.dir).map_err(read_err)? {
            let path = entry.map_err(read_err)?.path();
            let name = path
                .file_name()
                .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
            if !name.ends_with(".json") || name.starts_with('.') {
                continue; // a temp file left by a crash mid-write: the old version is intact
            }
            out.push(read_record(&path)?);
        }
        out.sort_by(|a, b| a.queued_at.cmp(&b.queued_at).then_with(|| a.id.cmp(&b.id)));
        Ok(out)
    }

    /// The record of `id` as it is on disk now; `None` once it is finished and removed.
    pub fn read(&self, id: &str) -> Result<Option<Record>, JournalError> {
        let path = self.path(id);
        if !path.exists() {
            return Ok(None);
        }
        read_record(&path).map(Some)
    }

    /// Removes temp files a crash may have left.
    pub fn sweep_temp_files(&self) {
        if let Ok(entries) = fs::read_dir(&self.dir) {
            for e in entries.flatten() {
                if e.file_name().to_string_lossy().starts_with('.') {
                    let _ = fs::remove_file(e.path());
                }
            }
        }
    }
}

fn read_record(path: &Path) -> Result<Record, JournalError> {
    let bytes = fs::read(path).map_err(|source| JournalError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    serde_json::from_slice(&bytes).map_err(|e| JournalError::Read {
        path: path.to_path_buf(),
        source: io::Error::new(io::ErrorKind::InvalidData, e),
    })
}

/// A new unique item id.
pub fn new_id(now: jiff::Timestamp) -> String {
    format!(
        "{}-{}",
        now.strftime("%Y%m%dT%H%M%SZ"),
        fsops::random_suffix()
    )
}
