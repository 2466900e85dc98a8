//! Taking an item out of the watched folder: the claim is journaled first, then the item's files
//! are renamed into the work area `<watched folder>/.tokdrop/<id>/` (same file system, never
//! scanned), so a claimed item can never show up as a new one. Also rolls an interrupted claim
//! forward after a crash.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use crate::content::sidecar::Mode;
use crate::lifecycle::items::ItemFiles;
use crate::lifecycle::journal::{ClaimedPath, Journal, JournalError, Record, Stage};
use crate::support::fsops;

pub use crate::lifecycle::items::WORK_DIR;

#[derive(Debug, thiserror::Error)]
pub enum ClaimError {
    #[error(transparent)]
    Journal(#[from] JournalError),
    #[error("cannot move {path} into the work area: {source}{}", permission_help(.path, .source))]
    Move { path: PathBuf, source: io::Error },
    #[error(
        "the work folder {} {reason}; someone who can write the watched folder may have replaced it. Remove or rename it, and make the watched folder sticky (chmod +t {})",
        crate::support::diagnostic::display_path(.area),
        crate::support::diagnostic::display_path(.area.parent().unwrap_or(.area))
    )]
    WorkArea { area: PathBuf, reason: String },
}

/// Makes sure `<watch>/.tokdrop` is tokdrop's own: a real folder (no link), owned by this
/// user, writable by nobody else; creates it (0700) when missing, and takes write access
/// from group and others on one it owns. Checked before every claim.
pub fn check_work_area(watch: &Path) -> Result<(), ClaimError> {
    use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
    let area = watch.join(WORK_DIR);
    let refuse = |reason: String| ClaimError::WorkArea {
        area: area.clone(),
        reason,
    };
    let meta = match fs::symlink_metadata(&area) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return fs::DirBuilder::new()
                .mode(0o700)
                .create(&area)
                .map_err(|source| ClaimError::Move {
                    path: area.clone(),
                    source,
                });
        }
        Err(e) => return Err(refuse(format!("cannot be checked ({e})"))),
        Ok(m) => m,
    };
    if meta.file_type().is_symlink() {
        return Err(refuse("is a symbolic link".into()));
    }
    if !meta.is_dir() {
        return Err(refuse("is not a folder".into()));
    }
    let me = rustix::process::geteuid().as_raw();
    if meta.uid() != me {
        return Err(refuse(format!(
            "belongs to user id {}, not to tokdrop's ({me})",
            meta.uid()
        )));
    }
    if meta.mode() & 0o022 != 0 {
        fs::set_permissions(&area, fs::Permissions::from_mode(0o700)).map_err(|source| {
            ClaimError::Move {
                path: area.clone(),
                source,
            }
        })?;
    }
    Ok(())
}

/// What to do about a move the file system refused for lack of permission.
fn permission_help(path: &Path, e: &io::Error) -> &'static str {
    if e.kind() != io::ErrorKind::PermissionDenied {
        ""
    } else if path.is_dir() {
        " (tokdrop must be able to write to the photo-set folder itself to move it: make it group-writable with chmod -R g+w; cp -r keeps the source folder's mode)"
    } else {
        " (tokdrop must be able to write to the watched folder: check its owner, group and mode)"
    }
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
    let id = crate::lifecycle::journal::new_id(jiff::Timestamp::now());
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
        previous_attempts: Vec::new(),
        stamps: Default::default(),
        creator: None,
    };
    journal.write(&record)?;
    if let Err(e) = move_in(&record) {
        undo(journal, &record);
        return Err(e);
    }
    record.stamps = stamps(&record);
    journal.advance(&mut record, Stage::Claimed)?;
    Ok(record)
}

/// Stamps of the claimed media: each regular file moved in, and the regular files directly
/// inside a moved-in photo-set folder. Links and other kinds are never stamped (nor served).
fn stamps(
    record: &Record,
) -> std::collections::BTreeMap<PathBuf, crate::lifecycle::journal::FileStamp> {
    let mut out = std::collections::BTreeMap::new();
    for p in &record.paths {
        let Ok(meta) = fs::symlink_metadata(&p.work) else {
            continue;
        };
        if meta.is_file() {
            out.insert(
                p.work.clone(),
                crate::lifecycle::journal::FileStamp::of(&meta),
            );
        } else if meta.is_dir()
            && let Ok(entries) = fs::read_dir(&p.work)
        {
            for e in entries.flatten() {
                if let Ok(m) = e.metadata()
                    && m.is_file()
                {
                    out.insert(e.path(), crate::lifecycle::journal::FileStamp::of(&m));
                }
            }
        }
    }
    out
}

/// After a failed move: puts back what was moved and drops the journal entry, so the item is
/// whole in the watched folder again and can be taken later. When that fails as well, the
/// entry stays and the next start completes the claim.
fn undo(journal: &Journal, record: &Record) {
    for p in &record.paths {
        if p.work.exists()
            && let Err(e) = fsops::move_no_replace(&p.work, &p.original)
        {
            tracing::error!(item = %record.item, "cannot put {} back: {e}; the claim completes at the next start", p.work.display());
            return;
        }
    }
    let _ = fs::remove_dir(work_dir(&record.watch, &record.id));
    if let Err(e) = journal.remove(&record.id) {
        tracing::error!(item = %record.item, "{e}");
    }
}

/// Moves whatever is still in the watched folder into the work folder (idempotent).
fn move_in(record: &Record) -> Result<(), ClaimError> {
    let dir = work_dir(&record.watch, &record.id);
    let mk = |path: &Path, source| ClaimError::Move {
        path: path.to_path_buf(),
        source,
    };
    check_work_area(&record.watch)?;
    let created = {
        use std::os::unix::fs::DirBuilderExt;
        fs::DirBuilder::new().mode(0o700).create(&dir)
    };
    match created {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(mk(&dir, e)),
    }
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
    record.stamps = stamps(&record);
    journal.advance(&mut record, Stage::Claimed)?;
    Ok(Some(record))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A move that fails half-way is undone: the file already moved goes back, the journal
    /// entry goes, the item is whole in the folder again.
    #[test]
    fn a_half_done_claim_is_undone() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (watch, state) = (dir.path().join("inbox"), dir.path().join("state"));
        fs::create_dir_all(&watch).expect("mkdir");
        fs::create_dir_all(&state).expect("mkdir");
        fs::write(watch.join("a.jpg"), b"jpg").expect("write");
        fs::write(watch.join("a.yaml"), b"title: a").expect("write");
        fs::write(dir.path().join("not-a-dir"), b"").expect("write");
        let journal = Journal::open(&state).expect("journal");
        let work = work_dir(&watch, "20261127T000000Z-00000000");
        let record = Record {
            id: "20261127T000000Z-00000000".into(),
            watch: watch.clone(),
            watch_index: 0,
            item: "a.jpg".into(),
            kind: crate::content::sidecar::rules::Kind::Photo,
            account: "default".into(),
            mode: Mode::Direct,
            paths: vec![
                ClaimedPath {
                    original: watch.join("a.jpg"),
                    work: work.join("a.jpg"),
                },
                ClaimedPath {
                    original: watch.join("a.yaml"),
                    // Its parent is a file: this rename fails (ENOTDIR).
                    work: dir.path().join("not-a-dir/a.yaml"),
                },
            ],
            queued_at: jiff::Timestamp::now(),
            started_at: None,
            stage: Stage::Claiming,
            done_dir: None,
            failed_dir: None,
            previous_attempts: Vec::new(),
            stamps: Default::default(),
            creator: None,
        };
        journal.write(&record).expect("journal");
        let err = move_in(&record).expect_err("the second move fails");
        assert!(err.to_string().contains("a.yaml"), "{err}");
        assert!(work.join("a.jpg").exists(), "the first file was moved");
        undo(&journal, &record);
        assert_eq!(fs::read(watch.join("a.jpg")).expect("back"), b"jpg");
        assert!(watch.join("a.yaml").exists());
        assert!(!work.exists(), "the work folder is gone");
        assert!(
            journal.replay().expect("replay").is_empty(),
            "no journal entry"
        );
    }

    /// A refused move says what to change: the set folder's mode, or the watched folder's.
    #[test]
    fn permission_errors_say_what_to_fix() {
        let dir = tempfile::tempdir().expect("tempdir");
        let denied = || io::Error::from(io::ErrorKind::PermissionDenied);
        let set = ClaimError::Move {
            path: dir.path().to_path_buf(),
            source: denied(),
        };
        assert!(set.to_string().contains("chmod -R g+w"), "{set}");
        let file = ClaimError::Move {
            path: dir.path().join("clip.mp4"),
            source: denied(),
        };
        assert!(
            file.to_string().contains("write to the watched folder"),
            "{file}"
        );
        let other = ClaimError::Move {
            path: dir.path().to_path_buf(),
            source: io::Error::from(io::ErrorKind::NotFound),
        };
        assert!(!other.to_string().contains("help"), "{other}");
        assert!(!other.to_string().contains("("), "{other}");
    }
}
