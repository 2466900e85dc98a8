//! Taking an item out of the watched folder: the claim is journaled first, then the item's files
//! are renamed into the work area `<watched folder>/.tokdrop/<id>/` (same file system, never
//! scanned), so a claimed item can never show up as a new one. Also rolls an interrupted claim
//! forward after a crash.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use crate::fsops;
use crate::items::ItemFiles;
use crate::journal::{ClaimedPath, Journal, JournalError, Record, Stage};
use crate::sidecar::Mode;

/// Name of the work area inside each watched folder. Listings skip it whatever the patterns say.
pub const WORK_DIR: &str = ".tokdrop";

#[derive(Debug, thiserror::Error)]
pub enum ClaimError {
    #[error(transparent)]
    Journal(#[from] JournalError),
    #[error("cannot move {path} into the work area: {source}")]
    Move { path: PathBuf, source: io::Error },
}

/// The work folder of one item.
pub fn work_dir(watch: &Path, id: &str) -> PathBuf {
    watch.join(WORK_DIR).join(id)
}

/// What the claim needs to know besides the files.
pub struct ClaimInfo<'a> {
    pub watch: &'a Path,
    pub watch_index: usize,
    pub account: &'a str,
    pub mode: Mode,
    pub queued_at: jiff::Timestamp,
    pub done_dir: &'a Path,
    pub failed_dir: &'a Path,
}

/// Journals the claim, then moves the item's files into its work folder.
pub fn claim(journal: &Journal, item: &ItemFiles, info: &ClaimInfo) -> Result<Record, ClaimError> {
    let id = crate::journal::new_id(jiff::Timestamp::now());
    let dir = work_dir(info.watch, &id);
    let mut originals = vec![item.path.clone()];
    originals.extend(
        item.sidecar
            .iter()
            .filter(|s| s.parent() == item.path.parent())
            .cloned(),
    );
    let paths = originals
        .into_iter()
        .map(|original| ClaimedPath {
            work: dir.join(original.file_name().unwrap_or_default()),
            original,
        })
        .collect();
    let mut record = Record {
        id,
        watch: info.watch.to_path_buf(),
        watch_index: info.watch_index,
        item: item.name.clone(),
        kind: item.kind,
        account: info.account.to_string(),
        mode: info.mode,
        paths,
        queued_at: info.queued_at,
        started_at: None,
        stage: Stage::Claiming,
        done_dir: Some(info.done_dir.to_path_buf()),
        failed_dir: Some(info.failed_dir.to_path_buf()),
    };
    journal.write(&record)?;
    move_in(&record)?;
    journal.advance(&mut record, Stage::Claimed)?;
    Ok(record)
}

/// Moves whatever is still in the watched folder into the work folder (idempotent).
fn move_in(record: &Record) -> Result<(), ClaimError> {
    let dir = work_dir(&record.watch, &record.id);
    let mk = |path: &Path, source| ClaimError::Move {
        path: path.to_path_buf(),
        source,
    };
    fs::create_dir_all(&dir).map_err(|e| mk(&dir, e))?;
    for p in &record.paths {
        if p.work.exists() {
            continue;
        }
        match fsops::move_no_replace(&p.original, &p.work) {
            Ok(()) => {}
            // Deleted by the user between the listing and the claim: nothing to move.
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(mk(&p.original, e)),
        }
    }
    Ok(())
}

/// After a crash during a claim: finish moving the files in and mark the record claimed.
/// Returns `None` when none of the files exist any more (the user removed them before the
/// claim moved anything); the record is then dropped.
pub fn recover_claiming(
    journal: &Journal,
    mut record: Record,
) -> Result<Option<Record>, ClaimError> {
    let any = record
        .paths
        .iter()
        .any(|p| p.work.exists() || p.original.exists());
    if !any || !record.paths[0].work.exists() && !record.paths[0].original.exists() {
        journal.remove(&record.id)?;
        let _ = fs::remove_dir(work_dir(&record.watch, &record.id));
        return Ok(None);
    }
    move_in(&record)?;
    journal.advance(&mut record, Stage::Claimed)?;
    Ok(Some(record))
}
