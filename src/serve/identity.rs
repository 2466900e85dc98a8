//! A served file's identity (size, times, device and inode) and opening a file without
//! following a link to it: what the registry records at claim and every request re-checks.

use std::fs::{File, Metadata, OpenOptions};
use std::io;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::Path;
use std::time::SystemTime;

/// What a file was when it was claimed; a request is refused if it differs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FileIdentity {
    pub size: u64,
    pub mtime: SystemTime,
    /// Inode change time in nanoseconds (a chmod, a hard link, a rewrite that kept mtime).
    pub ctime_ns: i128,
    pub dev: u64,
    pub ino: u64,
}

impl FileIdentity {
    pub fn of(meta: &Metadata) -> Self {
        let mtime = meta.modified().unwrap_or(SystemTime::UNIX_EPOCH);
        FileIdentity {
            size: meta.len(),
            mtime,
            ctime_ns: i128::from(meta.ctime()) * 1_000_000_000 + i128::from(meta.ctime_nsec()),
            dev: meta.dev(),
            ino: meta.ino(),
        }
    }
}

/// Opens `path` read-only without following a final symlink and returns it
/// with its identity. Anything but a regular file is `NotFound`.
pub(crate) fn open_nofollow(path: &Path) -> io::Result<(File, FileIdentity)> {
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)?;
    let meta = file.metadata()?;
    if !meta.file_type().is_file() {
        return Err(io::Error::new(
            io::ErrorKind::NotFound,
            "not a regular file",
        ));
    }
    Ok((file, FileIdentity::of(&meta)))
}

/// Runs [`open_nofollow`] on the blocking pool.
pub(crate) async fn open_async(path: &Path) -> io::Result<(File, FileIdentity)> {
    let path = path.to_path_buf();
    tokio::task::spawn_blocking(move || open_nofollow(&path))
        .await
        .map_err(io::Error::other)?
}
