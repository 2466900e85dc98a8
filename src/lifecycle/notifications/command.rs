//! Runs an `on_result` command once: the notification's JSON on stdin, `TOKDROP_*` variables in
//! its environment, in a process group of its own that is killed as a whole when the timeout
//! (or the service's stop) comes first. Its output is kept up to [`OUTPUT_LIMIT`] bytes per
//! stream for the log; the rest is read and dropped, so a chatty command cannot block.

use std::collections::BTreeMap;
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio_util::sync::CancellationToken;

/// Bytes of stdout and of stderr kept for the log.
pub const OUTPUT_LIMIT: usize = 2048;

/// How a run ended.
#[derive(Debug, PartialEq)]
pub enum Ran {
    /// Exit status 0.
    Ok { output: String },
    /// Could not start, a non-zero exit, a signal or the timeout.
    Failed { reason: String, output: String },
    /// The service is stopping: killed, to be run again at the next start.
    Stopped,
}

/// Runs `argv` with `stdin` as its input and `env` added to tokdrop's environment (minus the
/// client secret, should it be there).
pub async fn run(
    argv: &[String],
    env: &BTreeMap<String, String>,
    stdin: &[u8],
    timeout: Duration,
    cancel: &CancellationToken,
) -> Ran {
    let Some((program, args)) = argv.split_first() else {
        return Ran::Failed {
            reason: "the command is empty".into(),
            output: String::new(),
        };
    };
    let mut cmd = tokio::process::Command::new(program);
    cmd.args(args)
        .envs(env)
        .env_remove(crate::config::SECRET_ENV)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => {
            return Ran::Failed {
                reason: format!("cannot start {program}: {e}"),
                output: String::new(),
            };
        }
    };
    let group = child.id().and_then(|id| i32::try_from(id).ok());
    let input = child.stdin.take();
    let body = stdin.to_vec();
    // A command that does not read its input may exit first: a broken pipe is not a failure.
    let feed = async move {
        if let Some(mut w) = input {
            let _ = w.write_all(&body).await;
            let _ = w.shutdown().await;
        }
    };
    let out = bounded(child.stdout.take());
    let err = bounded(child.stderr.take());
    let work = async {
        let (_, out, err, status) = tokio::join!(feed, out, err, child.wait());
        (out, err, status)
    };
    let kill = |why: &str| {
        if let Some(pid) = group.and_then(rustix::process::Pid::from_raw) {
            // The whole group: a shell's children too.
            let _ = rustix::process::kill_process_group(pid, rustix::process::Signal::KILL);
        }
        tracing::debug!("on_result command killed: {why}");
    };
    tokio::select! {
        (out, err, status) = work => {
            let output = describe_output(&out, &err);
            match status {
                Ok(s) if s.success() => Ran::Ok { output },
                Ok(s) => Ran::Failed { reason: format!("the command ended with {s}"), output },
                Err(e) => Ran::Failed { reason: format!("cannot wait for the command: {e}"), output },
            }
        }
        () = tokio::time::sleep(timeout) => {
            kill("timeout");
            let _ = child.wait().await;
            Ran::Failed {
                reason: format!("the command did not finish within {} and was killed", crate::support::duration::format(timeout)),
                output: String::new(),
            }
        }
        () = cancel.cancelled() => {
            kill("stopping");
            let _ = child.wait().await;
            Ran::Stopped
        }
    }
}

/// Reads a stream to its end, keeping the first [`OUTPUT_LIMIT`] bytes.
async fn bounded(stream: Option<impl AsyncRead + Unpin>) -> (Vec<u8>, bool) {
    let mut kept = Vec::new();
    let mut cut = false;
    let Some(mut s) = stream else {
        return (kept, cut);
    };
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf).await {
            Ok(0) | Err(_) => return (kept, cut),
            Ok(n) => {
                let room = OUTPUT_LIMIT - kept.len();
                kept.extend_from_slice(&buf[..n.min(room)]);
                cut |= n > room;
            }
        }
    }
}

/// `stdout: …; stderr: …` for the log, printable, each cut at the limit.
fn describe_output(out: &(Vec<u8>, bool), err: &(Vec<u8>, bool)) -> String {
    let mut parts = Vec::new();
    for (name, (bytes, cut)) in [("stdout", out), ("stderr", err)] {
        let text = String::from_utf8_lossy(bytes);
        let text = text.trim_end();
        if text.is_empty() {
            continue;
        }
        let more = if *cut { " […]" } else { "" };
        parts.push(format!(
            "{name}: {}{more}",
            crate::support::diagnostic::printable(text)
        ));
    }
    parts.join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sh(script: &str) -> Vec<String> {
        vec!["/bin/sh".into(), "-c".into(), script.into()]
    }

    async fn go(argv: Vec<String>, timeout: Duration) -> Ran {
        let env = BTreeMap::from([("TOKDROP_EVENT".to_string(), "result".to_string())]);
        run(
            &argv,
            &env,
            b"{\"x\":1}",
            timeout,
            &CancellationToken::new(),
        )
        .await
    }

    /// stdin and the environment reach the command; its output comes back for the log.
    #[tokio::test]
    async fn stdin_env_and_output() {
        let r = go(
            sh("printf '%s ' \"$TOKDROP_EVENT\"; cat; echo oops >&2"),
            Duration::from_secs(10),
        )
        .await;
        assert_eq!(
            r,
            Ran::Ok {
                output: "stdout: result {\"x\":1}; stderr: oops".into()
            }
        );
    }

    /// A non-zero exit and a missing program are failures with the reason; output is bounded.
    #[tokio::test]
    async fn failures_say_why() {
        match go(
            sh("head -c 10000 /dev/zero | tr '\\0' a; exit 3"),
            Duration::from_secs(10),
        )
        .await
        {
            Ran::Failed { reason, output } => {
                assert!(reason.contains("exit status: 3"), "{reason}");
                assert!(output.ends_with("[…]"), "{output}");
                assert!(output.len() < OUTPUT_LIMIT + 50, "{}", output.len());
            }
            other => panic!("{other:?}"),
        }
        match go(vec!["/nonexistent/cmd".into()], Duration::from_secs(10)).await {
            Ran::Failed { reason, .. } => assert!(reason.contains("cannot start"), "{reason}"),
            other => panic!("{other:?}"),
        }
    }

    /// A command that outlives its timeout is killed with everything it started (its process
    /// group), not only the shell.
    #[tokio::test]
    async fn the_timeout_kills_the_process_group() {
        let dir = tempfile::tempdir().expect("tempdir");
        let pidfile = dir.path().join("pid");
        let script = format!("sleep 300 & echo $! > {}; wait", pidfile.display());
        let r = go(sh(&script), Duration::from_millis(500)).await;
        match r {
            Ran::Failed { reason, .. } => assert!(reason.contains("was killed"), "{reason}"),
            other => panic!("{other:?}"),
        }
        let pid: i32 = std::fs::read_to_string(&pidfile)
            .expect("pid")
            .trim()
            .parse()
            .expect("number");
        // The grandchild is gone or a zombie waiting for init to reap it.
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            let state = stat
                .rsplit(')')
                .next()
                .and_then(|s| s.split_whitespace().next());
            if stat.is_empty() || state == Some("Z") {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "sleep {pid} survived: {stat}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}
