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
    mkfifo(&r.d.path("inbox/pipe.mp4"));
    r.d.copy_sample("photo.jpg", "outside/held.jpg");
    mkfifo(&r.d.path("inbox/held.yaml"));
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
    r.d.copy_sample("photo.jpg", "private/1.jpg");
    r.d.copy_sample("photo.jpg", "private/2.jpg");
    std::os::unix::fs::symlink(r.d.path("private"), r.d.path("inbox/set")).expect("symlink");
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
