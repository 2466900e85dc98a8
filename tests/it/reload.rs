//! A reloaded config (SIGHUP) applied to the running pipeline: folders come and go, settings
//! and defaults change for items not claimed yet, the item in flight is not disturbed.

use std::fs;

use tokdrop::lifecycle::outcome::Status;
use tokdrop::lifecycle::pipeline::Event;

use crate::fake::{FakePublisher, Service};
use crate::harness::{CONFIG, Dir};

const INBOX: &str = "  - path: ./inbox
    mode: direct
    done_dir: ./done
    failed_dir: ./failed
    settle: 300ms
    defaults: {privacy_level: SELF_ONLY}
";

const SECOND: &str = "  - path: ./second
    account: brand
    mode: inbox
    done_dir: ./second-done
    failed_dir: ./second-failed
    settle: 300ms
";

/// Writes the config; the watched folders must exist (their done/failed folders need not).
fn config(d: &Dir, entries: &[&str]) {
    fs::create_dir_all(d.path("second")).expect("mkdir");
    // The shared test config up to its folder list, then these folders.
    let head = CONFIG.split("watch:\n").next().expect("head");
    d.write("watch.yaml", &format!("{head}watch:\n{}", entries.concat()));
}

/// Drops a photo with a one-line sidecar by renaming both in.
fn drop_photo(d: &Dir, folder: &str, stem: &str) {
    d.copy_sample("photo.jpg", &format!("outside/{stem}.jpg"));
    d.write(&format!("outside/{stem}.yaml"), "title: hello\n");
    for ext in ["yaml", "jpg"] {
        fs::rename(
            d.path(&format!("outside/{stem}.{ext}")),
            d.path(&format!("{folder}/{stem}.{ext}")),
        )
        .expect("mv");
    }
}

/// A folder added by a reload is created and watched, with its own account and mode; a changed
/// default applies to the next item of the folder that was already watched.
#[tokio::test]
async fn reload_adds_a_folder_and_changes_defaults() {
    let d = Dir::empty();
    config(&d, &[INBOX]);
    let p = std::sync::Arc::new(FakePublisher::default());
    let mut s = Service::start(&d.path("watch.yaml"), p.clone());
    drop_photo(&d, "inbox", "before");
    let (item, status, result) = s.finished(10).await;
    assert_eq!((item.as_str(), status), ("before.jpg", Status::Published));
    assert!(
        fs::read_to_string(&result)
            .expect("result")
            .contains("privacy_level: SELF_ONLY")
    );

    config(
        &d,
        &[&INBOX.replace("SELF_ONLY", "FOLLOWER_OF_CREATOR"), SECOND],
    );
    s.reload(&d.path("watch.yaml"));
    // Dropped before the new folder is watched or after: the listing that follows a reload
    // finds it either way.
    drop_photo(&d, "second", "new");
    let (item, status, result) = s.finished(10).await;
    assert_eq!((item.as_str(), status), ("new.jpg", Status::Published));
    assert_eq!(result, d.path("second-done/new.result.yaml"));
    let text = fs::read_to_string(&result).expect("result");
    assert!(
        text.contains("account: brand") && text.contains("mode: inbox"),
        "{text}"
    );

    drop_photo(&d, "inbox", "after");
    let (item, _, result) = s.finished(10).await;
    assert_eq!(item, "after.jpg");
    let text = fs::read_to_string(&result).expect("result");
    assert!(
        text.contains("privacy_level: FOLLOWER_OF_CREATOR"),
        "{text}"
    );
    s.stop().await;
}

/// Removing the folder of the item in flight does not disturb it: it is published once and
/// ends in the done folder it was claimed for. The removed folder is no longer watched.
#[tokio::test]
async fn reload_removing_the_folder_of_the_item_in_flight() {
    let d = Dir::empty();
    config(&d, &[INBOX, SECOND]);
    let p = std::sync::Arc::new(FakePublisher::default());
    let hold = p.hold("flight.jpg");
    let mut s = Service::start(&d.path("watch.yaml"), p.clone());
    drop_photo(&d, "inbox", "flight");
    hold.entered.notified().await;

    config(&d, &[SECOND]);
    s.reload(&d.path("watch.yaml"));
    hold.release.notify_one();
    let (item, status, result) = s.finished(10).await;
    assert_eq!((item.as_str(), status), ("flight.jpg", Status::Published));
    assert_eq!(result, d.path("done/flight.result.yaml"));
    assert_eq!(p.inits_of("flight.jpg"), 1);

    // Dropped into the folder no longer watched, then into the one still watched: only the
    // second is taken.
    drop_photo(&d, "inbox", "ignored");
    drop_photo(&d, "second", "taken");
    loop {
        match s.events.recv().await.expect("events") {
            Event::Claimed { item, .. } => {
                assert_eq!(item, "taken.jpg", "only the watched folder is taken");
                break;
            }
            _ => continue,
        }
    }
    let (item, _, _) = s.finished(10).await;
    assert_eq!(item, "taken.jpg");
    s.quiet_for(800).await;
    assert!(d.path("inbox/ignored.jpg").exists());
    s.stop().await;
}

/// A reload that adds an account starts its queue: the new account publishes even while the
/// first account's item is held in flight.
#[tokio::test]
async fn reload_adds_an_account_with_its_own_queue() {
    let d = Dir::empty();
    config(&d, &[INBOX]);
    let p = std::sync::Arc::new(FakePublisher::default());
    let hold = p.hold("busy.jpg");
    let mut s = Service::start(&d.path("watch.yaml"), p.clone());
    drop_photo(&d, "inbox", "busy");
    hold.entered.notified().await;
    config(&d, &[INBOX, SECOND]);
    s.reload(&d.path("watch.yaml"));
    drop_photo(&d, "second", "other");
    let (item, _, result) = s.finished(10).await;
    assert_eq!(item, "other.jpg");
    assert_eq!(result, d.path("second-done/other.result.yaml"));
    hold.release.notify_one();
    let (item, _, _) = s.finished(10).await;
    assert_eq!(item, "busy.jpg");
    s.stop().await;
}
