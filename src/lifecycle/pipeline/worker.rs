//! The per-account workers: one task per account takes claimed items one at a time, runs the
//! publisher on each, pauses the account when the publisher says "not now" (and re-checks it
//! every 15 minutes or as soon as a new login is stored), and concludes the item. Each worker
//! says what it does in [`WorkerStates`] — idle, publishing, paused — which is how intake knows
//! when to claim the account's next item; its queue holds only what was claimed for it (the
//! item intake handed on, and after a restart the items the journal held).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::{Event, Shared, base_result, invalid_result};
use crate::config::Config;
use crate::lifecycle::journal::Record;
use crate::lifecycle::notifications::Pause;
use crate::lifecycle::outcome::ItemResult;
use crate::lifecycle::publish::{Attempt, Job, Later, PublishOutcome, Publisher};
use crate::lifecycle::status::{InFlight, Reason};
use crate::lifecycle::worker_state::{Ticket, WorkerStates};
use crate::support::diagnostic::Diagnostic;

/// A claimed job waiting for its account's publisher.
pub(super) struct Queued {
    pub(super) record: Record,
    pub(super) spec: crate::content::sidecar::rules::PostSpec,
    pub(super) media: Vec<PathBuf>,
    /// The video's duration, read when intake (or the restart) looked at the files.
    pub(super) duration_ms: Option<u64>,
    /// Holds the account (nothing more is claimed for it) until the worker takes the job.
    pub(super) ticket: Option<Ticket>,
}

/// One worker task (and queue) per account.
pub(super) struct Workers {
    pub(super) queues: HashMap<String, mpsc::UnboundedSender<Queued>>,
    pub(super) set: tokio::task::JoinSet<()>,
    pub(super) publisher: Arc<dyn Publisher>,
    pub(super) cancel: CancellationToken,
    /// What each worker does, read by intake to claim only what a worker is ready for.
    pub(super) states: WorkerStates,
}

impl Workers {
    /// Starts a worker for every account of `config` that has none yet.
    pub(super) fn ensure(&mut self, shared: &Shared, config: &Config) {
        for account in config.accounts() {
            if self.queues.contains_key(account) {
                continue;
            }
            let (tx, rx) = mpsc::unbounded_channel();
            self.queues.insert(account.to_string(), tx);
            self.set.spawn(worker(
                shared.clone(),
                self.publisher.clone(),
                Turns {
                    account: account.to_string(),
                    states: self.states.clone(),
                },
                rx,
                self.cancel.clone(),
            ));
        }
    }
}

pub(super) fn enqueue(
    shared: &Shared,
    queues: &HashMap<String, mpsc::UnboundedSender<Queued>>,
    q: Queued,
) {
    let account = q.record.account.clone();
    match queues.get(&account) {
        Some(tx) => {
            shared
                .board
                .wait(&q.record.paths[0].original, Reason::Claimed);
            let _ = tx.send(q);
        }
        None => {
            // A sidecar named an account no watch entry uses: there is no worker for it.
            let problem = Diagnostic::at_key(
                &q.record.paths[0].original,
                "account",
                format!("no watch folder uses the account '{account}'"),
            )
            .with_help("use an account named in watch.yaml, or add a watch entry for it");
            shared.conclude(
                q.record.clone(),
                invalid_result(&q.record, "unknown_account", &[problem]),
            );
        }
    }
}

/// The worker's account and where it says what it does.
struct Turns {
    account: String,
    states: WorkerStates,
}

async fn worker(
    shared: Shared,
    publisher: Arc<dyn Publisher>,
    turns: Turns,
    mut rx: mpsc::UnboundedReceiver<Queued>,
    cancel: CancellationToken,
) {
    // The pause last notified (needs_login, code): a re-check that finds the same condition
    // notifies nothing; a different one, or one after a post went through, does.
    let mut notified: Option<(bool, Option<String>)> = None;
    loop {
        turns.states.idle(&turns.account);
        let q = tokio::select! {
            biased;
            () = cancel.cancelled() => return,
            q = rx.recv() => match q { Some(q) => q, None => return },
        };
        let Queued {
            mut record,
            spec,
            media,
            duration_ms,
            ticket,
        } = q;
        turns.states.publishing(&turns.account, &record.item);
        drop(ticket);
        shared.board.unwait(&record.paths[0].original);
        if record.started_at.is_none() {
            record.started_at = Some(crate::lifecycle::outcome::now());
        }
        shared.board.fly(InFlight {
            id: record.id.clone(),
            item: record.item.clone(),
            account: record.account.clone(),
            stage: start_step(&record.stage),
            publish_id: None,
            bytes_fetched: None,
            bytes_total: Some(
                media
                    .iter()
                    .filter_map(|p| std::fs::metadata(p).ok())
                    .map(|m| m.len())
                    .sum(),
            ),
            started_at: record.started_at.unwrap_or_else(jiff::Timestamp::now),
        });
        hold_for_tests(&cancel).await;
        let mut job = Job::new(
            record,
            spec,
            media,
            shared.journal.clone(),
            shared.board.clone(),
        )
        .with_duration_ms(duration_ms);
        loop {
            let attempt = publisher.publish(&mut job).await;
            match attempt {
                Attempt::Done(outcome) => {
                    if let crate::lifecycle::journal::Stage::Published {
                        init_at: Some(at), ..
                    } = &job.record.stage
                    {
                        crate::support::metrics::metrics()
                            .init_to_terminal(crate::lifecycle::publish::since(*at));
                    }
                    notified = None;
                    shared.board.land(&job.record.account);
                    shared.board.pause(&job.record.account, None);
                    let result = result_of(&job, *outcome);
                    shared.conclude(job.record, result);
                    break;
                }
                Attempt::Later(later) => {
                    let reason = later.reason.clone();
                    shared.emit(Event::Deferred {
                        item: job.record.item.clone(),
                        reason: reason.clone(),
                    });
                    if cancel.is_cancelled() {
                        tracing::info!(item = %job.record.item, "{reason}; it resumes at the next start");
                        shared.board.land(&job.record.account);
                        return;
                    }
                    tracing::warn!(account = %job.record.account, item = %job.record.item, "{reason}");
                    let next = jiff::Timestamp::now()
                        .checked_add(
                            jiff::SignedDuration::try_from(PAUSE_RECHECK).unwrap_or_default(),
                        )
                        .unwrap_or_else(|_| jiff::Timestamp::now());
                    let shown = format!("{reason} (next try {} UTC)", next.strftime("%H:%M"));
                    turns.states.paused(&turns.account, next, &reason);
                    shared.board.pause(&job.record.account, Some(shown));
                    shared
                        .board
                        .quiet_for(&job.record.account, PAUSE_RECHECK + Duration::from_secs(60));
                    let this = Some((later.needs_login, later.code.clone()));
                    if notified != this {
                        notify_pause(&shared, &job.record.account, later, next);
                        notified = this;
                    }
                    if !wait_for_recheck(&shared, &job.record.account, &cancel).await {
                        shared.board.land(&job.record.account);
                        return;
                    }
                    tracing::info!(account = %job.record.account, "re-checking the paused account");
                    turns.states.publishing(&turns.account, &job.record.item);
                }
            }
        }
    }
}

/// Test hook: while the file named by `TOKDROP_TEST_HOLD` exists, the worker holds its item
/// after taking it, showing no progress (how `/healthz` and the watchdog see a stuck worker).
const HOLD_ENV: &str = "TOKDROP_TEST_HOLD";

async fn hold_for_tests(cancel: &CancellationToken) {
    let Some(file) = std::env::var_os(HOLD_ENV).map(PathBuf::from) else {
        return;
    };
    while file.exists() && !cancel.is_cancelled() {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Hands an account's pause to notification, for the targets of every folder of the account.
fn notify_pause(shared: &Shared, account: &str, later: Later, until: jiff::Timestamp) {
    let config = shared.config();
    let hooks: Vec<&crate::config::Hooks> = config
        .watch
        .iter()
        .filter(|w| w.account == account)
        .map(|w| &w.hooks)
        .collect();
    let hooks = if hooks.is_empty() {
        vec![&config.hooks]
    } else {
        hooks
    };
    shared.notifications.paused(
        &hooks,
        &Pause {
            account: account.to_string(),
            reason: later.reason,
            code: later.code,
            needs_login: later.needs_login,
            until,
        },
    );
}

/// How long a paused account waits before the next try (SPEC §4: at least every 15 minutes).
pub const PAUSE_RECHECK: Duration = Duration::from_secs(15 * 60);

/// Waits until the account should be tried again: the re-check interval passed, or its token
/// file changed (`tokdrop auth login` ran). Returns false when the service is stopping.
async fn wait_for_recheck(shared: &Shared, account: &str, cancel: &CancellationToken) -> bool {
    let token_file = shared
        .config()
        .state_dir
        .join("tokens")
        .join(format!("{account}.json"));
    let stamp = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    let before = stamp(&token_file);
    let deadline = tokio::time::Instant::now() + PAUSE_RECHECK;
    loop {
        tokio::select! {
            () = cancel.cancelled() => return false,
            () = tokio::time::sleep_until(deadline) => return true,
            () = tokio::time::sleep(Duration::from_secs(2)) => {
                if stamp(&token_file) != before {
                    tracing::info!(account, "a new login was stored");
                    return true;
                }
            }
        }
    }
}

fn result_of(job: &Job, o: PublishOutcome) -> ItemResult {
    let mut r = base_result(&job.record, o.status);
    r.transfer = o.transfer;
    r.previous_attempts = o.previous_attempts;
    r.publish_id = o.publish_id;
    r.post_ids = o.post_ids;
    r.post_url = o.post_url;
    r.privacy_level = job.spec.privacy_level.map(|p| p.as_str().to_string());
    r.title = job.spec.title.clone();
    r.fetched = o.fetched;
    r.error = o.error;
    r
}

/// What `status` shows for an item its worker just took, by where its journal is.
fn start_step(stage: &crate::lifecycle::journal::Stage) -> crate::lifecycle::status::Step {
    use crate::lifecycle::journal::Stage;
    use crate::lifecycle::status::Step;
    match stage {
        Stage::Claiming | Stage::Claimed => Step::Claimed,
        Stage::InitIntent { .. } => Step::Init,
        Stage::Published { .. } => Step::Resuming,
        Stage::Terminal { .. } | Stage::Finishing { .. } => Step::Finishing,
    }
}
