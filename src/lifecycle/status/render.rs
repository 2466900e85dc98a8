//! `tokdrop status` for people: running or not, the folders, the item in flight, each
//! account's line with places, the other waiting items, paused accounts, the last results.

use std::collections::BTreeMap;

use super::{Snapshot, Waiting, is_running};
use crate::support::diagnostic::printable;

/// How many items of one account's line `status` lists (`--json` lists all).
const SHOWN_IN_LINE: usize = 10;
/// How many items waiting out of line `status` lists.
const SHOWN_OTHERS: usize = 20;

/// The waiting items for people: each account's line with places (the first
/// [`SHOWN_IN_LINE`]), then the items not in line (settling, scheduled, …).
fn render_waiting(
    waiting: &[Waiting],
    ago: &dyn Fn(jiff::Timestamp) -> String,
    out: &mut dyn std::io::Write,
) -> std::io::Result<()> {
    let mut lines: BTreeMap<&str, Vec<&Waiting>> = BTreeMap::new();
    let mut others = Vec::new();
    for w in waiting {
        match (&w.account, w.place) {
            (Some(a), Some(_)) => lines.entry(a.as_str()).or_default().push(w),
            _ => others.push(w),
        }
    }
    for (account, line) in lines {
        for w in line.iter().take(SHOWN_IN_LINE) {
            writeln!(
                out,
                "waiting #{} ({}): {} — {} (in line since {})",
                w.place.unwrap_or_default(),
                printable(account),
                crate::support::diagnostic::display_path(&w.path),
                printable(&w.reason.to_string()),
                ago(w.since)
            )?;
        }
        if line.len() > SHOWN_IN_LINE {
            writeln!(
                out,
                "  … and {} more in line for {} (tokdrop status --json lists them all)",
                line.len() - SHOWN_IN_LINE,
                printable(account)
            )?;
        }
    }
    for w in others.iter().take(SHOWN_OTHERS) {
        writeln!(
            out,
            "waiting: {} — {} (since {})",
            crate::support::diagnostic::display_path(&w.path),
            printable(&w.reason.to_string()),
            ago(w.since)
        )?;
    }
    if others.len() > SHOWN_OTHERS {
        writeln!(
            out,
            "  … and {} more waiting (tokdrop status --json lists them all)",
            others.len() - SHOWN_OTHERS
        )?;
    }
    Ok(())
}

/// Prints `tokdrop status` for people: running or not, the item in flight, waiting items,
/// paused accounts, items the journal holds, and the last results.
/// `bars`: a progress bar of the bytes TikTok fetched under each item in flight
/// (`status --watch`).
pub fn render(
    snap: Option<&Snapshot>,
    journal: &[crate::lifecycle::journal::Record],
    recent: &[crate::lifecycle::outcome::ItemResult],
    bars: bool,
    out: &mut dyn std::io::Write,
) -> std::io::Result<()> {
    let now = jiff::Timestamp::now();
    // Whole seconds: "started 2s ago", not "2s523ms ago".
    let ago = |t: jiff::Timestamp| {
        let secs = now.duration_since(t).unsigned_abs().as_secs();
        crate::support::duration::format(std::time::Duration::from_secs(secs)) + " ago"
    };
    match snap {
        Some(s) if is_running(s) => {
            writeln!(out, "tokdrop is running (pid {})", s.pid)?;
            for f in &s.folders {
                writeln!(
                    out,
                    "watching: {} (account {}, {})",
                    crate::support::diagnostic::display_path(&f.path),
                    f.account,
                    f.mode
                )?;
            }
        }
        Some(s) => writeln!(
            out,
            "tokdrop is not running (last seen {})",
            s.updated_at.map_or_else(|| "never".to_string(), ago)
        )?,
        None => writeln!(out, "tokdrop has not run with this state folder yet")?,
    }
    let running = snap.is_some_and(is_running);
    if let Some(s) = snap.filter(|_| running) {
        for f in &s.in_flight {
            let progress = match (f.bytes_fetched, f.bytes_total) {
                (Some(a), Some(b)) if b > 0 => {
                    format!(", TikTok fetched {} of {} bytes ({}%)", a, b, a * 100 / b)
                }
                _ => String::new(),
            };
            writeln!(
                out,
                "publishing ({}): {} — {}{progress}, started {}",
                f.account,
                printable(&f.item),
                printable(&f.stage.to_string()),
                ago(f.started_at)
            )?;
            if let (true, Some(a), Some(b)) = (bars, f.bytes_fetched, f.bytes_total)
                && b > 0
            {
                let filled = usize::try_from((a.min(b) * 40 / b).min(40)).unwrap_or(40);
                writeln!(
                    out,
                    "  [{}{}] {}%",
                    "#".repeat(filled),
                    "-".repeat(40 - filled),
                    a.min(b) * 100 / b
                )?;
            }
        }
        for (account, why) in &s.paused {
            let why = why.strip_prefix("paused: ").unwrap_or(why);
            writeln!(out, "paused ({account}): {}", printable(why))?;
        }
        if s.waiting.is_empty() && s.in_flight.is_empty() {
            writeln!(out, "idle: nothing waiting")?;
        }
        render_waiting(&s.waiting, &ago, out)?;
    } else if !journal.is_empty() {
        writeln!(
            out,
            "{} item(s) will resume when the service starts:",
            journal.len()
        )?;
        for r in journal {
            writeln!(
                out,
                "  {} ({}): {}",
                printable(&r.item),
                r.account,
                r.stage.name()
            )?;
        }
    }
    if !recent.is_empty() {
        writeln!(out, "last results:")?;
        crate::lifecycle::ledger::render_table(recent, out)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};

    use super::*;
    use crate::lifecycle::status::{Board, Reason};

    fn waiting(path: &str, reason: Reason, line: Option<(&str, u32)>) -> Waiting {
        Waiting {
            path: path.into(),
            reason,
            place: line.map(|(_, p)| p),
            account: line.map(|(a, _)| a.to_string()),
            since: jiff::Timestamp::now(),
        }
    }

    /// The board lists each account's line in claim order before the other waiting items;
    /// `status` shows places and why, the first ten of a line and how many more.
    #[test]
    fn lines_are_shown_in_order_with_places() {
        let board = Board::default();
        board.wait(Path::new("/in/new.mp4"), Reason::Settling);
        let busy = || Reason::AccountBusy {
            publishing: "p00.jpg".into(),
        };
        board.line_up(
            (1..=12u32)
                .rev()
                .map(|n| {
                    (
                        PathBuf::from(format!("/in/p{n:02}.jpg")),
                        "default".to_string(),
                        n,
                        busy(),
                        jiff::Timestamp::now(),
                    )
                })
                .collect(),
        );
        let mut snap = board.snapshot();
        let places: Vec<Option<u32>> = snap.waiting.iter().map(|w| w.place).collect();
        let mut want: Vec<Option<u32>> = (1..=12).map(Some).collect();
        want.push(None);
        assert_eq!(places, want);
        board.wait(Path::new("/in/p01.jpg"), Reason::Settling);
        let moved = board.snapshot();
        assert!(
            moved
                .waiting
                .iter()
                .any(|w| w.path == Path::new("/in/p01.jpg")
                    && w.place.is_none()
                    && w.account.is_none()),
            "out of line: no place"
        );
        snap.pid = std::process::id();
        snap.waiting
            .push(waiting("/in/x.jpg", Reason::NextInLine, Some(("brand", 1))));
        let mut out = Vec::new();
        render(Some(&snap), &[], &[], false, &mut out).expect("render");
        let text = String::from_utf8(out).expect("utf-8");
        assert!(
            text.contains("waiting #1 (default): /in/p01.jpg — account busy (publishing p00.jpg) (in line since "),
            "{text}"
        );
        assert!(
            text.contains("waiting #10 (default): /in/p10.jpg"),
            "{text}"
        );
        assert!(!text.contains("/in/p11.jpg"), "{text}");
        assert!(
            text.contains(
                "  … and 2 more in line for default (tokdrop status --json lists them all)"
            ),
            "{text}"
        );
        assert!(
            text.contains("waiting #1 (brand): /in/x.jpg — next in line"),
            "{text}"
        );
        assert!(
            text.contains(
                "waiting: /in/new.mp4 — settling: waiting until the files stop changing (since "
            ),
            "{text}"
        );
    }
}
