//! `tokdrop run --sandbox`, as README's first steps use it: one process with the built-in
//! emulator; items are published without any login, and a reload that adds a folder for a new
//! account gives that account a sandbox login too.

use std::fs;

use crate::harness::{Dir, free_port};
use crate::process::Tokdrop;

fn config(port: u16, extra: &str) -> String {
    format!(
        "state_dir: ./state
server: {{listen: 127.0.0.1:{port}, public_url: https://localhost:{port}/, tls: {{self_signed: true}}}}
tiktok: {{client_key: sbawEXAMPLEKEY, client_secret_file: ./secret}}
watch:
  - path: ./inbox
    mode: direct
    done_dir: ./done
    failed_dir: ./failed
    settle: 100ms
    defaults: {{privacy_level: SELF_ONLY}}
{extra}"
    )
}

#[test]
fn sandbox_run_publishes_and_a_reload_adds_an_account() {
    let d = Dir::empty();
    let port = free_port();
    d.write("watch.yaml", &config(port, ""));
    let t = Tokdrop::spawn(
        d.tmp.path(),
        &["run", "--sandbox", "--config", "watch.yaml"],
        &[],
    );
    t.wait_line("tokdrop is running", 30);
    d.copy_sample("h264_faststart.mp4", "inbox/clip.mp4");
    let text = t.finished("clip.mp4", 60);
    assert!(text.contains("status: published"), "{text}");
    assert!(text.contains("publish_id: v_pub_url~"), "{text}");

    fs::create_dir_all(d.path("brand")).expect("mkdir");
    d.write(
        "watch.yaml",
        &config(
            port,
            "  - path: ./brand
    account: brand
    mode: inbox
    done_dir: ./brand-done
    failed_dir: ./brand-failed
    settle: 100ms
",
        ),
    );
    t.signal("HUP");
    t.wait_line("SIGHUP: config re-read and applied", 30);
    d.copy_sample("photo.jpg", "brand/draft.jpg");
    let text = t.finished("draft.jpg", 60);
    assert!(text.contains("status: sent_to_inbox"), "{text}");
    assert!(text.contains("account: brand"), "{text}");
    assert!(d.path("brand-done/draft.jpg").exists());
    assert!(
        d.path("state/tokens/brand.json").exists(),
        "the new account got a sandbox login"
    );
    t.stop();
}
