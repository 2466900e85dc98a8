//! Token files: `<tokens_dir>/<account>.json` in the SPEC §6 format, mode 0600, replaced
//! atomically (temp file in the same folder, fsync, rename, fsync the folder), and the
//! cross-process lock `<account>.lock` held around read-refresh-write. Blocking std I/O: the
//! token manager calls these from `spawn_blocking`. Deciding *when* to refresh is
//! [`super::tokens`]' job.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};

use super::pkce::random_unreserved;
use super::secret::Secret;
use super::wire::TokenResponse;

/// One account's tokens as stored (SPEC §6). Secrets print as `[redacted]` in `Debug`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenFile {
    pub open_id: String,
    /// Comma-separated granted scopes, as TikTok sends them.
    pub scope: String,
    #[serde(serialize_with = "Secret::serialize_exposed")]
    pub access_token: Secret,
    pub access_expires_at: Timestamp,
    #[serde(serialize_with = "Secret::serialize_exposed")]
    pub refresh_token: Secret,
    pub refresh_expires_at: Timestamp,
}

impl TokenFile {
    /// The file content for a fresh grant received at `now` (lifetimes are remaining seconds).
    /// An empty `scope` in a refresh answer keeps the previously granted scopes.
    pub fn from_grant(grant: &TokenResponse, now: Timestamp, previous: Option<&TokenFile>) -> Self {
        let now = Timestamp::from_second(now.as_second()).unwrap_or(now);
        let at = |secs: i64| {
            now.checked_add(SignedDuration::from_secs(secs.max(0)))
                .unwrap_or(Timestamp::MAX)
        };
        let scope = match (grant.scope.trim(), previous) {
            ("", Some(prev)) => prev.scope.clone(),
            (scope, _) => scope.to_string(),
        };
        Self {
            open_id: grant.open_id.clone(),
            scope,
            access_token: grant.access_token.clone(),
            access_expires_at: at(grant.expires_in),
            refresh_token: grant.refresh_token.clone(),
            refresh_expires_at: at(grant.refresh_expires_in),
        }
    }

    pub fn scopes(&self) -> Vec<String> {
        super::wire::split_scopes(&self.scope)
    }
}

/// A token file problem. Never shows file content (a parse error only gives the position).
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(
        "account name {account:?} cannot name a token file (use letters, digits, '.', '_', '-', not starting with '.')"
    )]
    InvalidAccount { account: String },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "{path}: not a valid token file (line {line}, column {column}); run `tokdrop auth login` to write a new one"
    )]
    Corrupt {
        path: PathBuf,
        line: usize,
        column: usize,
    },
}

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> StoreError + '_ {
    move |source| StoreError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Holds `<account>.lock` locked until dropped (closing the file releases the lock).
#[derive(Debug)]
pub struct AccountLock {
    _file: File,
}

/// The token folder.
#[derive(Debug, Clone)]
pub struct TokenStore {
    dir: PathBuf,
}

impl TokenStore {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn checked(account: &str) -> Result<&str, StoreError> {
        let ok = !account.is_empty()
            && account.len() <= 100
            && !account.starts_with('.')
            && account
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
        if ok {
            Ok(account)
        } else {
            Err(StoreError::InvalidAccount {
                account: account.to_string(),
            })
        }
    }

    pub fn path(&self, account: &str) -> Result<PathBuf, StoreError> {
        Ok(self.dir.join(format!("{}.json", Self::checked(account)?)))
    }

    fn ensure_dir(&self) -> Result<(), StoreError> {
        if !self.dir.is_dir() {
            fs::create_dir_all(&self.dir).map_err(io_error(&self.dir))?;
            fs::set_permissions(&self.dir, fs::Permissions::from_mode(0o700))
                .map_err(io_error(&self.dir))?;
        }
        Ok(())
    }

    /// Takes the account's cross-process lock, waiting for another holder (blocking).
    pub fn lock(&self, account: &str) -> Result<AccountLock, StoreError> {
        self.ensure_dir()?;
        let path = self.dir.join(format!("{}.lock", Self::checked(account)?));
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o600)
            .open(&path)
            .map_err(io_error(&path))?;
        file.lock().map_err(io_error(&path))?;
        Ok(AccountLock { _file: file })
    }

    /// The account's tokens; `None` when it never logged in.
    pub fn load(&self, account: &str) -> Result<Option<TokenFile>, StoreError> {
        let path = self.path(account)?;
        let bytes = match fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io_error(&path)(e)),
        };
        serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| StoreError::Corrupt {
                line: e.line(),
                column: e.column(),
                path,
            })
    }

    /// Replaces the account's file atomically with mode 0600.
    pub fn save(&self, account: &str, tokens: &TokenFile) -> Result<(), StoreError> {
        self.ensure_dir()?;
        let path = self.path(account)?;
        let suffix = random_unreserved(12).unwrap_or_else(|_| std::process::id().to_string());
        let tmp = self.dir.join(format!(".{account}.json.{suffix}.tmp"));
        let write = || -> std::io::Result<()> {
            let mut file = OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&tmp)?;
            let json = serde_json::to_vec(tokens).map_err(std::io::Error::other)?;
            file.write_all(&json)?;
            file.write_all(b"\n")?;
            file.sync_all()?;
            fs::rename(&tmp, &path)?;
            File::open(&self.dir)?.sync_all()
        };
        write().map_err(|e| {
            let _ = fs::remove_file(&tmp);
            io_error(&path)(e)
        })
    }

    /// Deletes the account's file; `false` when there was none.
    pub fn delete(&self, account: &str) -> Result<bool, StoreError> {
        let path = self.path(account)?;
        match fs::remove_file(&path) {
            Ok(()) => {
                File::open(&self.dir)
                    .and_then(|d| d.sync_all())
                    .map_err(io_error(&self.dir))?;
                Ok(true)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(io_error(&path)(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> TokenFile {
        TokenFile {
            open_id: "open-1".into(),
            scope: "user.info.basic,video.publish".into(),
            access_token: Secret::new("act.SECRET1"),
            access_expires_at: "2026-11-26T12:00:00Z".parse().expect("ts"),
            refresh_token: Secret::new("rft.SECRET2"),
            refresh_expires_at: "2027-05-25T10:00:00Z".parse().expect("ts"),
        }
    }

    /// The file is exactly SPEC §6's shape, mode 0600, and reads back equal.
    #[test]
    fn save_writes_the_spec_format_with_mode_0600() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = TokenStore::new(dir.path().join("tokens"));
        store.save("default", &sample()).expect("save");
        let path = store.path("default").expect("path");
        let text = fs::read_to_string(&path).expect("read");
        assert_eq!(
            text.trim_end(),
            r#"{"open_id":"open-1","scope":"user.info.basic,video.publish","access_token":"act.SECRET1","access_expires_at":"2026-11-26T12:00:00Z","refresh_token":"rft.SECRET2","refresh_expires_at":"2027-05-25T10:00:00Z"}"#
        );
        let mode = fs::metadata(&path).expect("meta").permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let dir_mode = fs::metadata(store.dir())
            .expect("meta")
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(dir_mode, 0o700);
        assert_eq!(store.load("default").expect("load"), Some(sample()));
        let leftovers: Vec<_> = fs::read_dir(store.dir())
            .expect("list")
            .filter_map(Result::ok)
            .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
            .collect();
        assert!(leftovers.is_empty());
    }

    /// Missing files read as "not logged in"; corrupt ones never echo their content.
    #[test]
    fn load_missing_and_corrupt() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = TokenStore::new(dir.path());
        assert_eq!(store.load("nobody").expect("load"), None);
        fs::write(
            store.path("bad").expect("path"),
            r#"{"open_id":"o","access_token":12, "refresh_token":"rft.LEAK"}"#,
        )
        .expect("write");
        let err = store.load("bad").expect_err("corrupt");
        assert!(matches!(err, StoreError::Corrupt { .. }));
        assert!(!err.to_string().contains("LEAK"), "{err}");
        assert!(!format!("{err:?}").contains("LEAK"));
        assert!(store.delete("bad").expect("delete"));
        assert!(!store.delete("bad").expect("delete"));
    }

    /// Account names that could escape the folder or hide the file are refused.
    #[test]
    fn account_names_are_checked() {
        let store = TokenStore::new("/tmp/x");
        for bad in ["", "../x", "a/b", ".hidden", "a b", "é"] {
            assert!(store.path(bad).is_err(), "{bad:?}");
        }
        for good in ["default", "shop-2", "a.b_c"] {
            assert!(store.path(good).is_ok(), "{good:?}");
        }
    }

    /// A second lock on the same account waits until the first is released.
    #[test]
    fn lock_excludes_a_second_holder() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = TokenStore::new(dir.path());
        let first = store.lock("default").expect("lock");
        let (tx, rx) = std::sync::mpsc::channel();
        let store2 = store.clone();
        let waiter = std::thread::spawn(move || {
            let _second = store2.lock("default").expect("lock");
            tx.send(()).expect("send");
        });
        assert!(
            rx.recv_timeout(std::time::Duration::from_millis(200))
                .is_err()
        );
        drop(first);
        rx.recv_timeout(std::time::Duration::from_secs(5))
            .expect("second lock after release");
        waiter.join().expect("thread");
    }

    /// Lifetimes from a grant become absolute whole-second times; empty scope keeps the old one.
    #[test]
    fn from_grant_computes_expiry() {
        let grant: TokenResponse = serde_json::from_str(
            r#"{"open_id":"o","scope":"","access_token":"a","expires_in":7200,"refresh_token":"r","refresh_expires_in":15552000}"#,
        )
        .expect("grant");
        let now: Timestamp = "2026-11-26T10:00:00.75Z".parse().expect("ts");
        let file = TokenFile::from_grant(&grant, now, Some(&sample()));
        assert_eq!(file.access_expires_at.to_string(), "2026-11-26T12:00:00Z");
        assert_eq!(file.refresh_expires_at.to_string(), "2027-05-25T10:00:00Z");
        assert_eq!(file.scope, "user.info.basic,video.publish");
    }
}
