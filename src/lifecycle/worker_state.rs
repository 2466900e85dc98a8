//! What each account's publishing worker is doing, shared between the worker and intake so
//! that an item is claimed only when its account's worker is ready for it (SPEC §4: the folder
//! is the queue). The worker only *says* what it does (idle, publishing, paused); intake reads
//! that and decides what to hand on, so data still flows one way (intake → journal → publish).
//!
//! An item on its way to a worker (handed on by intake, or put back in line by the journal
//! replay) holds a [`Ticket`]: while any ticket of an account is out, nothing more is handed on
//! for it. The worker drops the ticket once it has taken the item; an item that never reaches
//! it (its claim failed, it turned out invalid) drops its ticket on the way, so the account is
//! free again without anyone having to remember to say so.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use tokio::sync::watch;

/// What one account's worker is doing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Activity {
    /// Waiting for its next item.
    Idle,
    /// Publishing `item` (from the claim to the finish).
    Publishing { item: String },
    /// The account is paused (daily cap, needs login, …) while holding `item`; re-checked at
    /// `until` or as soon as a new login is stored.
    Paused {
        item: String,
        until: jiff::Timestamp,
        why: String,
    },
}

#[derive(Debug)]
struct Account {
    activity: Activity,
    /// Tickets out: items on their way to the worker.
    owed: usize,
    /// The item of the latest ticket (what intake just handed on).
    coming: Option<String>,
}

/// The shared view of every account worker. Cloning shares it.
#[derive(Clone, Debug)]
pub struct WorkerStates {
    inner: Arc<Mutex<BTreeMap<String, Account>>>,
    /// Bumped on every change; intake waits on its receiver to claim the next item.
    version: Arc<watch::Sender<u64>>,
}

impl Default for WorkerStates {
    fn default() -> Self {
        Self {
            inner: Arc::default(),
            version: Arc::new(watch::channel(0).0),
        }
    }
}

/// An item on its way to `account`'s worker; dropping it (taken, or lost on the way) frees the
/// account for the next item.
#[derive(Debug)]
pub struct Ticket {
    states: WorkerStates,
    account: String,
}

impl Drop for Ticket {
    fn drop(&mut self) {
        self.states.edit(&self.account, |a| {
            a.owed = a.owed.saturating_sub(1);
            if a.owed == 0 {
                a.coming = None;
            }
        });
    }
}

/// What intake needs to know about one account to line its items up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct View {
    pub activity: Activity,
    /// The item on its way to the worker, if any.
    pub coming: Option<String>,
}

impl View {
    /// Whether the next item may be claimed now: the worker waits and nothing is on its way.
    pub fn is_free(&self) -> bool {
        self.activity == Activity::Idle && self.coming.is_none()
    }
}

impl WorkerStates {
    fn edit(&self, account: &str, f: impl FnOnce(&mut Account)) {
        let mut g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let a = g.entry(account.to_string()).or_insert_with(|| Account {
            activity: Activity::Idle,
            owed: 0,
            coming: None,
        });
        f(a);
        drop(g);
        self.version.send_modify(|v| *v = v.wrapping_add(1));
    }

    /// The worker of `account` waits for its next item.
    pub fn idle(&self, account: &str) {
        self.edit(account, |a| a.activity = Activity::Idle);
    }

    /// The worker of `account` publishes `item`.
    pub fn publishing(&self, account: &str, item: &str) {
        self.edit(account, |a| {
            a.activity = Activity::Publishing {
                item: item.to_string(),
            }
        });
    }

    /// The account is paused until `until` (the next re-check), for `why`.
    pub fn paused(&self, account: &str, until: jiff::Timestamp, why: &str) {
        self.edit(account, |a| {
            let item = match &a.activity {
                Activity::Publishing { item } | Activity::Paused { item, .. } => item.clone(),
                Activity::Idle => String::new(),
            };
            a.activity = Activity::Paused {
                item,
                until,
                why: why.to_string(),
            }
        });
    }

    /// A ticket for `item`, on its way to `account`'s worker.
    pub fn ticket(&self, account: &str, item: &str) -> Ticket {
        self.edit(account, |a| {
            a.owed += 1;
            a.coming = Some(item.to_string());
        });
        Ticket {
            states: self.clone(),
            account: account.to_string(),
        }
    }

    /// The account as intake sees it; `None` before its worker started.
    pub fn view(&self, account: &str) -> Option<View> {
        let g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        g.get(account).map(|a| View {
            activity: a.activity.clone(),
            coming: a.coming.clone(),
        })
    }

    /// A receiver that sees every change from now on.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.version.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An account is free only while its worker is idle and no ticket is out; a dropped ticket
    /// (taken, or lost on the way) frees it again.
    #[test]
    fn tickets_hold_the_account_until_dropped() {
        let s = WorkerStates::default();
        assert_eq!(s.view("a"), None, "no worker yet");
        s.idle("a");
        assert!(s.view("a").is_some_and(|v| v.is_free()));
        let t = s.ticket("a", "x.jpg");
        let v = s.view("a").expect("view");
        assert!(!v.is_free());
        assert_eq!(v.coming.as_deref(), Some("x.jpg"));
        s.publishing("a", "x.jpg");
        drop(t);
        assert!(!s.view("a").expect("view").is_free(), "publishing");
        s.paused("a", jiff::Timestamp::UNIX_EPOCH, "daily cap");
        assert_eq!(
            s.view("a").expect("view").activity,
            Activity::Paused {
                item: "x.jpg".into(),
                until: jiff::Timestamp::UNIX_EPOCH,
                why: "daily cap".into()
            }
        );
        s.idle("a");
        assert!(s.view("a").expect("view").is_free());
        let lost = s.ticket("a", "y.jpg");
        drop(lost);
        assert!(s.view("a").expect("view").is_free(), "a lost ticket frees");
    }
}
