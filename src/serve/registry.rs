//! The registry of published files: one unguessable 128-bit token per file,
//! link expiry and revocation, file identity snapshots taken at claim time,
//! and the item entries that carry download statistics.

use std::collections::HashMap;
use std::fmt;
use std::io;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use tokio::time::Instant;

use super::body::DeliveryStats;
use super::identity::{self, FileIdentity};
use super::stats::StatsState;
pub use super::stats::{FileStats, ItemStats};

/// Characters escaped in the name segment of a URL: all but RFC 3986 unreserved.
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// Longest accepted file name, in bytes.
pub(crate) const MAX_NAME_LEN: usize = 255;
/// Length of a token in the URL (128 bits as lowercase hex).
pub(crate) const TOKEN_LEN: usize = 32;

/// Caller's identifier of a publishable item.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ItemId(String);

impl ItemId {
    pub fn new(id: impl Into<String>) -> Self {
        ItemId(id.into())
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ItemId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<&str> for ItemId {
    fn from(s: &str) -> Self {
        ItemId(s.to_owned())
    }
}

impl From<u64> for ItemId {
    fn from(n: u64) -> Self {
        ItemId(n.to_string())
    }
}

/// A file to publish under `name` (exactly the last URL segment, decoded).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServedFile {
    pub name: String,
    /// Absolute path; opened with `O_NOFOLLOW` on every request.
    pub path: PathBuf,
    pub identity: FileIdentity,
}

impl ServedFile {
    /// Snapshots `path` now (without following a final symlink).
    pub fn snapshot(name: impl Into<String>, path: impl Into<PathBuf>) -> io::Result<Self> {
        let path = path.into();
        let (_file, identity) = identity::open_nofollow(&path)?;
        Ok(ServedFile {
            name: name.into(),
            path,
            identity,
        })
    }
}

/// One registered file's public coordinates.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PublishedFile {
    pub name: String,
    pub token: String,
    /// `media/<token>/<percent-encoded name>`, to append to `public_url/`.
    pub url_path: String,
}

/// Why [`Registry::register`] refused.
#[derive(Debug, thiserror::Error)]
pub enum RegisterError {
    #[error("an item needs at least one file")]
    NoFiles,
    #[error("file name {name:?} cannot be served: {reason}")]
    InvalidName { name: String, reason: &'static str },
    #[error("file name {0:?} appears twice in one item")]
    DuplicateName(String),
    #[error("path {} must be absolute", .0.display())]
    RelativePath(PathBuf),
    #[error("the OS random number generator failed: {0}")]
    Random(String),
    #[error("a stored URL token is malformed: {0}")]
    BadToken(String),
}

/// Checks a name for use as a URL segment; `Err` says why not.
pub(crate) fn check_name(name: &str) -> Result<(), &'static str> {
    if name.is_empty() {
        return Err("empty");
    }
    if name.len() > MAX_NAME_LEN {
        return Err("longer than 255 bytes");
    }
    if name == "." || name == ".." {
        return Err("a dot segment");
    }
    if name.contains(['/', '\\']) {
        return Err("contains a slash or backslash");
    }
    if name.chars().any(char::is_control) {
        return Err("contains a control character or NUL");
    }
    Ok(())
}

/// The URL path (no leading slash) for a token and file name.
pub fn url_path(token: &str, name: &str) -> String {
    format!("media/{token}/{}", utf8_percent_encode(name, SEGMENT))
}

/// Thread-safe registry shared by the server and the publisher (cheap clone).
#[derive(Clone, Debug)]
pub struct Registry {
    inner: Arc<Mutex<Inner>>,
    link_ttl: Duration,
}

#[derive(Debug, Default)]
struct Inner {
    by_token: HashMap<String, (Arc<ItemEntry>, usize)>,
    items: HashMap<ItemId, Arc<ItemEntry>>,
}

/// A registered item, shared with in-flight responses.
#[derive(Debug)]
pub(crate) struct ItemEntry {
    pub(crate) id: ItemId,
    pub(crate) files: Vec<ServedFile>,
    tokens: Vec<String>,
    expires_at: Instant,
    pub(crate) stats: Mutex<StatsState>,
}

impl ItemEntry {
    pub(crate) fn stats(&self) -> ItemStats {
        lock(&self.stats).snapshot()
    }
    pub(crate) fn note_request(&self, index: usize) {
        lock(&self.stats).note_request(index);
    }
    pub(crate) fn note_changed(&self) {
        lock(&self.stats).note_changed();
    }
}

impl DeliveryStats for ItemEntry {
    fn note_bytes(&self, index: usize, n: u64) {
        lock(&self.stats).note_bytes(index, n);
    }
    /// A body of file `index` ended having delivered `[start, start+len)`.
    fn note_delivered(&self, index: usize, start: u64, len: u64, complete: bool) {
        let size = self.files.get(index).map_or(0, |f| f.identity.size);
        let mut stats = lock(&self.stats);
        let was_whole = stats.is_whole();
        stats.note_delivered(index, size, start, len, complete);
        if !was_whole && stats.is_whole() {
            let took = stats
                .snapshot()
                .first_access
                .and_then(|t| t.elapsed().ok())
                .unwrap_or_default();
            crate::support::metrics::metrics().pull_done(took);
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Registry {
    /// Links stop working `link_ttl` after [`register`](Self::register).
    pub fn new(link_ttl: Duration) -> Self {
        Registry {
            inner: Arc::default(),
            link_ttl,
        }
    }

    /// Publishes `files` under fresh tokens. Registering an item again
    /// revokes its previous links (statistics start over).
    pub fn register(
        &self,
        item: ItemId,
        files: Vec<ServedFile>,
    ) -> Result<Vec<PublishedFile>, RegisterError> {
        let tokens = files
            .iter()
            .map(|_| new_token())
            .collect::<Result<Vec<_>, _>>()?;
        self.insert(item, files, tokens)
    }

    /// Publishes `files` again under the tokens an earlier run gave them (kept in the journal),
    /// so URLs TikTok already has keep working after a restart.
    pub fn restore(
        &self,
        item: ItemId,
        files: Vec<ServedFile>,
        tokens: Vec<String>,
    ) -> Result<Vec<PublishedFile>, RegisterError> {
        if tokens.len() != files.len() {
            return Err(RegisterError::BadToken("one token per file".into()));
        }
        if let Some(t) = tokens.iter().find(|t| {
            t.len() != TOKEN_LEN || !t.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
        }) {
            return Err(RegisterError::BadToken(format!(
                "{} characters, not {TOKEN_LEN} hex digits",
                t.len()
            )));
        }
        self.insert(item, files, tokens)
    }

    fn insert(
        &self,
        item: ItemId,
        files: Vec<ServedFile>,
        tokens: Vec<String>,
    ) -> Result<Vec<PublishedFile>, RegisterError> {
        if files.is_empty() {
            return Err(RegisterError::NoFiles);
        }
        for (i, f) in files.iter().enumerate() {
            check_name(&f.name).map_err(|reason| RegisterError::InvalidName {
                name: f.name.clone(),
                reason,
            })?;
            if files[..i].iter().any(|g| g.name == f.name) {
                return Err(RegisterError::DuplicateName(f.name.clone()));
            }
            if !f.path.is_absolute() {
                return Err(RegisterError::RelativePath(f.path.clone()));
            }
        }
        let stats = StatsState::new(files.iter().map(|f| f.name.as_str()));
        let entry = Arc::new(ItemEntry {
            id: item.clone(),
            files,
            tokens: tokens.clone(),
            expires_at: Instant::now() + self.link_ttl,
            stats: Mutex::new(stats),
        });
        let published = entry
            .files
            .iter()
            .zip(&tokens)
            .map(|(f, t)| PublishedFile {
                name: f.name.clone(),
                token: t.clone(),
                url_path: url_path(t, &f.name),
            })
            .collect();
        let mut inner = lock(&self.inner);
        inner.purge_expired(Instant::now());
        if let Some(old) = inner.items.insert(item, entry.clone()) {
            inner.remove_tokens(&old);
        }
        for (i, t) in tokens.into_iter().enumerate() {
            inner.by_token.insert(t, (entry.clone(), i));
        }
        Ok(published)
    }

    /// Stops serving the item's links at once and returns its final
    /// statistics. Responses already streaming are allowed to finish.
    pub fn revoke(&self, item: &ItemId) -> Option<ItemStats> {
        let mut inner = lock(&self.inner);
        let entry = inner.items.remove(item)?;
        inner.remove_tokens(&entry);
        drop(inner);
        Some(entry.stats())
    }

    /// Statistics so far (kept after expiry, until [`revoke`](Self::revoke)).
    pub fn stats(&self, item: &ItemId) -> Option<ItemStats> {
        let entry = lock(&self.inner).items.get(item).cloned()?;
        Some(entry.stats())
    }

    /// The live entry for a token, or `None` if unknown, revoked or expired.
    /// Touches no file system.
    pub(crate) fn lookup(&self, token: &str) -> Option<(Arc<ItemEntry>, usize)> {
        let now = Instant::now();
        let mut inner = lock(&self.inner);
        let (entry, index) = inner.by_token.get(token)?;
        if now < entry.expires_at {
            return Some((entry.clone(), *index));
        }
        let entry = entry.clone();
        inner.remove_tokens(&entry);
        None
    }
}

impl Inner {
    fn remove_tokens(&mut self, entry: &ItemEntry) {
        for t in &entry.tokens {
            self.by_token.remove(t);
        }
    }

    fn purge_expired(&mut self, now: Instant) {
        self.by_token.retain(|_, (e, _)| now < e.expires_at);
    }
}

fn new_token() -> Result<String, RegisterError> {
    let mut bytes = [0u8; TOKEN_LEN / 2];
    getrandom::getrandom(&mut bytes).map_err(|e| RegisterError::Random(e.to_string()))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

#[cfg(test)]
#[path = "registry_tests.rs"]
mod tests;
