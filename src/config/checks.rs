//! Semantic checks of a parsed `watch.yaml`: paths resolved against the config's folder and
//! checked, URLs and addresses parsed, folder nesting refused. Returns every problem at once,
//! keyed by path (`watch[1].done_dir`) so the caller can point at the line.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use crate::support::paths::absolute;
use std::time::Duration;

use globset::{Glob, GlobSet, GlobSetBuilder};

use super::checker::Checker;
use super::notifications::{self, Hooks};
use super::raw::{RawConfig, RawServer, RawTiktok, RawWatch};
use super::{
    Config, Listen, LogConfig, SecretSource, ServerConfig, TiktokConfig, Tls, WatchConfig,
};
use crate::content::sidecar::PrivacyLevel;
use crate::support::diagnostic::{Diagnostic, display_path};
use crate::support::yaml::did_you_mean;

/// Scopes TikTok knows that matter to tokdrop (tiktok-api.md §3.1).
pub const KNOWN_SCOPES: [&str; 6] = [
    "user.info.basic",
    "user.info.profile",
    "user.info.stats",
    "video.publish",
    "video.upload",
    "video.list",
];

/// Checks `raw` (read from `file`) and builds the [`Config`].
pub fn check(file: &Path, raw: RawConfig) -> Result<Config, Vec<Diagnostic>> {
    let base = absolute(file)
        .parent()
        .map_or_else(|| PathBuf::from("/"), Path::to_path_buf);
    let mut c = Checker::new(file, base);
    let state_dir = c.path(&raw.state_dir);
    if state_dir.exists() && !state_dir.is_dir() {
        c.err(
            "state_dir",
            format!("{} exists but is not a folder", display_path(&state_dir)),
            "point state_dir at a folder (it is created if missing)",
        );
    }
    let log = LogConfig {
        dir: raw.log.dir.as_deref().map(|d| c.path(d)),
        rotation: raw.log.rotation,
        keep: raw.log.keep,
        format: raw.log.format,
        level: raw.log.level,
    };
    if log.keep == 0 {
        c.err(
            "log.keep",
            "keep must be at least 1",
            "keep: 14 keeps two weeks of daily files",
        );
    }
    let server = check_server(&mut c, raw.server);
    let admin = raw
        .admin
        .and_then(|a| check_admin(&mut c, &a.listen, &server.listen));
    let tiktok = check_tiktok(&mut c, raw.tiktok);
    let hooks = notifications::check(&mut c, "", raw.on_result, raw.webhook);
    let watch = check_watch_list(&mut c, raw.watch, &state_dir, &hooks);
    check_system_folders(&mut c, &state_dir, log.dir.as_deref(), &watch);
    if let Some(dir) = &server.verification_dir {
        check_verification_dir(&mut c, dir, &state_dir, &watch);
    }
    let mut tiktok = tiktok;
    if tiktok.scopes.is_empty() {
        // Not set: exactly what the folders need (and the profile, for post links).
        tiktok.scopes = crate::config::scopes_for(&watch);
    }
    let scopes_known = tiktok
        .scopes
        .iter()
        .all(|s| KNOWN_SCOPES.contains(&s.as_str()));
    for w in watch.iter().filter(|_| scopes_known) {
        let needed = crate::config::mode_scope(w.mode);
        if !tiktok.scopes.iter().any(|s| s == needed) {
            c.err(
                format!("watch[{}].mode", w.index),
                format!(
                    "mode {} needs the TikTok scope {needed}, which tiktok.scopes does not list",
                    w.mode
                ),
                format!("add {needed} to tiktok.scopes (and log in again so TikTok grants it)"),
            );
        }
    }
    if c.problems.is_empty() {
        Ok(Config {
            file: file.to_path_buf(),
            state_dir,
            log,
            server,
            tiktok,
            hooks,
            watch,
            admin,
        })
    } else {
        Err(c.problems)
    }
}

/// `admin.listen`: an address with a port, never the media server's port (the media port is
/// public; metrics and health are for the operator).
fn check_admin(c: &mut Checker, listen: &str, media: &Listen) -> Option<SocketAddr> {
    let Ok(addr) = listen.parse::<SocketAddr>() else {
        c.err(
            "admin.listen",
            format!("'{listen}' is not an address with a port"),
            "write e.g. 127.0.0.1:9469 (loopback: only this machine can scrape it)",
        );
        return None;
    };
    if let Listen::Addr(m) = media
        && m.port() == addr.port()
        && m.port() != 0
        && (m.ip() == addr.ip() || m.ip().is_unspecified() || addr.ip().is_unspecified())
    {
        c.err(
            "admin.listen",
            format!("{addr} is the media server's address (server.listen), which TikTok and the internet reach"),
            "give the admin listener its own port, e.g. 127.0.0.1:9469",
        );
        return None;
    }
    Some(addr)
}

fn check_server(c: &mut Checker, raw: RawServer) -> ServerConfig {
    let listen = if raw.listen == "systemd" {
        Listen::Systemd
    } else {
        match raw.listen.parse::<SocketAddr>() {
            Ok(a) => Listen::Addr(a),
            Err(_) => {
                c.err(
                    "server.listen",
                    format!("'{}' is not an address with a port", raw.listen),
                    "write e.g. 127.0.0.1:8443 or [::]:443, or 'systemd' for socket activation",
                );
                Listen::Addr(SocketAddr::from(([127, 0, 0, 1], 0)))
            }
        }
    };
    let public_url = check_public_url(c, &raw.public_url);
    let tls = match raw.tls {
        None => {
            if !matches!(listen, Listen::Addr(a) if a.ip().is_loopback()) {
                c.err(
                    "server.tls",
                    "without a tls block the server speaks plain HTTP, which is only allowed on a loopback listen address",
                    "add tls (cert and key, or self_signed: true for tests), or listen on 127.0.0.1 behind a TLS-terminating proxy",
                );
            }
            None
        }
        Some(t) => match (t.cert, t.key, t.self_signed) {
            (Some(cert), Some(key), false) => Some(Tls::Files {
                cert: c.existing_file("server.tls.cert", &cert),
                key: c.existing_file("server.tls.key", &key),
            }),
            (None, None, true) => Some(Tls::SelfSigned),
            (Some(_), Some(_), true) => {
                c.err(
                    "server.tls.self_signed",
                    "self_signed: true and cert/key are both set",
                    "use either cert + key (real certificate) or self_signed: true (sandbox and tests), not both",
                );
                None
            }
            (cert, _, _) => {
                let missing = if cert.is_none() { "cert" } else { "key" };
                c.err(
                    format!("server.tls.{missing}"),
                    format!("tls needs both cert and key; {missing} is missing"),
                    "give both PEM files (e.g. fullchain.pem and privkey.pem), or self_signed: true for the sandbox",
                );
                None
            }
        },
    };
    let link_ttl = raw.link_ttl.0;
    if link_ttl < Duration::from_secs(60) {
        c.err(
            "server.link_ttl",
            format!(
                "link_ttl {} is too short for TikTok to fetch a file",
                raw.link_ttl
            ),
            "use at least 1m; 2h covers TikTok's 1-hour download limit",
        );
    }
    let verification_dir = raw.verification_dir.map(|d| {
        let abs = c.path(&d);
        if !abs.is_dir() {
            c.err(
                "server.verification_dir",
                format!("the folder {} does not exist", display_path(&abs)),
                "create it and put TikTok's URL-prefix verification file in it, or remove the key",
            );
        }
        abs
    });
    ServerConfig {
        listen,
        public_url,
        tls,
        link_ttl,
        verification_dir,
    }
}

fn check_public_url(c: &mut Checker, text: &str) -> url::Url {
    let fallback = || url::Url::parse("https://invalid.invalid/").expect("constant URL parses");
    let Ok(mut u) = url::Url::parse(text) else {
        c.err(
            "server.public_url",
            format!("'{text}' is not a URL"),
            "write the https address TikTok fetches from, e.g. https://media.example.com/",
        );
        return fallback();
    };
    let key = "server.public_url";
    if u.scheme() != "https" {
        c.err(
            key,
            format!("public_url must use https, not {}", u.scheme()),
            "TikTok only pulls media over https; put a TLS-terminating proxy in front if tokdrop speaks plain HTTP",
        );
    }
    match u.host() {
        Some(url::Host::Domain(_)) => {}
        Some(_) => c.err(
            key,
            "public_url uses an IP address; TikTok requires a host name",
            "use a domain name you verified in the TikTok developer portal",
        ),
        None => c.err(
            key,
            "public_url has no host",
            "e.g. https://media.example.com/",
        ),
    }
    if u.query().is_some() || u.fragment().is_some() || !u.username().is_empty() {
        c.err(
            key,
            "public_url must not have a query, fragment or user name",
            "give a plain prefix like https://media.example.com/tokdrop/",
        );
    }
    if !u.path().ends_with('/') {
        let p = format!("{}/", u.path());
        u.set_path(&p);
    }
    u
}

fn check_tiktok(c: &mut Checker, raw: RawTiktok) -> TiktokConfig {
    if raw.client_key.trim().is_empty() {
        c.err(
            "tiktok.client_key",
            "client_key is empty",
            "copy the Client key of your app from the TikTok developer portal",
        );
    }
    let client_secret = match &raw.client_secret_file {
        Some(p) => {
            let abs = c.path(p);
            // systemd credentials exist only while the service runs: do not demand them here.
            if !abs.starts_with("/run/credentials") && !abs.is_file() {
                c.err(
                    "tiktok.client_secret_file",
                    format!("the file {} does not exist", display_path(&abs)),
                    "put the client secret in that file (mode 0600), or set TOKDROP_CLIENT_SECRET instead",
                );
            }
            SecretSource::File(abs)
        }
        None if std::env::var_os(super::SECRET_ENV).is_some_and(|v| !v.is_empty()) => {
            SecretSource::Env
        }
        // Under systemd, LoadCredential=client_secret:… (checked when the service starts).
        None => SecretSource::Credential,
    };
    check_redirect_uri(c, &raw.redirect_uri);
    let redirect_uri = raw.redirect_uri;
    let scopes = raw.scopes.unwrap_or_default();
    for (i, s) in scopes.iter().enumerate() {
        if !KNOWN_SCOPES.contains(&s.as_str()) {
            let help = match did_you_mean(s, &KNOWN_SCOPES) {
                Some(m) => format!("did you mean '{m}'?"),
                None => format!("known scopes: {}", KNOWN_SCOPES.join(", ")),
            };
            c.err(
                format!("tiktok.scopes[{i}]"),
                format!("unknown scope '{s}'"),
                help,
            );
        }
    }
    let mut base_url = |key: &str, text: &str| match url::Url::parse(text) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => u,
        _ => {
            c.err(
                key,
                format!("'{text}' is not an http(s) URL"),
                "leave it out to use TikTok's real address",
            );
            url::Url::parse("https://invalid.invalid/").expect("constant URL parses")
        }
    };
    let api_base = base_url("tiktok.api_base", &raw.api_base);
    let auth_base = base_url("tiktok.auth_base", &raw.auth_base);
    if raw.publish_timeout.0 < Duration::from_secs(60) {
        c.err(
            "tiktok.publish_timeout",
            format!("publish_timeout {} is too short", raw.publish_timeout),
            "TikTok's processing and moderation can take minutes to hours; 2h is a good value",
        );
    }
    // Only `transfer: auto` gives up on a pull that never starts; elsewhere the key is unused.
    if raw.transfer == super::Transfer::Auto
        && (raw.pull_start_timeout.0 < Duration::from_secs(1)
            || raw.pull_start_timeout.0 > raw.publish_timeout.0)
    {
        c.err(
            "tiktok.pull_start_timeout",
            format!(
                "pull_start_timeout {} must be at least 1s and no longer than publish_timeout",
                raw.pull_start_timeout
            ),
            "5m is a good value: TikTok usually starts fetching within a minute",
        );
    }
    let ca_file = raw.ca_file.map(|p| c.existing_file("tiktok.ca_file", &p));
    TiktokConfig {
        client_key: raw.client_key,
        client_secret,
        redirect_uri,
        scopes,
        api_base,
        auth_base,
        publish_timeout: raw.publish_timeout.0,
        pull_start_timeout: raw.pull_start_timeout.0,
        pkce_challenge: raw.pkce_challenge,
        ca_file,
        transfer: raw.transfer,
    }
}

/// TikTok's redirect rules (tiktok-api.md §3.2): loopback (desktop flow) needs http(s) and a
/// fixed port tokdrop can listen on; anything else must be https (web flow).
fn check_redirect_uri(c: &mut Checker, text: &str) {
    let key = "tiktok.redirect_uri";
    let Ok(u) = url::Url::parse(text) else {
        c.err(
            key,
            format!("'{text}' is not a URL"),
            "use a loopback address with a fixed port, e.g. http://127.0.0.1:3455/callback/ (register the same one in the TikTok portal)",
        );
        return;
    };
    let loopback = matches!(u.host_str(), Some("localhost" | "127.0.0.1"));
    if u.query().is_some() || u.fragment().is_some() {
        c.err(
            key,
            "redirect_uri must not have a query or fragment",
            "TikTok only accepts static redirect URIs",
        );
    }
    if text.len() >= 512 {
        c.err(
            key,
            "redirect_uri must be shorter than 512 characters",
            "use a shorter path",
        );
    }
    if loopback {
        if !matches!(u.scheme(), "http" | "https") {
            c.err(
                key,
                "redirect_uri must be http or https",
                "e.g. http://127.0.0.1:3455/callback/",
            );
        }
        if u.port().is_none() {
            c.err(
                key,
                "a loopback redirect_uri needs an explicit port for tokdrop to listen on",
                "e.g. http://127.0.0.1:3455/callback/ (TikTok's Desktop platform requires a port), or port 0 for any free port when the app registered http://127.0.0.1:*/callback/",
            );
        }
    } else if u.scheme() != "https" {
        c.err(
            key,
            "a redirect_uri that is not localhost/127.0.0.1 must use https",
            "use http://127.0.0.1:PORT/... for the loopback flow, or your https callback URL",
        );
    }
}

fn check_watch_list(
    c: &mut Checker,
    raw: Vec<RawWatch>,
    state_dir: &Path,
    hooks: &Hooks,
) -> Vec<WatchConfig> {
    if raw.is_empty() {
        c.err(
            "watch",
            "no watch folders are configured",
            "add at least one entry with path, mode, done_dir and failed_dir",
        );
    }
    let list: Vec<WatchConfig> = raw
        .into_iter()
        .enumerate()
        .map(|(i, w)| check_watch(c, i, w, hooks))
        .collect();
    let before = c.problems.len();
    for (i, a) in list.iter().enumerate() {
        for b in &list[..i] {
            let (pa, pb) = (real(&a.path), real(&b.path));
            if pa == pb {
                c.err(
                    format!("watch[{i}].path"),
                    format!(
                        "{} is already watched by watch[{}]",
                        display_path(&a.path),
                        b.index
                    ),
                    "watch each folder once; several folders may share an account",
                );
            } else if pa.starts_with(&pb) || pb.starts_with(&pa) {
                c.err(
                    format!("watch[{i}].path"),
                    format!("{} and watch[{}] ({}) are nested", display_path(&a.path), b.index, display_path(&b.path)),
                    "watched folders must not contain each other (a folder inside a watched folder is a photo set)",
                );
            }
        }
    }
    if c.problems.len() > before {
        return list; // folders that overlap make every "inside" check below noise
    }
    for (i, a) in list.iter().enumerate() {
        for (key, dir) in [
            ("done_dir", &a.done_dir),
            ("failed_dir", &a.failed_dir),
            ("state_dir", &state_dir.to_path_buf()),
        ] {
            for w in &list {
                if inside_unexcluded(dir, w) {
                    let k = if key == "state_dir" {
                        key.to_string()
                    } else {
                        format!("watch[{i}].{key}")
                    };
                    c.err(
                        k,
                        format!("{} is inside the watched folder {}", display_path(dir), display_path(&w.path)),
                        "put it next to the watched folder (e.g. media/done beside media/inbox), or give it a name the folder excludes, like .done",
                    );
                }
            }
        }
    }
    list
}

/// `dir` is `w.path` or below it, and the first component below is not excluded by `w`.
fn inside_unexcluded(dir: &Path, w: &WatchConfig) -> bool {
    let (dir, root) = (real(dir), real(&w.path));
    match dir.strip_prefix(&root) {
        Ok(rest) => match rest.components().next() {
            None => true,
            Some(first) => !w.excludes(&first.as_os_str().to_string_lossy()),
        },
        Err(_) => false,
    }
}

fn check_watch(c: &mut Checker, i: usize, raw: RawWatch, global: &Hooks) -> WatchConfig {
    let key = |k: &str| format!("watch[{i}].{k}");
    let own = notifications::check(c, &key(""), raw.on_result, raw.webhook);
    let hooks = notifications::merged(global, own);
    let path = c.path(&raw.path);
    if !path.is_dir() {
        c.err(
            key("path"),
            format!("the folder {} does not exist", display_path(&path)),
            "create it (mkdir -p) or fix the path; relative paths are relative to the config file's folder",
        );
    }
    if !crate::content::sidecar::rules::is_valid_account(&raw.account) {
        c.err(
            key("account"),
            format!("'{}' is not a valid account name", raw.account),
            "use letters, digits, '-' and '_' only (it names the token file)",
        );
    }
    let done_dir = c.path(&raw.done_dir);
    let failed_dir = c.path(&raw.failed_dir);
    for (k, d) in [("done_dir", &done_dir), ("failed_dir", &failed_dir)] {
        if d.exists() && !d.is_dir() {
            c.err(
                key(k),
                format!("{} exists but is not a folder", display_path(d)),
                "point it at a folder (it is created if missing)",
            );
        }
    }
    if raw.settle.0 < Duration::from_millis(100) {
        c.err(
            key("settle"),
            format!(
                "settle {} is too short to notice a copy in progress",
                raw.settle
            ),
            "use at least 100ms; 5s suits most copy tools",
        );
    }
    if raw.give_up_after.0 < raw.settle.0 {
        c.err(
            key("give_up_after"),
            "give_up_after is shorter than settle",
            "give_up_after should be much longer than settle, e.g. 1h",
        );
    }
    let include = globs(c, &key("include"), &raw.include);
    let exclude = globs(c, &key("exclude"), &raw.exclude);
    for field in ["images", "mode", "account", "not_before"] {
        if raw.defaults.set_fields().contains(&field) {
            let help = match field {
                "images" => "set images in a photo set's post.yaml".to_string(),
                "mode" | "account" => format!("set the folder's {field} with watch[{i}].{field}"),
                _ => "set not_before in the sidecar of the item that should wait".to_string(),
            };
            c.err(
                key(&format!("defaults.{field}")),
                format!("'{field}' cannot be a folder default"),
                help,
            );
        }
    }
    if raw.defaults.brand_content_toggle == Some(true)
        && raw.defaults.privacy_level == Some(PrivacyLevel::SelfOnly)
    {
        c.err(
            key("defaults.brand_content_toggle"),
            "branded content (brand_content_toggle: true) cannot be private (SELF_ONLY)",
            "choose another privacy_level, or brand_content_toggle: false",
        );
    }
    WatchConfig {
        index: i,
        path,
        account: raw.account,
        mode: raw.mode,
        done_dir,
        failed_dir,
        settle: raw.settle.0,
        sidecar: raw.sidecar,
        give_up_after: raw.give_up_after.0,
        include,
        exclude,
        defaults: raw.defaults,
        hooks,
    }
}

fn globs(c: &mut Checker, key: &str, patterns: &[String]) -> GlobSet {
    let mut b = GlobSetBuilder::new();
    for (j, p) in patterns.iter().enumerate() {
        match Glob::new(p) {
            Ok(g) => {
                b.add(g);
            }
            Err(e) => c.err(
                format!("{key}[{j}]"),
                format!("'{p}' is not a valid pattern: {}", e.kind()),
                "use shell-style patterns like *.mp4 or .*",
            ),
        }
    }
    b.build().unwrap_or_else(|_| GlobSet::empty())
}

/// The canonical path when it exists (symlinks resolved), else the lexical one.
/// Folders of the system that tokdrop must never write to, move from or serve: the folder
/// itself, and for the first group anything inside it.
const SYSTEM_TREES: [&str; 9] = [
    "/etc", "/usr", "/bin", "/sbin", "/lib", "/lib64", "/boot", "/proc", "/sys",
];
const SYSTEM_FOLDERS: [&str; 10] = [
    "/", "/dev", "/dev/shm", "/var", "/run", "/tmp", "/var/tmp", "/home", "/root", "/srv",
];

/// The system folder `path` is, or lies in (see [`SYSTEM_TREES`]).
fn system_folder(path: &Path) -> Option<&'static str> {
    let p = real(path);
    SYSTEM_FOLDERS
        .iter()
        .find(|s| p == Path::new(s))
        .or_else(|| SYSTEM_TREES.iter().find(|s| p.starts_with(s)))
        .copied()
}

/// state_dir, log.dir and every watch, done and failed folder stay out of system folders.
fn check_system_folders(
    c: &mut Checker,
    state_dir: &Path,
    log_dir: Option<&Path>,
    watch: &[WatchConfig],
) {
    let mut folders: Vec<(String, PathBuf, &str)> = vec![(
        "state_dir".into(),
        state_dir.to_path_buf(),
        "/var/lib/tokdrop",
    )];
    if let Some(d) = log_dir {
        folders.push(("log.dir".into(), d.to_path_buf(), "/var/log/tokdrop"));
    }
    for w in watch {
        let i = w.index;
        folders.push((
            format!("watch[{i}].path"),
            w.path.clone(),
            "/srv/tokdrop/inbox",
        ));
        folders.push((
            format!("watch[{i}].done_dir"),
            w.done_dir.clone(),
            "/srv/tokdrop/done",
        ));
        folders.push((
            format!("watch[{i}].failed_dir"),
            w.failed_dir.clone(),
            "/srv/tokdrop/failed",
        ));
    }
    for (key, path, example) in folders {
        if let Some(system) = system_folder(&path) {
            let what = if real(&path) == Path::new(system) {
                format!("{} is a system folder", display_path(&path))
            } else {
                format!("{} lies in the system folder {system}", display_path(&path))
            };
            c.err(
                key,
                format!("{what}; tokdrop writes, moves and deletes its own files there"),
                format!("use a folder of tokdrop's own, such as {example}"),
            );
        }
    }
}

/// `server.verification_dir` is served to the internet: it must not be, hold or lie in a
/// folder with tokdrop's state, drops or results.
fn check_verification_dir(c: &mut Checker, dir: &Path, state_dir: &Path, watch: &[WatchConfig]) {
    let v = real(dir);
    let mut others = vec![("state_dir", state_dir.to_path_buf())];
    for w in watch {
        others.push(("a watch folder", w.path.clone()));
        others.push(("a done_dir", w.done_dir.clone()));
        others.push(("a failed_dir", w.failed_dir.clone()));
    }
    for (what, other) in others {
        let o = real(&other);
        if v.starts_with(&o) || o.starts_with(&v) {
            c.err(
                "server.verification_dir",
                format!(
                    "{} overlaps {what} ({}); its files would be served to anyone",
                    display_path(dir),
                    display_path(&other)
                ),
                "use a folder that holds only TikTok's verification file, e.g. /etc/tokdrop/verify",
            );
            return;
        }
    }
}

fn real(path: &Path) -> PathBuf {
    std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf())
}
