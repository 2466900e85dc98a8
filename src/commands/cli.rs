//! The command line (SPEC §1): clap types and the exit codes. What each command does lives in
//! `app`.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::support::duration::HumanDuration;

/// Exit codes of SPEC §1.
pub const EXIT_OK: u8 = 0;
pub const EXIT_FAILED: u8 = 1;
pub const EXIT_USAGE: u8 = 2;

/// Turns a folder into a TikTok publishing queue.
///
/// Drop a video or photos (plus an optional YAML sidecar) into a watched folder; tokdrop waits
/// until the files are complete, publishes them one at a time and moves them to done/ or
/// failed/ next to a .result.yaml that says what happened.
#[derive(Debug, Parser)]
#[command(name = "tokdrop", version, about, long_about)]
pub struct Cli {
    /// The config file [default: $TOKDROP_CONFIG, ./watch.yaml, /etc/tokdrop/watch.yaml]
    #[arg(short, long, global = true, value_name = "PATH")]
    pub config: Option<PathBuf>,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the service in the foreground: watch, serve, publish, report.
    Run {
        /// Use the built-in TikTok emulator, a self-signed certificate and sandbox tokens: the
        /// whole pipeline on this machine, no TikTok app needed.
        #[arg(long)]
        sandbox: bool,
    },
    /// Check the config and items without publishing anything.
    ///
    /// With no PATH, checks everything in the watched folders. For each item prints what would
    /// be sent to TikTok (account, mode, endpoint and the exact request body) or every error.
    /// Exit status: 0 all valid (or nothing to check), 1 an item is invalid, 2 the config is.
    Check(CheckArgs),
    /// Log in to TikTok, show or remove stored authorizations.
    #[command(subcommand)]
    Auth(AuthCommand),
    /// Show what the running service is doing: waiting items and why, the item in flight,
    /// the last results.
    Status {
        /// Print JSON for scripts.
        #[arg(long)]
        json: bool,
        /// Keep showing it: redrawn in place on a terminal, a new block on each change
        /// otherwise (a log, a pipe). Stop with Ctrl-C.
        #[arg(long, short = 'w')]
        watch: bool,
        /// How often --watch looks again.
        #[arg(long, value_name = "DURATION", default_value = "1s")]
        interval: HumanDuration,
        /// Stop --watch after this many looks (scripts, tests).
        #[arg(long, value_name = "N", hide = true)]
        count: Option<u64>,
    },
    /// Check a real setup end to end: config, secret, logins and scopes, public_url (DNS,
    /// certificate, reachability), verification files, folders, inotify, disk, clock.
    ///
    /// Prints one line per check (ok, warn, FAIL) with what to do. Run it as the service user.
    /// Exit status: 0 nothing failed, 1 a check failed, 2 the config is invalid.
    Doctor {
        /// Print JSON for scripts.
        #[arg(long)]
        json: bool,
        /// Also trust this CA for public_url's certificate (a private CA, tests).
        #[arg(long, value_name = "PEM", hide = true)]
        extra_ca: Option<std::path::PathBuf>,
    },
    /// Show the results ledger, newest first.
    Results {
        /// Only failed, unknown and invalid items.
        #[arg(long)]
        failed: bool,
        /// Only results newer than this (e.g. 2d, 12h).
        #[arg(long, value_name = "DURATION")]
        since: Option<HumanDuration>,
        /// Only the newest N results.
        #[arg(short = 'n', long = "last", value_name = "N")]
        last: Option<usize>,
        /// Print JSON lines for scripts.
        #[arg(long)]
        json: bool,
    },
    /// Print a shell completion script (bash, zsh, fish, elvish or powershell) to stdout.
    ///
    /// bash: tokdrop completions bash > /usr/share/bash-completion/completions/tokdrop
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Write the man pages (tokdrop.1 and one per command, tokdrop-check.1 …) into DIR.
    Man {
        #[arg(value_name = "DIR")]
        dir: std::path::PathBuf,
    },
    /// Run the TikTok emulator on its own (to try a config or another client against it).
    Sandbox {
        /// Address to listen on.
        #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:9443")]
        listen: String,
    },
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// Media files, sidecars or photo-set folders to check [default: all watched folders].
    #[arg(value_name = "PATH")]
    pub paths: Vec<PathBuf>,
    /// For paths outside every watched folder: use this watch folder's account, mode and
    /// defaults [default: the first watch entry].
    #[arg(long, value_name = "PATH")]
    pub watch: Option<PathBuf>,
    /// Print JSON for scripts.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum AuthCommand {
    /// Authorize an account: prints the TikTok authorize URL, waits for the redirect on the
    /// loopback redirect_uri, stores the token.
    Login {
        /// The account (token file name) to authorize.
        #[arg(long, value_name = "NAME", default_value = "default")]
        account: String,
        /// Do not listen for the redirect: paste the redirected URL (or the bare code) instead.
        #[arg(long)]
        no_listen: bool,
    },
    /// Per account: who it is, granted scopes, token expiry, whether TikTok accepts it.
    Status {
        /// Print one JSON object per account, for scripts.
        #[arg(long)]
        json: bool,
    },
    /// Revoke an account's token at TikTok and delete the token file.
    Logout {
        /// The account to log out.
        #[arg(long, value_name = "NAME", default_value = "default")]
        account: String,
        /// Delete the token file even if TikTok could not be told.
        #[arg(long)]
        force: bool,
    },
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    /// The clap definition is internally consistent (no duplicate flags, valid defaults).
    #[test]
    fn cli_is_consistent() {
        Cli::command().debug_assert();
    }
}
