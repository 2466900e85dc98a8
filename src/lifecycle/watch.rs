//! The notify (inotify) bridge: file-system events become [`Hint`]s on a bounded channel. The
//! callback runs on notify's thread and only converts and `try_send`s; when the channel is full
//! it raises an overflow flag so intake rescans instead of missing anything. Hints are only
//! hints: intake also lists every folder at start, after an overflow and every 60 s.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use notify::event::{AccessKind, AccessMode, CreateKind, EventKind, ModifyKind, RenameMode};
use notify::{RecommendedWatcher, RecursiveMode, Watcher};
use tokio::sync::{Notify, mpsc};

/// What an event says about a path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HintKind {
    /// A writer closed the file (inotify `IN_CLOSE_WRITE`).
    Closed,
    /// The path appeared by rename (`IN_MOVED_TO`): written elsewhere, complete now.
    MovedIn,
    /// Created, written, attributes changed: wait for it to settle.
    Changed,
    /// Removed or renamed away.
    Gone,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hint {
    pub path: PathBuf,
    pub kind: HintKind,
}

#[derive(Debug, thiserror::Error)]
pub enum WatchError {
    #[error("cannot watch {path}: {source}{}", help(.source))]
    Watch {
        path: PathBuf,
        source: notify::Error,
    },
}

fn help(e: &notify::Error) -> &'static str {
    match e.kind {
        notify::ErrorKind::MaxFilesWatch => {
            "\n  help: the system's inotify watch limit is reached; raise it with\n        sysctl fs.inotify.max_user_watches=524288 (and persist it in /etc/sysctl.d/)"
        }
        _ => "",
    }
}

/// Keeps the OS watches alive; dropping it stops the events.
pub struct FolderWatcher {
    watcher: RecommendedWatcher,
    folders: Vec<PathBuf>,
    /// Set when a hint could not be queued or the kernel dropped events: rescan everything.
    pub overflow: Arc<AtomicBool>,
    /// Woken together with `overflow`, so a full channel still gets attention.
    pub overflow_notify: Arc<Notify>,
}

/// Starts watching `folders` (recursively: photo sets are folders inside them).
pub fn watch(folders: &[PathBuf], tx: mpsc::Sender<Hint>) -> Result<FolderWatcher, WatchError> {
    let overflow = Arc::new(AtomicBool::new(false));
    let overflow_notify = Arc::new(Notify::new());
    let (flag, wake) = (overflow.clone(), overflow_notify.clone());
    let raise = move || {
        flag.store(true, Ordering::SeqCst);
        wake.notify_one();
    };
    let mut watcher = notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
        let Ok(event) = res else {
            raise();
            return;
        };
        if event.need_rescan() {
            raise();
            return;
        }
        for hint in convert(&event) {
            if tx.try_send(hint).is_err() {
                raise();
            }
        }
    })
    .map_err(|source| WatchError::Watch {
        path: PathBuf::new(),
        source,
    })?;
    for folder in folders {
        watcher
            .watch(folder, RecursiveMode::Recursive)
            .map_err(|source| WatchError::Watch {
                path: folder.clone(),
                source,
            })?;
    }
    Ok(FolderWatcher {
        watcher,
        folders: folders.to_vec(),
        overflow,
        overflow_notify,
    })
}

impl FolderWatcher {
    /// Watches exactly `folders` from now on (a reload added or removed some). A folder that
    /// cannot be watched is reported and left out; the others are watched all the same.
    pub fn set_folders(&mut self, folders: &[PathBuf]) -> Vec<WatchError> {
        let mut errors = Vec::new();
        for gone in self.folders.iter().filter(|f| !folders.contains(f)) {
            // It may have been deleted already, which removed the OS watch with it.
            let _ = self.watcher.unwatch(gone);
        }
        let mut watched: Vec<PathBuf> = self
            .folders
            .iter()
            .filter(|f| folders.contains(f))
            .cloned()
            .collect();
        for new in folders.iter().filter(|f| !self.folders.contains(f)) {
            match self.watcher.watch(new, RecursiveMode::Recursive) {
                Ok(()) => watched.push(new.clone()),
                Err(source) => errors.push(WatchError::Watch {
                    path: new.clone(),
                    source,
                }),
            }
        }
        self.folders = watched;
        errors
    }
}

fn convert(event: &notify::Event) -> Vec<Hint> {
    let kind = match event.kind {
        EventKind::Access(AccessKind::Close(AccessMode::Write)) => HintKind::Closed,
        // Our own reads (probing files) open and close them: never a reason to look again.
        EventKind::Access(_) => return Vec::new(),
        EventKind::Modify(ModifyKind::Name(RenameMode::Both)) => {
            let mut v = Vec::new();
            if let Some(from) = event.paths.first() {
                v.push(Hint {
                    path: from.clone(),
                    kind: HintKind::Gone,
                });
            }
            if let Some(to) = event.paths.get(1) {
                v.push(Hint {
                    path: to.clone(),
                    kind: HintKind::MovedIn,
                });
            }
            return v;
        }
        EventKind::Modify(ModifyKind::Name(RenameMode::To)) => HintKind::MovedIn,
        EventKind::Modify(ModifyKind::Name(RenameMode::From)) => HintKind::Gone,
        EventKind::Remove(_) => HintKind::Gone,
        EventKind::Create(CreateKind::Folder) => HintKind::Changed,
        _ => HintKind::Changed,
    };
    event
        .paths
        .iter()
        .map(|p| Hint {
            path: p.clone(),
            kind,
        })
        .collect()
}

/// The entry directly inside `root` that `path` belongs to (`root/trip/1.jpg` → `root/trip`).
pub fn top_entry(root: &Path, path: &Path) -> Option<PathBuf> {
    let rest = path.strip_prefix(root).ok()?;
    let first = rest.components().next()?;
    Some(root.join(first.as_os_str()))
}
