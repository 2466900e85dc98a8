//! Replaying the journal at start (SPEC §4 "Restart"): a claim cut short is completed, an item
//! claimed or already accepted by TikTok goes back to its queue (resumed by publish_id), an
//! item whose init may have been sent ends as `unknown`, and terminal items are finished.

use std::collections::HashMap;

use tokio::sync::mpsc;

use super::worker::Queued;
use super::{PipelineError, Shared, base_result, invalid_result, queue_or_refuse, watch_entry};
use crate::config::WatchConfig;
use crate::content::sidecar::rules::Kind;
use crate::lifecycle::claim;
use crate::lifecycle::inspect;
use crate::lifecycle::items::{self, Found, ItemFiles};
use crate::lifecycle::journal::{Record, Stage};
use crate::lifecycle::outcome::{ErrorStage, ResultError, Status};
use crate::lifecycle::worker_state::WorkerStates;
use crate::support::diagnostic::Diagnostic;

/// The item as it lies in the work area (after a restart).
fn item_in_work_area(record: &Record, w: &WatchConfig) -> Option<ItemFiles> {
    let path = record.work_item();
    let mut item = if record.kind == Kind::PhotoSet {
        items::photo_set(path, w).ok()?
    } else {
        match items::item_at(path, w).ok()? {
            Found::Item(i) => i,
            _ => return None,
        }
    };
    item.name = record.item.clone();
    Some(item)
}

/// Replays the journal (SPEC §4 "Restart"). Items claimed before the stop go back to their
/// worker first, each holding it (`states`) so that nothing new is claimed before them.
pub(super) fn recover(
    shared: &Shared,
    queues: &HashMap<String, mpsc::UnboundedSender<Queued>>,
    states: &WorkerStates,
) -> Result<(), PipelineError> {
    shared.journal.sweep_temp_files();
    for record in shared.journal.replay()? {
        let record = match record.stage {
            Stage::Claiming => match claim::recover_claiming(&shared.journal, record) {
                Ok(Some(r)) => r,
                Ok(None) => continue,
                Err(e) => {
                    tracing::error!("cannot recover a claim: {e}");
                    continue;
                }
            },
            _ => record,
        };
        tracing::info!(item = %record.item, id = %record.id, stage = record.stage.name(), "resuming after restart");
        match &record.stage {
            Stage::Claiming | Stage::Claimed | Stage::Published { .. } => {
                requeue(shared, record, queues, states)
            }
            Stage::InitIntent { transfer, .. } => {
                let mut r = base_result(&record, Status::Unknown);
                r.transfer = Some(transfer.clone());
                r.error = Some(ResultError {
                    stage: ErrorStage::Restart,
                    code: "interrupted_after_init".to_string(),
                    message: "tokdrop stopped after sending the publish request and before TikTok's answer was recorded".to_string(),
                    log_id: None,
                    hint: "look at the creator's TikTok profile (or inbox); if the post is not there, move the files back into the watched folder to try again".to_string(),
                });
                shared.conclude(record, r);
            }
            Stage::Terminal { .. } | Stage::Finishing { .. } => shared.finish(record),
        }
    }
    Ok(())
}

fn requeue(
    shared: &Shared,
    record: Record,
    queues: &HashMap<String, mpsc::UnboundedSender<Queued>>,
    states: &WorkerStates,
) {
    let config = shared.config();
    let w = watch_entry(&config, &record);
    let Some(item) = item_in_work_area(&record, w) else {
        let d = Diagnostic::file(
            record.work_item(),
            "the claimed files are no longer in the work area",
        );
        shared.conclude(
            record.clone(),
            invalid_result(&record, "files_missing", &[d]),
        );
        return;
    };
    let inspection = inspect::inspect(w, &item);
    let ticket = states.ticket(&record.account, &record.item);
    queue_or_refuse(shared, record, inspection, queues, Some(ticket));
}
