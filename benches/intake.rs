//! Benchmark (not a test; `cargo bench --bench intake`): how fast intake notices an item
//! renamed into the watched folder (rename → claimed, p50/p95 over 200 renames of a media file
//! whose sidecar is already there), and how long the first listing of a folder holding 10 000
//! items takes until every item is lined up (waiting in the folder for its account's worker).

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokdrop::config::Config;
use tokdrop::lifecycle::intake::{Candidate, Intake};
use tokdrop::lifecycle::journal::Journal;
use tokdrop::lifecycle::pipeline::{self, Event, Shared};
use tokdrop::lifecycle::publish::{Attempt, Job, PublishOutcome, Publisher};
use tokdrop::lifecycle::status::Board;

/// Publishes nothing: every job ends at once as published.
struct Instant_;
impl Publisher for Instant_ {
    fn publish<'a>(
        &'a self,
        _job: &'a mut Job,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Attempt> + Send + 'a>> {
        Box::pin(async {
            Attempt::Done(Box::new(PublishOutcome {
                status: tokdrop::lifecycle::outcome::Status::Published,
                transfer: None,
                publish_id: None,
                post_ids: Vec::new(),
                post_url: None,
                previous_attempts: Vec::new(),
                fetched: None,
                error: None,
            }))
        })
    }
}

fn config(dir: &Path) -> Config {
    std::fs::create_dir_all(dir.join("inbox")).expect("inbox");
    std::fs::write(dir.join("secret"), "s").expect("secret");
    std::fs::write(
        dir.join("watch.yaml"),
        "state_dir: ./state
server: {listen: 127.0.0.1:8443, public_url: https://media.example.com/, tls: {self_signed: true}}
tiktok: {client_key: k, client_secret_file: ./secret}
watch:
  - {path: ./inbox, mode: direct, done_dir: ./done, failed_dir: ./failed, settle: 5s, defaults: {privacy_level: SELF_ONLY}}
",
    )
    .expect("config");
    Config::load(&dir.join("watch.yaml")).expect("valid")
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

async fn rename_latency(jpg: &[u8]) {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = Arc::new(config(dir.path()));
    std::fs::create_dir_all(&config.state_dir).expect("state");
    let (events, mut rx) = tokio::sync::broadcast::channel(4096);
    let shared = Shared {
        config: tokio::sync::watch::channel(config.clone()).1,
        journal: Journal::open(&config.state_dir).expect("journal"),
        board: Board::default(),
        events,
        notifications: tokdrop::lifecycle::notifications::Notifications::off(),
    };
    let cancel = tokio_util::sync::CancellationToken::new();
    let task = tokio::spawn(pipeline::run(shared, Arc::new(Instant_), cancel.clone()));
    let outside = dir.path().join("outside");
    std::fs::create_dir_all(&outside).expect("outside");
    tokio::time::sleep(Duration::from_millis(300)).await; // let the watches be installed
    let mut lat = Vec::new();
    for i in 0..200 {
        std::fs::write(
            dir.path().join(format!("inbox/p{i}.yaml")),
            "title: bench\n",
        )
        .expect("sidecar");
        std::fs::write(outside.join(format!("p{i}.jpg")), jpg).expect("photo");
        let t0 = Instant::now();
        std::fs::rename(
            outside.join(format!("p{i}.jpg")),
            dir.path().join(format!("inbox/p{i}.jpg")),
        )
        .expect("rename");
        loop {
            match rx.recv().await.expect("events") {
                Event::Claimed { item, .. } if item == format!("p{i}.jpg") => break,
                _ => {}
            }
        }
        lat.push(t0.elapsed());
    }
    cancel.cancel();
    let _ = task.await;
    lat.sort();
    println!(
        "rename → claimed, 200 renames (sidecar present, settle 5s): p50 {:.1} ms, p95 {:.1} ms, max {:.1} ms",
        percentile(&lat, 0.5).as_secs_f64() * 1e3,
        percentile(&lat, 0.95).as_secs_f64() * 1e3,
        lat[lat.len() - 1].as_secs_f64() * 1e3
    );
}

async fn initial_scan(jpg: &[u8], n: usize) {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = Arc::new(config(dir.path()));
    let old = std::time::SystemTime::now() - Duration::from_secs(3600);
    for i in 0..n {
        let p = dir.path().join(format!("inbox/p{i:05}.jpg"));
        std::fs::write(&p, jpg).expect("photo");
        std::fs::File::options()
            .write(true)
            .open(&p)
            .and_then(|f| f.set_modified(old))
            .expect("mtime");
    }
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Candidate>(n + 1);
    let drain = tokio::spawn(async move {
        let mut count = 0;
        while rx.recv().await.is_some() {
            count += 1;
        }
        count
    });
    let mut intake = Intake::new(
        config,
        Board::default(),
        tokdrop::lifecycle::worker_state::WorkerStates::default(),
        tx,
    );
    let t0 = Instant::now();
    intake.rescan_at_start().await;
    let took = t0.elapsed();
    let lined_up = intake.in_line();
    drop(intake);
    let handed = drain.await.expect("drain");
    println!(
        "initial scan of {n} items (dropped while the service was down): {:.2} s, {lined_up} in line, {handed} handed on",
        took.as_secs_f64()
    );
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let jpg =
        std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/media/photo.jpg"))
            .expect("sample");
    rename_latency(&jpg).await;
    initial_scan(&jpg, 10_000).await;
}
