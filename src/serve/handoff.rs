//! The Web-platform login's hand-over (SPEC §1 `auth login`): TikTok redirects the browser to
//! `public_url`'s callback path, which tokdrop's media server answers — the running service's,
//! or one `auth login` starts itself when the service is stopped. The server passes the
//! redirect's query to the waiting `auth login` through `<state_dir>/login/`:
//!
//! - `auth login` registers `<sha256(state)>.waiting` before it prints the authorize URL;
//! - the server writes the query to `<sha256(state)>.answer` only when that file exists, so an
//!   answer nobody waits for (an old tab, a forged request) writes nothing;
//! - `auth login` reads the answer, checks `state` itself and removes both files.
//!
//! The PKCE verifier and the state stay in the `auth login` process; the folder is the service
//! user's, mode 0700, files 0600. Blocking std I/O on small files.

use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

/// The hand-over folder under `state_dir`.
pub const DIR: &str = "login";
/// Longest query string accepted from the browser.
const MAX_QUERY: usize = 4096;

/// One `auth login` waiting for its redirect; removes its files when dropped.
#[derive(Debug)]
pub struct Waiting {
    waiting: PathBuf,
    answer: PathBuf,
}

/// What the server did with a redirect.
#[derive(Debug, PartialEq, Eq)]
pub enum Delivered {
    /// Handed to the waiting `auth login`.
    Handed,
    /// No `auth login` waits for this state (or it already has an answer).
    NobodyWaiting,
}

fn names(state_dir: &Path, state: &str) -> (PathBuf, PathBuf) {
    let dir = state_dir.join(DIR);
    let key = hex::encode(Sha256::digest(state.as_bytes()));
    (
        dir.join(format!("{key}.waiting")),
        dir.join(format!("{key}.answer")),
    )
}

impl Waiting {
    /// Registers a login with `state` under `state_dir`.
    pub fn register(state_dir: &Path, state: &str) -> io::Result<Waiting> {
        let dir = state_dir.join(DIR);
        match fs::DirBuilder::new().mode(0o700).create(&dir) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(e),
        }
        let (waiting, answer) = names(state_dir, state);
        OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&waiting)?;
        Ok(Waiting { waiting, answer })
    }

    /// The redirect's query string, once the server has handed it over.
    pub fn answer(&self) -> io::Result<Option<String>> {
        match fs::read_to_string(&self.answer) {
            Ok(query) => Ok(Some(query)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }
}

impl Drop for Waiting {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.waiting);
        let _ = fs::remove_file(&self.answer);
    }
}

/// Server side: hands `query` (the redirect's query string) to the `auth login` waiting for
/// its `state`, written atomically and never over an earlier answer.
pub fn deliver(state_dir: &Path, query: &str) -> io::Result<Delivered> {
    if query.len() > MAX_QUERY {
        return Ok(Delivered::NobodyWaiting);
    }
    let Some(state) = url::form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == "state")
        .map(|(_, v)| v.into_owned())
    else {
        return Ok(Delivered::NobodyWaiting);
    };
    let (waiting, answer) = names(state_dir, &state);
    match fs::symlink_metadata(&waiting) {
        Ok(m) if m.file_type().is_file() => {}
        _ => return Ok(Delivered::NobodyWaiting),
    }
    let tmp = answer.with_extension("tmp");
    let _ = fs::remove_file(&tmp);
    let mut f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(&tmp)?;
    f.write_all(query.as_bytes())?;
    f.sync_all()?;
    drop(f);
    // A hard link cannot replace an existing answer: the first redirect wins.
    let linked = fs::hard_link(&tmp, &answer);
    let _ = fs::remove_file(&tmp);
    match linked {
        Ok(()) => Ok(Delivered::Handed),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(Delivered::NobodyWaiting),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_waiting_login_gets_an_answer_and_only_the_first() {
        let dir = tempfile::tempdir().expect("tmp");
        assert_eq!(
            deliver(dir.path(), "code=c&state=nobody").expect("deliver"),
            Delivered::NobodyWaiting
        );
        let w = Waiting::register(dir.path(), "s-1.~x").expect("register");
        assert_eq!(w.answer().expect("read"), None);
        assert_eq!(
            deliver(dir.path(), "code=first&state=s-1.~x").expect("deliver"),
            Delivered::Handed
        );
        assert_eq!(
            deliver(dir.path(), "code=second&state=s-1.~x").expect("deliver"),
            Delivered::NobodyWaiting
        );
        assert_eq!(
            w.answer().expect("read").as_deref(),
            Some("code=first&state=s-1.~x")
        );
        drop(w);
        assert_eq!(
            fs::read_dir(dir.path().join(DIR)).expect("dir").count(),
            0,
            "nothing left behind"
        );
    }
}
