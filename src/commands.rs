//! The command line: the clap definitions ([`cli`]), running a command and choosing its exit
//! code ([`app`]), and the commands that are more than a call into the service: `check`,
//! `auth`, `doctor`.

pub mod app;
pub mod auth;
pub mod check;
pub mod cli;
pub mod doctor;
