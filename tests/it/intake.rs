//! The folder contract end to end with a fake publisher (SPEC §3–5): how files arrive, when
//! they are taken, where they end up and what the result file says.

use std::fs;
use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use tokdrop::lifecycle::outcome::Status;

use crate::fake::{FakePublisher, Service};
use crate::harness::{Dir, sample};

const CONFIG: &str = "\
state_dir: ./state
server:
  listen: 127.0.0.1:8443
  public_url: https://media.example.com/
  tls: {self_signed: true}
tiktok:
  client_key: key
  client_secret_file: ./secret
watch:
  - path: ./inbox
    mode: direct
    done_dir: ./done
    failed_dir: ./failed
    settle: 1s
    give_up_after: 2s
    defaults: {privacy_level: SELF_ONLY}
";

fn setup(extra: &str) -> (Dir, Arc<FakePublisher>) {
    let d = Dir::empty();
    d.write("watch.yaml", &format!("{CONFIG}{extra}"));
    fs::create_dir_all(d.path("outside")).expect("outside");
    (d, Arc::new(FakePublisher::default()))
}

fn start(d: &Dir, p: &Arc<FakePublisher>) -> Service {
    Service::start(&d.path("watch.yaml"), p.clone())
}

fn read(p: &Path) -> String {
    fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// Files prepared elsewhere and renamed in are published; the result file says so and the files
/// sit next to it in done/.
#[tokio::test]
async fn rename_in_is_published() {
    let (d, p) = setup("");
    let mut s = start(&d, &p);
    d.copy_sample("h264_faststart.mp4", "outside/clip.mp4");
    d.write("outside/clip.yaml", "title: \"Hello #fyp\"\n");
    fs::rename(d.path("outside/clip.yaml"), d.path("inbox/clip.yaml")).expect("mv");
    fs::rename(d.path("outside/clip.mp4"), d.path("inbox/clip.mp4")).expect("mv");
    let (item, status, result) = s.finished(10).await;
    assert_eq!((item.as_str(), status), ("clip.mp4", Status::Published));
    assert_eq!(result, d.path("done/clip.result.yaml"));
    let text = read(&result);
    assert!(
        text.starts_with(
            "# clip.mp4: published — https://www.tiktok.com/@sandbox/video/7412345678901234567\n"
        ),
        "{text}"
    );
    assert!(text.contains("status: published\n"), "{text}");
    assert!(text.contains("files:\n- clip.mp4\n- clip.yaml\n"), "{text}");
    assert!(
        text.contains("title: \"Hello #fyp\"") || text.contains("title: Hello #fyp"),
        "{text}"
    );
    assert!(text.contains("privacy_level: SELF_ONLY"), "{text}");
    assert_eq!(
        fs::read(d.path("done/clip.mp4")).expect("moved"),
        fs::read(sample("h264_faststart.mp4")).expect("sample")
    );
    assert!(!d.path("inbox/clip.mp4").exists());
    let ledger = read(&d.path("state/ledger.jsonl"));
    assert_eq!(ledger.lines().count(), 1);
    assert!(ledger.contains("\"status\":\"published\""), "{ledger}");
    assert_eq!(p.inits_of("clip.mp4"), 1);
    s.stop().await;
}

/// A writer that writes in small pieces with pauses longer than settle/2 is never taken before
/// its last byte: the content check holds it back, and the published bytes are the whole file.
#[tokio::test]
async fn slow_writer_is_taken_only_when_complete() {
    let (d, p) = setup("");
    let mut s = start(&d, &p);
    let bytes = fs::read(sample("h264_moov_at_end.mp4")).expect("sample");
    let mut f = fs::File::create(d.path("inbox/slow.mp4")).expect("create");
    for chunk in bytes.chunks(bytes.len() / 8 + 1) {
        f.write_all(chunk).expect("write");
        f.flush().expect("flush");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    drop(f);
    let (item, status, _) = s.finished(10).await;
    assert_eq!((item.as_str(), status), ("slow.mp4", Status::Published));
    assert_eq!(fs::read(d.path("done/slow.mp4")).expect("moved"), bytes);
    s.stop().await;
}

/// A writer that truncates and rewrites the file still yields the final content, once.
#[tokio::test]
async fn truncate_and_rewrite() {
    let (d, p) = setup("");
    let mut s = start(&d, &p);
    let bytes = fs::read(sample("h264_faststart.mp4")).expect("sample");
    fs::write(d.path("inbox/re.mp4"), &bytes[..bytes.len() / 3]).expect("write");
    fs::write(d.path("inbox/re.mp4"), b"").expect("truncate");
    fs::write(d.path("inbox/re.mp4"), &bytes).expect("rewrite");
    let (item, status, _) = s.finished(10).await;
    assert_eq!((item.as_str(), status), ("re.mp4", Status::Published));
    assert_eq!(fs::read(d.path("done/re.mp4")).expect("moved"), bytes);
    assert_eq!(p.inits_of("re.mp4"), 1);
    s.stop().await;
}

/// Copy tools' temp names (rsync's `.name.XXXX`, `*.part`) are ignored until the final rename.
#[tokio::test]
async fn temp_names_are_ignored_until_renamed() {
    let (d, p) = setup("");
    let mut s = start(&d, &p);
    d.copy_sample("photo.jpg", "inbox/.pic.jpg.Ab12Cd");
    d.copy_sample("photo.jpg", "inbox/other.jpg.part");
    fs::rename(d.path("inbox/.pic.jpg.Ab12Cd"), d.path("inbox/pic.jpg")).expect("mv");
    let (item, status, _) = s.finished(10).await;
    assert_eq!((item.as_str(), status), ("pic.jpg", Status::Published));
    s.quiet_for(1000).await;
    assert!(
        d.path("inbox/other.jpg.part").exists(),
        "the .part file stays untouched"
    );
    s.stop().await;
}

/// A sidecar written before or shortly after its media is part of the item.
#[tokio::test]
async fn sidecar_before_and_after_media() {
    let (d, p) = setup("");
    let mut s = start(&d, &p);
    d.write("inbox/a.yaml", "title: first\n");
    d.copy_sample("photo.jpg", "inbox/a.jpg");
    d.copy_sample("photo.jpg", "inbox/b.jpg");
    tokio::time::sleep(Duration::from_millis(100)).await; // the sidecar follows its photo
    d.write("inbox/b.yaml", "title: second\n");
    for _ in 0..2 {
        let (item, status, result) = s.finished(10).await;
        assert_eq!(status, Status::Published);
        let want = if item == "a.jpg" {
            "title: first"
        } else {
            "title: second"
        };
        assert!(read(&result).contains(want), "{item}: {}", read(&result));
    }
    s.stop().await;
}

/// A photo set prepared elsewhere and moved in at once is taken as one item and moves as a
/// whole; one whose images are copied in one by one waits until the last is there.
#[tokio::test]
async fn photo_sets_moved_in_and_copied_in() {
    let (d, p) = setup("");
    let mut s = start(&d, &p);
    for n in ["1.jpg", "2.jpg", "10.jpg"] {
        d.copy_sample("photo.jpg", &format!("outside/trip/{n}"));
    }
    d.write("outside/trip/post.yaml", "title: Trip\ncover_index: 2\n");
    fs::rename(d.path("outside/trip"), d.path("inbox/trip")).expect("mv");
    let (item, status, result) = s.finished(10).await;
    assert_eq!((item.as_str(), status), ("trip", Status::Published));
    assert_eq!(result, d.path("done/trip.result.yaml"));
    assert!(
        read(&result)
            .contains("files:\n- trip/1.jpg\n- trip/2.jpg\n- trip/10.jpg\n- trip/post.yaml\n"),
        "{}",
        read(&result)
    );
    fs::create_dir(d.path("inbox/walk")).expect("mkdir");
    for n in ["1.jpg", "2.jpg", "3.jpg"] {
        d.copy_sample("photo.jpg", &format!("inbox/walk/{n}"));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (item, status, result) = s.finished(10).await;
    assert_eq!((item.as_str(), status), ("walk", Status::Published));
    assert!(
        read(&result).contains("- walk/3.jpg\n"),
        "{}",
        read(&result)
    );
    s.stop().await;
}

/// With `sidecar: required` a media file waits (and `status` says so) until its sidecar comes.
#[tokio::test]
async fn required_sidecar_waits() {
    let (d, p) = setup("    sidecar: required\n");
    let mut s = start(&d, &p);
    d.copy_sample("photo.jpg", "inbox/pic.jpg");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let snap = s.shared.board.snapshot();
        if snap
            .waiting
            .iter()
            .any(|w| w.reason == tokdrop::lifecycle::status::Reason::WaitingForSidecar)
        {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "never waited for the sidecar: {snap:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    d.write("inbox/pic.yaml", "title: now\n");
    let (item, status, _) = s.finished(10).await;
    assert_eq!((item.as_str(), status), ("pic.jpg", Status::Published));
    s.stop().await;
}

/// An invalid item goes to failed/ as `invalid` with the reason, without any publish call.
#[tokio::test]
async fn invalid_item_fails_without_publishing() {
    let (d, p) = setup("");
    let mut s = start(&d, &p);
    d.write("outside/bad.yaml", "privacy_level: public\n");
    d.copy_sample("photo.jpg", "outside/bad.jpg");
    fs::rename(d.path("outside/bad.yaml"), d.path("inbox/bad.yaml")).expect("mv");
    fs::rename(d.path("outside/bad.jpg"), d.path("inbox/bad.jpg")).expect("mv");
    let (item, status, result) = s.finished(10).await;
    assert_eq!((item.as_str(), status), ("bad.jpg", Status::Invalid));
    assert_eq!(result, d.path("failed/bad.result.yaml"));
    let text = read(&result);
    assert!(text.contains("stage: validate"), "{text}");
    assert!(text.contains("'public' is not one of"), "{text}");
    assert!(
        text.contains("did you mean 'PUBLIC_TO_EVERYONE'?"),
        "{text}"
    );
    assert_eq!(p.inits_of("bad.jpg"), 0);

    // Several wrong fields: all in the message, and the summary says how many.
    d.write(
        "outside/worse.yaml",
        "privacy_level: public\ndisable_comment: yes please\n",
    );
    d.copy_sample("photo.jpg", "outside/worse.jpg");
    fs::rename(d.path("outside/worse.yaml"), d.path("inbox/worse.yaml")).expect("mv");
    fs::rename(d.path("outside/worse.jpg"), d.path("inbox/worse.jpg")).expect("mv");
    let (_, status, result) = s.finished(10).await;
    assert_eq!(status, Status::Invalid);
    let text = read(&result);
    assert!(
        text.starts_with("# worse.jpg: invalid — fix the 2 problems in worse.yaml (see message), then move the files back"),
        "{text}"
    );
    assert!(
        text.contains("'privacy_level'")
            && text.contains("'disable_comment': expected true or false"),
        "{text}"
    );
    s.stop().await;
}

/// A file that stays incomplete goes to failed/ after give_up_after with the reason.
#[tokio::test]
async fn incomplete_file_is_given_up() {
    let (d, p) = setup("");
    let mut s = start(&d, &p);
    let bytes = fs::read(sample("h264_moov_at_end.mp4")).expect("sample");
    fs::write(d.path("inbox/stuck.mp4"), &bytes[..bytes.len() - 100]).expect("write");
    let (item, status, result) = s.finished(15).await;
    assert_eq!((item.as_str(), status), ("stuck.mp4", Status::Invalid));
    let text = read(&result);
    assert!(text.contains("code: incomplete_file"), "{text}");
    assert!(text.contains("incomplete: "), "{text}");
    assert!(d.path("failed/stuck.mp4").exists());
    s.stop().await;
}

/// Names already taken in done/ make the whole group move under `-2`.
#[tokio::test]
async fn collisions_in_done_get_a_suffix() {
    let (d, p) = setup("");
    fs::create_dir_all(d.path("done")).expect("done");
    d.write("done/clip.mp4", "an older post");
    let mut s = start(&d, &p);
    d.copy_sample("h264_faststart.mp4", "outside/clip.mp4");
    d.write("outside/clip.yaml", "title: again\n");
    fs::rename(d.path("outside/clip.yaml"), d.path("inbox/clip.yaml")).expect("mv");
    fs::rename(d.path("outside/clip.mp4"), d.path("inbox/clip.mp4")).expect("mv");
    let (_, status, result) = s.finished(10).await;
    assert_eq!(status, Status::Published);
    assert_eq!(result, d.path("done/clip-2.result.yaml"));
    assert!(d.path("done/clip-2.mp4").exists() && d.path("done/clip-2.yaml").exists());
    assert_eq!(read(&d.path("done/clip.mp4")), "an older post");
    assert!(
        read(&result).contains("files:\n- clip-2.mp4\n- clip-2.yaml\n"),
        "{}",
        read(&result)
    );
    s.stop().await;
}

/// A file deleted before it settles is simply forgotten.
#[tokio::test]
async fn deleted_before_settle_is_forgotten() {
    let (d, p) = setup("");
    let mut s = start(&d, &p);
    d.copy_sample("photo.jpg", "inbox/gone.jpg");
    fs::remove_file(d.path("inbox/gone.jpg")).expect("rm");
    d.copy_sample("photo.jpg", "inbox/kept.jpg");
    let (item, _, _) = s.finished(10).await;
    assert_eq!(item, "kept.jpg");
    assert!(
        fs::read_dir(d.path("failed"))
            .map(|r| r.count())
            .unwrap_or(0)
            == 0
    );
    s.stop().await;
}

/// 1 000 photos dropped at once are all published, each exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_files_at_once() {
    const N: usize = 1000;
    let t0 = std::time::Instant::now();
    let (d, p) = setup("");
    let mut s = start(&d, &p);
    let img = fs::read(sample("photo.jpg")).expect("sample");
    for i in 0..N {
        fs::write(d.path(&format!("inbox/p{i:04}.jpg")), &img).expect("write");
    }
    let mut seen = std::collections::HashSet::new();
    for _ in 0..N {
        let (item, status, _) = s.finished(60).await;
        assert_eq!(status, Status::Published, "{item}");
        assert!(seen.insert(item.clone()), "{item} finished twice");
    }
    eprintln!("{N} files in {:?}", t0.elapsed());
    assert_eq!(p.inits.lock().expect("lock").len(), N);
    s.stop().await;
}

/// A photo written elsewhere and renamed into the inbox (taken at once).
fn rename_in_photo(d: &Dir, name: &str) {
    d.copy_sample("photo.jpg", &format!("outside/{name}"));
    fs::rename(
        d.path(&format!("outside/{name}")),
        d.path(&format!("inbox/{name}")),
    )
    .expect("mv");
}

/// The next item put off (claims pass by): its name and why.
async fn next_deferred(s: &mut Service) -> (String, String) {
    loop {
        match tokio::time::timeout(Duration::from_secs(10), s.events.recv())
            .await
            .expect("an item is put off")
            .expect("events")
        {
            tokdrop::lifecycle::pipeline::Event::Deferred { item, reason } => {
                return (item, reason);
            }
            tokdrop::lifecycle::pipeline::Event::Claimed { .. } => {}
            e => panic!("unexpected {e:?}"),
        }
    }
}

/// A claim that fails (here the work area cannot be created) leaves the files in the folder,
/// says why in `tokdrop status`, and is tried again until it works.
#[tokio::test]
async fn a_failed_claim_is_retried() {
    let (d, p) = setup("");
    let mut s = start(&d, &p);
    while s.events.recv().await.expect("events") != tokdrop::lifecycle::pipeline::Event::Started {}
    // The pipeline created the work area at start; a file in its place makes every claim fail.
    fs::remove_dir(d.path("inbox/.tokdrop")).expect("rmdir");
    d.write("inbox/.tokdrop", "");
    rename_in_photo(&d, "p.jpg");
    let (item, reason) = next_deferred(&mut s).await;
    assert_eq!(item, "p.jpg");
    assert!(reason.starts_with("cannot take it: "), "{reason}");
    assert!(
        d.path("inbox/p.jpg").exists(),
        "the file stays in the folder"
    );
    let snap = s.shared.board.snapshot();
    assert!(
        snap.waiting
            .iter()
            .any(|w| w.path == d.path("inbox/p.jpg") && w.reason.to_string() == reason),
        "{snap:?}"
    );
    fs::remove_file(d.path("inbox/.tokdrop")).expect("rm");
    fs::create_dir(d.path("inbox/.tokdrop")).expect("mkdir");
    let (item, status, _) = s.finished(30).await;
    assert_eq!((item.as_str(), status), ("p.jpg", Status::Published));
    assert_eq!(p.inits_of("p.jpg"), 1);
    s.stop().await;
}

/// A finish that fails (here done/ cannot be created) leaves the item in the work area, says
/// why, and is tried again until it works: the item then ends in done/ with its result, posted
/// once.
#[tokio::test]
async fn a_failed_finish_is_retried() {
    let (d, p) = setup("");
    let mut s = start(&d, &p);
    while s.events.recv().await.expect("events") != tokdrop::lifecycle::pipeline::Event::Started {}
    // A file where the done folder should be: moving the item there fails.
    fs::remove_dir(d.path("done")).expect("rmdir");
    d.write("done", "");
    rename_in_photo(&d, "p.jpg");
    let (item, reason) = next_deferred(&mut s).await;
    assert_eq!(item, "p.jpg");
    assert!(
        reason.starts_with("cannot finish p.jpg: cannot create "),
        "{reason}"
    );
    let snap = s.shared.board.snapshot();
    assert!(
        snap.waiting.iter().any(|w| w.reason.to_string() == reason),
        "{snap:?}"
    );
    fs::remove_file(d.path("done")).expect("rm");
    fs::create_dir(d.path("done")).expect("mkdir");
    let (item, status, result) = s.finished(30).await;
    assert_eq!((item.as_str(), status), ("p.jpg", Status::Published));
    assert_eq!(result, d.path("done/p.result.yaml"));
    assert!(d.path("done/p.jpg").exists());
    assert_eq!(p.inits_of("p.jpg"), 1);
    assert!(
        s.shared.board.snapshot().waiting.is_empty(),
        "nothing waits any more"
    );
    s.stop().await;
}

/// When even the journal cannot record how an item ended (here its record is in the way of
/// the write), the outcome is kept and written once the journal works again: the item ends in
/// done/ with its result, published once.
#[tokio::test]
async fn an_outcome_the_journal_cannot_record_is_kept() {
    let (d, p) = setup("");
    let hold = p.hold("j.jpg");
    let mut s = start(&d, &p);
    rename_in_photo(&d, "j.jpg");
    let id = loop {
        if let tokdrop::lifecycle::pipeline::Event::Claimed { id, .. } =
            s.events.recv().await.expect("events")
        {
            break id;
        }
    };
    hold.entered.notified().await;
    let record = d.path(&format!("state/journal/{id}.json"));
    let saved = fs::read(&record).expect("record");
    fs::remove_file(&record).expect("rm");
    fs::create_dir_all(record.join("in-the-way")).expect("a folder where the record goes");
    hold.release.notify_one();
    let (item, reason) = next_deferred(&mut s).await;
    assert_eq!(item, "j.jpg");
    assert!(
        reason.starts_with("cannot finish j.jpg: cannot write the journal"),
        "{reason}"
    );
    fs::remove_dir_all(&record).expect("rm");
    fs::write(&record, saved).expect("put the record back");
    let (item, status, result) = s.finished(30).await;
    assert_eq!((item.as_str(), status), ("j.jpg", Status::Published));
    assert!(read(&result).contains("status: published"));
    assert!(!record.exists(), "the journal entry is gone once finished");
    assert_eq!(p.inits_of("j.jpg"), 1);
    s.stop().await;
}
