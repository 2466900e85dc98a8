//! tokdrop turns a folder into a TikTok publishing queue.
//!
//! # Layout
//! Each folder of `src/` is one part; a part uses only the parts below it in this list, and
//! inside a part its modules never import each other in a circle (`tests/it/layout.rs`
//! checks both):
//!
//! - [`commands`]: the command line (`cli`, `app`) and the commands `check`, `auth`, `doctor`.
//! - [`service`]: `tokdrop run` wiring (media server, TikTok client or sandbox, pipeline,
//!   signals), SIGHUP (`reload`), the notify protocol (`systemd`), logging, and the admin
//!   listener (`admin`: `/metrics`, `/healthz`).
//! - [`lifecycle`]: one item's life, in the order data flows: watch → intake (items, inspect)
//!   → claim/journal → pipeline → publish (post) → results/ledger → notifications; `status`
//!   is what the service shows of it.
//! - [`config`]: `watch.yaml`, read strictly and checked into typed, absolute settings.
//! - [`content`]: what an item is made of: media files (`media`) and settings (`sidecar`).
//! - [`tiktok`]: the Content Posting API client, OAuth and token care. The built-in TikTok
//!   emulator is its own crate, `tokdrop_sandbox`, sharing no code with the client.
//! - [`serve`]: the HTTPS media server TikTok pulls from (and the Web login's redirect).
//! - [`support`]: diagnostics, YAML, durations, paths, durable file steps, metrics.

// Diagnostics are returned by value on cold, per-file paths; boxing them buys nothing.
#![allow(clippy::result_large_err)]

pub mod commands;
pub mod config;
pub mod content;
pub mod lifecycle;
pub mod serve;
pub mod service;
pub mod support;
pub mod tiktok;
