//! The `tokdrop` binary: parse the command line, hand over to the library.

use clap::Parser;

fn main() -> std::process::ExitCode {
    tokdrop::commands::app::run(tokdrop::commands::cli::Cli::parse())
}
