//! The order in which waiting items are claimed (SPEC §4: the folder is the queue). Each
//! account has one line, shared by all its folders: oldest first by when the item became ready
//! (complete, and due when it has `not_before`), items that became ready at the same instant in
//! the order they were seen. An item keeps its place while it stays in the folder, also when it
//! steps out for a moment (a sidecar edited, a file rewritten: it settles again, then returns
//! to the same place); taken out of the folder or renamed, it is a new item at the end.
//!
//! Pure bookkeeping, no I/O: intake decides what is ready and when to claim.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};

/// Where an item stands in its line: earlier `at` first, then earlier `seq`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Spot {
    at: jiff::Timestamp,
    seq: u64,
    key: PathBuf,
}

#[derive(Debug, Clone)]
struct Entry {
    account: String,
    watch_index: usize,
    spot: Spot,
}

/// Every account's line.
#[derive(Debug, Default)]
pub struct Line {
    by_account: BTreeMap<String, BTreeSet<Spot>>,
    entries: HashMap<PathBuf, Entry>,
    /// When each item still in the folder first became ready, also while out of line.
    first_ready: HashMap<PathBuf, (jiff::Timestamp, u64)>,
    next_seq: u64,
}

/// One item in line, as [`Line::of`] lists them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InLine<'a> {
    pub key: &'a Path,
    /// 1 for the next item to be claimed.
    pub place: u32,
    pub ready_at: jiff::Timestamp,
}

impl Line {
    /// Puts `key` in `account`'s line, ready since `ready_at`, unless it was ready earlier
    /// (it keeps that place). Moves it when it is in another account's line (its sidecar now
    /// names another account).
    pub fn join(
        &mut self,
        key: &Path,
        account: &str,
        watch_index: usize,
        ready_at: jiff::Timestamp,
    ) {
        let (at, seq) = *self
            .first_ready
            .entry(key.to_path_buf())
            .or_insert_with(|| {
                self.next_seq += 1;
                (ready_at, self.next_seq)
            });
        if let Some(e) = self.entries.get(key)
            && e.account == account
            && e.watch_index == watch_index
        {
            return;
        }
        self.step_out(key);
        let spot = Spot {
            at,
            seq,
            key: key.to_path_buf(),
        };
        self.by_account
            .entry(account.to_string())
            .or_default()
            .insert(spot.clone());
        self.entries.insert(
            key.to_path_buf(),
            Entry {
                account: account.to_string(),
                watch_index,
                spot,
            },
        );
    }

    /// Takes `key` out of line (it settles again, is scheduled, being claimed, …); it keeps its
    /// place for when it returns. Returns whether it was in line.
    pub fn step_out(&mut self, key: &Path) -> bool {
        let Some(e) = self.entries.remove(key) else {
            return false;
        };
        if let Some(line) = self.by_account.get_mut(&e.account) {
            line.remove(&e.spot);
            if line.is_empty() {
                self.by_account.remove(&e.account);
            }
        }
        true
    }

    /// `key` is gone from its folder: out of line, and its place is forgotten.
    pub fn forget(&mut self, key: &Path) {
        self.step_out(key);
        self.first_ready.remove(key);
    }

    /// Forgets every item under `folder` that `keep` does not name (a listing of the folder).
    pub fn forget_missing(&mut self, folder: &Path, keep: impl Fn(&Path) -> bool) {
        let gone: Vec<PathBuf> = self
            .first_ready
            .keys()
            .filter(|k| k.starts_with(folder) && !keep(k))
            .cloned()
            .collect();
        for k in gone {
            self.forget(&k);
        }
    }

    /// Takes every item out of line (they are looked at afresh, e.g. after a reload).
    pub fn step_out_all(&mut self) {
        self.by_account.clear();
        self.entries.clear();
    }

    pub fn contains(&self, key: &Path) -> bool {
        self.entries.contains_key(key)
    }

    /// The account and watch entry of an item in line.
    pub fn account_of(&self, key: &Path) -> Option<(&str, usize)> {
        self.entries
            .get(key)
            .map(|e| (e.account.as_str(), e.watch_index))
    }

    /// When `key` first became ready (also while out of line), if it ever was.
    pub fn ready_at(&self, key: &Path) -> Option<jiff::Timestamp> {
        self.first_ready.get(key).map(|(at, _)| *at)
    }

    /// The next item to claim for `account`.
    pub fn first(&self, account: &str) -> Option<&Path> {
        self.by_account
            .get(account)?
            .first()
            .map(|s| s.key.as_path())
    }

    /// Accounts with at least one item in line.
    pub fn accounts(&self) -> impl Iterator<Item = &str> {
        self.by_account.keys().map(String::as_str)
    }

    /// `account`'s line in claim order.
    pub fn of<'a>(&'a self, account: &str) -> impl Iterator<Item = InLine<'a>> + 'a {
        self.by_account
            .get(account)
            .into_iter()
            .flatten()
            .zip(1u32..)
            .map(|(s, place)| InLine {
                key: &s.key,
                place,
                ready_at: s.at,
            })
    }

    /// Items in line, all accounts.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: i64) -> jiff::Timestamp {
        jiff::Timestamp::from_second(1_800_000_000 + s).expect("time")
    }

    fn keys(l: &Line, account: &str) -> Vec<String> {
        l.of(account)
            .map(|i| i.key.to_string_lossy().into_owned())
            .collect()
    }

    /// Each row: the steps, then the expected line of account `a` (and `b`). Oldest ready first,
    /// ties in the order seen; folders of one account share its line; an item that steps out
    /// (settling again after an edit) comes back to its old place; one that is forgotten (gone
    /// from the folder) comes back at the end; a sidecar naming another account moves it there
    /// with its place in time.
    #[test]
    fn order_of_the_line() {
        enum Step {
            Join(&'static str, &'static str, i64),
            Out(&'static str),
            Forget(&'static str),
        }
        use Step::*;
        // (name, steps, line of `a`, line of `b`)
        type Case = (
            &'static str,
            &'static [Step],
            &'static [&'static str],
            &'static [&'static str],
        );
        let cases: &[Case] = &[
            (
                "oldest first",
                &[
                    Join("/in/c", "a", 3),
                    Join("/in/a", "a", 1),
                    Join("/in/b", "a", 2),
                ],
                &["/in/a", "/in/b", "/in/c"],
                &[],
            ),
            (
                "same instant: the order seen",
                &[
                    Join("/in/z", "a", 1),
                    Join("/in/y", "a", 1),
                    Join("/in/x", "a", 1),
                ],
                &["/in/z", "/in/y", "/in/x"],
                &[],
            ),
            (
                "folders of one account share a line",
                &[
                    Join("/in/a", "a", 1),
                    Join("/more/b", "a", 2),
                    Join("/in/c", "a", 3),
                ],
                &["/in/a", "/more/b", "/in/c"],
                &[],
            ),
            (
                "stepping out keeps the place",
                &[
                    Join("/in/a", "a", 1),
                    Join("/in/b", "a", 2),
                    Out("/in/a"),
                    Join("/in/a", "a", 9),
                ],
                &["/in/a", "/in/b"],
                &[],
            ),
            (
                "gone and back: the end of the line",
                &[
                    Join("/in/a", "a", 1),
                    Join("/in/b", "a", 2),
                    Forget("/in/a"),
                    Join("/in/a", "a", 9),
                ],
                &["/in/b", "/in/a"],
                &[],
            ),
            (
                "another account: moves with its time",
                &[
                    Join("/in/a", "a", 1),
                    Join("/in/b", "b", 2),
                    Join("/in/c", "a", 3),
                    Join("/in/a", "b", 4),
                ],
                &["/in/c"],
                &["/in/a", "/in/b"],
            ),
        ];
        for (name, steps, want_a, want_b) in cases {
            let mut l = Line::default();
            for s in *steps {
                match s {
                    Join(k, acc, at) => l.join(Path::new(k), acc, 0, t(*at)),
                    Out(k) => {
                        l.step_out(Path::new(k));
                    }
                    Forget(k) => l.forget(Path::new(k)),
                }
            }
            assert_eq!(keys(&l, "a"), *want_a, "{name}");
            assert_eq!(keys(&l, "b"), *want_b, "{name}");
            assert_eq!(l.len(), want_a.len() + want_b.len(), "{name}");
        }
    }

    /// Places count from 1 per account; the first is the next to claim; a whole-folder
    /// listing forgets what is no longer there.
    #[test]
    fn places_and_listings() {
        let mut l = Line::default();
        l.join(Path::new("/in/a"), "a", 0, t(1));
        l.join(Path::new("/in/b"), "a", 0, t(2));
        l.join(Path::new("/in/c"), "b", 1, t(0));
        let places: Vec<u32> = l.of("a").map(|i| i.place).collect();
        assert_eq!(places, [1, 2]);
        assert_eq!(l.first("a"), Some(Path::new("/in/a")));
        assert_eq!(l.first("b"), Some(Path::new("/in/c")));
        assert_eq!(l.account_of(Path::new("/in/c")), Some(("b", 1)));
        assert_eq!(l.accounts().collect::<Vec<_>>(), ["a", "b"]);
        l.forget_missing(Path::new("/in"), |k| k == Path::new("/in/b"));
        assert_eq!(keys(&l, "a"), ["/in/b"]);
        assert!(l.first("b").is_none() && l.ready_at(Path::new("/in/a")).is_none());
        l.step_out_all();
        assert!(l.is_empty());
        assert_eq!(
            l.ready_at(Path::new("/in/b")),
            Some(t(2)),
            "the place is kept"
        );
    }
}
