//! The folder pipeline of `tokdrop run`: replay the journal, watch the folders, claim what
//! intake hands on (an item only when its account's worker is free for it: the folder is the
//! queue), run one publisher job at a time per account, finish every item into done/ or
//! failed/. Data flows one way: intake → journal → publish → results; the workers only say
//! what they do ([`crate::lifecycle::worker_state`]). `worker` runs the per-account workers, `recover`
//! replays the journal at start.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{broadcast, mpsc, watch};
use tokio_util::sync::CancellationToken;

use crate::lifecycle::claim::{self, ClaimInfo};
use crate::lifecycle::inspect::Inspection;
use crate::support::backoff::Backoff;

use crate::config::{Config, WatchConfig};
use crate::content::sidecar::rules::Kind;
use crate::lifecycle::intake::{Candidate, Intake, Verdict};
use crate::lifecycle::journal::{Journal, Record, Stage};
use crate::lifecycle::notifications::Notifications;
use crate::lifecycle::outcome::{ErrorStage, ItemResult, ResultError, Status};
use crate::lifecycle::publish::Publisher;
use crate::lifecycle::results;
use crate::lifecycle::status::{self, Board, Reason};
use crate::lifecycle::watch as folders;
use crate::lifecycle::worker_state::{Ticket, WorkerStates};
use crate::support::diagnostic::Diagnostic;

mod recover;
mod worker;

use recover::recover;
pub use worker::PAUSE_RECHECK;
use worker::{Queued, Workers, enqueue};

/// What happened, for tests and the systemd status line.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// The folders are watched and the journal is replayed: the service is ready.
    Started,
    /// Journaled and moved into the work area.
    Claimed { id: String, item: String },
    /// In done/ or failed/ with its result file.
    Finished {
        item: String,
        status: Status,
        result_file: PathBuf,
    },
    /// Put off, to be tried again: its account paused, the service stopping, or its claim or
    /// finish failed (`reason` says which).
    Deferred { item: String, reason: String },
}

#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    #[error(transparent)]
    Journal(#[from] crate::lifecycle::journal::JournalError),
    #[error(transparent)]
    Watch(#[from] folders::WatchError),
    #[error("cannot create {path}: {source}")]
    Folder {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Everything the running pipeline shares.
#[derive(Clone)]
pub struct Shared {
    /// The config in force; SIGHUP sends a new one (see [`run`] for what it changes).
    pub config: watch::Receiver<Arc<Config>>,
    pub journal: Journal,
    pub board: Board,
    pub events: broadcast::Sender<Event>,
    /// Where finished items and account pauses are handed for notification.
    pub notifications: Notifications,
}

impl Shared {
    fn emit(&self, e: Event) {
        let _ = self.events.send(e);
    }

    /// The config in force now.
    pub fn config(&self) -> Arc<Config> {
        self.config.borrow().clone()
    }

    /// Finishes a terminal record. A failure (a full disk, a done folder that cannot be
    /// written) is logged and shown by `tokdrop status`; the record stays journaled and the
    /// finish is tried again, after 2 s and then twice as long each time up to 5 minutes (and
    /// at the next start).
    ///
    /// Moving files (a copy when done/failed are on another filesystem) is blocking work: it
    /// runs on a blocking thread, off the async workers.
    fn finish(&self, record: Record) {
        let shared = self.clone();
        let work = move || {
            if let Err(e) = shared.try_finish(record.clone()) {
                shared.finish_later(record, &e);
            }
        };
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => drop(runtime.spawn_blocking(work)),
            Err(_) => work(),
        }
    }

    fn try_finish(&self, record: Record) -> Result<(), results::FinishError> {
        let config = self.config();
        let (done, failed) = match (&record.done_dir, &record.failed_dir) {
            (Some(d), Some(f)) => (d.clone(), f.clone()),
            // Journals of older versions: the folder's entry as it is now.
            _ => {
                let w = watch_entry(&config, &record);
                (w.done_dir.clone(), w.failed_dir.clone())
            }
        };
        let item = record.item.clone();
        let original = record.paths[0].original.clone();
        let (folder, account) = (
            crate::support::metrics::folder_label(&record.watch),
            record.account.clone(),
        );
        let hooks = hooks_of(&config, &record);
        let handoff = |result: &ItemResult, file: &Path| {
            self.notifications.record_result(hooks, result, file)
        };
        let f = results::finish(
            &self.journal,
            &config.state_dir,
            record,
            &done,
            &failed,
            &handoff,
        )?;
        self.notifications.wake_result(&f.result.id);
        crate::support::metrics::metrics().finished(
            &folder,
            &account,
            f.result.status.as_str(),
            f.result.error.as_ref().map_or("", |e| e.code.as_str()),
            f.result.status.is_success(),
        );
        self.board.unwait(&original);
        tracing::info!(item = %item, status = f.result.status.as_str(), publish_id = f.result.publish_id.as_deref(), result = %f.result_file.display(), "finished");
        self.emit(Event::Finished {
            item,
            status: f.result.status,
            result_file: f.result_file,
        });
        Ok(())
    }

    /// Retries a failed finish in the background. `record` is terminal; when the journal
    /// could not even record that, it is written first. Otherwise the journal's copy is used
    /// (a finish cut short has already recorded where the files go).
    fn finish_later(&self, record: Record, error: &dyn std::fmt::Display) {
        let shared = self.clone();
        let (item, original) = (record.item.clone(), record.paths[0].original.clone());
        let say = move |e: &dyn std::fmt::Display| {
            let text = e.to_string();
            let problem = if text.starts_with(status::CANNOT_FINISH) {
                text
            } else {
                format!("{} {item}: {text}", status::CANNOT_FINISH)
            };
            let reason = Reason::CannotFinish { problem };
            tracing::error!(item = %item, "{reason}");
            shared.emit(Event::Deferred {
                item: item.clone(),
                reason: reason.to_string(),
            });
            shared.board.wait(&original, reason);
        };
        say(error);
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return; // the next start finishes it
        };
        let shared = self.clone();
        runtime.spawn(async move {
            let mut failures = 0;
            loop {
                failures += 1;
                tokio::time::sleep(Backoff::FILES.delay(failures, None)).await;
                let current = match shared.journal.read(&record.id) {
                    Ok(None) => return,
                    Ok(Some(r))
                        if matches!(r.stage, Stage::Terminal { .. } | Stage::Finishing { .. }) =>
                    {
                        r
                    }
                    Ok(Some(_)) => match shared.journal.write(&record) {
                        Ok(()) => record.clone(),
                        Err(e) => {
                            say(&e);
                            continue;
                        }
                    },
                    Err(e) => {
                        say(&e);
                        continue;
                    }
                };
                let attempt = shared.clone();
                match tokio::task::spawn_blocking(move || attempt.try_finish(current)).await {
                    Ok(Ok(())) => return,
                    Ok(Err(e)) => say(&e),
                    Err(e) => say(&e),
                }
            }
        });
    }

    /// Makes `record` terminal with `result` and finishes it.
    fn conclude(&self, mut record: Record, result: ItemResult) {
        let stage = Stage::Terminal {
            result: Box::new(result),
        };
        match self.journal.advance(&mut record, stage) {
            Ok(()) => self.finish(record),
            Err(e) => self.finish_later(record, &e),
        }
    }
}

/// Where the notifications of the record's item go: its folder's hooks, or the global ones
/// when a reload removed the folder.
fn hooks_of<'c>(config: &'c Config, record: &Record) -> &'c crate::config::Hooks {
    config
        .watch
        .iter()
        .find(|w| w.path == record.watch)
        .map_or(&config.hooks, |w| &w.hooks)
}

/// The watch entry of the record's folder in `config` (the first one when a reload removed it).
fn watch_entry<'c>(config: &'c Config, record: &Record) -> &'c WatchConfig {
    config
        .watch
        .get(record.watch_index)
        .filter(|w| w.path == record.watch)
        .or_else(|| config.watch.iter().find(|w| w.path == record.watch))
        .unwrap_or(&config.watch[0])
}

/// A result skeleton for `record` with `status`.
pub fn base_result(record: &Record, status: Status) -> ItemResult {
    ItemResult {
        status,
        item: record.item.clone(),
        files: Vec::new(),
        watch: crate::support::diagnostic::display_path(&record.watch),
        account: record.account.clone(),
        mode: record.mode,
        transfer: None,
        previous_attempts: record.previous_attempts.clone(),
        publish_id: None,
        post_ids: Vec::new(),
        post_url: None,
        privacy_level: None,
        title: None,
        fetched: None,
        queued_at: record.queued_at,
        started_at: record.started_at,
        finished_at: crate::lifecycle::outcome::now(),
        error: None,
        id: record.id.clone(),
    }
}

/// The `invalid` result for an item the offline rules refused.
fn invalid_result(record: &Record, code: &str, problems: &[Diagnostic]) -> ItemResult {
    let mut r = base_result(record, Status::Invalid);
    let message = problems
        .iter()
        .map(|d| d.to_string().replace("\n  help: ", " — "))
        .collect::<Vec<_>>()
        .join("\n");
    let file_of = |d: &Diagnostic| Some(d.file.file_name()?.to_string_lossy().into_owned());
    let fix = match problems {
        [one] => file_of(one).map(|file| match &one.help {
            Some(help) => format!("fix {file} ({help})"),
            None => format!("fix {file}"),
        }),
        [first, ..] => {
            let files: std::collections::BTreeSet<String> =
                problems.iter().filter_map(file_of).collect();
            let names = files.into_iter().collect::<Vec<_>>().join(" and ");
            file_of(first).map(|_| {
                format!(
                    "fix the {} problems in {names} (see message)",
                    problems.len()
                )
            })
        }
        [] => None,
    }
    .unwrap_or_else(|| "fix the item".to_string());
    r.error = Some(ResultError {
        stage: ErrorStage::Validate,
        code: code.to_string(),
        message,
        log_id: None,
        hint: format!("{fix}, then move the files back into the watched folder to try again"),
    });
    r
}

/// Runs the pipeline until `cancel`. Returns once the item in flight reached a journaled point.
///
/// A new config in `shared.config` (SIGHUP) applies without disturbing anything claimed: new
/// folders are created and watched, removed ones are let go (what was claimed there still ends
/// in the done/failed folders it was claimed for), changed folder settings and defaults apply
/// to items not claimed yet, and a new account gets its own queue.
pub async fn run(
    shared: Shared,
    publisher: Arc<dyn Publisher>,
    cancel: CancellationToken,
) -> Result<(), PipelineError> {
    let mut config = shared.config();
    prepare_state(&config.state_dir)?;
    for w in &config.watch {
        prepare_watch(w)?;
    }
    let mut workers = Workers {
        queues: HashMap::new(),
        set: tokio::task::JoinSet::new(),
        publisher,
        cancel: cancel.clone(),
        states: WorkerStates::default(),
    };
    workers.ensure(&shared, &config);
    recover(&shared, &workers.queues, &workers.states)?;
    let (hint_tx, hint_rx) = mpsc::channel(4096);
    let watcher = folders::watch(&watch_paths(&config), hint_tx)?;
    show_folders(&shared.board, &config);
    shared.emit(Event::Started);
    let (cand_tx, mut cand_rx) = mpsc::channel(256);
    let (intake_config, intake_reloads) = watch::channel(config.clone());
    let (retry_tx, retry_rx) = mpsc::unbounded_channel();
    let intake = Intake::new(
        config.clone(),
        shared.board.clone(),
        workers.states.clone(),
        cand_tx,
    );
    let intake_task =
        tokio::spawn(intake.run(hint_rx, watcher, intake_reloads, retry_rx, cancel.clone()));
    let status_task = tokio::spawn(write_status(shared.clone(), cancel.clone()));
    let mut reloads = shared.config.clone();
    let mut reloadable = true;
    loop {
        tokio::select! {
            () = cancel.cancelled() => break,
            r = reloads.changed(), if reloadable => match r {
                Ok(()) => {
                    let new = reloads.borrow_and_update().clone();
                    reconfigure(&config, &new);
                    show_folders(&shared.board, &new);
                    workers.ensure(&shared, &new);
                    intake_config.send_replace(new.clone());
                    config = new;
                }
                Err(_) => reloadable = false,
            },
            c = cand_rx.recv() => match c {
                Some(c) => dispatch(&shared, c, &workers.queues, &retry_tx),
                None => break,
            },
        }
    }
    drop(workers.queues);
    let _ = intake_task.await;
    while workers.set.join_next().await.is_some() {}
    let _ = status_task.await;
    let _ = status::write(&config.state_dir, &shared.board.snapshot());
    Ok(())
}

/// Shows the watched folders in `tokdrop status`.
fn show_folders(board: &Board, config: &Config) {
    board.set_folders(
        config
            .watch
            .iter()
            .map(|w| status::Folder {
                path: w.path.clone(),
                account: w.account.clone(),
                mode: w.mode,
            })
            .collect(),
    );
}

fn watch_paths(config: &Config) -> Vec<PathBuf> {
    config.watch.iter().map(|w| w.path.clone()).collect()
}

/// Prepares the folders of a reloaded config and says what changed. A folder that cannot be
/// prepared is reported; the rest of the config applies all the same.
fn reconfigure(old: &Config, new: &Config) {
    let (before, after) = (watch_paths(old), watch_paths(new));
    for w in &new.watch {
        if let Err(e) = prepare_watch(w) {
            tracing::error!("reload: {e}");
        }
    }
    for p in after.iter().filter(|p| !before.contains(p)) {
        tracing::info!(folder = %p.display(), "reload: now watching");
    }
    for p in before.iter().filter(|p| !after.contains(p)) {
        tracing::info!(folder = %p.display(), "reload: no longer watching (items already claimed there still finish)");
    }
    tracing::info!(
        folders = after.len(),
        "reload: folder settings and defaults apply to every item not claimed yet"
    );
}

fn mk(path: &Path) -> Result<(), PipelineError> {
    std::fs::create_dir_all(path).map_err(|source| PipelineError::Folder {
        path: path.to_path_buf(),
        source,
    })
}

/// Creates `state_dir` private (0700) when missing; an existing folder keeps the mode its
/// owner gave it (the token folder inside is 0700 either way).
fn prepare_state(state_dir: &Path) -> Result<(), PipelineError> {
    crate::support::fsops::create_private_dir(state_dir).map_err(|source| PipelineError::Folder {
        path: state_dir.to_path_buf(),
        source,
    })
}

fn prepare_watch(w: &WatchConfig) -> Result<(), PipelineError> {
    mk(&w.done_dir)?;
    mk(&w.failed_dir)?;
    if let Err(e) = claim::check_work_area(&w.path) {
        tracing::error!("{e}");
    }
    let mode = std::fs::metadata(&w.path).map_or(0, |m| {
        use std::os::unix::fs::PermissionsExt;
        m.permissions().mode()
    });
    if mode & 0o022 != 0 && mode & 0o1000 == 0 {
        tracing::warn!(
            folder = %crate::support::diagnostic::display_path(&w.path),
            "the watched folder is writable by others without the sticky bit: anyone who can drop files could also rename what others dropped, or tokdrop's work folder; chmod +t it"
        );
    }
    if crate::support::fsops::crosses_filesystems(&w.path, &w.done_dir)
        || crate::support::fsops::crosses_filesystems(&w.path, &w.failed_dir)
    {
        tracing::info!(folder = %w.path.display(), "done/failed are on another file system: finished items are copied, checked, then removed from the work area");
    }
    Ok(())
}

/// Claims a candidate, then queues it or finishes it as invalid. A claim that fails (the
/// files are left in the folder) goes back to intake through `retry`.
fn dispatch(
    shared: &Shared,
    c: Candidate,
    queues: &HashMap<String, mpsc::UnboundedSender<Queued>>,
    retry: &mpsc::UnboundedSender<PathBuf>,
) {
    let w = c.watch();
    let (account, mode) = match &c.verdict {
        Verdict::Complete(i) => i
            .spec
            .as_ref()
            .map_or((w.account.clone(), w.mode), |s| (s.account.clone(), s.mode)),
        Verdict::GaveUp { .. } => (w.account.clone(), w.mode),
    };
    let info = ClaimInfo {
        watch: &w.path,
        watch_index: c.watch_index,
        account: &account,
        mode,
        queued_at: c.completed_at,
        done_dir: &w.done_dir,
        failed_dir: &w.failed_dir,
    };
    let record = match claim::claim(&shared.journal, &c.item, &info) {
        Ok(r) => r,
        Err(e) => {
            let reason = Reason::CannotTake {
                problem: e.to_string(),
            };
            tracing::error!(item = %c.item.name, "{reason}");
            shared.emit(Event::Deferred {
                item: c.item.name.clone(),
                reason: reason.to_string(),
            });
            shared.board.wait(&c.item.path, reason);
            let _ = retry.send(c.item.path.clone());
            return;
        }
    };
    tracing::info!(item = %record.item, id = %record.id, "claimed");
    shared.emit(Event::Claimed {
        id: record.id.clone(),
        item: record.item.clone(),
    });
    match c.verdict {
        Verdict::GaveUp { reason } => {
            shared.board.unwait(&c.item.path);
            let d =
                Diagnostic::file(&c.item.path, reason).with_help("export or copy the file again");
            shared.conclude(
                record.clone(),
                invalid_result(&record, "incomplete_file", &[d]),
            );
        }
        Verdict::Complete(inspection) => {
            queue_or_refuse(shared, record, *inspection, queues, c.ticket)
        }
    }
}

/// Queues a claimed item for its worker (`ticket` holds the worker for it), or finishes it as
/// invalid.
fn queue_or_refuse(
    shared: &Shared,
    record: Record,
    inspection: Inspection,
    queues: &HashMap<String, mpsc::UnboundedSender<Queued>>,
    ticket: Option<Ticket>,
) {
    match inspection.spec {
        Some(spec) => {
            let media = work_media(&record, &spec);
            let duration_ms = inspection.media.first().and_then(|i| i.duration_ms);
            enqueue(
                shared,
                queues,
                Queued {
                    record,
                    spec,
                    media,
                    duration_ms,
                    ticket,
                },
            );
        }
        None => {
            shared.board.unwait(&record.paths[0].original);
            shared.conclude(
                record.clone(),
                invalid_result(&record, "invalid_item", &inspection.errors),
            );
        }
    }
}

/// The work-area paths of the media files, in posting order.
fn work_media(record: &Record, spec: &crate::content::sidecar::rules::PostSpec) -> Vec<PathBuf> {
    match record.kind {
        Kind::PhotoSet => spec
            .files
            .iter()
            .map(|f| record.work_item().join(f))
            .collect(),
        _ => vec![record.work_item().to_path_buf()],
    }
}

/// Keeps `status.json` current, at most a few writes per second.
async fn write_status(shared: Shared, cancel: CancellationToken) {
    let mut changes = shared.board.subscribe();
    loop {
        let snap = shared.board.snapshot();
        if let Err(e) = status::write(&shared.config().state_dir, &snap) {
            tracing::warn!("cannot write status.json: {e}");
        }
        tokio::select! {
            () = cancel.cancelled() => return,
            r = changes.changed() => if r.is_err() { return },
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
