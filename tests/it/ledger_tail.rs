//! `tokdrop status` and `tokdrop results --since/--last` read the ledger from its end (issue
//! 16): the same answers as reading it all, across block boundaries, with a torn last line;
//! without them it streams everything from the end.

use crate::harness::Dir;

/// One ledger line: item `n`, finished `n` minutes after the start, every third one failed,
/// padded so that lines cross the 64 KiB blocks the reader uses.
fn line(n: u64, start: jiff::Timestamp) -> String {
    let at = start + jiff::SignedDuration::from_mins(n as i64);
    let (status, extra) = if n.is_multiple_of(3) {
        (
            "failed",
            r#","error":{"stage":"transfer","code":"video_pull_failed","message":"m","hint":"h"}"#,
        )
    } else {
        ("published", "")
    };
    format!(
        r#"{{"status":"{status}","item":"item{n}.mp4","files":["item{n}.mp4"],"watch":"inbox","account":"default","mode":"direct","previous_attempts":[],"post_ids":[],"title":"{pad}","queued_at":"{at}","finished_at":"{at}","id":"id-{n}"{extra}}}"#,
        pad = "x".repeat(300 + (n as usize * 7) % 500),
        at = at.round(jiff::Unit::Second).expect("round"),
    )
}

#[test]
fn status_and_results_read_the_newest_lines_from_the_end() {
    let d = Dir::new("direct");
    let start = jiff::Timestamp::now() - jiff::SignedDuration::from_mins(2000);
    let total = 2000u64;
    let mut text = String::new();
    for n in 0..total {
        text.push_str(&line(n, start));
        text.push('\n');
    }
    text.push_str(r#"{"status":"publ"#); // a torn last line (power cut)
    std::fs::create_dir_all(d.path("state")).expect("state");
    std::fs::write(d.path("state/ledger.jsonl"), text).expect("ledger");

    let last = d.run(&["results", "--last", "3", "--json"]);
    let ids: Vec<String> = last
        .stdout
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).expect("json")["id"].to_string())
        .collect();
    assert_eq!(
        ids,
        ["\"id-1999\"", "\"id-1998\"", "\"id-1997\""],
        "{}",
        last.all()
    );

    // The last 100 minutes: items 1900..1999 (finished at 1900..1999 minutes after start).
    let since = d.run(&["results", "--since", "100m", "--json"]);
    let got = since.stdout.lines().count();
    assert!((99..=101).contains(&got), "{got} results:\n{}", since.all());
    let failed = d.run(&["results", "--since", "100m", "--failed", "--json"]);
    assert!(
        failed
            .stdout
            .lines()
            .all(|l| l.contains(r#""status":"failed""#)),
        "{}",
        failed.stdout
    );
    let everything = d.run(&["results", "--json"]);
    assert_eq!(everything.stdout.lines().count(), total as usize);
    assert!(
        everything
            .stderr
            .contains("1 line(s) of the ledger could not be read"),
        "{}",
        everything.stderr
    );

    // Without --since/--last, streamed from the end: newest first, every failure, and the
    // table (its first 1000 rows size the column) with one header.
    let failures = d.run(&["results", "--failed", "--json"]);
    let ids: Vec<String> = failures
        .stdout
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).expect("json")["id"].to_string())
        .collect();
    assert_eq!(ids.len(), 667, "{}", failures.stderr);
    assert_eq!(ids.first().map(String::as_str), Some("\"id-1998\""));
    assert_eq!(ids.last().map(String::as_str), Some("\"id-0\""));
    let table = d.run(&["results"]);
    let rows: Vec<&str> = table.stdout.lines().collect();
    assert_eq!(rows.len(), total as usize + 1, "{}", table.stderr);
    assert!(rows[0].starts_with("FINISHED (UTC)"), "{}", rows[0]);
    assert!(rows[1].contains("item1999.mp4") && rows[2000].contains("item0.mp4"));
    assert_eq!(rows.iter().filter(|r| r.starts_with("FINISHED")).count(), 1);
    let none = d.run(&["results", "--last", "0", "--json"]);
    assert_eq!(none.stdout, "", "{}", none.all());

    let status = d.run(&["status"]);
    assert!(status.stdout.contains("item1999.mp4"), "{}", status.all());
    assert!(status.stdout.contains("item1995.mp4"), "{}", status.all());
    assert!(!status.stdout.contains("item1994.mp4"), "{}", status.all());
}

/// The ledger rotates past its size (here 1 byte, so every append starts a new file); the old
/// files are kept, and `results` and `status` read across all of them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotated_ledger_is_read_across_its_files() {
    let r = crate::service::start_full(
        "",
        "",
        |_| {},
        &[("TOKDROP_LEDGER_ROTATE_BYTES", "1".to_string())],
    )
    .await;
    for name in ["a.jpg", "b.jpg", "c.jpg"] {
        r.d.copy_sample("photo.jpg", &format!("inbox/{name}"));
        let text = r.finished(name, 60);
        assert!(text.contains("status: published"), "{text}");
    }
    let files: Vec<String> = std::fs::read_dir(r.d.path("state"))
        .expect("state")
        .flatten()
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| n.starts_with("ledger"))
        .collect();
    assert_eq!(files.len(), 3, "{files:?}");
    let d = &r.d;
    let all = tokio::task::block_in_place(|| d.run(&["results", "--json"]));
    let items: Vec<String> = all
        .stdout
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).expect("json")["item"].to_string())
        .collect();
    assert_eq!(
        items,
        ["\"c.jpg\"", "\"b.jpg\"", "\"a.jpg\""],
        "{}",
        all.all()
    );
    let last = tokio::task::block_in_place(|| d.run(&["results", "--last", "2", "--json"]));
    assert_eq!(last.stdout.lines().count(), 2, "{}", last.all());
    assert!(last.stdout.contains("b.jpg") && !last.stdout.contains("a.jpg"));
    r.stop();
}
