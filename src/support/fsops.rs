//! Durable file-system steps, each crash-safe on its own: atomic writes (temp, fsync, rename,
//! fsync dir), moves that never overwrite (renameat2 `RENAME_NOREPLACE`, or copy + fsync +
//! verify across file systems), and appends that reach the disk. Everything that must survive a
//! `kill -9` or a power cut goes through here.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use rustix::fs::{CWD, RenameFlags, renameat_with};

/// Opens a file someone else put in a watched folder, for reading: never through a symbolic
/// link (`O_NOFOLLOW`), never blocking on a FIFO or device (`O_NONBLOCK`), and only if it is a
/// regular file — a dropper's `mkfifo` or `ln -s` gets an error, not a hang or another file.
pub fn open_regular(path: &Path) -> io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)
        .map_err(|e| {
            if e.raw_os_error() == Some(libc::ELOOP) {
                io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "it is a symbolic link; tokdrop only takes real files",
                )
            } else {
                e
            }
        })?;
    let kind = file.metadata()?.file_type();
    if !kind.is_file() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "it is not a regular file (a FIFO, socket or device); tokdrop only takes real files",
        ));
    }
    Ok(file)
}

/// Flushes a directory entry change (create, rename, unlink) to disk.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

fn parent(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// Writes `bytes` to `path` atomically: readers see the old file or the new one, never a part.
/// `mode` is applied to the temp file before any content is written (0600 for secrets).
pub fn write_atomic(path: &Path, bytes: &[u8], mode: u32) -> io::Result<()> {
    let dir = parent(path);
    let name = path
        .file_name()
        .map_or_else(Default::default, |n| n.to_string_lossy().into_owned());
    let tmp = dir.join(format!(".{name}.tmp-{}", random_suffix()));
    let result = (|| {
        let mut opts = OpenOptions::new();
        opts.write(true).create_new(true);
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(mode);
        }
        let mut f = opts.open(&tmp)?;
        // Exactly `mode`, whatever the umask (the service's is 0077).
        f.set_permissions(fs::Permissions::from_mode(mode))?;
        f.write_all(bytes)?;
        f.sync_all()?;
        fs::rename(&tmp, path)?;
        sync_dir(dir)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// Appends one line (a `\n` is added) and syncs it to disk before returning. A file it
/// creates gets exactly `mode`, whatever the umask.
pub fn append_line(path: &Path, line: &str, mode: u32) -> io::Result<()> {
    let existed = path.exists();
    let mut f = OpenOptions::new().create(true).append(true).open(path)?;
    if !existed {
        f.set_permissions(fs::Permissions::from_mode(mode))?;
    }
    let mut buf = Vec::with_capacity(line.len() + 1);
    buf.extend_from_slice(line.as_bytes());
    buf.push(b'\n');
    f.write_all(&buf)?;
    f.sync_data()?;
    if !existed {
        sync_dir(parent(path))?;
    }
    Ok(())
}

/// Moves `from` (file or folder) to `to`, failing with `AlreadyExists` rather than overwriting.
/// Within one file system this is one atomic rename; across file systems the content is copied,
/// synced and compared before the original is removed.
pub fn move_no_replace(from: &Path, to: &Path) -> io::Result<()> {
    match renameat_with(CWD, from, CWD, to, RenameFlags::NOREPLACE) {
        Ok(()) => {
            sync_dir(parent(to))?;
            if parent(from) != parent(to) {
                sync_dir(parent(from))?;
            }
            Ok(())
        }
        Err(e) if e == rustix::io::Errno::EXIST => Err(io::Error::new(
            io::ErrorKind::AlreadyExists,
            format!("{} already exists", to.display()),
        )),
        Err(e) if e == rustix::io::Errno::XDEV => copy_then_remove(from, to),
        Err(e) => Err(e.into()),
    }
}

/// Whether `from` and `to`'s folder are on different file systems (a move will copy).
pub fn crosses_filesystems(from: &Path, to_dir: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (fs::metadata(from), fs::metadata(to_dir)) {
        (Ok(a), Ok(b)) => a.dev() != b.dev(),
        _ => false,
    }
}

fn copy_then_remove(from: &Path, to: &Path) -> io::Result<()> {
    let meta = fs::symlink_metadata(from)?;
    // Copy under a temp name, then rename into place without replacing anything.
    let tmp = parent(to).join(format!(
        ".{}.copy-{}",
        to.file_name()
            .map_or_else(Default::default, |n| n.to_string_lossy().into_owned()),
        random_suffix()
    ));
    let copied = copy_entry(from, &tmp);
    if let Err(e) = copied.and_then(|()| {
        renameat_with(CWD, &tmp, CWD, to, RenameFlags::NOREPLACE).map_err(io::Error::from)
    }) {
        let _ = if meta.is_dir() {
            fs::remove_dir_all(&tmp)
        } else {
            fs::remove_file(&tmp)
        };
        return Err(e);
    }
    sync_dir(parent(to))?;
    if meta.is_dir() {
        fs::remove_dir_all(from)?;
    } else {
        fs::remove_file(from)?;
    }
    sync_dir(parent(from))
}

/// Copies one entry as it is: a folder by its entries, a symbolic link as a link (never its
/// target: a dropper's link must not turn into a copy of a file they cannot read), a regular
/// file by its bytes; anything else (FIFO, device) is refused.
fn copy_entry(from: &Path, to: &Path) -> io::Result<()> {
    let kind = fs::symlink_metadata(from)?.file_type();
    if kind.is_symlink() {
        return std::os::unix::fs::symlink(fs::read_link(from)?, to);
    }
    if kind.is_dir() {
        return copy_dir(from, to);
    }
    copy_file(from, to)
}

fn copy_file(from: &Path, to: &Path) -> io::Result<()> {
    let mut src = open_regular(from)?;
    let mut dst = OpenOptions::new().write(true).create_new(true).open(to)?;
    let len = io::copy(&mut src, &mut dst)?;
    dst.set_permissions(src.metadata()?.permissions())?;
    dst.sync_all()?;
    let (a, b) = (src.metadata()?.len(), fs::metadata(to)?.len());
    if a != len || b != len || !same_content(from, to)? {
        return Err(io::Error::other(format!(
            "copy of {} to {} does not match the original",
            from.display(),
            to.display()
        )));
    }
    Ok(())
}

fn same_content(a: &Path, b: &Path) -> io::Result<bool> {
    use std::io::Read;
    let (mut fa, mut fb) = (open_regular(a)?, File::open(b)?);
    let (mut ba, mut bb) = (vec![0u8; 1 << 16], vec![0u8; 1 << 16]);
    loop {
        let na = fa.read(&mut ba)?;
        let mut filled = 0;
        while filled < na {
            let n = fb.read(&mut bb[filled..na])?;
            if n == 0 {
                return Ok(false);
            }
            filled += n;
        }
        if na == 0 {
            return Ok(fb.read(&mut bb[..1])? == 0);
        }
        if ba[..na] != bb[..na] {
            return Ok(false);
        }
    }
}

fn copy_dir(from: &Path, to: &Path) -> io::Result<()> {
    fs::create_dir(to)?;
    for entry in fs::read_dir(from)? {
        let entry = entry?;
        copy_entry(&entry.path(), &to.join(entry.file_name()))?;
    }
    sync_dir(to)
}

/// 8 random hex characters from the OS RNG, for temp names and ids.
pub fn random_suffix() -> String {
    let mut b = [0u8; 4];
    // The OS RNG failing is not recoverable in any useful way; fall back to the clock.
    if getrandom::getrandom(&mut b).is_err() {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        b = nanos.to_le_bytes();
    }
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// The first free name for a group: `base` itself, then `base-2`, `base-3`, … — `taken` says
/// whether a candidate stem is in use.
pub fn free_stem(base: &str, taken: impl Fn(&str) -> bool) -> String {
    if !taken(base) {
        return base.to_string();
    }
    (2u32..)
        .map(|n| format!("{base}-{n}"))
        .find(|c| !taken(c))
        .expect("an unbounded range always yields a free name")
}

/// Creates `path` (and missing parents) with mode 0700 when it does not exist; an existing
/// folder keeps its mode.
pub fn create_private_dir(path: &Path) -> io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    if path.is_dir() {
        return Ok(());
    }
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A copying move (as across file systems) keeps a symbolic link a link — the secret it
    /// points at is never copied into the destination — and refuses a FIFO, leaving the
    /// source where it was.
    #[test]
    fn copying_moves_never_follow_links() {
        let d = tempfile::tempdir().expect("tempdir");
        fs::write(d.path().join("secret"), "token file").expect("secret");
        let set = d.path().join("set");
        fs::create_dir(&set).expect("set");
        fs::write(set.join("1.jpg"), vec![7u8; 100_000]).expect("photo");
        std::os::unix::fs::symlink(d.path().join("secret"), set.join("post.yaml")).expect("link");
        copy_then_remove(&set, &d.path().join("done-set")).expect("copied");
        let link = d.path().join("done-set/post.yaml");
        assert!(
            fs::symlink_metadata(&link)
                .expect("meta")
                .file_type()
                .is_symlink()
        );
        assert_eq!(
            fs::read(d.path().join("done-set/1.jpg"))
                .expect("photo")
                .len(),
            100_000
        );
        assert!(!set.exists());

        let odd = d.path().join("odd");
        fs::create_dir(&odd).expect("odd");
        let status = std::process::Command::new("mkfifo")
            .arg(odd.join("pipe.jpg"))
            .status()
            .expect("mkfifo");
        assert!(status.success());
        let e = copy_then_remove(&odd, &d.path().join("done-odd")).expect_err("a FIFO");
        assert!(e.to_string().contains("not a regular file"), "{e}");
        assert!(odd.join("pipe.jpg").exists(), "the source stays");
        assert!(!d.path().join("done-odd").exists());
    }

    /// A move onto an existing name fails and leaves both files untouched.
    #[test]
    fn move_never_overwrites() {
        let d = tempfile::tempdir().expect("tempdir");
        let (a, b) = (d.path().join("a"), d.path().join("b"));
        fs::write(&a, "new").expect("a");
        fs::write(&b, "old").expect("b");
        let e = move_no_replace(&a, &b).expect_err("must refuse");
        assert_eq!(e.kind(), io::ErrorKind::AlreadyExists);
        assert_eq!(fs::read_to_string(&b).expect("b"), "old");
        assert_eq!(fs::read_to_string(&a).expect("a"), "new");
        fs::create_dir(d.path().join("dir")).expect("dir");
        move_no_replace(&a, &d.path().join("dir/a")).expect("move");
        assert!(!a.exists());
    }

    /// Atomic writes replace the whole file and leave no temp files behind.
    #[test]
    fn atomic_write_replaces_and_cleans_up() {
        let d = tempfile::tempdir().expect("tempdir");
        let p = d.path().join("x.json");
        write_atomic(&p, b"one", 0o600).expect("write");
        write_atomic(&p, b"two", 0o600).expect("write");
        assert_eq!(fs::read_to_string(&p).expect("read"), "two");
        assert_eq!(fs::read_dir(d.path()).expect("dir").count(), 1);
        assert_eq!(
            fs::metadata(&p).expect("meta").permissions().mode() & 0o777,
            0o600
        );
    }

    /// Collision suffixes count up from -2.
    #[test]
    fn free_stem_counts_up() {
        let taken = ["clip", "clip-2"];
        assert_eq!(free_stem("clip", |s| taken.contains(&s)), "clip-3");
        assert_eq!(free_stem("new", |s| taken.contains(&s)), "new");
    }

    /// The cross-file-system path copies, verifies and removes the original.
    #[test]
    fn copy_path_verifies() {
        let d = tempfile::tempdir().expect("tempdir");
        let src = d.path().join("set");
        fs::create_dir(&src).expect("set");
        fs::write(src.join("1.jpg"), vec![7u8; 100_000]).expect("img");
        let dst = d.path().join("copy");
        copy_then_remove(&src, &dst).expect("copy");
        assert!(!src.exists());
        assert_eq!(fs::read(dst.join("1.jpg")).expect("read").len(), 100_000);
    }
}
