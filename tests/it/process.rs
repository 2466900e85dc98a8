//! `tokdrop run` as a child process: its log lines (stderr) to wait on, signals, exit status.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

pub struct Tokdrop {
    pub child: Child,
    lines: mpsc::Receiver<String>,
}

impl Tokdrop {
    /// Runs `tokdrop ARGS` in `dir` with info-level logs on stderr (plus `envs`).
    pub fn spawn(dir: &Path, args: &[&str], envs: &[(&str, String)]) -> Tokdrop {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_tokdrop"));
        cmd.args(args);
        Self::launch(cmd, dir, envs)
    }

    /// As [`spawn`](Self::spawn), with the file-mode creation mask `umask` (e.g. `"077"`, as
    /// the packaged unit's `UMask=0077`).
    pub fn spawn_with_umask(
        dir: &Path,
        args: &[&str],
        envs: &[(&str, String)],
        umask: &str,
    ) -> Tokdrop {
        let mut cmd = Command::new("sh");
        cmd.arg("-c")
            .arg(format!("umask {umask} && exec \"$0\" \"$@\""))
            .arg(env!("CARGO_BIN_EXE_tokdrop"))
            .args(args);
        Self::launch(cmd, dir, envs)
    }

    fn launch(mut cmd: Command, dir: &Path, envs: &[(&str, String)]) -> Tokdrop {
        let mut child = cmd
            .current_dir(dir)
            .env("RUST_LOG", "info,tokdrop::access=warn")
            .env_remove("TOKDROP_CONFIG")
            .env_remove("NOTIFY_SOCKET")
            .envs(envs.iter().map(|(k, v)| (*k, v.as_str())))
            .stderr(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .expect("start tokdrop");
        let (tx, lines) = mpsc::channel();
        let stderr = child.stderr.take().expect("stderr");
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Tokdrop { child, lines }
    }

    /// Waits for a log line containing `needle`; returns it.
    pub fn wait_line(&self, needle: &str, secs: u64) -> String {
        let deadline = std::time::Instant::now() + Duration::from_secs(secs);
        let mut recent: Vec<String> = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(l) if l.contains(needle) => return l,
                Ok(l) => {
                    recent.push(l);
                    if recent.len() > 20 {
                        recent.remove(0);
                    }
                }
                Err(_) => panic!(
                    "no log line with {needle:?} within {secs}s; last lines:\n{}",
                    recent.join("\n")
                ),
            }
        }
    }

    /// Like [`Self::wait_line`], but `None` when no such line came within `secs`.
    pub fn try_line(&self, needle: &str, secs: u64) -> Option<String> {
        let deadline = std::time::Instant::now() + Duration::from_secs(secs);
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(l) if l.contains(needle) => return Some(l),
                Ok(_) => {}
                Err(_) => return None,
            }
        }
    }

    /// Waits until `item` finished; returns its result file's text.
    pub fn finished(&self, item: &str, secs: u64) -> String {
        let line = self.wait_line(&format!("finished item={item} "), secs);
        let path = line.split("result=").nth(1).expect("result path").trim();
        std::fs::read_to_string(path).expect("result file")
    }

    /// Sends a signal (`"HUP"`, `"TERM"`, …).
    pub fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .args([&format!("-{name}"), &self.child.id().to_string()])
            .status()
            .expect("kill");
        assert!(status.success(), "kill -{name}");
    }

    /// SIGTERM; asserts the exit status is 0.
    pub fn stop(mut self) {
        self.signal("TERM");
        let status = self.child.wait().expect("exit");
        assert!(status.success(), "tokdrop exits 0 on SIGTERM: {status:?}");
    }
}

/// A test that fails half-way must not leave the service running.
impl Drop for Tokdrop {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
