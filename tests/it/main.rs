//! The integration test binary: drives the real `tokdrop` executable in temp dirs and asserts
//! on what a user sees (exit codes, messages, printed requests).

mod attempts;
mod auth_cli;
mod check_cli;
mod conformance;
mod corpus;
mod crash;
mod doctor;
mod fake;
mod fuzz;
mod harness;
mod hostile;
mod intake;
mod layout;
mod ledger_tail;
mod notify;
mod probe_corpus;
mod process;
mod reload;
mod sandbox_canary;
mod sandbox_control;
mod sandbox_faults;
mod sandbox_harness;
mod sandbox_login;
mod sandbox_posting;
mod sandbox_pull;
mod sandbox_run;
mod sandbox_tokens;
mod serve;
mod service;
mod setup;
mod tiktok_canary;
mod tiktok_client;
mod tiktok_mock;
mod tiktok_tokens;
mod writer;
