//! What a dropper can put in a watched folder (issue 17): a FIFO or a symbolic link where a
//! file should be is refused with a result that says so, and never holds up the items after
//! it.

use std::time::Duration;

use crate::service::start;

fn mkfifo(path: &std::path::Path) {
    let status = std::process::Command::new("mkfifo")
        .arg(path)
        .status()
        .expect("mkfifo");
    assert!(status.success());
}

/// `mkfifo inbox/pipe.mp4`, a FIFO where a photo's sidecar would be, and a FIFO inside a
/// photo-set folder: none blocks intake, the check or the publisher. The FIFO item and the set
/// end invalid saying what the file is; a FIFO is no sidecar, so the photo beside it is
/// published; and the photo dropped after all of them is too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fifo_in_the_inbox_holds_nothing_up() {
    let r = start("", |_| {}).await;
    open_inbox(&r, true);
    assert!(as_dropper("mkfifo", &[&r.d.path("inbox/pipe.mp4")]));
    r.d.copy_sample("photo.jpg", "outside/held.jpg");
    assert!(as_dropper("mkfifo", &[&r.d.path("inbox/held.yaml")]));
    std::fs::rename(r.d.path("outside/held.jpg"), r.d.path("inbox/held.jpg")).expect("mv");
    r.d.copy_sample("photo.jpg", "outside/set/1.jpg");
    mkfifo(&r.d.path("outside/set/2.jpg"));
    std::fs::rename(r.d.path("outside/set"), r.d.path("inbox/set")).expect("mv");
    r.d.copy_sample("photo.jpg", "inbox/after.jpg");
    // They finish in any order: collect the three results.
    let mut results = std::collections::BTreeMap::new();
    let needed = ["after.jpg", "held.jpg", "set"];
    while !needed.iter().all(|i| results.contains_key(*i)) {
        let line = r.wait_line("finished item=", 60);
        let item = line
            .split("finished item=")
            .nth(1)
            .and_then(|s| s.split(' ').next())
            .expect("item")
            .to_string();
        let path = line.split("result=").nth(1).expect("result path").trim();
        results.insert(item, std::fs::read_to_string(path).expect("result"));
    }
    for item in ["after.jpg", "held.jpg"] {
        assert!(
            results[item].contains("status: published"),
            "{item}: {}",
            results[item]
        );
    }
    // The set holding a FIFO ends invalid, saying why; so does the FIFO where a video should
    // be, when intake saw it as an item (its inotify event) rather than skipping it in a
    // listing (not a file).
    for item in ["pipe.mp4", "set"] {
        let Some(text) = results.get(item) else {
            continue;
        };
        assert!(text.contains("status: invalid"), "{item}: {text}");
        assert!(
            text.contains("it is not a regular file (a FIFO, socket or device)")
                && text.contains("put the real file there instead"),
            "{item}: {text}"
        );
    }
    // `tokdrop check` does not hang on a FIFO either (the service stopped first).
    let crate::service::Running { d, p, .. } = r;
    p.stop();
    mkfifo(&d.path("inbox/late.mp4"));
    let dir = d.tmp.path().to_path_buf();
    let check = tokio::time::timeout(
        Duration::from_secs(30),
        tokio::task::spawn_blocking(move || {
            std::process::Command::new(env!("CARGO_BIN_EXE_tokdrop"))
                .args(["check", "--config", "watch.yaml"])
                .current_dir(dir)
                .output()
                .expect("check")
        }),
    )
    .await
    .expect("tokdrop check finishes")
    .expect("join");
    let out = String::from_utf8_lossy(&check.stdout);
    assert!(check.status.success(), "{out}");
    assert!(out.contains("config watch.yaml is valid"), "{out}");
}

/// A sidecar that is a symbolic link (to a file the dropper may not read, or the token file):
/// not followed; the item is refused and the link's target never copied anywhere.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_symlinked_sidecar_is_not_followed() {
    let r = start("", |_| {}).await;
    r.d.write(
        "secret-notes.yaml",
        "title: from a file the dropper cannot read\n",
    );
    r.d.copy_sample("photo.jpg", "outside/linked.jpg");
    std::os::unix::fs::symlink(r.d.path("secret-notes.yaml"), r.d.path("inbox/linked.yaml"))
        .expect("symlink");
    std::fs::rename(r.d.path("outside/linked.jpg"), r.d.path("inbox/linked.jpg")).expect("mv");
    let text = r.finished("linked.jpg", 60);
    assert!(text.contains("status: invalid"), "{text}");
    assert!(text.contains("symbolic link"), "{text}");
    assert!(
        !text.contains("from a file the dropper cannot read"),
        "{text}"
    );
    assert!(r.emu.calls().init_calls().is_empty(), "nothing was posted");
    r.stop();
}

/// `ln -s /a/folder/of/photos inbox/set`: a link to a folder is no photo set, whichever way
/// intake hears of it (inotify or a listing); nothing behind it is served or posted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_symlinked_folder_is_not_a_photo_set() {
    let r = start("", |_| {}).await;
    open_inbox(&r, true);
    r.d.copy_sample("photo.jpg", "private/1.jpg");
    r.d.copy_sample("photo.jpg", "private/2.jpg");
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(r.d.path("private"), std::fs::Permissions::from_mode(0o700))
            .expect("chmod");
    }
    assert!(as_dropper(
        "ln",
        &[
            std::path::Path::new("-s"),
            &r.d.path("private"),
            &r.d.path("inbox/set")
        ]
    ));
    r.d.copy_sample("photo.jpg", "inbox/real.jpg");
    let text = r.finished("real.jpg", 60);
    assert!(text.contains("status: published"), "{text}");
    let calls = r.emu.calls();
    assert_eq!(
        calls.init_calls().len(),
        1,
        "only the real photo was posted"
    );
    assert!(calls.downloads.iter().all(|d| !d.url.contains("1.jpg")));
    assert!(r.d.path("private/1.jpg").exists() && r.d.path("inbox/set").exists());
    r.stop();
}

/// Runs `cmd args` as the dropper: an unprivileged user (nobody) when the tests run as root,
/// who may write the inbox but not read the service's files; else as the test's own user.
/// Returns whether it succeeded.
fn as_dropper(cmd: &str, args: &[&std::path::Path]) -> bool {
    let root =
        std::fs::metadata("/proc/self").is_ok_and(|m| std::os::unix::fs::MetadataExt::uid(&m) == 0);
    let mut c = if root {
        let mut c = std::process::Command::new("setpriv");
        c.args(["--reuid=65534", "--regid=65534", "--clear-groups", cmd]);
        c
    } else {
        std::process::Command::new(cmd)
    };
    c.args(args)
        .stderr(std::process::Stdio::null())
        .status()
        .expect("run as the dropper")
        .success()
}

/// Opens the inbox to the dropper: writable by everyone, with the sticky bit or without.
fn open_inbox(r: &crate::service::Running, sticky: bool) {
    use std::os::unix::fs::PermissionsExt;
    let mode = if sticky { 0o1777 } else { 0o777 };
    std::fs::set_permissions(r.d.path("inbox"), std::fs::Permissions::from_mode(mode))
        .expect("chmod");
    // Let the dropper reach the inbox through the test folder.
    std::fs::set_permissions(r.d.tmp.path(), std::fs::Permissions::from_mode(0o755))
        .expect("chmod");
}

/// A private video of the service's user, unreadable by the dropper.
fn private_video(r: &crate::service::Running) -> std::path::PathBuf {
    use std::os::unix::fs::PermissionsExt;
    r.d.copy_sample("h264_faststart.mp4", "private/secret.mp4");
    let p = r.d.path("private/secret.mp4");
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    std::fs::set_permissions(r.d.path("private"), std::fs::Permissions::from_mode(0o700))
        .expect("chmod");
    p
}

/// Finding 2: with `transfer: upload`, `ln -s private/secret.mp4 inbox/v.mp4` by the dropper
/// uploads nothing: the link is never followed, the video behind it never leaves.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_symlinked_video_is_never_uploaded() {
    let r = crate::service::start_full("", ", transfer: upload", |_| {}, &[]).await;
    open_inbox(&r, true);
    let secret = private_video(&r);
    assert!(as_dropper(
        "ln",
        &[
            std::path::Path::new("-s"),
            &secret,
            &r.d.path("inbox/v.mp4")
        ]
    ));
    r.d.copy_sample("photo.jpg", "inbox/after.jpg");
    let text = r.finished("after.jpg", 60);
    assert!(text.contains("status: published"), "{text}");
    let calls = r.emu.calls();
    assert!(calls.uploads.is_empty(), "nothing was uploaded");
    assert_eq!(
        calls.init_calls().len(),
        1,
        "only the real photo was posted"
    );
    assert!(
        r.d.path("inbox/v.mp4").symlink_metadata().is_ok(),
        "the link is left alone"
    );
    r.stop();
}

/// Finding 3, with a sticky inbox: the dropper cannot rename tokdrop's work folder away.
/// Without the sticky bit they can, and plant a link in its place: tokdrop then refuses to
/// claim anything through it, says why, and posts nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_work_folder_cannot_be_taken_over() {
    let r = start("", |_| {}).await;
    open_inbox(&r, true);
    r.d.copy_sample("photo.jpg", "inbox/first.jpg");
    let text = r.finished("first.jpg", 60);
    assert!(text.contains("status: published"), "{text}");
    let work = r.d.path("inbox/.tokdrop");
    assert!(work.is_dir());
    let root =
        std::fs::metadata("/proc/self").is_ok_and(|m| std::os::unix::fs::MetadataExt::uid(&m) == 0);
    if root {
        assert!(
            !as_dropper("mv", &[&work, &r.d.path("inbox/gone")]),
            "a sticky inbox keeps the work folder"
        );
    }
    open_inbox(&r, false);
    assert!(as_dropper("mv", &[&work, &r.d.path("inbox/.gone")]));
    r.d.copy_sample("photo.jpg", "private/1.jpg");
    assert!(as_dropper(
        "ln",
        &[std::path::Path::new("-s"), &r.d.path("private"), &work]
    ));
    r.d.copy_sample("photo.jpg", "inbox/photo.jpg");
    let line = r.wait_line("cannot take it", 60);
    assert!(
        line.contains(
            "is a symbolic link; someone who can write the watched folder may have replaced it"
        ),
        "{line}"
    );
    assert_eq!(
        r.emu.calls().init_calls().len(),
        1,
        "nothing more was posted"
    );
    assert!(
        r.d.path("inbox/photo.jpg").exists(),
        "the photo stays where it was dropped"
    );
    r.stop();
}

/// Finding 9: a name too long for its result file (a 250-byte stem) is published and finishes
/// with a shortened result name, instead of being retried forever.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_very_long_name_finishes_with_a_shortened_result_name() {
    let r = start("", |_| {}).await;
    let stem = "a".repeat(250);
    r.d.copy_sample("photo.jpg", &format!("inbox/{stem}.jpg"));
    let line = r.wait_line("finished item=", 60);
    assert!(line.contains("status=\"published\""), "{line}");
    let short = "a".repeat(200);
    let result = r.d.path(&format!("done/{short}.result.yaml"));
    let text = std::fs::read_to_string(&result).expect("the shortened result file");
    assert!(text.contains("status: published"), "{text}");
    assert!(r.d.path(&format!("done/{short}.jpg")).exists());
    r.stop();
}

/// Finding 9: a name that is not UTF-8 is not silently ignored: tokdrop renames the file to
/// its escaped form (`caf%E9.jpg`), says so in the log, and publishes it under that name.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_name_that_is_not_utf8_is_refused_with_a_reason() {
    use std::os::unix::ffi::OsStrExt;
    let r = start("", |_| {}).await;
    r.d.copy_sample("photo.jpg", "outside/x.jpg");
    let bad =
        r.d.path("inbox")
            .join(std::ffi::OsStr::from_bytes(b"caf\xe9.jpg"));
    std::fs::rename(r.d.path("outside/x.jpg"), &bad).expect("mv");
    let line = r.wait_line("renamed a file whose name is not UTF-8", 60);
    assert!(line.contains("caf%E9.jpg"), "{line}");
    let text = r.finished("caf%E9.jpg", 60);
    assert!(text.contains("status: published"), "{text}");
    assert!(r.d.path("done/caf%E9.jpg").exists());
    r.stop();
}

/// Finding 6: MP4s of 100,000 empty boxes are refused by the probe's bounds at once, saying
/// why, and a photo dropped with them is published without waiting on them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crafted_mp4s_are_refused_without_holding_anything_up() {
    let r = start("", |_| {}).await;
    let mut crafted = b"\0\0\0\x10ftypisom\0\0\0\0".to_vec();
    for _ in 0..100_000 {
        crafted.extend_from_slice(b"\0\0\0\x08free");
    }
    for i in 0..3 {
        r.d.write_bytes(&format!("outside/boxes{i}.mp4"), &crafted);
        std::fs::rename(
            r.d.path(&format!("outside/boxes{i}.mp4")),
            r.d.path(&format!("inbox/boxes{i}.mp4")),
        )
        .expect("mv");
    }
    r.d.copy_sample("photo.jpg", "inbox/photo.jpg");
    let mut results = std::collections::BTreeMap::new();
    while results.len() < 4 {
        let line = r.wait_line("finished item=", 60);
        let item = line
            .split("finished item=")
            .nth(1)
            .and_then(|s| s.split(' ').next())
            .expect("item")
            .to_string();
        let path = line.split("result=").nth(1).expect("result path").trim();
        results.insert(item, std::fs::read_to_string(path).expect("result"));
    }
    assert!(results["photo.jpg"].contains("status: published"));
    for i in 0..3 {
        let text = &results[&format!("boxes{i}.mp4")];
        assert!(text.contains("status: invalid"), "{text}");
        assert!(
            text.contains("more than 10000 top-level boxes, far more than any video"),
            "{text}"
        );
    }
    r.stop();
}

/// Finding 7: a name with a newline cannot forge a log line, and its result file still says
/// exactly what happened.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_name_with_a_newline_forges_nothing() {
    let r = start("", |_| {}).await;
    let name = "x\n2026-01-01T00:00:00.000000Z  INFO tokdrop::lifecycle::pipeline: forged.jpg";
    r.d.copy_sample("photo.jpg", "outside/p.jpg");
    std::fs::rename(r.d.path("outside/p.jpg"), r.d.path("inbox").join(name)).expect("mv");
    let line = r.wait_line("finished item=", 60);
    assert!(
        line.contains(r"x\n2026-01-01"),
        "the newline is escaped: {line}"
    );
    let result = std::fs::read_dir(r.d.path("done"))
        .expect("done")
        .flatten()
        .map(|e| e.path())
        .find(|p| p.to_string_lossy().ends_with(".result.yaml"))
        .unwrap_or_else(|| panic!("no result file in done/ after {line}"));
    let text = std::fs::read_to_string(result).expect("result");
    assert!(text.contains("\nstatus: published\n"), "{text}");
    assert!(
        !text.contains("\n2026-01-01T00:00:00.000000Z  INFO"),
        "{text}"
    );
    r.stop();
}

/// Finding 4: with done/failed on another filesystem (here tmpfs), finishing copies — and a
/// symlinked sidecar pointing at the token file arrives in failed/ as a link, never as a copy
/// of the tokens.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_copying_finish_never_copies_a_link_target() {
    let Ok(other_fs) = tempfile::tempdir_in("/dev/shm") else {
        eprintln!("SKIP: no /dev/shm for a second filesystem");
        return;
    };
    let (done, failed) = (other_fs.path().join("done"), other_fs.path().join("failed"));
    let entry = format!(
        "  - path: ./drafts\n    mode: direct\n    done_dir: {}\n    failed_dir: {}\n    settle: 100ms\n",
        done.display(),
        failed.display()
    );
    let r = start(&entry, |_| {}).await;
    let tokens = r.d.path("state/tokens/default.json");
    assert!(tokens.exists());
    r.d.copy_sample("photo.jpg", "outside/linked.jpg");
    std::os::unix::fs::symlink(&tokens, r.d.path("drafts/linked.yaml")).expect("symlink");
    std::fs::rename(
        r.d.path("outside/linked.jpg"),
        r.d.path("drafts/linked.jpg"),
    )
    .expect("mv");
    let text = r.finished("linked.jpg", 60);
    assert!(text.contains("status: invalid"), "{text}");
    let moved = failed.join("linked.yaml");
    let meta = std::fs::symlink_metadata(&moved).expect("the sidecar is in failed/");
    assert!(meta.file_type().is_symlink(), "kept as a link, not a copy");
    let token_text = std::fs::read_to_string(&tokens).expect("tokens");
    for entry in std::fs::read_dir(&failed).expect("failed").flatten() {
        if entry.file_type().is_ok_and(|t| t.is_file()) {
            let copied = std::fs::read_to_string(entry.path()).unwrap_or_default();
            assert_ne!(
                copied,
                token_text,
                "{} is a copy of the tokens",
                entry.path().display()
            );
        }
    }
    r.stop();
}
