//! `tokdrop check` end to end: valid items print the exact request, incomplete media and
//! ambiguous pairings are reported, exit codes follow SPEC §1.

use std::fs;

use serde_json::{Value, json};

use crate::harness::{Dir, sample};

fn check_json(d: &Dir, args: &[&str]) -> (i32, Value) {
    let mut all = vec!["check", "--json"];
    all.extend_from_slice(args);
    let out = d.run(&all);
    let v = serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", out.all()));
    (out.code, v)
}

/// A direct video with a sidecar previews the documented video/init body, interactions off by
/// default, cover timestamp inside post_info, and a placeholder URL under public_url.
#[test]
fn valid_video_shows_the_exact_request() {
    let d = Dir::new("direct");
    d.copy_sample("h264_faststart.mp4", "inbox/my clip.mp4");
    d.write(
        "inbox/my clip.mp4.yaml",
        "title: \"Hello #cats\"\nprivacy_level: SELF_ONLY\ncover_timestamp_ms: 200\n",
    );
    let (code, v) = check_json(&d, &[]);
    assert_eq!(code, 0);
    let item = &v["items"][0];
    assert_eq!(item["item"], "inbox/my clip.mp4");
    assert_eq!(item["request"]["endpoint"], "/v2/post/publish/video/init/");
    assert_eq!(
        item["request"]["body"],
        json!({
            "post_info": {"title": "Hello #cats", "privacy_level": "SELF_ONLY", "disable_duet": true,
                "disable_comment": true, "disable_stitch": true, "video_cover_timestamp_ms": 200,
                "brand_content_toggle": false, "brand_organic_toggle": false, "is_aigc": false},
            "source_info": {"source": "PULL_FROM_URL",
                "video_url": "https://media.example.com/media/<token>/my%20clip.mp4"}
        })
    );
    let text = d.run(&["check"]);
    assert!(text.stdout.contains("ok       inbox/my clip.mp4 + my clip.mp4.yaml\n         my clip.mp4: H.264, 30 fps, 360x640 portrait, 1.0 s, 5.1 kB, 41 kbit/s, no audio\n         account default, mode direct: POST /v2/post/publish/video/init/\n"), "{}", text.stdout);
    assert!(
        text.stdout
            .ends_with("1 item checked: 1 valid, 0 invalid\n"),
        "{}",
        text.stdout
    );
}

/// In inbox mode the video request carries only source_info, and a caption in the sidecar is
/// a warning (TikTok would drop it), not an error.
#[test]
fn inbox_video_drops_caption_with_a_warning() {
    let d = Dir::new("inbox");
    d.copy_sample("vp9.webm", "inbox/clip.webm");
    d.write("inbox/clip.yaml", "title: lost in the inbox\n");
    let out = d.run(&["check"]);
    assert_eq!(out.code, 0, "{}", out.all());
    assert!(
        out.stdout
            .contains("POST /v2/post/publish/inbox/video/init/"),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains("  warning: inbox/clip.yaml:1:1: 'title': 'title' is ignored: TikTok's inbox upload does not take it"), "{}", out.stdout);
    assert!(!out.stdout.contains("post_info"), "{}", out.stdout);
}

/// A photo set without `images:` goes in natural order (2 before 10); MEDIA_UPLOAD keeps title
/// and description but none of the direct-only fields.
#[test]
fn photo_set_natural_order_in_inbox_mode() {
    let d = Dir::new("inbox");
    for n in ["10.jpg", "2.jpg", "1.jpg"] {
        d.copy_sample("photo.jpg", &format!("inbox/trip/{n}"));
    }
    d.write(
        "inbox/trip/post.yaml",
        "title: Trip\ndescription: three photos\n",
    );
    let (code, v) = check_json(&d, &[]);
    assert_eq!(code, 0, "{v}");
    let body = &v["items"][0]["request"]["body"];
    assert_eq!(body["post_mode"], "MEDIA_UPLOAD");
    assert_eq!(
        body["post_info"],
        json!({"title": "Trip", "description": "three photos"})
    );
    let urls: Vec<&str> = body["source_info"]["photo_images"]
        .as_array()
        .expect("images")
        .iter()
        .map(|u| {
            u.as_str()
                .expect("string")
                .rsplit('/')
                .next()
                .expect("name")
        })
        .collect();
    assert_eq!(urls, ["1.jpg", "2.jpg", "10.jpg"]);
}

/// Cut-short and garbage media are invalid with the reason; the item does not pass.
#[test]
fn incomplete_and_garbage_media_are_invalid() {
    let d = Dir::new("direct");
    d.write(
        "watch.yaml",
        &fs::read_to_string(d.path("watch.yaml"))
            .expect("cfg")
            .replace(
                "    failed_dir: ./failed\n",
                "    failed_dir: ./failed\n    defaults: {privacy_level: SELF_ONLY}\n",
            ),
    );
    let mp4 = fs::read(sample("h264_moov_at_end.mp4")).expect("sample");
    fs::write(d.path("inbox/cut.mp4"), &mp4[..mp4.len() / 2]).expect("write");
    fs::write(d.path("inbox/noise.jpg"), b"this is not a jpeg at all").expect("write");
    let out = d.run(&["check"]);
    assert_eq!(out.code, 1, "{}", out.all());
    assert!(
        out.stdout
            .contains("INVALID  inbox/cut.mp4\n  error: inbox/cut.mp4: incomplete: mdat box runs past the end of the file"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout
            .contains("INVALID  inbox/noise.jpg\n  error: inbox/noise.jpg: not a JPEG file"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout
            .ends_with("2 items checked: 0 valid, 2 invalid\n"),
        "{}",
        out.stdout
    );
}

/// `clip.yaml` next to `clip.mp4` and `clip.jpg` could belong to either: both are invalid and
/// the fix names the unambiguous sidecar name.
#[test]
fn ambiguous_sidecar_invalidates_both() {
    let d = Dir::new("direct");
    d.copy_sample("h264_faststart.mp4", "inbox/clip.mp4");
    d.copy_sample("photo.jpg", "inbox/clip.jpg");
    d.write("inbox/clip.yaml", "privacy_level: SELF_ONLY\n");
    let out = d.run(&["check"]);
    assert_eq!(out.code, 1);
    assert_eq!(
        out.stdout
            .matches("error: inbox/clip.yaml: this sidecar could belong to clip.jpg or clip.mp4")
            .count(),
        2,
        "{}",
        out.stdout
    );
    assert!(
        out.stdout
            .contains("help: name it after the full file name, e.g. clip.jpg.yaml"),
        "{}",
        out.stdout
    );
}

/// Empty folders: exit 0 and say so. A sidecar without media is a note, not an error.
#[test]
fn nothing_to_check_and_orphans() {
    let d = Dir::new("direct");
    let out = d.run(&["check"]);
    assert_eq!(
        (out.code, out.stdout.as_str()),
        (
            0,
            "config watch.yaml is valid\nnothing to check: no items in the watched folders\n"
        )
    );
    d.write("inbox/later.yaml", "title: x\n");
    let out = d.run(&["check"]);
    assert_eq!(out.code, 0);
    assert!(
        out.stdout.contains(
            "note: inbox/later.yaml: sidecar without a media file: it waits for its video or photo"
        ),
        "{}",
        out.stdout
    );
}

/// A path outside every watched folder is checked with the first watch entry's settings;
/// `--watch` picks another entry.
#[test]
fn paths_outside_watch_folders_use_first_or_chosen_entry() {
    let d = Dir::new("direct");
    fs::create_dir_all(d.path("drafts")).expect("drafts");
    let cfg = fs::read_to_string(d.path("watch.yaml")).expect("cfg");
    d.write("watch.yaml", &format!("{cfg}  - path: ./drafts\n    mode: inbox\n    done_dir: ./done2\n    failed_dir: ./failed2\n"));
    d.copy_sample("h264_faststart.mp4", "elsewhere/clip.mp4");
    let out = d.run(&["check", "elsewhere/clip.mp4"]);
    assert_eq!(
        out.code,
        1,
        "direct mode needs a privacy level: {}",
        out.all()
    );
    assert!(out.stdout.contains("no privacy_level"), "{}", out.stdout);
    let out = d.run(&["check", "--watch", "drafts", "elsewhere/clip.mp4"]);
    assert_eq!(out.code, 0, "{}", out.all());
    assert!(
        out.stdout
            .contains("mode inbox: POST /v2/post/publish/inbox/video/init/"),
        "{}",
        out.stdout
    );
}

/// Config lookup: $TOKDROP_CONFIG is used; without any config the error says where it looked.
#[test]
fn config_lookup_and_not_found() {
    let d = Dir::empty();
    let out = d.run(&["check"]);
    assert_eq!(out.code, 2);
    assert!(out.stderr.starts_with("no config file found (looked at ./watch.yaml, /etc/tokdrop/watch.yaml)\n  help: pass --config PATH, set TOKDROP_CONFIG"), "{}", out.stderr);
    let good = Dir::new("direct");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tokdrop"))
        .arg("check")
        .current_dir(d.tmp.path())
        .env("TOKDROP_CONFIG", good.path("watch.yaml"))
        .output()
        .expect("run");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The example config shipped with the repository is valid as-is.
#[test]
fn example_config_is_valid() {
    let root = env!("CARGO_MANIFEST_DIR");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tokdrop"))
        .args([
            "check",
            "--config",
            "watch.example.yaml",
            "examples/samples/clip.mp4",
            "examples/samples/trip",
        ])
        .current_dir(root)
        .env_remove("TOKDROP_CONFIG")
        .output()
        .expect("run");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.ends_with("2 items checked: 2 valid, 0 invalid\n"),
        "{stdout}"
    );
}

/// Run from `/` (as systemd runs the service), messages keep absolute paths: `/etc/…`, not
/// `etc/…`.
#[test]
fn paths_stay_absolute_when_run_from_the_root() {
    let d = Dir::new("direct");
    let config = d.path("watch.yaml");
    fs::write(
        &config,
        fs::read_to_string(&config).expect("config") + "bogus_key: 1\n",
    )
    .expect("write");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tokdrop"))
        .args(["check", "--config"])
        .arg(&config)
        .current_dir("/")
        .output()
        .expect("run");
    let text =
        String::from_utf8_lossy(&out.stderr).into_owned() + &String::from_utf8_lossy(&out.stdout);
    let expected = format!("{}:", config.display());
    assert!(text.contains(&expected), "{text}");
    assert!(text.contains("'bogus_key'"), "{text}");
}

/// A sidecar with several wrong fields reports all of them at once, each at its line, so one
/// edit fixes the item.
#[test]
fn every_wrong_sidecar_field_at_once() {
    let d = Dir::new("direct");
    d.copy_sample("h264_faststart.mp4", "inbox/party.mp4");
    d.write(
        "inbox/party.yaml",
        "title: party\nprivacy_level: public\ndisable_comment: yes please\ncover_timestamp: 5\n",
    );
    let out = d.run(&["check", "--config", "watch.yaml"]);
    let text = out.all();
    assert_eq!(out.code, 1, "{text}");
    for want in [
        "party.yaml:2:16: 'privacy_level': 'public' is not one of",
        "party.yaml:3:18: 'disable_comment': expected true or false",
        "party.yaml:4:1: 'cover_timestamp': unknown",
    ] {
        assert!(text.contains(want), "missing {want:?} in:\n{text}");
    }
}

/// Several wrong optional settings in the config are reported together; a misspelled required
/// key is reported once, not again as missing.
#[test]
fn config_problems_come_together() {
    let d = Dir::new("direct");
    let config = d.path("watch.yaml");
    let text = fs::read_to_string(&config).expect("config");
    fs::write(
        &config,
        format!("{text}    settle: 5 sec\n    sidecar: maybe\n    give_up_after: soon\n"),
    )
    .expect("write");
    let out = d.run(&["check", "--config", "watch.yaml"]);
    let all = out.all();
    assert_eq!(out.code, 2, "{all}");
    for key in [
        "watch[0].settle",
        "watch[0].sidecar",
        "watch[0].give_up_after",
    ] {
        assert!(
            all.contains(&format!("'{key}'")),
            "missing {key} in:\n{all}"
        );
    }
    fs::write(&config, text.replace("mode: direct", "mod: direct")).expect("write");
    let all = d.run(&["check", "--config", "watch.yaml"]).all();
    assert!(all.contains("did you mean 'mode'?"), "{all}");
    assert!(!all.contains("'mode' is missing"), "{all}");
}

/// `status` and `results` still read the state while the config has problems (the running
/// service keeps the config it has): a note says so. A config that cannot even be read is an
/// error.
#[test]
fn status_works_while_the_config_is_being_edited() {
    let d = Dir::new("direct");
    let config = d.path("watch.yaml");
    let text = fs::read_to_string(&config).expect("config");
    fs::write(&config, text.replace("./inbox", "./not-there")).expect("write");
    for args in [["status"], ["results"]] {
        let out = d.run(&args);
        assert_eq!(out.code, 0, "{}", out.all());
        assert!(
            out.stderr.starts_with("note: watch.yaml has problems (`tokdrop check` lists them); reading the state in state"),
            "{}",
            out.stderr
        );
    }
    assert!(
        d.run(&["status"])
            .stdout
            .contains("has not run with this state folder yet")
    );
    fs::write(&config, "state_dir: [\n").expect("write");
    let out = d.run(&["status"]);
    assert_eq!(out.code, 2, "{}", out.all());
    assert!(out.stderr.contains("invalid"), "{}", out.stderr);
}

/// Shell completions and man pages come from the clap definitions: every shell gets a script
/// naming the commands, and `man` writes a page per command.
#[test]
fn completions_and_man_pages() {
    let d = Dir::empty();
    for shell in ["bash", "zsh", "fish"] {
        let out = d.run(&["completions", shell]);
        assert_eq!(out.code, 0, "{}", out.all());
        for command in ["doctor", "results", "status", "check"] {
            assert!(out.stdout.contains(command), "{shell}: {command}");
        }
    }
    let out = d.run(&["man", "man"]);
    assert_eq!(out.code, 0, "{}", out.all());
    for page in ["tokdrop.1", "tokdrop-doctor.1", "tokdrop-auth-login.1"] {
        let text = std::fs::read_to_string(d.path(&format!("man/{page}"))).expect(page);
        assert!(text.starts_with(".ie"), "{page} is roff");
    }
}

/// `status --watch`: without a terminal, a block headed by the time each time the view
/// changes; under a pseudo-terminal (`script`), the view is redrawn in place.
#[test]
fn status_watch_plain_and_on_a_terminal() {
    let d = Dir::new("direct");
    let plain = d.run(&["status", "--watch", "--interval", "100ms", "--count", "3"]);
    assert_eq!(plain.code, 0, "{}", plain.all());
    assert!(plain.stdout.starts_with("--- "), "{}", plain.stdout);
    assert!(
        plain
            .stdout
            .contains("tokdrop has not run with this state folder yet"),
        "{}",
        plain.stdout
    );
    assert_eq!(
        plain.stdout.matches("--- ").count(),
        1,
        "an unchanged view is not repeated: {}",
        plain.stdout
    );
    let bin = env!("CARGO_BIN_EXE_tokdrop");
    let Ok(tty) = std::process::Command::new("script")
        .args([
            "-qec",
            &format!("{bin} status --watch --count 1"),
            "/dev/null",
        ])
        .current_dir(d.tmp.path())
        .output()
    else {
        eprintln!("SKIP the terminal half: no `script` (util-linux)");
        return;
    };
    let text = String::from_utf8_lossy(&tty.stdout);
    assert!(text.starts_with("\u{1b}[H\u{1b}[2J"), "{text:?}");
    assert!(
        text.contains("tokdrop has not run with this state folder yet"),
        "{text:?}"
    );
}
