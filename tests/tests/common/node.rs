//! A Node.js script driven with JSON lines (tests/js/driver.mjs, tests/js/browser.mjs): it
//! prints a `ready` line once set up, then answers each command line with one line.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};

pub struct NodeDriver {
    child: Child,
    stdin: ChildStdin,
    lines: Lines<BufReader<ChildStdout>>,
}

impl NodeDriver {
    /// Starts `tests/js/<script>` with `args`; waits up to `ready_within` for its ready line.
    pub async fn start(script: &str, args: &[&str], ready_within: Duration) -> Self {
        let mut child = Command::new("node")
            .arg(
                PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                    .join("js")
                    .join(script),
            )
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .expect("node starts");
        let stdin = child.stdin.take().unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let ready = tokio::time::timeout(ready_within, lines.next_line())
            .await
            .unwrap_or_else(|_| panic!("{script} starts within {ready_within:?}"))
            .unwrap()
            .expect("the driver is alive");
        assert!(
            ready.contains("\"ready\""),
            "{script} did not start: {ready}"
        );
        Self {
            child,
            stdin,
            lines,
        }
    }

    /// Sends one command and returns its answer, whether it succeeded or not.
    pub async fn send(&mut self, command: Value) -> Value {
        self.stdin
            .write_all(format!("{command}\n").as_bytes())
            .await
            .unwrap();
        let line = tokio::time::timeout(Duration::from_secs(45), self.lines.next_line())
            .await
            .expect("the driver answers")
            .unwrap()
            .expect("the driver is alive");
        serde_json::from_str(&line).unwrap()
    }

    /// Sends one command; panics unless it succeeded.
    pub async fn ok(&mut self, command: Value) -> Value {
        let reply = self.send(command.clone()).await;
        assert_eq!(reply["ok"], json!(true), "{command} failed: {reply}");
        reply
    }

    /// Asks the driver to quit, and waits for it to exit.
    pub async fn quit(mut self) {
        self.ok(json!({"cmd": "quit"})).await;
        let _ = self.child.wait().await;
    }
}
