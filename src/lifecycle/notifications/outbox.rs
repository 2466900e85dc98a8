//! `state_dir/outbox/`: one durable file per pending delivery (a notification to one target),
//! written atomically before the item's ledger line, removed once delivered or given up. A file
//! that cannot be read back is moved aside (`*.corrupt`) with an error, never retried.

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::support::fsops;

/// What a notification is about (`TOKDROP_EVENT`, `X-Tokdrop-Event`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// An item finished (the body is its ledger line).
    Result,
    /// An account's queue paused (daily cap, rate limit, …).
    Paused,
    /// An account's queue paused until `tokdrop auth login`.
    NeedsLogin,
}

impl EventKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Result => "result",
            Self::Paused => "paused",
            Self::NeedsLogin => "needs_login",
        }
    }
}

/// Where one delivery goes, as the config said when the entry was made: a later config change
/// does not redirect what is already pending.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Target {
    Command {
        argv: Vec<String>,
        timeout_ms: u64,
    },
    Webhook {
        url: String,
        secret_file: PathBuf,
        timeout_ms: u64,
    },
}

impl Target {
    /// `on_result` or `webhook`, for logs.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Command { .. } => "on_result",
            Self::Webhook { .. } => "webhook",
        }
    }

    /// A short name that tells targets apart in a file name.
    fn key(&self) -> String {
        let json = serde_json::to_vec(self).expect("targets always serialize");
        let hash = hex::encode(&Sha256::digest(&json)[..4]);
        format!("{}-{hash}", self.name())
    }
}

/// One pending delivery.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    /// The same for every target and every retry of one notification: receivers dedupe on it.
    pub delivery_id: String,
    pub event: EventKind,
    pub target: Target,
    /// The exact JSON sent (a ledger line for results).
    pub body: String,
    /// `TOKDROP_*` variables for a command.
    pub env: BTreeMap<String, String>,
    /// The journal id of the finished item (results only).
    #[serde(default)]
    pub item_id: Option<String>,
    pub created_at: jiff::Timestamp,
    /// Failed attempts so far (kept across restarts, so the retry budget is bounded overall).
    #[serde(default)]
    pub attempts: u32,
}

impl Entry {
    /// The file name: the delivery id, then the target.
    pub fn file_name(&self) -> String {
        format!(
            "{}.{}.json",
            safe_name(&self.delivery_id),
            self.target.key()
        )
    }
}

/// `s` with everything but ASCII letters, digits, `-` and `_` replaced by `_`.
pub fn safe_name(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

#[derive(Debug, thiserror::Error)]
pub enum OutboxError {
    #[error("cannot {what} the notification outbox entry {path}: {source}")]
    Io {
        what: &'static str,
        path: PathBuf,
        source: io::Error,
    },
    #[error(
        "the notification outbox entry {path} cannot be read ({reason}); moved aside to {aside}"
    )]
    Corrupt {
        path: PathBuf,
        reason: String,
        aside: PathBuf,
    },
}

/// The outbox folder.
#[derive(Debug, Clone)]
pub struct Outbox {
    dir: PathBuf,
}

impl Outbox {
    pub fn new(state_dir: &Path) -> Self {
        Self {
            dir: state_dir.join("outbox"),
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn io(what: &'static str, path: &Path) -> impl FnOnce(io::Error) -> OutboxError {
        let path = path.to_path_buf();
        move |source| OutboxError::Io { what, path, source }
    }

    /// Writes (or replaces) `entry` durably: temp file, fsync, rename, fsync of the folder.
    pub fn write(&self, entry: &Entry) -> Result<String, OutboxError> {
        let name = entry.file_name();
        fsops::create_private_dir(&self.dir)
            .map_err(Self::io("create the folder of", &self.dir))?;
        let path = self.dir.join(&name);
        let json = serde_json::to_vec_pretty(entry).expect("entries always serialize");
        fsops::write_atomic(&path, &json, 0o600).map_err(Self::io("write", &path))?;
        Ok(name)
    }

    /// The names of the pending entries starting with `prefix`, oldest name first.
    pub fn list(&self, prefix: &str) -> Result<Vec<String>, OutboxError> {
        let entries = match fs::read_dir(&self.dir) {
            Ok(rd) => rd,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(Self::io("list", &self.dir)(e)),
        };
        let mut names: Vec<String> = entries
            .flatten()
            .filter_map(|e| e.file_name().into_string().ok())
            .filter(|n| n.ends_with(".json") && !n.starts_with('.') && n.starts_with(prefix))
            .collect();
        names.sort();
        Ok(names)
    }

    /// Reads an entry; `None` when it is gone (delivered meanwhile). A file that does not parse
    /// is renamed `NAME.corrupt` and reported, so it is never tried again.
    pub fn read(&self, name: &str) -> Result<Option<Entry>, OutboxError> {
        let path = self.dir.join(name);
        let bytes = match fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(Self::io("read", &path)(e)),
        };
        match serde_json::from_slice::<Entry>(&bytes) {
            Ok(entry) => Ok(Some(entry)),
            Err(e) => {
                let aside = self.dir.join(format!("{name}.corrupt"));
                fsops::move_no_replace(&path, &aside)
                    .or_else(|_| fs::rename(&path, &aside))
                    .map_err(Self::io("move aside", &path))?;
                Err(OutboxError::Corrupt {
                    path,
                    reason: e.to_string(),
                    aside,
                })
            }
        }
    }

    /// Removes a delivered (or given up) entry.
    pub fn remove(&self, name: &str) -> Result<(), OutboxError> {
        let path = self.dir.join(name);
        match fs::remove_file(&path) {
            Ok(()) => fsops::sync_dir(&self.dir).map_err(Self::io("remove", &path)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(Self::io("remove", &path)(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(id: &str) -> Entry {
        Entry {
            delivery_id: id.to_string(),
            event: EventKind::Result,
            target: Target::Command {
                argv: vec!["/bin/true".into()],
                timeout_ms: 1000,
            },
            body: "{\"status\":\"published\"}".into(),
            env: BTreeMap::from([("TOKDROP_STATUS".into(), "published".into())]),
            item_id: Some("x".into()),
            created_at: jiff::Timestamp::UNIX_EPOCH,
            attempts: 0,
        }
    }

    /// Entries round-trip through their files, are listed by prefix, and removing one twice
    /// is fine (a delivery that raced a restart).
    #[test]
    fn write_list_read_remove() {
        let dir = tempfile::tempdir().expect("tempdir");
        let outbox = Outbox::new(dir.path());
        assert_eq!(outbox.list("").expect("list"), Vec::<String>::new());
        let a = entry("result-a");
        let mut b = entry("result-b");
        b.target = Target::Webhook {
            url: "https://h.example/".into(),
            secret_file: "/s".into(),
            timeout_ms: 1000,
        };
        let na = outbox.write(&a).expect("write");
        let nb = outbox.write(&b).expect("write");
        assert!(na.starts_with("result-a.on_result-"), "{na}");
        assert!(nb.starts_with("result-b.webhook-"), "{nb}");
        assert_eq!(outbox.list("").expect("list"), vec![na.clone(), nb.clone()]);
        assert_eq!(outbox.list("result-b.").expect("list"), vec![nb.clone()]);
        assert_eq!(outbox.read(&na).expect("read"), Some(a.clone()));
        // Writing the same notification again replaces its file: still one entry.
        assert_eq!(outbox.write(&a).expect("write"), na);
        assert_eq!(outbox.list("result-a").expect("list").len(), 1);
        outbox.remove(&na).expect("remove");
        outbox.remove(&na).expect("removing twice is fine");
        assert_eq!(outbox.read(&na).expect("read"), None);
        assert_eq!(outbox.list("").expect("list"), vec![nb]);
    }

    /// A torn or foreign file is moved aside with an error naming it, and never listed again.
    #[test]
    fn a_corrupt_entry_is_moved_aside() {
        let dir = tempfile::tempdir().expect("tempdir");
        let outbox = Outbox::new(dir.path());
        fs::create_dir_all(outbox.dir()).expect("mkdir");
        for (name, text) in [
            ("torn.json", "{\"delivery_id\": \"x\", "),
            ("odd.json", "[]"),
        ] {
            fs::write(outbox.dir().join(name), text).expect("write");
            let err = outbox.read(name).expect_err("corrupt");
            let msg = err.to_string();
            assert!(msg.contains(name) && msg.contains("moved aside"), "{msg}");
            assert!(outbox.dir().join(format!("{name}.corrupt")).exists());
        }
        assert_eq!(outbox.list("").expect("list"), Vec::<String>::new());
    }

    /// Ids from elsewhere cannot climb out of the folder.
    #[test]
    fn file_names_are_safe() {
        let mut e = entry("../../etc/passwd");
        e.delivery_id = "../x y".into();
        let name = e.file_name();
        assert!(name.starts_with("___x_y.on_result-"), "{name}");
        assert!(!name.contains('/'));
    }
}
