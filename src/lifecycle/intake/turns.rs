//! Whose turn it is: the first in line of an account whose worker is free is looked at once
//! more and handed on ([`Intake::serve`]); `status` is told each waiting item's place and why it
//! waits ([`Intake::show_line`]). The line itself is [`super::Line`]; what a worker does is
//! [`WorkerStates`](crate::lifecycle::worker_state::WorkerStates).

use std::cmp::Reverse;
use std::path::Path;

use tokio::time::Instant;

use super::{Intake, Purpose, Verdict};
use crate::lifecycle::inspect::Inspection;
use crate::lifecycle::items::ItemFiles;
use crate::lifecycle::status::Reason;
use crate::lifecycle::worker_state::{Activity, View};

impl Intake {
    /// A complete item, just inspected: invalid ones and those of an account no folder uses
    /// are handed on at once (to be finished as invalid); one whose `not_before` is still to
    /// come waits for it; the rest join their account's line — and the first in line of a free
    /// account is handed on.
    pub(super) async fn ready(
        &mut self,
        wi: usize,
        item: ItemFiles,
        inspection: Inspection,
        purpose: Purpose,
        ready_at: jiff::Timestamp,
    ) {
        let key = item.path.clone();
        let Some(spec) = &inspection.spec else {
            self.leave_line(&key);
            return self
                .hand_on(wi, item, Verdict::Complete(Box::new(inspection)), None)
                .await;
        };
        if let Some(at) = spec.not_before
            && at > crate::lifecycle::outcome::now()
        {
            self.leave_line(&key);
            self.board.wait(&key, Reason::Scheduled { at });
            let wait = at
                .duration_since(crate::lifecycle::outcome::now())
                .unsigned_abs();
            self.timers.push(Reverse((Instant::now() + wait, key)));
            return;
        }
        let account = spec.account.clone();
        if !self.config.accounts().contains(&account.as_str()) {
            self.leave_line(&key);
            return self
                .hand_on(wi, item, Verdict::Complete(Box::new(inspection)), None)
                .await;
        }
        self.line.join(&key, &account, wi, ready_at);
        let its_turn = self.line.first(&account) == Some(key.as_path())
            && self.view(&account).is_some_and(|v| v.is_free());
        // The inspection is fresh: no need to wait for `serve` to look again. While the first
        // listing runs, nothing is handed on before every item found is in line.
        if its_turn && (purpose == Purpose::Claim || !self.starting) {
            let ticket = self.workers.ticket(&account, &item.name);
            self.hand_on(
                wi,
                item,
                Verdict::Complete(Box::new(inspection)),
                Some(ticket),
            )
            .await;
        }
    }

    /// Hands on the first item of every account whose worker is free, each looked at once
    /// more first. An item that is no longer ready leaves the line and the next is tried.
    pub(super) async fn serve(&mut self) {
        loop {
            let next = self
                .line
                .accounts()
                .filter(|a| self.view(a).is_some_and(|v| v.is_free()))
                .find_map(|a| Some((a.to_string(), self.line.first(a)?.to_path_buf())));
            let Some((account, key)) = next else {
                return;
            };
            self.evaluate(&key, Purpose::Claim).await;
            if self.line.first(&account) == Some(key.as_path())
                && self.view(&account).is_some_and(|v| v.is_free())
            {
                // Nothing changed (cannot happen: a look either hands it on or takes it out
                // of line); stop rather than spin.
                tracing::debug!(item = %key.display(), "the first in line stays; trying later");
                return;
            }
        }
    }

    pub(super) fn view(&self, account: &str) -> Option<View> {
        self.workers.view(account)
    }

    /// Shows every item in line with its place and why it waits (only what changed).
    pub(super) fn show_line(&mut self) {
        let mut changes = Vec::new();
        for account in self.line.accounts() {
            let view = self.workers.view(account);
            for entry in self.line.of(account) {
                let reason = line_reason(entry.place, view.as_ref());
                if self.shown.get(entry.key) == Some(&(entry.place, reason.clone())) {
                    continue;
                }
                self.shown
                    .insert(entry.key.to_path_buf(), (entry.place, reason.clone()));
                changes.push((
                    entry.key.to_path_buf(),
                    account.to_string(),
                    entry.place,
                    reason,
                    entry.ready_at,
                ));
            }
        }
        self.board.line_up(changes);
    }

    /// `key` leaves its line for now (it keeps its place for when it returns).
    pub(super) fn leave_line(&mut self, key: &Path) {
        self.line.step_out(key);
        self.shown.remove(key);
    }

    /// `key` is gone from its folder.
    pub(super) fn forget(&mut self, key: &Path) {
        self.line.forget(key);
        self.shown.remove(key);
    }
}

/// Why an item at `place` in a line waits, given what its account's worker does.
fn line_reason(place: u32, worker: Option<&View>) -> Reason {
    let Some(view) = worker else {
        return Reason::InLine;
    };
    match (&view.activity, &view.coming) {
        (Activity::Paused { until, why, .. }, _) => Reason::AccountPaused {
            until: *until,
            why: why.clone(),
        },
        (Activity::Publishing { item }, _) | (Activity::Idle, Some(item)) => Reason::AccountBusy {
            publishing: item.clone(),
        },
        (Activity::Idle, None) if place == 1 => Reason::NextInLine,
        (Activity::Idle, None) => Reason::InLine,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each row: what the account's worker does, the item's place, and why the item waits.
    #[test]
    fn why_an_item_in_line_waits() {
        let until = jiff::Timestamp::UNIX_EPOCH;
        let view = |activity: Activity, coming: Option<&str>| View {
            activity,
            coming: coming.map(str::to_string),
        };
        let busy = |item: &str| Reason::AccountBusy {
            publishing: item.into(),
        };
        let cases = [
            (Some(view(Activity::Idle, None)), 1, Reason::NextInLine),
            (Some(view(Activity::Idle, None)), 2, Reason::InLine),
            (Some(view(Activity::Idle, Some("a.jpg"))), 1, busy("a.jpg")),
            (
                Some(view(
                    Activity::Publishing {
                        item: "b.jpg".into(),
                    },
                    None,
                )),
                3,
                busy("b.jpg"),
            ),
            (
                Some(view(
                    Activity::Paused {
                        item: "b.jpg".into(),
                        until,
                        why: "needs login".into(),
                    },
                    None,
                )),
                1,
                Reason::AccountPaused {
                    until,
                    why: "needs login".into(),
                },
            ),
            (None, 1, Reason::InLine),
        ];
        for (worker, place, want) in cases {
            assert_eq!(
                line_reason(place, worker.as_ref()),
                want,
                "{worker:?} #{place}"
            );
        }
    }
}
