//! Which files form an item (SPEC §3): a video or photo with its same-stem sidecar
//! (`clip.yaml`, `clip.yml`, `clip.mp4.yaml`), or a photo-set folder with its `post.yaml`.
//! This is a pure listing of what is in a folder right now; whether files are complete and
//! settled is `intake`'s business, what is inside them is `media`'s and `sidecar`'s.

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use crate::config::WatchConfig;
use crate::content::media::MediaKind;
use crate::content::sidecar::rules::{Kind, natural_cmp};
use crate::support::diagnostic::Diagnostic;

/// Name of the work area inside each watched folder (where `claim` moves items). Listings
/// skip it whatever the patterns say.
pub const WORK_DIR: &str = ".tokdrop";

/// Sidecar extensions, in the order they are looked for.
const SIDECAR_EXTS: [&str; 2] = ["yaml", "yml"];
/// The sidecar names inside a photo-set folder.
const SET_SIDECARS: [&str; 2] = ["post.yaml", "post.yml"];

/// The files of one item as found on disk.
#[derive(Debug, Clone, PartialEq)]
pub struct ItemFiles {
    pub kind: Kind,
    /// The media file, or the photo-set folder.
    pub path: PathBuf,
    /// The name in the watched folder (`clip.mp4`, or the set's folder name `trip`).
    pub name: String,
    /// The media files: one for a video or photo, the images (natural order) for a set.
    pub media: Vec<PathBuf>,
    pub sidecar: Option<PathBuf>,
    /// Problems with the grouping itself (two sidecars, a video inside a set, …).
    pub problems: Vec<Diagnostic>,
}

/// Everything found in one watched folder.
#[derive(Debug, Default)]
pub struct Listing {
    pub items: Vec<ItemFiles>,
    /// Sidecars no media file claims (yet): they wait for their media.
    pub orphans: Vec<PathBuf>,
}

fn is_sidecar_name(name: &str) -> bool {
    Path::new(name)
        .extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| SIDECAR_EXTS.contains(&e.to_ascii_lowercase().as_str()))
}

/// The UTF-8 name of entry `name` of `dir`. A name that is not UTF-8 cannot travel in
/// results, logs or TikTok's API: the entry is renamed in place to its escaped form (each
/// invalid byte as `%XX`, `caf\xE9.jpg` → `caf%E9.jpg`), never replacing anything. `None`
/// when that rename failed.
pub fn utf8_name(dir: &Path, name: &std::ffi::OsStr) -> Option<String> {
    use std::os::unix::ffi::OsStrExt;
    if let Some(s) = name.to_str() {
        return Some(s.to_string());
    }
    let mut out = String::new();
    for chunk in name.as_bytes().utf8_chunks() {
        out.push_str(chunk.valid());
        for b in chunk.invalid() {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    match crate::support::fsops::move_no_replace(&dir.join(name), &dir.join(&out)) {
        Ok(()) => {
            tracing::warn!(
                folder = %crate::support::diagnostic::display_path(dir),
                to = %crate::support::diagnostic::printable(&out),
                "renamed a file whose name is not UTF-8"
            );
            Some(out)
        }
        Err(e) => {
            tracing::warn!(
                folder = %crate::support::diagnostic::display_path(dir),
                name = %crate::support::diagnostic::printable(&out),
                error = %e,
                "a file's name is not UTF-8 and it cannot be renamed; it is left alone"
            );
            None
        }
    }
}

/// Renames the entries of `dir` whose names are not UTF-8, and those directly inside its
/// folders (photo sets), to their escaped forms ([`utf8_name`]). Intake does this before it
/// lists a watched folder; `tokdrop check` does not (it changes nothing).
pub fn fix_names(dir: &Path) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let fixed = if name.to_str().is_some() {
            name.to_string_lossy().into_owned()
        } else {
            match utf8_name(dir, &name) {
                Some(n) => n,
                None => continue,
            }
        };
        if fixed != WORK_DIR && entry.file_type().is_ok_and(|t| t.is_dir()) {
            let folder = dir.join(&fixed);
            if let Ok(inner) = fs::read_dir(&folder) {
                for e in inner.flatten() {
                    if e.file_name().to_str().is_none() {
                        let _ = utf8_name(&folder, &e.file_name());
                    }
                }
            }
        }
    }
}

/// Lists `w.path` into items and orphan sidecars.
pub fn list_folder(w: &WatchConfig) -> io::Result<Listing> {
    list_dir(&w.path, w)
}

fn list_dir(dir: &Path, w: &WatchConfig) -> io::Result<Listing> {
    let mut files = Vec::new();
    let mut folders = Vec::new();
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        // Not UTF-8: intake renames it first (see `fix_names`); a listing leaves it out.
        let Ok(name) = entry.file_name().into_string() else {
            continue;
        };
        // The work area is never an item, whatever the exclude patterns say.
        if w.excludes(&name) || name == WORK_DIR {
            continue;
        }
        let ft = entry.file_type()?;
        if ft.is_dir() {
            folders.push(dir.join(&name));
        } else if ft.is_file() && w.wants(&name) {
            files.push(name);
        }
    }
    files.sort_by(|a, b| natural_cmp(a, b));
    folders.sort();
    let mut listing = pair(dir, &files);
    for folder in folders {
        listing.items.push(photo_set(&folder, w)?);
    }
    Ok(listing)
}

/// Media extensions (either case) and sidecar extensions looked for next to a file.
const MEDIA_EXTS: [&str; 6] = ["mp4", "mov", "webm", "jpg", "jpeg", "webp"];

/// `ext` as written plus its lower- and upper-case forms.
fn cased(ext: &str) -> [String; 2] {
    [ext.to_ascii_lowercase(), ext.to_ascii_uppercase()]
}

/// The sidecar names that may belong to media `name`: `name.yaml`, `name.yml`, `stem.yaml`,
/// `stem.yml` (extension in either case).
fn sidecar_names(name: &str) -> Vec<String> {
    let stem = Path::new(name)
        .file_stem()
        .map_or(String::new(), |s| s.to_string_lossy().into_owned());
    let mut out = Vec::new();
    for base in [name, stem.as_str()] {
        for ext in SIDECAR_EXTS {
            for e in cased(ext) {
                out.push(format!("{base}.{e}"));
            }
        }
    }
    out
}

/// Pairs media files with their sidecars among the file names of one folder.
fn pair(dir: &Path, names: &[String]) -> Listing {
    let present: std::collections::HashSet<&str> = names.iter().map(String::as_str).collect();
    let mut claims: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    let mut items = Vec::new();
    for name in names {
        let Some(kind) = MediaKind::from_path(Path::new(name)) else {
            continue;
        };
        let mut candidates: Vec<&str> = Vec::new();
        for c in sidecar_names(name) {
            if let Some(found) = present.get(c.as_str())
                && !candidates.contains(found)
            {
                candidates.push(found);
            }
        }
        for c in &candidates {
            claims.entry(c).or_default().push(name);
        }
        let mut problems = Vec::new();
        if candidates.len() > 1 {
            problems.push(
                Diagnostic::file(
                    &dir.join(name),
                    format!(
                        "more than one sidecar for this file: {}",
                        candidates.join(", ")
                    ),
                )
                .with_help("keep one sidecar per media file"),
            );
        }
        items.push(ItemFiles {
            kind: match kind {
                MediaKind::Video(_) => Kind::Video,
                MediaKind::Image(_) => Kind::Photo,
            },
            path: dir.join(name),
            name: name.clone(),
            media: vec![dir.join(name)],
            sidecar: candidates.first().map(|c| dir.join(c)),
            problems,
        });
    }
    // A stem sidecar (`clip.yaml`) claimed by two media files (`clip.mp4`, `clip.jpg`) is
    // ambiguous for both.
    for (sidecar, owners) in &claims {
        if owners.len() > 1 {
            for item in items
                .iter_mut()
                .filter(|i| owners.contains(&i.name.as_str()))
            {
                item.problems.push(
                    Diagnostic::file(
                        &dir.join(sidecar),
                        format!("this sidecar could belong to {}", owners.join(" or ")),
                    )
                    .with_help(format!(
                        "name it after the full file name, e.g. {}.yaml",
                        owners[0]
                    )),
                );
            }
        }
    }
    let orphans = names
        .iter()
        .filter(|n| is_sidecar_name(n) && !claims.contains_key(n.as_str()))
        .map(|n| dir.join(n))
        .collect();
    Listing { items, orphans }
}

/// A folder directly inside a watched folder: its images (natural order) and `post.yaml`.
pub fn photo_set(folder: &Path, w: &WatchConfig) -> io::Result<ItemFiles> {
    let name = folder
        .file_name()
        .map_or(String::new(), |n| n.to_string_lossy().into_owned());
    let mut images = Vec::new();
    let mut sidecars = Vec::new();
    let mut problems = Vec::new();
    for entry in fs::read_dir(folder)? {
        let entry = entry?;
        let Ok(fname) = entry.file_name().into_string() else {
            continue;
        };
        if w.excludes(&fname) || entry.file_type()?.is_dir() {
            continue; // deeper folders are never part of a set
        }
        if SET_SIDECARS.iter().any(|s| fname.eq_ignore_ascii_case(s)) {
            sidecars.push(fname);
        } else if matches!(
            MediaKind::from_path(Path::new(&fname)),
            Some(MediaKind::Image(_))
        ) {
            images.push(fname);
        } else {
            problems.push(
                Diagnostic::file(
                    &folder.join(&fname),
                    "a photo-set folder may only hold images (.jpg, .jpeg, .webp) and post.yaml",
                )
                .with_help(
                    "move this file out of the folder; videos are posted one file at a time",
                ),
            );
        }
    }
    images.sort_by(|a, b| natural_cmp(a, b));
    sidecars.sort();
    if sidecars.len() > 1 {
        problems.push(
            Diagnostic::file(
                folder,
                format!("more than one sidecar: {}", sidecars.join(", ")),
            )
            .with_help("keep only post.yaml"),
        );
    }
    Ok(ItemFiles {
        kind: Kind::PhotoSet,
        path: folder.to_path_buf(),
        name,
        media: images.iter().map(|i| folder.join(i)).collect(),
        sidecar: sidecars.first().map(|s| folder.join(s)),
        problems,
    })
}

/// What a path given on the command line refers to.
#[derive(Debug)]
pub enum Found {
    Item(ItemFiles),
    /// A sidecar with no media file next to it.
    Orphan(PathBuf),
    /// A file that is neither media nor sidecar (or is excluded).
    NotAnItem(PathBuf, &'static str),
}

/// The item a user-given path belongs to: a media file, its sidecar, or a photo-set folder.
pub fn item_at(path: &Path, w: &WatchConfig) -> io::Result<Found> {
    // Never through a link: a dropper's `ln -s /somewhere inbox/set` is no photo set.
    let meta = fs::symlink_metadata(path)?;
    if meta.file_type().is_symlink() {
        return Ok(Found::NotAnItem(
            path.to_path_buf(),
            "a symbolic link; tokdrop takes only real files and folders",
        ));
    }
    if meta.is_dir() {
        return photo_set(path, w).map(Found::Item);
    }
    let name = path
        .file_name()
        .map_or(String::new(), |n| n.to_string_lossy().into_owned());
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    if w.excludes(&name) {
        return Ok(Found::NotAnItem(
            path.to_path_buf(),
            "excluded by the folder's exclude patterns (temporary or hidden file)",
        ));
    }
    // Inside a photo set: the set is the item.
    if SET_SIDECARS.iter().any(|s| name.eq_ignore_ascii_case(s)) || is_in_set(dir, w) {
        return photo_set(dir, w).map(Found::Item);
    }
    // Only the files that can belong to the same item are looked at (no directory listing:
    // this runs for every file event).
    let names = neighbours(dir, &name, w);
    let listing = pair(dir, &names);
    let found = listing
        .items
        .into_iter()
        .find(|i| i.path == path || i.sidecar.as_deref() == Some(path));
    Ok(match found {
        Some(item) => Found::Item(item),
        None if is_sidecar_name(&name) => Found::Orphan(path.to_path_buf()),
        None => Found::NotAnItem(
            path.to_path_buf(),
            "not a video (.mp4, .mov, .webm), photo (.jpg, .jpeg, .webp) or sidecar (.yaml, .yml)",
        ),
    })
}

/// The media files (in the same folder) a sidecar belongs to; empty for an orphan.
pub fn sidecar_owners(sidecar: &Path, w: &WatchConfig) -> Vec<PathBuf> {
    let name = sidecar
        .file_name()
        .map_or(String::new(), |n| n.to_string_lossy().into_owned());
    let dir = sidecar.parent().unwrap_or(Path::new("."));
    pair(dir, &neighbours(dir, &name, w))
        .items
        .into_iter()
        .filter(|i| i.sidecar.as_deref() == Some(sidecar))
        .map(|i| i.path)
        .collect()
}

/// `name` plus the existing files that could pair with it: its sidecars, the media files a
/// sidecar could belong to, and media sharing a stem sidecar (which makes it ambiguous).
fn neighbours(dir: &Path, name: &str, w: &WatchConfig) -> Vec<String> {
    let exists = |n: &str| w.wants(n) && dir.join(n).is_file();
    let mut names = vec![name.to_string()];
    let push = |n: String, names: &mut Vec<String>| {
        if !names.contains(&n) && exists(&n) {
            names.push(n);
        }
    };
    let stem_media = |stem: &str| -> Vec<String> {
        MEDIA_EXTS
            .iter()
            .flat_map(|e| cased(e))
            .map(|e| format!("{stem}.{e}"))
            .collect()
    };
    let path = Path::new(name);
    if is_sidecar_name(name) {
        let base = path
            .file_stem()
            .map_or(String::new(), |s| s.to_string_lossy().into_owned());
        if MediaKind::from_path(Path::new(&base)).is_some() {
            push(base.clone(), &mut names);
        }
        for m in stem_media(&base) {
            push(m, &mut names);
        }
    }
    let media: Vec<String> = names
        .iter()
        .filter(|n| MediaKind::from_path(Path::new(n)).is_some())
        .cloned()
        .collect();
    for m in &media {
        for sc in sidecar_names(m) {
            push(sc, &mut names);
        }
        let stem = Path::new(m)
            .file_stem()
            .map_or(String::new(), |s| s.to_string_lossy().into_owned());
        if SIDECAR_EXTS
            .iter()
            .flat_map(|e| cased(e))
            .any(|e| exists(&format!("{stem}.{e}")))
        {
            for other in stem_media(&stem) {
                push(other, &mut names);
            }
        }
    }
    names.sort_by(|a, b| natural_cmp(a, b));
    names
}

/// Whether `dir` is a folder directly inside the watched folder (so its files form a set).
fn is_in_set(dir: &Path, w: &WatchConfig) -> bool {
    let abs = crate::support::paths::absolute(dir);
    abs.parent() == Some(w.path.as_path())
}
