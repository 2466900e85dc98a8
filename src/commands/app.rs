//! Runs one command: loads the config where needed, calls the module that does the work,
//! prints the outcome, and returns the exit code of SPEC §1 (0 ok, 1 operational failure,
//! 2 usage or config error, 3 authorization needed).

use std::io::Write;
use std::process::ExitCode;

use crate::commands::check;
use crate::commands::cli::{AuthCommand, CheckArgs, Cli, Command};
use crate::config::{Config, ConfigError};

pub use crate::commands::cli::{EXIT_FAILED, EXIT_OK, EXIT_USAGE};

/// Executes the parsed command line.
pub fn run(cli: Cli) -> ExitCode {
    let code = match cli.command {
        Command::Check(args) => check_command(cli.config.as_deref(), &args),
        Command::Run { sandbox } => run_command(cli.config.as_deref(), sandbox),
        Command::Auth(cmd) => auth_command(cli.config.as_deref(), cmd),
        Command::Status {
            json, watch: false, ..
        } => status_command(cli.config.as_deref(), json),
        Command::Status {
            json,
            interval,
            count,
            ..
        } => status_watch(cli.config.as_deref(), json, interval.0, count),
        Command::Results {
            failed,
            since,
            last,
            json,
        } => results_command(cli.config.as_deref(), failed, since, last, json),
        Command::Sandbox { listen } => sandbox_command(&listen),
        Command::Completions { shell } => {
            let mut cmd = <crate::commands::cli::Cli as clap::CommandFactory>::command();
            clap_complete::generate(shell, &mut cmd, "tokdrop", &mut std::io::stdout());
            EXIT_OK
        }
        Command::Man { dir } => man_command(&dir),
        Command::Doctor { json, extra_ca } => doctor_command(
            cli.config.as_deref(),
            &crate::commands::doctor::Options { json, extra_ca },
        ),
    };
    ExitCode::from(code)
}

fn load_config(explicit: Option<&std::path::Path>) -> Result<Config, ConfigError> {
    Config::find_and_load(explicit)
}

fn check_command(explicit: Option<&std::path::Path>, args: &CheckArgs) -> u8 {
    let config = match load_config(explicit) {
        Ok(c) => c,
        Err(e) => {
            if args.json {
                let problems = match &e {
                    ConfigError::Invalid { problems, .. } => {
                        serde_json::to_value(problems).unwrap_or_default()
                    }
                    ConfigError::NotFound { .. } => {
                        serde_json::json!([{ "message": e.to_string() }])
                    }
                };
                println!(
                    "{}",
                    serde_json::json!({ "config": { "valid": false, "problems": problems } })
                );
            } else {
                eprintln!("{}", config_error_text(&e));
            }
            return EXIT_USAGE;
        }
    };
    let report = check::run(&config, &args.paths, args.watch.as_deref());
    let mut out = std::io::stdout().lock();
    let written = if args.json {
        serde_json::to_writer_pretty(
            &mut out,
            &serde_json::json!({
                "config": { "file": config.file, "valid": true },
                "items": report.items,
                "notes": report.notes,
                "problems": report.problems,
                "summary": { "checked": report.items.len(), "invalid": report.invalid_count() },
            }),
        )
        .map_err(std::io::Error::other)
        .and_then(|()| writeln!(out))
    } else {
        writeln!(out, "config {} is valid", check::display(&config.file))
            .and_then(|()| {
                if config.tiktok.client_secret == crate::config::SecretSource::Credential {
                    writeln!(
                        out,
                        "note: no client secret is named: the service reads systemd's credential client_secret ($CREDENTIALS_DIRECTORY, LoadCredential=) when it starts"
                    )?;
                }
                Ok(())
            })
            .and_then(|()| check::render_text(&report, &mut out))
    };
    if let Err(e) = written {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            return report.exit_code(); // the reader (e.g. `| head`) had enough
        }
        eprintln!("tokdrop: cannot write the report: {e}");
        return EXIT_FAILED;
    }
    report.exit_code()
}

/// The exit code once a listing is written: a reader that stopped early (`| head`) is fine.
fn exit_after_writing(written: std::io::Result<()>) -> u8 {
    match written {
        Ok(()) => EXIT_OK,
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => EXIT_OK,
        Err(e) => {
            eprintln!("tokdrop: {e}");
            EXIT_FAILED
        }
    }
}

fn config_error_text(e: &ConfigError) -> String {
    match e {
        ConfigError::Invalid { file, problems } => format!(
            "config {} is invalid ({} problem{}):\n{e}",
            check::display(file),
            problems.len(),
            if problems.len() == 1 { "" } else { "s" }
        ),
        ConfigError::NotFound { .. } => e.to_string(),
    }
}

/// Loads the config for a command that only needs it to find the state folder.
fn config_or_exit(explicit: Option<&std::path::Path>) -> Result<Config, u8> {
    load_config(explicit).map_err(|e| {
        eprintln!("{}", config_error_text(&e));
        EXIT_USAGE
    })
}

/// The state folder for `status` and `results`: from a valid config, or, when the config has
/// problems the running service does not share (it keeps the config it started with), from
/// its `state_dir` alone, with a note.
fn state_dir_or_exit(explicit: Option<&std::path::Path>) -> Result<std::path::PathBuf, u8> {
    match load_config(explicit) {
        Ok(c) => Ok(c.state_dir),
        Err(e) => {
            let fallback = match &e {
                ConfigError::Invalid { file, .. } => {
                    Config::state_dir_of(file).map(|dir| (file.clone(), dir))
                }
                _ => None,
            };
            match fallback {
                Some((file, dir)) => {
                    eprintln!(
                        "note: {} has problems (`tokdrop check` lists them); reading the state in {}",
                        check::display(&file),
                        crate::support::diagnostic::display_path(&dir)
                    );
                    Ok(dir)
                }
                None => {
                    eprintln!("{}", config_error_text(&e));
                    Err(EXIT_USAGE)
                }
            }
        }
    }
}

fn status_command(explicit: Option<&std::path::Path>, json: bool) -> u8 {
    let state_dir = match state_dir_or_exit(explicit) {
        Ok(d) => d,
        Err(code) => return code,
    };
    match status_text(&state_dir, json, false) {
        Ok(text) => exit_after_writing(std::io::stdout().lock().write_all(&text)),
        Err(code) => code,
    }
}

/// `tokdrop status --watch`: on a terminal the view is redrawn in place; elsewhere a new block
/// (headed by the time) is written each time it changes.
fn status_watch(
    explicit: Option<&std::path::Path>,
    json: bool,
    interval: std::time::Duration,
    count: Option<u64>,
) -> u8 {
    use std::io::IsTerminal;
    let state_dir = match state_dir_or_exit(explicit) {
        Ok(d) => d,
        Err(code) => return code,
    };
    let tty = std::io::stdout().is_terminal();
    let interval = interval.max(std::time::Duration::from_millis(100));
    let mut last = Vec::new();
    let mut looks = 0u64;
    loop {
        let text = match status_text(&state_dir, json, true) {
            Ok(t) => t,
            Err(code) => return code,
        };
        let mut out = std::io::stdout().lock();
        let written = if tty {
            out.write_all(b"\x1b[H\x1b[2J")
                .and_then(|()| out.write_all(&text))
        } else if text != last {
            let at = jiff::Timestamp::now()
                .round(jiff::Unit::Second)
                .unwrap_or_else(|_| jiff::Timestamp::now());
            writeln!(out, "--- {at}").and_then(|()| out.write_all(&text))
        } else {
            Ok(())
        };
        if let Err(e) = written.and_then(|()| out.flush()) {
            return exit_after_writing(Err(e));
        }
        drop(out);
        last = text;
        looks += 1;
        if count.is_some_and(|n| looks >= n) {
            return EXIT_OK;
        }
        std::thread::sleep(interval);
    }
}

/// What `tokdrop status` prints, as bytes; `bars`: a progress bar under each item in flight.
fn status_text(state: &std::path::Path, json: bool, bars: bool) -> Result<Vec<u8>, u8> {
    let snap = match crate::lifecycle::status::read(state) {
        Ok(s) => s,
        Err(e) => {
            eprintln!(
                "tokdrop: cannot read {}: {e}",
                crate::lifecycle::status::path(state).display()
            );
            return Err(EXIT_FAILED);
        }
    };
    let journal = crate::lifecycle::journal::Journal::open(state)
        .and_then(|j| j.replay())
        .unwrap_or_default();
    let (recent, _) = crate::lifecycle::ledger::newest(
        state,
        &crate::lifecycle::ledger::Filter {
            failed_only: false,
            since: None,
        },
        Some(5),
    )
    .unwrap_or_default();
    let mut out = Vec::new();
    let written = if json {
        let running = snap
            .as_ref()
            .is_some_and(crate::lifecycle::status::is_running);
        let items: Vec<_> = journal
            .iter()
            .map(|r| serde_json::json!({"id": r.id, "item": r.item, "account": r.account, "stage": r.stage.name()}))
            .collect();
        serde_json::to_writer_pretty(
            &mut out,
            &serde_json::json!({"running": running, "status": snap, "journal": items, "last_results": recent}),
        )
        .map_err(std::io::Error::other)
        .and_then(|()| writeln!(out))
    } else {
        crate::lifecycle::status::render(snap.as_ref(), &journal, &recent, bars, &mut out)
    };
    written.map(|()| out).map_err(|e| {
        eprintln!("tokdrop: {e}");
        EXIT_FAILED
    })
}

fn results_command(
    explicit: Option<&std::path::Path>,
    failed: bool,
    since: Option<crate::support::duration::HumanDuration>,
    last: Option<usize>,
    json: bool,
) -> u8 {
    let state_dir = match state_dir_or_exit(explicit) {
        Ok(d) => d,
        Err(code) => return code,
    };
    let since = since.and_then(|d| {
        jiff::Timestamp::now()
            .checked_sub(jiff::SignedDuration::try_from(d.0).ok()?)
            .ok()
    });
    let filter = crate::lifecycle::ledger::Filter {
        failed_only: failed,
        since,
    };
    // Everything (or every failure): streamed from the end. With --since or --last only the
    // end of the ledger is read, kept and sorted.
    if since.is_none() && last.is_none() {
        return stream_results(&state_dir, &filter, json);
    }
    let (shown, unreadable) = match crate::lifecycle::ledger::newest(&state_dir, &filter, last) {
        Ok(r) => r,
        Err(e) => return ledger_unreadable(&state_dir, &e),
    };
    let mut out = std::io::stdout().lock();
    let written = if json {
        shown.iter().try_for_each(|r| json_line(&mut out, r))
    } else {
        crate::lifecycle::ledger::render_table(&shown, &mut out)
    };
    note_unreadable(unreadable);
    exit_after_writing(written)
}

/// `tokdrop results` without --since/--last: every result that passes `filter`, newest first,
/// written as the ledger is read from its end, in constant memory whatever its size. The
/// table's item column is sized from the first rows.
fn stream_results(
    state_dir: &std::path::Path,
    filter: &crate::lifecycle::ledger::Filter,
    json: bool,
) -> u8 {
    use crate::lifecycle::ledger::{self, Table};
    const SAMPLE: usize = 1000;
    let mut out = std::io::stdout().lock();
    let mut sample = Vec::new();
    let mut table: Option<Table> = None;
    let mut written = Ok(());
    let scanned = ledger::scan_newest(state_dir, filter, |r| {
        let step = if json {
            json_line(&mut out, &r)
        } else if let Some(t) = &table {
            t.row(&r, &mut out)
        } else {
            sample.push(r);
            if sample.len() < SAMPLE {
                return Ok(true);
            }
            Table::start(&sample, &mut out).and_then(|t| {
                let rows = sample.drain(..).try_for_each(|r| t.row(&r, &mut out));
                table = Some(t);
                rows
            })
        };
        // A write error (a closed pipe) ends the reading; it is reported below, not as the
        // ledger's.
        written = step;
        Ok(written.is_ok())
    });
    let unreadable = match scanned {
        Ok(n) => n,
        Err(e) => return ledger_unreadable(state_dir, &e),
    };
    if written.is_ok() && !json && table.is_none() {
        written = ledger::render_table(&sample, &mut out);
    }
    note_unreadable(unreadable);
    exit_after_writing(written)
}

fn json_line(
    out: &mut dyn Write,
    r: &crate::lifecycle::outcome::ItemResult,
) -> std::io::Result<()> {
    serde_json::to_writer(&mut *out, r).map_err(std::io::Error::other)?;
    writeln!(out)
}

fn ledger_unreadable(state_dir: &std::path::Path, e: &std::io::Error) -> u8 {
    eprintln!(
        "tokdrop: cannot read {}: {e}",
        crate::lifecycle::ledger::path(state_dir).display()
    );
    EXIT_FAILED
}

fn note_unreadable(unreadable: usize) {
    if unreadable > 0 {
        eprintln!("note: {unreadable} line(s) of the ledger could not be read and were skipped");
    }
}

fn runtime() -> Result<tokio::runtime::Runtime, u8> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| {
            eprintln!("tokdrop: cannot start the async runtime: {e}");
            EXIT_FAILED
        })
}

/// Logging to stderr until the logging module takes the config's settings.
fn init_logging(level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .or_else(|_| tracing_subscriber::EnvFilter::try_new(format!("{level},notify=warn")))
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init();
}

fn run_command(explicit: Option<&std::path::Path>, sandbox: bool) -> u8 {
    let config = match config_or_exit(explicit) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let log = match crate::service::logging::init(&crate::service::logging::LogSettings::from(
        &config.log,
    )) {
        Ok(guard) => std::sync::Arc::new(guard),
        Err(e) => {
            eprintln!("tokdrop: {e}");
            return EXIT_USAGE;
        }
    };
    let rt = match runtime() {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    let cancel = tokio_util::sync::CancellationToken::new();
    match rt.block_on(crate::service::run(config, sandbox, cancel, Some(log))) {
        Ok(()) => EXIT_OK,
        Err(e) => {
            tracing::error!("{e}");
            eprintln!("tokdrop: {e}");
            EXIT_FAILED
        }
    }
}

fn sandbox_command(listen: &str) -> u8 {
    let addr: std::net::SocketAddr = match listen.parse() {
        Ok(a) => a,
        Err(_) => {
            eprintln!(
                "tokdrop: --listen '{listen}' is not an address with a port\n  help: e.g. 127.0.0.1:9443"
            );
            return EXIT_USAGE;
        }
    };
    init_logging("info");
    let rt = match runtime() {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    let cancel = tokio_util::sync::CancellationToken::new();
    let stop = cancel.clone();
    rt.spawn(async move {
        let _ = tokio::signal::ctrl_c().await;
        stop.cancel();
    });
    match rt.block_on(tokdrop_sandbox::run(
        addr,
        tokdrop_sandbox::SandboxConfig::default(),
        cancel,
    )) {
        Ok(()) => EXIT_OK,
        Err(e) => {
            eprintln!("tokdrop: {e}");
            EXIT_FAILED
        }
    }
}

/// Writes `tokdrop.1` and a page per subcommand (`tokdrop-auth-login.1` …) into `dir`.
fn man_command(dir: &std::path::Path) -> u8 {
    fn write(dir: &std::path::Path, cmd: clap::Command, name: &str) -> std::io::Result<()> {
        let mut page = Vec::new();
        clap_mangen::Man::new(cmd.clone().name(name.to_string())).render(&mut page)?;
        std::fs::write(dir.join(format!("{name}.1")), page)?;
        for sub in cmd.get_subcommands().filter(|s| s.get_name() != "help") {
            write(dir, sub.clone(), &format!("{name}-{}", sub.get_name()))?;
        }
        Ok(())
    }
    let cmd = <crate::commands::cli::Cli as clap::CommandFactory>::command();
    match std::fs::create_dir_all(dir).and_then(|()| write(dir, cmd, "tokdrop")) {
        Ok(()) => EXIT_OK,
        Err(e) => {
            eprintln!(
                "tokdrop: cannot write man pages into {}: {e}",
                dir.display()
            );
            EXIT_FAILED
        }
    }
}

fn doctor_command(
    explicit: Option<&std::path::Path>,
    options: &crate::commands::doctor::Options,
) -> u8 {
    let config = match config_or_exit(explicit) {
        Ok(c) => c,
        Err(code) => return code,
    };
    init_logging("error");
    let rt = match runtime() {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    rt.block_on(crate::commands::doctor::run(&config, options))
}

fn auth_command(explicit: Option<&std::path::Path>, cmd: AuthCommand) -> u8 {
    let config = match config_or_exit(explicit) {
        Ok(c) => c,
        Err(code) => return code,
    };
    init_logging("warn");
    let rt = match runtime() {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    rt.block_on(async {
        match cmd {
            AuthCommand::Login { account, no_listen } => {
                crate::commands::auth::login(&config, &account, no_listen).await
            }
            AuthCommand::Status { json } => crate::commands::auth::status(&config, json).await,
            AuthCommand::Logout { account, force } => {
                crate::commands::auth::logout(&config, &account, force).await
            }
        }
    })
}
