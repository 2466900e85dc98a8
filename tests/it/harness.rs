//! A temp folder laid out like a user's: `watch.yaml`, `inbox/`, a client secret; helpers to
//! drop files and run `tokdrop` in it.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Sample media made by ffmpeg, committed under tests/data/media.
pub fn sample(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/media")
        .join(name)
}

/// A TCP port free on loopback right now (for a server the test starts as a child).
/// A reqwest client builder with ring installed as rustls's provider (reqwest is built
/// without one of its own, as tokdrop is).
pub fn http() -> reqwest::ClientBuilder {
    tokdrop::tiktok::client::install_crypto_provider();
    reqwest::Client::builder()
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

pub struct Dir {
    pub tmp: tempfile::TempDir,
}

/// What a `tokdrop` run printed and returned.
pub struct Output {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Output {
    /// stdout and stderr together, for assertions that do not care which.
    pub fn all(&self) -> String {
        format!("{}{}", self.stdout, self.stderr)
    }
}

pub const CONFIG: &str = "\
state_dir: ./state
server:
  listen: 127.0.0.1:8443
  public_url: https://media.example.com/
  tls: {self_signed: true}
tiktok:
  client_key: key
  client_secret_file: ./secret
watch:
  - path: ./inbox
    mode: MODE
    done_dir: ./done
    failed_dir: ./failed
";

impl Dir {
    /// A folder with `inbox/`, `secret` and a valid `watch.yaml` in the given mode.
    pub fn new(mode: &str) -> Self {
        let d = Self::empty();
        d.write("secret", "s");
        fs::create_dir_all(d.path("inbox")).expect("inbox");
        d.write("watch.yaml", &CONFIG.replace("MODE", mode));
        d
    }

    /// A folder with `inbox/` and `secret` but no config.
    pub fn empty() -> Self {
        let d = Self {
            tmp: tempfile::tempdir().expect("tempdir"),
        };
        fs::create_dir_all(d.path("inbox")).expect("inbox");
        d.write("secret", "s");
        d
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.tmp.path().join(rel)
    }

    pub fn write_bytes(&self, rel: &str, content: &[u8]) {
        let p = self.path(rel);
        fs::create_dir_all(p.parent().expect("has parent")).expect("mkdir");
        fs::write(p, content).expect("write");
    }

    pub fn write(&self, rel: &str, content: &str) {
        let p = self.path(rel);
        fs::create_dir_all(p.parent().expect("has parent")).expect("mkdir");
        fs::write(p, content).expect("write");
    }

    /// Copies a committed sample into the folder.
    pub fn copy_sample(&self, sample_name: &str, rel: &str) {
        let p = self.path(rel);
        fs::create_dir_all(p.parent().expect("has parent")).expect("mkdir");
        fs::copy(sample(sample_name), p).expect("copy sample");
    }

    /// Runs `tokdrop ARGS` with this folder as the working directory.
    pub fn run(&self, args: &[&str]) -> Output {
        let out = Command::new(env!("CARGO_BIN_EXE_tokdrop"))
            .args(args)
            .current_dir(self.tmp.path())
            .env_remove("TOKDROP_CONFIG")
            .env_remove("TOKDROP_CLIENT_SECRET")
            .output()
            .expect("run tokdrop");
        Output {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }
}
