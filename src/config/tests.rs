//! Unit tests of config loading: defaults, path resolution, semantic checks. The corpus of bad
//! configs with their exact messages lives in `tests/data/config/` (integration tests).

use std::fs;
use std::path::Path;

use super::*;

const MINIMAL: &str = "\
state_dir: ./state
server:
  listen: 127.0.0.1:8443
  public_url: https://media.example.com
  tls: {self_signed: true}
tiktok:
  client_key: key
  client_secret_file: ./secret
watch:
  - path: ./inbox
    mode: direct
    done_dir: ./done
    failed_dir: ./failed
";

fn setup(yaml: &str) -> (tempfile::TempDir, Result<Config, ConfigError>) {
    let dir = tempfile::tempdir().expect("tempdir");
    fs::create_dir(dir.path().join("inbox")).expect("inbox");
    fs::write(dir.path().join("secret"), "s").expect("secret");
    let file = dir.path().join("watch.yaml");
    fs::write(&file, yaml).expect("config");
    let r = Config::load(&file);
    (dir, r)
}

fn problems(r: Result<Config, ConfigError>) -> Vec<crate::support::diagnostic::Diagnostic> {
    match r {
        Err(ConfigError::Invalid { problems, .. }) => problems,
        other => panic!("expected an invalid config, got {other:?}"),
    }
}

/// A minimal config gets the documented defaults and absolute paths next to the file.
#[test]
fn minimal_config_gets_defaults() {
    let (dir, r) = setup(MINIMAL);
    let c = r.expect("valid");
    let w = &c.watch[0];
    assert_eq!(w.path, dir.path().join("inbox"));
    assert_eq!(w.account, "default");
    assert_eq!(w.settle, Duration::from_secs(5));
    assert_eq!(w.give_up_after, Duration::from_secs(3600));
    assert!(w.wants("clip.mp4") && w.wants("clip.yaml"));
    assert!(!w.wants(".clip.mp4.Xy12") && !w.wants("clip.mp4.part") && !w.wants("a.result.yaml"));
    assert_eq!(c.server.public_url.as_str(), "https://media.example.com/");
    assert_eq!(c.server.link_ttl, Duration::from_secs(7200));
    assert_eq!(c.tiktok.api_base.as_str(), "https://open.tiktokapis.com/");
    assert_eq!(c.state_dir, dir.path().join("state"));
}

/// Several problems are reported together, each at its own line.
#[test]
fn all_problems_at_once_with_positions() {
    let yaml = MINIMAL
        .replace("https://media.example.com", "http://192.0.2.1")
        .replace("done_dir: ./done", "done_dir: ./inbox/done");
    let (_dir, r) = setup(&yaml);
    let p = problems(r);
    let keys: Vec<&str> = p.iter().map(|d| d.key.as_str()).collect();
    assert!(keys.contains(&"server.public_url"), "{keys:?}");
    assert!(keys.contains(&"watch[0].done_dir"), "{keys:?}");
    let done = p
        .iter()
        .find(|d| d.key == "watch[0].done_dir")
        .expect("done_dir problem");
    assert_eq!((done.line, done.column), (Some(12), Some(5)));
}

/// A done folder with an excluded name (`.done`) may live inside the watched folder.
#[test]
fn excluded_done_dir_inside_watch_is_fine() {
    let yaml = MINIMAL.replace("done_dir: ./done", "done_dir: ./inbox/.done");
    let (_dir, r) = setup(&yaml);
    r.expect("valid");
}

/// The lookup order is --config, then $TOKDROP_CONFIG, then ./watch.yaml, /etc/tokdrop.
#[test]
fn explicit_path_wins() {
    assert_eq!(
        Config::locate(Some(Path::new("x.yaml"))).expect("explicit"),
        Path::new("x.yaml")
    );
}

/// `state_dir: /`, `done_dir: /etc` and a failed folder inside `/usr` are refused, each
/// naming the folder and a folder of tokdrop's own to use instead.
#[test]
fn system_folders_are_refused() {
    let yaml = MINIMAL
        .replace("state_dir: ./state", "state_dir: /")
        .replace("done_dir: ./done", "done_dir: /etc")
        .replace("failed_dir: ./failed", "failed_dir: /usr/share/failed");
    let (_dir, r) = setup(&yaml);
    let p = problems(r);
    let find = |key: &str| {
        p.iter()
            .find(|d| d.key == key)
            .unwrap_or_else(|| panic!("no problem for {key}: {p:?}"))
    };
    assert_eq!(
        find("state_dir").message,
        "/ is a system folder; tokdrop writes, moves and deletes its own files there"
    );
    assert_eq!(
        find("state_dir").help.as_deref(),
        Some("use a folder of tokdrop's own, such as /var/lib/tokdrop")
    );
    assert_eq!(
        find("watch[0].done_dir").message,
        "/etc is a system folder; tokdrop writes, moves and deletes its own files there"
    );
    assert_eq!(
        find("watch[0].failed_dir").message,
        "/usr/share/failed lies in the system folder /usr; tokdrop writes, moves and deletes its own files there"
    );
}

/// A verification_dir that is (or holds) the state folder would serve the token files.
#[test]
fn verification_dir_may_not_overlap_tokdrops_folders() {
    let yaml = MINIMAL.replace(
        "  tls: {self_signed: true}",
        "  tls: {self_signed: true}\n  verification_dir: ./state/tokens",
    );
    let dir = tempfile::tempdir().expect("tempdir");
    fs::create_dir_all(dir.path().join("state/tokens")).expect("tokens");
    fs::create_dir(dir.path().join("inbox")).expect("inbox");
    fs::write(dir.path().join("secret"), "s").expect("secret");
    let file = dir.path().join("watch.yaml");
    fs::write(&file, yaml).expect("config");
    let p = problems(Config::load(&file));
    let v = p
        .iter()
        .find(|d| d.key == "server.verification_dir")
        .expect("verification_dir problem");
    assert!(
        v.message.contains("tokens overlaps state_dir (")
            && v.message
                .ends_with("state); its files would be served to anyone"),
        "{}",
        v.message
    );
}

/// A config that names no client secret (and no TOKDROP_CLIENT_SECRET) takes it from systemd's
/// credential, so one config serves `tokdrop.service` and every `tokdrop@NAME` unedited.
#[test]
fn no_secret_named_means_the_systemd_credential() {
    if std::env::var_os(SECRET_ENV).is_some() {
        return; // the environment decides otherwise
    }
    let (_dir, r) = setup(&MINIMAL.replace("  client_secret_file: ./secret\n", ""));
    assert_eq!(
        r.expect("valid").tiktok.client_secret,
        SecretSource::Credential
    );
}

/// `on_result` and `webhook` at the top apply to every folder; a folder's own replaces them one
/// key at a time. A command list is run as is (its relative program resolved against the
/// config's folder), a string with /bin/sh -c; webhook secrets join the world-readable check.
#[test]
fn notification_keys_merge_per_folder() {
    use std::os::unix::fs::PermissionsExt;
    let yaml = format!(
        "{MINIMAL}    on_result: {{command: \"echo hi\"}}\n  - path: ./other\n    mode: inbox\n    done_dir: ./done2\n    failed_dir: ./failed2\non_result: {{command: [./notify.sh, x], timeout: 5s}}\nwebhook: {{url: \"https://h.example/x\", secret_file: ./hook}}\n"
    );
    let dir = tempfile::tempdir().expect("tempdir");
    for d in ["inbox", "other"] {
        fs::create_dir(dir.path().join(d)).expect("mkdir");
    }
    fs::write(dir.path().join("secret"), "s").expect("secret");
    fs::write(dir.path().join("hook"), "k\n").expect("hook");
    fs::set_permissions(dir.path().join("hook"), fs::Permissions::from_mode(0o644)).expect("chmod");
    fs::write(dir.path().join("notify.sh"), "#!/bin/sh\n").expect("script");
    fs::set_permissions(
        dir.path().join("notify.sh"),
        fs::Permissions::from_mode(0o755),
    )
    .expect("chmod");
    let file = dir.path().join("watch.yaml");
    fs::write(&file, yaml).expect("config");
    let c = Config::load(&file).expect("valid");
    let script = dir.path().join("notify.sh").to_string_lossy().into_owned();
    let global = c.hooks.on_result.as_ref().expect("global on_result");
    assert_eq!(global.argv, vec![script, "x".to_string()]);
    assert_eq!(global.timeout, std::time::Duration::from_secs(5));
    let own = c.watch[0].hooks.on_result.as_ref().expect("own on_result");
    assert_eq!(own.argv[..3], ["/bin/sh", "-c", "echo hi"]);
    assert_eq!(own.timeout, std::time::Duration::from_secs(30));
    assert_eq!(c.watch[1].hooks.on_result.as_ref(), Some(global));
    for w in &c.watch {
        assert_eq!(
            w.hooks.webhook, c.hooks.webhook,
            "the global webhook applies"
        );
    }
    let exposed = c.exposed_secrets();
    assert!(
        exposed.iter().any(|l| l.contains("(the webhook secret)")),
        "{exposed:?}"
    );
}

/// Every notification problem is reported at once, at its key.
#[test]
fn notification_problems_name_their_key() {
    let (_dir, r) = setup(&format!(
        "{MINIMAL}    webhook: {{url: \"ftp://h.example/\", secret_file: ./missing}}\non_result: {{command: [], timeout: 10ms}}\nwebhook: {{url: \"http://10.0.0.1/x\", secret_file: ./secret}}\n"
    ));
    let keys: Vec<String> = problems(r).into_iter().map(|d| d.key).collect();
    assert_eq!(
        keys,
        [
            "on_result.command",
            "on_result.timeout",
            "webhook.url",
            "watch[0].webhook.url",
            "watch[0].webhook.secret_file",
        ]
    );
}
