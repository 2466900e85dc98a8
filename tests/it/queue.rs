//! The folder is the queue (issue 13, SPEC §4): the real binary against the emulator. An item
//! stays in its watched folder until its account's worker is ready for it, `tokdrop status`
//! shows its place in line and why it waits, and the claim judges it as it is then.

use std::fs;
use std::time::Duration;

use serde_json::Value;

use crate::service::{Running, login, start};

/// The waiting items of `tokdrop status --json`, once `ok` accepts them (status.json follows
/// the service within a fraction of a second; this waits for it, up to 20 s).
fn waiting_when(r: &Running, what: &str, ok: impl Fn(&[Value]) -> bool) -> Vec<Value> {
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let out = r.d.run(&["status", "--json"]);
        assert_eq!(out.code, 0, "{}", out.all());
        let v: Value = serde_json::from_str(&out.stdout).expect("status --json is JSON");
        let waiting = v["status"]["waiting"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        if ok(&waiting) {
            return waiting;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "status never showed {what}:\n{}",
            out.stdout
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn name(w: &Value) -> String {
    w["path"]
        .as_str()
        .and_then(|p| p.rsplit('/').next())
        .unwrap_or_default()
        .to_string()
}

/// Files directly in `rel` (not the work area), sorted.
fn listing(r: &Running, rel: &str) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(r.d.path(rel))
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n != ".tokdrop")
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

fn count(r: &Running, rel: &str) -> usize {
    count_in(&r.d, rel)
}

/// The item named in a `claimed item=…` log line.
fn claimed_item(line: &str) -> String {
    line.split("claimed item=")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .unwrap_or_default()
        .to_string()
}

/// Claims and finishes as the log tells them, in order.
#[derive(Default)]
struct Seen {
    claimed: Vec<String>,
    /// (item, result file text)
    finished: Vec<(String, String)>,
}

impl Seen {
    fn text_of(&self, item: &str) -> &str {
        self.finished
            .iter()
            .find(|(i, _)| i == item)
            .map_or("", |(_, t)| t.as_str())
    }
}

/// Follows the log (claims and finishes, which may interleave) until `enough` says so.
fn follow(r: &Running, enough: impl Fn(&Seen) -> bool) -> Seen {
    let mut seen = Seen::default();
    while !enough(&seen) {
        let line = r.wait_line(" item=", 60);
        if line.contains("claimed item=") {
            seen.claimed.push(claimed_item(&line));
        } else if let Some(rest) = line.split("finished item=").nth(1) {
            let item = rest.split_whitespace().next().unwrap_or_default();
            let path = line.split("result=").nth(1).expect("result path").trim();
            let text = fs::read_to_string(path).expect("result file");
            seen.finished.push((item.to_string(), text));
        }
    }
    seen
}

/// Asserts that TikTok created each post only after the one before it was complete.
fn one_post_at_a_time(r: &Running) {
    let posts = r.emu.calls().posts;
    for pair in posts.windows(2) {
        let done = pair[0]
            .history
            .iter()
            .find(|(s, _)| s == "PUBLISH_COMPLETE")
            .map(|(_, at)| *at)
            .expect("the earlier post completed");
        assert!(
            pair[1].created_at >= done,
            "{} was created before {} completed",
            pair[1].publish_id,
            pair[0].publish_id
        );
    }
}

/// 30 photos dropped at once, TikTok slow to fetch the first: only that one is claimed, the
/// other 29 stay in the inbox (not in the work area, not journaled), `status --json` lists
/// them with places 1–29 and "account busy (publishing …)"; a sidecar edited while its item
/// waits is the one posted; the next ones are claimed one at a time, each only after TikTok
/// finished the one before, in the order of their places.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn items_wait_in_the_folder_for_their_turn() {
    const N: usize = 30;
    let r = start("", |c| {
        c.hold_pulls = true;
        c.daily_post_cap = 100;
    })
    .await;
    for i in 0..N {
        r.d.write(&format!("inbox/p{i:02}.yaml"), &format!("title: p{i:02}\n"));
        r.d.copy_sample("photo.jpg", &format!("inbox/p{i:02}.jpg"));
    }
    let first = claimed_item(&r.wait_line("claimed item=", 60));
    r.wait_line(&format!("init accepted item={first}"), 60);

    let line = waiting_when(&r, "29 items in line", |w| {
        w.len() == N - 1 && w.iter().all(|w| w["reason"]["kind"] == "account_busy")
    });
    for (i, w) in line.iter().enumerate() {
        assert_eq!(w["place"], i + 1, "{w}");
        assert_eq!(w["account"], "default", "{w}");
        assert_eq!(
            w["reason"]["publishing"].as_str(),
            Some(first.as_str()),
            "{w}"
        );
    }
    let order: Vec<String> = line.iter().map(name).collect();
    assert!(!order.contains(&first));
    let inbox = listing(&r, "inbox");
    assert_eq!(
        inbox.len(),
        2 * N - 2,
        "all but the first wait in the inbox: {inbox:?}"
    );
    assert_eq!(count(&r, "inbox/.tokdrop"), 1, "one item in the work area");
    assert_eq!(count(&r, "state/journal"), 1, "one item journaled");
    let text = r.d.run(&["status"]).stdout;
    assert!(
        text.contains(&format!(
            "waiting #1 (default): inbox/{} — account busy (publishing {first})",
            order[0]
        )),
        "{text}"
    );
    assert!(text.contains("… and 19 more in line for default"), "{text}");

    // The third in line gets a new caption while it waits.
    let edited = order[2].replace(".jpg", ".yaml");
    r.d.write(&format!("inbox/{edited}"), "title: edited while waiting\n");

    r.emu.set(|c| c.hold_pulls = false);
    let seen = follow(&r, |s| {
        s.claimed.len() >= 4 && s.finished.iter().any(|(i, _)| *i == order[2])
    });
    assert_eq!(
        seen.claimed[..4],
        order[..4],
        "claimed in the order of their places"
    );
    let text = seen.text_of(&order[2]);
    assert!(text.contains("title: edited while waiting"), "{text}");
    one_post_at_a_time(&r);
    // At most order[3] (in flight) and order[4] (if order[3] is done already) left since.
    assert!(
        listing(&r, "inbox").len() >= 2 * (N - 6),
        "the rest still wait"
    );
    r.stop();
}

/// A paused account (TikTok no longer accepts its login) holds only the item it was
/// publishing: the others stay in the inbox, `status` says the account is paused, and after a
/// new login they are published, one after the other.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_account_leaves_its_items_in_the_folder() {
    let r = start("", |_| {}).await;
    r.emu
        .control(
            serde_json::from_value(
                serde_json::json!({"expire_access_tokens": true, "revoke_refresh_tokens": true}),
            )
            .expect("control"),
        )
        .expect("control");
    r.d.copy_sample("photo.jpg", "inbox/a.jpg");
    let first = claimed_item(&r.wait_line("claimed item=", 60));
    assert_eq!(first, "a.jpg");
    r.wait_line("paused: needs login", 60);
    r.d.copy_sample("photo.jpg", "inbox/b.jpg");
    r.d.copy_sample("photo.jpg", "inbox/c.jpg");
    let line = waiting_when(&r, "b and c paused in line", |w| {
        w.len() == 2 && w.iter().all(|w| w["reason"]["kind"] == "account_paused")
    });
    assert_eq!(
        line.iter().map(name).collect::<Vec<_>>(),
        ["b.jpg", "c.jpg"]
    );
    assert!(
        line[0]["reason"]["why"]
            .as_str()
            .is_some_and(|w| w.contains("needs login")),
        "{}",
        line[0]
    );
    let text = r.d.run(&["status"]).stdout;
    assert!(
        text.contains("waiting #1 (default): inbox/b.jpg — paused until ")
            && text.contains("(needs login"),
        "{text}"
    );
    assert_eq!(listing(&r, "inbox"), ["b.jpg", "c.jpg"]);
    assert_eq!(count(&r, "state/journal"), 1, "only a.jpg is journaled");

    login(&r.d, &r.emu).await;
    let seen = follow(&r, |s| s.finished.len() == 3);
    assert_eq!(
        seen.claimed,
        ["b.jpg", "c.jpg"],
        "in the order of their places"
    );
    for (item, text) in &seen.finished {
        assert!(text.contains("status: published"), "{item}: {text}");
    }
    one_post_at_a_time(&r);
    r.stop();
}

/// An item with `not_before` waits in the folder, shown as scheduled, and is claimed only once
/// its time has come; an item dropped after it is not held up by it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scheduled_item_is_claimed_only_when_due() {
    let r = start("", |_| {}).await;
    let at = jiff::Timestamp::now()
        .checked_add(jiff::SignedDuration::from_secs(15))
        .expect("time")
        .round(jiff::Unit::Second)
        .expect("round");
    r.d.write("inbox/later.yaml", &format!("not_before: {at}\n"));
    r.d.copy_sample("photo.jpg", "inbox/later.jpg");
    let shown = waiting_when(&r, "later.jpg scheduled", |w| {
        w.iter()
            .any(|w| name(w) == "later.jpg" && w["reason"]["kind"] == "scheduled")
    });
    assert_eq!(shown[0]["reason"]["at"], at.to_string(), "{}", shown[0]);
    assert!(shown[0]["place"].is_null(), "not in line before it is due");
    r.d.copy_sample("photo.jpg", "inbox/now.jpg");
    assert!(r.finished("now.jpg", 60).contains("status: published"));
    if jiff::Timestamp::now() < at {
        assert!(
            r.d.path("inbox/later.jpg").exists() && count(&r, "state/journal") == 0,
            "later.jpg is neither claimed nor journaled before its time"
        );
    }
    let text = r.finished("later.jpg", 60);
    assert!(text.contains("status: published"), "{text}");
    let started: jiff::Timestamp = text
        .lines()
        .find_map(|l| l.strip_prefix("started_at: "))
        .map(|s| s.trim_matches('"').parse().expect("timestamp"))
        .expect("started_at");
    assert!(started >= at, "started {started}, due {at}");
    r.stop();
}

/// Stopped while the first of three items is published: the journal holds that one only, the
/// other two are still in the inbox. The restart resumes the journaled one first (nothing new
/// is claimed before it), finds the other two again in the folder, and each is posted once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_finds_waiting_items_in_the_folder() {
    let r = start("", |c| c.hold_pulls = true).await;
    for n in ["a", "b", "c"] {
        r.d.copy_sample("photo.jpg", &format!("outside/{n}.jpg"));
        fs::rename(
            r.d.path(&format!("outside/{n}.jpg")),
            r.d.path(&format!("inbox/{n}.jpg")),
        )
        .expect("mv");
    }
    let first = claimed_item(&r.wait_line("claimed item=", 60));
    r.wait_line(&format!("init accepted item={first}"), 60);
    waiting_when(&r, "the other two in line", |w| {
        w.iter().filter(|w| !w["place"].is_null()).count() == 2
    });
    let Running { d, emu, p } = r;
    p.stop();
    assert_eq!(
        count_in(&d, "state/journal"),
        1,
        "only the first is journaled"
    );
    let mut waiting: Vec<String> = ["a.jpg", "b.jpg", "c.jpg"]
        .into_iter()
        .filter(|n| d.path(&format!("inbox/{n}")).exists())
        .map(str::to_string)
        .collect();
    waiting.sort();
    assert_eq!(waiting.len(), 2, "{waiting:?}");
    assert!(!waiting.contains(&first));
    let r = Running::spawn(d, emu, &[]);
    r.wait_line("tokdrop is running", 30);
    // TikTok fetches only now that the links are served again.
    r.emu.set(|c| c.hold_pulls = false);
    let seen = follow(&r, |s| s.finished.len() == 3);
    let mut claimed = seen.claimed.clone();
    claimed.sort();
    assert_eq!(claimed, waiting, "the journaled one is not claimed again");
    for (item, text) in &seen.finished {
        assert!(text.contains("status: published"), "{item}: {text}");
    }
    one_post_at_a_time(&r);
    assert_eq!(r.emu.calls().posts.len(), 3, "one post per item");
    r.stop();
}

fn count_in(d: &crate::harness::Dir, rel: &str) -> usize {
    fs::read_dir(d.path(rel)).map_or(0, |d| d.count())
}
