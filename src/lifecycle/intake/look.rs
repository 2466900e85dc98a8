//! One look at an item on disk (blocking file-system work, run off the async workers): its
//! files as they are now, their fingerprints and content check, and — when asked — the offline
//! rules.

use std::path::Path;

use tokio::time::Instant;

use super::{Readiness, Tracker};
use crate::config::{Config, SidecarPolicy, WatchConfig};
use crate::lifecycle::inspect::{self, Inspection};
use crate::lifecycle::items::{self, Found, ItemFiles};

/// What one look at an item found (`None` from [`look`]: it is gone or no longer an item).
pub(super) struct Seen {
    pub(super) item: ItemFiles,
    pub(super) readiness: Readiness,
    /// The offline rules' verdict, once complete.
    pub(super) inspected: Inspected,
    /// The newest modification time of its files (orders items found at start).
    pub(super) newest_mtime: Option<std::time::SystemTime>,
}

/// Whether the offline rules ran on a complete item.
pub(super) enum Inspected {
    /// Not complete, or in line and not its turn: its fingerprints say it is unchanged.
    Skipped,
    /// The folder requires a sidecar and there is none.
    NeedsSidecar,
    Done(Box<Inspection>),
}

/// The blocking part of [`super::Intake::evaluate`]: lists the item, fingerprints and probes its
/// files, and (with `inspect`) runs the offline rules when complete. Gives the tracker back.
pub(super) fn look(
    config: &Config,
    wi: usize,
    key: &Path,
    mut tracker: Tracker,
    now: Instant,
    inspect: bool,
) -> (Tracker, Option<Seen>) {
    let w = &config.watch[wi];
    let Some(item) = current_item(key, w) else {
        return (tracker, None);
    };
    let fast_ok =
        item.sidecar.is_some() || item.kind == crate::content::sidecar::rules::Kind::PhotoSet;
    let readiness = tracker.observe(&item, now, fast_ok);
    let inspected = match readiness {
        Readiness::Complete if w.sidecar == SidecarPolicy::Required && item.sidecar.is_none() => {
            Inspected::NeedsSidecar
        }
        Readiness::Complete if inspect => Inspected::Done(Box::new(inspect::inspect_probed(
            w,
            &item,
            tracker.probed(),
        ))),
        _ => Inspected::Skipped,
    };
    let newest_mtime = tracker.newest_mtime();
    (
        tracker,
        Some(Seen {
            item,
            readiness,
            inspected,
            newest_mtime,
        }),
    )
}

/// The item at `key` as it is on disk now, `None` when it is gone or no longer an item.
fn current_item(key: &Path, w: &WatchConfig) -> Option<ItemFiles> {
    let meta = std::fs::symlink_metadata(key).ok()?;
    if meta.is_dir() {
        return items::photo_set(key, w).ok();
    }
    match items::item_at(key, w) {
        Ok(Found::Item(i)) if i.path == key => Some(i),
        _ => None,
    }
}
