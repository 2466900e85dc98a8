//! A scripted publisher and an in-process service for the folder-pipeline tests: the real
//! intake, journal and results, with publishing replaced by a fake that records every init.

use std::collections::HashMap;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

use tokdrop::config::Config;
use tokdrop::lifecycle::journal::Journal;
use tokdrop::lifecycle::outcome::{ErrorStage, ResultError, Status};
use tokdrop::lifecycle::pipeline::{self, Event, Shared};
use tokdrop::lifecycle::publish::{Attempt, Job, PublishOutcome, Publisher};
use tokdrop::lifecycle::status::Board;

/// Publishes instantly: journals the init intent and a publish_id, like the real one.
#[derive(Default)]
pub struct FakePublisher {
    /// Every init, by item name.
    pub inits: Mutex<Vec<String>>,
    /// Items whose post should FAIL with this fail_reason.
    pub fail: Mutex<HashMap<String, String>>,
    /// Also append every init to this file (it outlives a killed process).
    pub init_log: Option<PathBuf>,
    /// Items held in flight after their init until released (see [`Hold`]).
    pub hold: Mutex<HashMap<String, Arc<Hold>>>,
}

/// Keeps one item in flight: `entered` fires once its publish_id is journaled, the publisher
/// then waits for `release`.
#[derive(Default)]
pub struct Hold {
    pub entered: tokio::sync::Notify,
    pub release: tokio::sync::Notify,
}

impl FakePublisher {
    /// Holds `item` in flight once it is published, until the returned hold is released.
    pub fn hold(&self, item: &str) -> Arc<Hold> {
        let h = Arc::new(Hold::default());
        self.hold
            .lock()
            .expect("lock")
            .insert(item.to_string(), h.clone());
        h
    }
}

impl FakePublisher {
    pub fn inits_of(&self, item: &str) -> usize {
        self.inits
            .lock()
            .expect("lock")
            .iter()
            .filter(|i| *i == item)
            .count()
    }
}

impl Publisher for FakePublisher {
    fn publish<'a>(
        &'a self,
        job: &'a mut Job,
    ) -> Pin<Box<dyn std::future::Future<Output = Attempt> + Send + 'a>> {
        Box::pin(async move {
            let item = job.record.item.clone();
            let publish_id = match job.publish_id() {
                Some(id) => id.to_string(),
                None => {
                    job.init_intent("pull").expect("journal");
                    self.inits.lock().expect("lock").push(item.clone());
                    if let Some(log) = &self.init_log {
                        use std::io::Write;
                        let mut f = std::fs::OpenOptions::new()
                            .create(true)
                            .append(true)
                            .open(log)
                            .expect("init log");
                        writeln!(f, "{item}").expect("init log");
                    }
                    let id = format!("v_pub_url~v2.{}", self.inits.lock().expect("lock").len());
                    job.published(&id, "pull", None).expect("journal");
                    id
                }
            };
            let hold = self.hold.lock().expect("lock").get(&item).cloned();
            if let Some(h) = hold {
                h.entered.notify_one();
                h.release.notified().await;
            }
            let failure = self.fail.lock().expect("lock").get(&item).cloned();
            let mut o = PublishOutcome {
                status: Status::Published,
                transfer: Some("pull".into()),
                publish_id: Some(publish_id),
                post_ids: vec!["7412345678901234567".into()],
                post_url: Some("https://www.tiktok.com/@sandbox/video/7412345678901234567".into()),
                previous_attempts: Vec::new(),
                fetched: None,
                error: None,
            };
            if let Some(reason) = failure {
                o.status = Status::Failed;
                o.post_ids.clear();
                o.post_url = None;
                o.error = Some(ResultError {
                    stage: ErrorStage::Processing,
                    code: reason,
                    message: "TikTok refused the post".into(),
                    log_id: None,
                    hint: "fix the media".into(),
                });
            }
            Attempt::Done(Box::new(o))
        })
    }
}

/// The pipeline running in this process.
pub struct Service {
    pub shared: Shared,
    pub events: broadcast::Receiver<Event>,
    configs: tokio::sync::watch::Sender<Arc<Config>>,
    cancel: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

impl Service {
    pub fn start(config_file: &std::path::Path, publisher: Arc<FakePublisher>) -> Service {
        Self::start_observed(config_file, publisher, None)
    }

    /// Starts with an observer of every journal transition.
    pub fn start_observed(
        config_file: &std::path::Path,
        publisher: Arc<FakePublisher>,
        observer: Option<tokdrop::lifecycle::journal::Observer>,
    ) -> Service {
        let config = Arc::new(Config::load(config_file).expect("valid test config"));
        std::fs::create_dir_all(&config.state_dir).expect("state dir");
        let mut journal = Journal::open(&config.state_dir).expect("journal");
        if let Some(o) = observer {
            journal = journal.with_observer(o);
        }
        let (events_tx, events) = broadcast::channel(4096);
        let (configs, config) = tokio::sync::watch::channel(config);
        let shared = Shared {
            config,
            journal,
            board: Board::default(),
            events: events_tx,
            notifications: tokdrop::lifecycle::notifications::Notifications::off(),
        };
        let cancel = CancellationToken::new();
        let task = tokio::spawn({
            let (shared, cancel) = (shared.clone(), cancel.clone());
            async move {
                pipeline::run(shared, publisher, cancel)
                    .await
                    .expect("pipeline runs");
            }
        });
        Service {
            shared,
            events,
            configs,
            cancel,
            task,
        }
    }

    /// Hands the running pipeline the config now in `config_file`, as SIGHUP does.
    pub fn reload(&self, config_file: &std::path::Path) {
        let config = Config::load(config_file).expect("valid test config");
        self.configs.send_replace(Arc::new(config));
    }

    /// Waits (up to `secs`) for the next finished item.
    pub async fn finished(&mut self, secs: u64) -> (String, Status, PathBuf) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
        loop {
            let e = tokio::time::timeout_at(deadline, self.events.recv())
                .await
                .expect("an item should have finished by now")
                .expect("event channel open");
            if let Event::Finished {
                item,
                status,
                result_file,
            } = e
            {
                return (item, status, result_file);
            }
        }
    }

    /// Asserts no item finishes within `ms` (used after the interesting event already happened).
    pub async fn quiet_for(&mut self, ms: u64) {
        if let Ok(Ok(e)) = tokio::time::timeout(Duration::from_millis(ms), self.events.recv()).await
        {
            panic!("nothing should have happened, got {e:?}");
        }
    }

    pub async fn stop(self) {
        self.cancel.cancel();
        tokio::time::timeout(Duration::from_secs(10), self.task)
            .await
            .expect("stops in time")
            .expect("no panic");
    }
}
