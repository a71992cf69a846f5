//! A Node.js script driven with JSON lines (tests/js/driver.mjs, tests/js/browser.mjs): it
//! prints a `ready` line once set up, then answers each command line with one line. What it
//! logs (standard error) is kept and shown only if the test fails: a passing run stays quiet,
//! though its scripts log expected refusals and timeouts as they go.

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};

/// Installs the pinned npm packages if needed (idempotent; fast when present).
pub fn setup_js() {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../scripts/setup-js.sh");
    let status = std::process::Command::new("bash")
        .arg(script)
        .status()
        .expect("bash runs scripts/setup-js.sh");
    assert!(
        status.success(),
        "scripts/setup-js.sh failed: the JS tests need Node.js and npm"
    );
}

/// Installs Chromium and the npm packages if needed; returns Chromium's path.
pub fn setup_browser() -> String {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../scripts/setup-browser.sh");
    let out = std::process::Command::new("bash")
        .arg(script)
        .output()
        .expect("bash runs scripts/setup-browser.sh");
    assert!(
        out.status.success(),
        "scripts/setup-browser.sh failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

pub struct NodeDriver {
    child: Child,
    stdin: ChildStdin,
    lines: Lines<BufReader<ChildStdout>>,
    /// The script's standard error, printed if the test fails.
    log: Arc<Mutex<Vec<String>>>,
    script: String,
}

impl Drop for NodeDriver {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let log = self.log.lock().map(|l| l.join("\n")).unwrap_or_default();
            eprintln!("--- {} logged ---\n{log}\n---", self.script);
        }
    }
}

impl NodeDriver {
    /// Starts a driver of the web pages (`browser.mjs`, `phone.mjs`, `workbench.mjs`) in
    /// Chromium against the server at `addr`.
    pub async fn pages(script: &str, addr: std::net::SocketAddr) -> Self {
        let chromium = setup_browser();
        let base = format!("http://{addr}");
        let args = ["--base", base.as_str(), "--chromium", chromium.as_str()];
        Self::start(script, &args, Duration::from_secs(60)).await
    }

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
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("node starts");
        let log = Arc::new(Mutex::new(Vec::new()));
        let mut errors = BufReader::new(child.stderr.take().unwrap()).lines();
        let kept = log.clone();
        tokio::spawn(async move {
            while let Ok(Some(line)) = errors.next_line().await {
                if let Ok(mut kept) = kept.lock() {
                    kept.push(line);
                }
            }
        });
        let stdin = child.stdin.take().unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let ready = tokio::time::timeout(ready_within, lines.next_line())
            .await
            .unwrap_or_else(|_| {
                let log = log.lock().map(|l| l.join("\n")).unwrap_or_default();
                panic!("{script} starts within {ready_within:?}; it logged:\n{log}")
            })
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
            log,
            script: script.to_owned(),
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

    /// What the script logged so far.
    pub fn logged(&self) -> Vec<String> {
        self.log.lock().map(|l| l.clone()).unwrap_or_default()
    }
}
