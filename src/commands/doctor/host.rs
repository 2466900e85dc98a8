//! The checks of this machine, as the user running `doctor` (run it as the service user):
//! folders readable and writable, done/failed on their watch folder's filesystem, the inotify
//! watch limit, free disk space against the largest waiting item. Blocking std I/O.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use rustix::fs::{Access, access};

use super::Finding;
use crate::config::Config;
use crate::support::diagnostic::display_path;

/// Free space below this on the state folder's filesystem is worth a warning.
const LOW_DISK: u64 = 256 * 1024 * 1024;
/// inotify watches to spare beyond tokdrop's own, for the user's other programs.
const WATCH_SPARE: u64 = 1024;

/// The folders the checks look at.
pub(super) struct Paths {
    state_dir: PathBuf,
    /// watch, done, failed
    folders: Vec<(PathBuf, PathBuf, PathBuf)>,
}

impl Paths {
    pub(super) fn of(config: &Config) -> Paths {
        Paths {
            state_dir: config.state_dir.clone(),
            folders: config
                .watch
                .iter()
                .map(|w| (w.path.clone(), w.done_dir.clone(), w.failed_dir.clone()))
                .collect(),
        }
    }
}

pub(super) fn checks(paths: &Paths) -> Vec<Finding> {
    let user = user_name();
    let mut out = Vec::new();
    let mut problems = 0;
    let mut report = |f: Finding| {
        problems += 1;
        out.push(f);
    };
    if let Some(f) = writable(&paths.state_dir, &user) {
        report(f);
    }
    for (watch, done, failed) in &paths.folders {
        for folder in [watch, done, failed] {
            if let Some(f) = writable(folder, &user) {
                report(f);
            }
        }
        for (what, folder) in [("done", done), ("failed", failed)] {
            if let (Some(a), Some(b)) = (device(watch), device(folder))
                && a != b
            {
                report(
                    Finding::warn(
                        "folders",
                        format!(
                            "{} ({what}) is on another filesystem than {}: finished items are copied, not moved",
                            display_path(folder),
                            display_path(watch)
                        ),
                    )
                    .help("put done and failed on the watch folder's filesystem"),
                );
            }
        }
    }
    if problems == 0 {
        out.push(Finding::ok(
            "folders",
            format!("readable and writable by {user}; done and failed beside their watch folders"),
        ));
    }
    out.push(inotify(paths));
    out.extend(disk(paths));
    out
}

/// The user the checks run as, by name when /etc/passwd has it.
fn user_name() -> String {
    let uid = std::fs::metadata("/proc/self").map_or(u32::MAX, |m| m.uid());
    std::fs::read_to_string("/etc/passwd")
        .ok()
        .and_then(|passwd| {
            passwd.lines().find_map(|line| {
                let mut fields = line.split(':');
                let name = fields.next()?;
                (fields.nth(1)? == uid.to_string()).then(|| name.to_string())
            })
        })
        .unwrap_or_else(|| format!("uid {uid}"))
}

/// A problem with `folder` for `user`, or `None` when it (or the parent it would be created
/// in) can be read and written.
fn writable(folder: &Path, user: &str) -> Option<Finding> {
    let shown = display_path(folder);
    let fix =
        format!("chown or chmod {shown} so that {user} can read and write it (see INSTALL.md)");
    match std::fs::symlink_metadata(folder) {
        Ok(m) if m.is_dir() => {
            if access(folder, Access::READ_OK | Access::WRITE_OK | Access::EXEC_OK).is_err() {
                return Some(
                    Finding::fail("folders", format!("{shown} is not writable by {user}"))
                        .help(fix),
                );
            }
            None
        }
        Ok(m) if m.is_symlink() => Some(Finding::fail(
            "folders",
            format!("{shown} is a symbolic link; tokdrop does not follow links"),
        )),
        Ok(_) => Some(Finding::fail("folders", format!("{shown} is not a folder"))),
        Err(_) => {
            let parent = existing_ancestor(folder)?;
            if access(&parent, Access::WRITE_OK | Access::EXEC_OK).is_err() {
                return Some(
                    Finding::fail(
                        "folders",
                        format!(
                            "{shown} does not exist and {user} cannot create it in {}",
                            display_path(&parent)
                        ),
                    )
                    .help(format!("mkdir -p {shown} and give it to {user}")),
                );
            }
            None
        }
    }
}

fn existing_ancestor(path: &Path) -> Option<PathBuf> {
    let abs = crate::support::paths::absolute(path);
    abs.ancestors()
        .find(|p| std::fs::symlink_metadata(p).is_ok())
        .map(Path::to_path_buf)
}

fn device(path: &Path) -> Option<u64> {
    std::fs::metadata(existing_ancestor(path)?)
        .ok()
        .map(|m| m.dev())
}

fn inotify(paths: &Paths) -> Finding {
    let mut folders: u64 = 0;
    for (watch, _, _) in &paths.folders {
        folders += 1;
        if let Ok(entries) = std::fs::read_dir(watch) {
            folders += entries
                .flatten()
                .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
                .count() as u64;
        }
    }
    let limit = std::fs::read_to_string("/proc/sys/fs/inotify/max_user_watches")
        .ok()
        .and_then(|s| s.trim().parse::<u64>().ok());
    match limit {
        None => Finding::warn("inotify", "cannot read /proc/sys/fs/inotify/max_user_watches"),
        Some(limit) if limit < folders + WATCH_SPARE => Finding::warn(
            "inotify",
            format!("max_user_watches is {limit}; tokdrop watches {folders} folders"),
        )
        .help("raise it: echo fs.inotify.max_user_watches=65536 | sudo tee /etc/sysctl.d/60-tokdrop.conf && sudo sysctl --system"),
        Some(limit) => Finding::ok(
            "inotify",
            format!("max_user_watches is {limit}; tokdrop watches {folders} folders"),
        ),
    }
}

fn free_bytes(path: &Path) -> Option<u64> {
    let s = rustix::fs::statvfs(&existing_ancestor(path)?).ok()?;
    Some(s.f_bavail.saturating_mul(s.f_frsize))
}

/// Size of the largest item waiting in `watch` (a file, or a folder's files one level deep).
fn largest_waiting(watch: &Path) -> u64 {
    let size = |p: &Path| {
        std::fs::symlink_metadata(p).map_or(0, |m| if m.is_file() { m.len() } else { 0 })
    };
    std::fs::read_dir(watch)
        .map(|entries| {
            entries
                .flatten()
                .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
                .map(|e| match e.file_type() {
                    Ok(t) if t.is_dir() => std::fs::read_dir(e.path())
                        .map(|inner| inner.flatten().map(|f| size(&f.path())).sum())
                        .unwrap_or(0),
                    _ => size(&e.path()),
                })
                .max()
                .unwrap_or(0)
        })
        .unwrap_or(0)
}

fn disk(paths: &Paths) -> Vec<Finding> {
    let mut out = Vec::new();
    for (watch, done, failed) in &paths.folders {
        let largest = largest_waiting(watch);
        for folder in [done, failed] {
            let copied = device(watch) != device(folder);
            if let Some(free) = free_bytes(folder)
                && copied
                && free < largest
            {
                out.push(
                    Finding::fail(
                        "disk",
                        format!(
                            "{} has {} free, less than the largest waiting item ({}), which must be copied there",
                            display_path(folder),
                            mb(free),
                            mb(largest)
                        ),
                    )
                    .help("free space there, or put done and failed on the watch folder's filesystem"),
                );
            }
        }
    }
    match free_bytes(&paths.state_dir) {
        Some(free) if free < LOW_DISK => out.push(
            Finding::warn(
                "disk",
                format!(
                    "only {} free for {}",
                    mb(free),
                    display_path(&paths.state_dir)
                ),
            )
            .help("the journal and results need room; free some space"),
        ),
        Some(free) if out.is_empty() => {
            let largest = paths
                .folders
                .iter()
                .map(|(w, _, _)| largest_waiting(w))
                .max()
                .unwrap_or(0);
            let waiting = if largest == 0 {
                "nothing waiting".to_string()
            } else {
                format!("largest waiting item {}", mb(largest))
            };
            out.push(Finding::ok(
                "disk",
                format!(
                    "{} free for {}; {waiting}",
                    mb(free),
                    display_path(&paths.state_dir)
                ),
            ));
        }
        Some(_) => {}
        None => out.push(Finding::warn(
            "disk",
            format!(
                "cannot read the free space of {}",
                display_path(&paths.state_dir)
            ),
        )),
    }
    out
}

fn mb(bytes: u64) -> String {
    if bytes >= 10 * 1024 * 1024 * 1024 {
        format!("{} GB", bytes / 1_000_000_000)
    } else {
        format!("{:.1} MB", bytes as f64 / 1_000_000.0)
    }
}
