//! Notifications (SPEC §2 `on_result`, `webhook`): for every finished item, and when an
//! account's queue pauses, a JSON document goes to the configured command (on stdin) and/or
//! webhook (HMAC-signed POST).
//!
//! Finishing hands over; this module never calls back into the pipeline. While an item
//! finishes, [`Notifications::record_result`] writes one durable entry per target into
//! `state_dir/outbox/` (before the ledger line and the journal removal, so a `kill -9` in
//! between still delivers at the next start); [`Notifications::wake`] then tells the
//! [`Delivery`] task, which delivers from the outbox in the background — never delaying the
//! queue — retrying with back-off, and removes each entry once delivered or given up. Pending
//! entries are delivered at start. Delivery is at least once: a crash between a delivery and
//! the removal of its entry repeats it, with the same delivery id for receivers to dedupe.

pub mod command;
pub mod outbox;
pub mod webhook;

use std::collections::{BTreeMap, HashSet};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Semaphore, mpsc};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::config::Hooks;
use crate::lifecycle::outcome::ItemResult;
use crate::support::backoff::Backoff;
pub use outbox::{Entry, EventKind, Outbox, OutboxError, Target};

/// Failed attempts after which an `on_result` command is given up (about 2½ minutes of
/// back-off at the default pace).
pub const COMMAND_ATTEMPTS: u32 = 5;
/// Failed attempts after which a webhook delivery is given up (about an hour of back-off).
pub const WEBHOOK_ATTEMPTS: u32 = 12;
/// Deliveries running at once.
const PARALLEL: usize = 4;

/// The notifications' back-off ([`Backoff::NOTIFY`]: 10 s, doubling, at most 10 min);
/// `TOKDROP_NOTIFY_RETRY_MS` sets its first step, the cap staying 60 times it (tests).
pub fn backoff_from_env() -> Backoff {
    match std::env::var("TOKDROP_NOTIFY_RETRY_MS")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        Some(ms) => Backoff {
            initial: Duration::from_millis(ms),
            max: Duration::from_millis(ms) * 60,
            ..Backoff::NOTIFY
        },
        None => Backoff::NOTIFY,
    }
}

/// The handle the pipeline holds: writes outbox entries and wakes the delivery task.
/// Cloned into every finishing thread and account worker.
#[derive(Clone, Debug)]
pub struct Notifications {
    /// `None`: notifications are off (tests and benches that build a pipeline by hand).
    outbox: Option<Outbox>,
    /// To the [`Delivery`] task: a prefix of outbox entry names to deliver now. Lives as long
    /// as any pipeline handle; the task also stops on cancel.
    wake: Option<mpsc::UnboundedSender<String>>,
}

impl Notifications {
    /// The handle and the receiving end for [`Delivery::run`].
    pub fn new(state_dir: &Path) -> (Self, mpsc::UnboundedReceiver<String>) {
        let (tx, rx) = mpsc::unbounded_channel();
        (
            Self {
                outbox: Some(Outbox::new(state_dir)),
                wake: Some(tx),
            },
            rx,
        )
    }

    /// A handle that notifies nobody.
    pub fn off() -> Self {
        Self {
            outbox: None,
            wake: None,
        }
    }

    /// Writes the outbox entries of a finished item: one per target of `hooks`. Called while
    /// finishing, before the ledger line; the same item finished again (after a crash) writes
    /// the same files again, never a second notification.
    pub fn record_result(
        &self,
        hooks: &Hooks,
        result: &ItemResult,
        result_file: &Path,
    ) -> Result<(), OutboxError> {
        let Some(outbox) = &self.outbox else {
            return Ok(());
        };
        let delivery_id = result_delivery_id(&result.id);
        let body = serde_json::to_string(result).expect("results always serialize");
        let mut env = BTreeMap::new();
        let mut set = |k: &str, v: &str| {
            env.insert(format!("TOKDROP_{k}"), v.to_string());
        };
        set("EVENT", EventKind::Result.as_str());
        set("DELIVERY_ID", &delivery_id);
        set("STATUS", result.status.as_str());
        set("ITEM", &result.item);
        set("ID", &result.id);
        set("RESULT_FILE", &result_file.to_string_lossy());
        set("ACCOUNT", &result.account);
        set("WATCH", &result.watch);
        set("MODE", &result.mode.to_string());
        if let Some(url) = &result.post_url {
            set("POST_URL", url);
        }
        if let Some(id) = &result.publish_id {
            set("PUBLISH_ID", id);
        }
        if let Some(e) = &result.error {
            set("ERROR_CODE", &e.code);
            set("ERROR_HINT", &e.hint);
        }
        for target in targets(std::iter::once(hooks)) {
            outbox.write(&Entry {
                delivery_id: delivery_id.clone(),
                event: EventKind::Result,
                target,
                body: body.clone(),
                env: env.clone(),
                item_id: Some(result.id.clone()),
                created_at: jiff::Timestamp::now(),
                attempts: 0,
            })?;
        }
        Ok(())
    }

    /// Hands an item's entries (written by [`Self::record_result`], now or before a crash) to
    /// the delivery task. Call it once the item's journal record is gone.
    pub fn wake_result(&self, item_id: &str) {
        self.wake(format!(
            "{}.",
            outbox::safe_name(&result_delivery_id(item_id))
        ));
    }

    fn wake(&self, prefix: String) {
        if let Some(tx) = &self.wake {
            let _ = tx.send(prefix);
        }
    }

    /// Notifies that `account`'s queue paused (`needs_login`: until a new login), to every
    /// target of the folders in `hooks`. The pipeline calls it once per pause, not per re-check.
    pub fn paused(&self, hooks: &[&Hooks], pause: &Pause) {
        let Some(outbox) = &self.outbox else {
            return;
        };
        let event = if pause.needs_login {
            EventKind::NeedsLogin
        } else {
            EventKind::Paused
        };
        let now = jiff::Timestamp::now();
        let delivery_id = format!(
            "{}-{}-{}-{}",
            event.as_str(),
            pause.account,
            now.strftime("%Y%m%dT%H%M%SZ"),
            crate::support::fsops::random_suffix()
        );
        let body = serde_json::json!({
            "event": event.as_str(),
            "account": pause.account,
            "reason": pause.reason,
            "code": pause.code,
            "until": pause.until,
            "at": now,
        })
        .to_string();
        let mut env = BTreeMap::from([
            ("TOKDROP_EVENT".to_string(), event.as_str().to_string()),
            ("TOKDROP_DELIVERY_ID".to_string(), delivery_id.clone()),
            ("TOKDROP_ACCOUNT".to_string(), pause.account.clone()),
            ("TOKDROP_REASON".to_string(), pause.reason.clone()),
            ("TOKDROP_UNTIL".to_string(), pause.until.to_string()),
        ]);
        if let Some(code) = &pause.code {
            env.insert("TOKDROP_ERROR_CODE".to_string(), code.clone());
        }
        let mut written = false;
        for target in targets(hooks.iter().copied()) {
            let entry = Entry {
                delivery_id: delivery_id.clone(),
                event,
                target,
                body: body.clone(),
                env: env.clone(),
                item_id: None,
                created_at: now,
                attempts: 0,
            };
            match outbox.write(&entry) {
                Ok(_) => written = true,
                Err(e) => {
                    tracing::error!(account = %pause.account, "{e}; this pause is not notified")
                }
            }
        }
        if written {
            self.wake(format!("{}.", outbox::safe_name(&delivery_id)));
        }
    }
}

/// An account's pause, as notified.
#[derive(Debug, Clone)]
pub struct Pause {
    pub account: String,
    pub reason: String,
    pub code: Option<String>,
    pub needs_login: bool,
    /// When tokdrop checks the account again.
    pub until: jiff::Timestamp,
}

/// The delivery id of an item's result: stable across retries and restarts.
fn result_delivery_id(item_id: &str) -> String {
    format!("result-{item_id}")
}

/// Every distinct target of `hooks`.
fn targets<'a>(hooks: impl Iterator<Item = &'a Hooks>) -> Vec<Target> {
    let mut out: Vec<Target> = Vec::new();
    for h in hooks {
        if let Some(c) = &h.on_result {
            out.push(Target::Command {
                argv: c.argv.clone(),
                timeout_ms: millis(c.timeout),
            });
        }
        if let Some(w) = &h.webhook {
            out.push(Target::Webhook {
                url: w.url.to_string(),
                secret_file: w.secret_file.clone(),
                timeout_ms: millis(w.timeout),
            });
        }
    }
    let mut seen = Vec::new();
    out.retain(|t| {
        let new = !seen.contains(t);
        seen.push(t.clone());
        new
    });
    out
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// The background task that delivers outbox entries.
pub struct Delivery {
    pub outbox: Outbox,
    pub http: reqwest::Client,
    pub backoff: Backoff,
    /// Whether the item with this journal id is still being finished: its entries are left
    /// to the finish (which writes them again and wakes this task), not delivered at start.
    pub still_finishing: Box<dyn Fn(&str) -> bool + Send + Sync>,
}

impl Delivery {
    /// Delivers what is pending, then what `wake` names, until `cancel`. Deliveries in
    /// progress stop at once on cancel; their entries stay for the next start.
    pub async fn run(self, mut wake: mpsc::UnboundedReceiver<String>, cancel: CancellationToken) {
        let ctx = Arc::new(Ctx {
            outbox: self.outbox,
            http: self.http,
            backoff: self.backoff,
            slots: Semaphore::new(PARALLEL),
            cancel: cancel.clone(),
        });
        let mut active: HashSet<String> = HashSet::new();
        let mut tasks: JoinSet<String> = JoinSet::new();
        match ctx.outbox.list("") {
            Ok(names) => {
                for name in names {
                    match ctx.outbox.read(&name) {
                        Ok(Some(e)) if e.item_id.as_deref().is_some_and(&self.still_finishing) => {}
                        Ok(Some(_)) => start(&ctx, &mut active, &mut tasks, name),
                        Ok(None) => {}
                        Err(e) => tracing::error!("{e}"),
                    }
                }
            }
            Err(e) => tracing::error!("{e}"),
        }
        loop {
            tokio::select! {
                () = cancel.cancelled() => break,
                prefix = wake.recv() => match prefix {
                    Some(prefix) => match ctx.outbox.list(&prefix) {
                        Ok(names) => {
                            for name in names {
                                start(&ctx, &mut active, &mut tasks, name);
                            }
                        }
                        Err(e) => tracing::error!("{e}"),
                    },
                    None => break,
                },
                Some(done) = tasks.join_next() => {
                    if let Ok(name) = done {
                        active.remove(&name);
                    }
                }
            }
        }
        while tasks.join_next().await.is_some() {}
    }
}

struct Ctx {
    outbox: Outbox,
    http: reqwest::Client,
    backoff: Backoff,
    slots: Semaphore,
    cancel: CancellationToken,
}

fn start(ctx: &Arc<Ctx>, active: &mut HashSet<String>, tasks: &mut JoinSet<String>, name: String) {
    if active.insert(name.clone()) {
        tasks.spawn(deliver(ctx.clone(), name));
    }
}

/// How one attempt ended.
enum Tried {
    Delivered(String),
    Retry {
        reason: String,
        after: Option<Duration>,
    },
    GiveUp(String),
    Stopped,
}

/// Delivers one entry, retrying until it is delivered, given up, or the service stops.
/// Returns its name.
async fn deliver(ctx: Arc<Ctx>, name: String) -> String {
    let _slot = tokio::select! {
        () = ctx.cancel.cancelled() => return name,
        slot = ctx.slots.acquire() => match slot { Ok(s) => s, Err(_) => return name },
    };
    let mut entry = match ctx.outbox.read(&name) {
        Ok(Some(e)) => e,
        Ok(None) => return name,
        Err(e) => {
            tracing::error!("{e}");
            return name;
        }
    };
    let (target, limit) = match &entry.target {
        Target::Command { .. } => ("on_result", COMMAND_ATTEMPTS),
        Target::Webhook { .. } => ("webhook", WEBHOOK_ATTEMPTS),
    };
    let about = entry
        .env
        .get("TOKDROP_ITEM")
        .or_else(|| entry.env.get("TOKDROP_ACCOUNT"))
        .cloned()
        .unwrap_or_default();
    let span = tracing::info_span!("notify", delivery = %entry.delivery_id, event = entry.event.as_str(), target, about = %crate::support::diagnostic::printable(&about));
    let _ = tracing::Instrument::instrument(
        async {
            loop {
                match attempt(&ctx, &entry).await {
                    Tried::Stopped => return,
                    Tried::Delivered(output) => {
                        if output.is_empty() {
                            tracing::info!("notification delivered");
                        } else {
                            tracing::info!("notification delivered ({output})");
                        }
                        finish(&ctx, &name);
                        return;
                    }
                    Tried::GiveUp(reason) => {
                        tracing::error!("notification given up: {reason}");
                        finish(&ctx, &name);
                        return;
                    }
                    Tried::Retry { reason, after } => {
                        entry.attempts += 1;
                        if entry.attempts >= limit {
                            tracing::error!(
                                attempts = entry.attempts,
                                "notification given up after {} attempts: {reason}",
                                entry.attempts
                            );
                            finish(&ctx, &name);
                            return;
                        }
                        let wait = ctx.backoff.delay(entry.attempts, after);
                        tracing::warn!(
                            attempts = entry.attempts,
                            "notification failed: {reason}; trying again in {}",
                            crate::support::duration::format(wait)
                        );
                        if let Err(e) = ctx.outbox.write(&entry) {
                            tracing::error!("{e}");
                        }
                        tokio::select! {
                            () = ctx.cancel.cancelled() => return,
                            () = tokio::time::sleep(wait) => {}
                        }
                    }
                }
            }
        },
        span,
    )
    .await;
    name
}

async fn attempt(ctx: &Ctx, entry: &Entry) -> Tried {
    match &entry.target {
        Target::Command { argv, timeout_ms } => {
            let ran = command::run(
                argv,
                &entry.env,
                entry.body.as_bytes(),
                Duration::from_millis(*timeout_ms),
                &ctx.cancel,
            )
            .await;
            match ran {
                command::Ran::Ok { output } => Tried::Delivered(output),
                command::Ran::Stopped => Tried::Stopped,
                command::Ran::Failed { reason, output } if output.is_empty() => Tried::Retry {
                    reason,
                    after: None,
                },
                command::Ran::Failed { reason, output } => Tried::Retry {
                    reason: format!("{reason} ({output})"),
                    after: None,
                },
            }
        }
        Target::Webhook {
            url,
            secret_file,
            timeout_ms,
        } => {
            let post = webhook::post(
                &ctx.http,
                url,
                secret_file,
                Duration::from_millis(*timeout_ms),
                entry,
            );
            tokio::select! {
                () = ctx.cancel.cancelled() => Tried::Stopped,
                sent = post => match sent {
                    webhook::Sent::Delivered => Tried::Delivered(String::new()),
                    webhook::Sent::Retry { reason, after } => Tried::Retry { reason, after },
                    webhook::Sent::GiveUp { reason } => Tried::GiveUp(reason),
                },
            }
        }
    }
}

fn finish(ctx: &Ctx, name: &str) {
    if let Err(e) = ctx.outbox.remove(name) {
        tracing::error!("{e}; it may be delivered again at the next start");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The back-off doubles from its first step and stops growing at 60 times it; the
    /// budgets end around 2½ minutes (command) and an hour (webhook) at the default pace.
    #[test]
    fn backoff_schedule() {
        let b = Backoff::NOTIFY;
        let delays: Vec<u64> = (1..=8).map(|n| b.delay(n, None).as_secs()).collect();
        assert_eq!(delays, [10, 20, 40, 80, 160, 320, 600, 600]);
        let total =
            |attempts: u32| -> u64 { (1..attempts).map(|n| b.delay(n, None).as_secs()).sum() };
        assert_eq!(total(COMMAND_ATTEMPTS), 150);
        assert!(
            (3000..=4000).contains(&total(WEBHOOK_ATTEMPTS)),
            "{}",
            total(WEBHOOK_ATTEMPTS)
        );
    }
}
