//! The notification keys of `watch.yaml` (`on_result`, `webhook`; globally or per watch folder,
//! a folder's value replacing the global one): how serde reads them and how they are checked.
//! Delivering them is `crate::lifecycle::notifications`' business.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use super::checker::Checker;
use crate::support::diagnostic::display_path;
use crate::support::duration::HumanDuration;

/// `on_result:` as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawOnResult {
    pub command: CommandLine,
    #[serde(default = "default_command_timeout")]
    pub timeout: HumanDuration,
}

/// `webhook:` as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawWebhook {
    pub url: String,
    pub secret_file: PathBuf,
    #[serde(default = "default_webhook_timeout")]
    pub timeout: HumanDuration,
}

fn default_command_timeout() -> HumanDuration {
    HumanDuration(Duration::from_secs(30))
}
fn default_webhook_timeout() -> HumanDuration {
    HumanDuration(Duration::from_secs(10))
}

/// A command as Docker's `CMD` takes it: a list is the program and its arguments, run as they
/// are (no shell); a single string is a shell command line, run with `/bin/sh -c`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub enum CommandLine {
    Exec(Vec<String>),
    Shell(String),
}

impl<'de> Deserialize<'de> for CommandLine {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = CommandLine;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str(
                    "a list (program and arguments, no shell) or a string (run with /bin/sh -c)",
                )
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<CommandLine, E> {
                Ok(CommandLine::Shell(v.to_string()))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<CommandLine, A::Error> {
                let mut args = Vec::new();
                while let Some(a) = seq.next_element::<String>()? {
                    args.push(a);
                }
                Ok(CommandLine::Exec(args))
            }
        }
        d.deserialize_any(V)
    }
}

/// Where an item's notifications go (SPEC §2). Both are optional.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Hooks {
    pub on_result: Option<OnResult>,
    pub webhook: Option<Webhook>,
}

/// A command run once per finished item (and per account pause), the JSON on its stdin.
#[derive(Debug, Clone, PartialEq)]
pub struct OnResult {
    /// The program and its arguments; a shell line is `["/bin/sh", "-c", line, …]`. The
    /// program path is absolute when the config gave a path.
    pub argv: Vec<String>,
    pub timeout: Duration,
}

/// An HMAC-signed HTTPS POST of the same JSON.
#[derive(Debug, Clone, PartialEq)]
pub struct Webhook {
    pub url: url::Url,
    /// Holds the HMAC key; read at each delivery, never kept in the config.
    pub secret_file: PathBuf,
    pub timeout: Duration,
}

/// Checks the global (`prefix` empty) or a folder's (`watch[1].`) notification keys.
pub(super) fn check(
    c: &mut Checker,
    prefix: &str,
    on_result: Option<RawOnResult>,
    webhook: Option<RawWebhook>,
) -> Hooks {
    Hooks {
        on_result: on_result.map(|r| check_on_result(c, prefix, r)),
        webhook: webhook.map(|w| check_webhook(c, prefix, w)),
    }
}

/// The hooks of a folder: each of its own keys replaces the global one.
pub(super) fn merged(global: &Hooks, own: Hooks) -> Hooks {
    Hooks {
        on_result: own.on_result.or_else(|| global.on_result.clone()),
        webhook: own.webhook.or_else(|| global.webhook.clone()),
    }
}

fn check_on_result(c: &mut Checker, prefix: &str, raw: RawOnResult) -> OnResult {
    let key = format!("{prefix}on_result.command");
    let argv = match raw.command {
        CommandLine::Shell(line) => {
            if line.trim().is_empty() {
                c.err(
                    &key,
                    "the command is empty",
                    "write a shell line, or a list: [\"/usr/local/bin/notify\", \"arg\"]",
                );
            }
            vec![
                "/bin/sh".to_string(),
                "-c".to_string(),
                line,
                "tokdrop-on-result".to_string(),
            ]
        }
        CommandLine::Exec(mut argv) => {
            match argv.first().cloned() {
                Some(program) if !program.is_empty() => {
                    if let Some(path) = check_program(c, &key, &program) {
                        argv[0] = path.to_string_lossy().into_owned();
                    }
                }
                _ => c.err(
                    &key,
                    "the command list is empty",
                    "give the program first, then its arguments: [\"/usr/local/bin/notify\", \"arg\"]",
                ),
            }
            argv
        }
    };
    let timeout = raw.timeout.0;
    if timeout < Duration::from_millis(100) || timeout > Duration::from_secs(3600) {
        c.err(
            format!("{prefix}on_result.timeout"),
            format!("timeout {} must be between 100ms and 1h", raw.timeout),
            "30s suits most notification commands",
        );
    }
    OnResult { argv, timeout }
}

/// A program given with a `/` is resolved against the config's folder; a bare name is looked up
/// in `$PATH`. Either must be an executable file. Returns the path to run.
fn check_program(c: &mut Checker, key: &str, program: &str) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let path = if program.contains('/') {
        c.path(Path::new(program))
    } else {
        let found = std::env::var_os("PATH").and_then(|paths| {
            std::env::split_paths(&paths)
                .map(|d| d.join(program))
                .find(|p| p.is_file())
        });
        match found {
            Some(_) => return None, // run by name, as the service's PATH finds it
            None => {
                c.err(
                    key,
                    format!("the program '{program}' is not found in PATH"),
                    "give its absolute path, e.g. /usr/local/bin/notify",
                );
                return None;
            }
        }
    };
    match std::fs::metadata(&path) {
        Ok(m) if m.is_file() && m.permissions().mode() & 0o111 != 0 => {}
        Ok(m) if m.is_file() => c.err(
            key,
            format!("{} is not executable", display_path(&path)),
            format!("chmod +x {}", display_path(&path)),
        ),
        _ => c.err(
            key,
            format!("the program {} does not exist", display_path(&path)),
            "fix the path (relative paths are relative to the config file's folder)",
        ),
    }
    Some(path)
}

fn check_webhook(c: &mut Checker, prefix: &str, raw: RawWebhook) -> Webhook {
    let key = format!("{prefix}webhook.url");
    let url = match url::Url::parse(&raw.url) {
        Ok(u) if u.host().is_some() => {
            match u.scheme() {
                "https" => {}
                "http" if is_loopback(&u) => {}
                "http" => c.err(
                    &key,
                    "a webhook must use https (http is allowed only for a loopback address)",
                    format!("write https://{}", raw.url.trim_start_matches("http://")),
                ),
                other => c.err(
                    &key,
                    format!("'{other}' is not https"),
                    "write the https address of the receiver",
                ),
            }
            if !u.username().is_empty() || u.password().is_some() {
                c.err(
                    &key,
                    "the webhook URL must not hold a user name or password",
                    "the receiver checks the X-Tokdrop-Signature header instead",
                );
            }
            u
        }
        _ => {
            c.err(
                &key,
                format!("'{}' is not a URL", raw.url),
                "write the https address of the receiver, e.g. https://hooks.example.com/tokdrop",
            );
            url::Url::parse("https://invalid.invalid/").expect("constant URL parses")
        }
    };
    let secret_key = format!("{prefix}webhook.secret_file");
    let secret_file = c.path(&raw.secret_file);
    // systemd credentials exist only while the service runs: do not demand them here.
    if !secret_file.starts_with("/run/credentials") {
        match std::fs::read(&secret_file) {
            Ok(bytes) if bytes.trim_ascii().is_empty() => c.err(
                &secret_key,
                format!("the secret file {} is empty", display_path(&secret_file)),
                "put a long random secret in it: head -c 32 /dev/urandom | base64 > FILE; chmod 600 FILE",
            ),
            Ok(_) => {}
            Err(e) => c.err(
                &secret_key,
                format!(
                    "cannot read the secret file {}: {e}",
                    display_path(&secret_file)
                ),
                "create it (mode 0600, owned by the user tokdrop runs as) with a long random secret",
            ),
        }
    }
    let timeout = raw.timeout.0;
    if timeout < Duration::from_millis(100) || timeout > Duration::from_secs(600) {
        c.err(
            format!("{prefix}webhook.timeout"),
            format!("timeout {} must be between 100ms and 10m", raw.timeout),
            "10s suits most receivers",
        );
    }
    Webhook {
        url,
        secret_file,
        timeout,
    }
}

fn is_loopback(u: &url::Url) -> bool {
    match u.host() {
        Some(url::Host::Domain(d)) => d == "localhost",
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}
