//! The integration test binary: drives the real `tokdrop` executable in temp dirs and asserts
//! on what a user sees (exit codes, messages, printed requests).

mod check_cli;
mod corpus;
mod crash;
mod fake;
mod harness;
mod intake;
mod serve;
