//! tokdrop turns a folder into a TikTok publishing queue.
//!
//! # Layout
//! Data flows one way: files are found and paired (`items`), their content checked (`media`)
//! and their settings resolved (`sidecar`) into a post, which is sent (`post`, `tiktok`).
//!
//! - [`cli`]: clap types for every command; [`app`]: runs a command, picks the exit code.
//! - [`config`]: `watch.yaml`, read strictly and checked into typed, absolute settings.
//! - [`yaml`]: hardened YAML loading and precise error positions; [`diagnostic`]: one
//!   user-facing problem (file, line, key, message, help).
//! - [`duration`]: `5s` / `2h` durations; [`paths`]: lexical path helpers.
//! - [`items`]: which files form an item (media + sidecar, photo-set folders).
//! - [`media`]: structural completeness and TikTok limits of MP4/MOV/WebM/JPEG/WebP files.
//! - [`sidecar`]: sidecar fields, defaults merging, field rules → `PostSpec`.
//! - [`post`]: `PostSpec` → the exact init request; [`tiktok`]: TikTok's wire types.
//! - [`check`]: `tokdrop check`.
//! - [`watch`] → [`intake`] → [`claim`]/[`journal`] → [`publish`] → [`results`]/[`ledger`]:
//!   the folder pipeline ([`pipeline`]); items wait in their folder, lined up per account, until
//!   the account's worker is free ([`worker_state`]); [`status`] for `tokdrop status` and [`fsops`]
//!   for durable file steps; [`outcome`] is the result file's shape. Finishing (and an
//!   account pausing) hands over to [`notifications`]: `on_result` commands and signed
//!   webhooks, delivered from a durable outbox in the background.
//! - [`serve`]: the HTTPS media server TikTok pulls from.
//! - [`tiktok`]: the Content Posting API client, OAuth and token care. The built-in TikTok
//!   emulator is its own crate, `tokdrop_sandbox`, sharing no code with the client.
//!   [`publish::tiktok`] is the publisher that uses the client; its decisions (creator checks, following a post, outcomes) are in [`publish::machine`].
//! - [`service`]: `tokdrop run` wiring (server, client or sandbox, publisher, pipeline,
//!   signals); [`reload`]: what SIGHUP changes live; [`auth`]: `tokdrop auth`; [`systemd`]:
//!   the notify protocol; [`logging`]: stderr (journald-aware) and rotated files;
//!   [`admin`]: the admin listener (`/metrics` from [`metrics`], `/healthz`).

// Diagnostics are returned by value on cold, per-file paths; boxing them buys nothing.
#![allow(clippy::result_large_err)]

pub mod admin;
pub mod app;
pub mod auth;
pub mod check;
pub mod claim;
pub mod cli;
pub mod config;
pub mod diagnostic;
pub mod doctor;
pub mod duration;
pub mod fsops;
pub mod handoff;
pub mod intake;
pub mod items;
pub mod journal;
pub mod ledger;
pub mod logging;
pub mod media;
pub mod metrics;
pub mod notifications;
pub mod outcome;
pub mod paths;
pub mod pipeline;
pub mod post;
pub mod publish;
pub mod reload;
pub mod results;
pub mod serve;
pub mod service;
pub mod sidecar;
pub mod status;
pub mod systemd;
pub mod tiktok;
pub mod watch;
pub mod worker_state;
pub mod yaml;
