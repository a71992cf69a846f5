//! Every bad setting is refused at start: one line on standard error naming the setting and
//! what was wrong, a non-zero exit, and nothing created.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

struct Case {
    why: &'static str,
    args: Vec<String>,
    env: Vec<(&'static str, &'static str)>,
    /// Every one of these must be in the line.
    says: Vec<&'static str>,
}

fn case(why: &'static str, args: &[&str], says: &[&'static str]) -> Case {
    Case {
        why,
        args: args.iter().map(|a| a.to_string()).collect(),
        env: vec![],
        says: says.to_vec(),
    }
}

/// Runs `fieldsync serve ARGS` in an empty directory; returns (exit code, stderr, what the
/// directory holds afterwards).
fn serve(dir: &Path, c: &Case) -> (Option<i32>, String, Vec<String>) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_fieldsync"));
    cmd.arg("serve").args(&c.args).current_dir(dir);
    for (k, _) in std::env::vars() {
        if k.starts_with("FIELDSYNC_") {
            cmd.env_remove(k);
        }
    }
    for (k, v) in &c.env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    let left = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
        left,
    )
}

#[test]
fn every_bad_setting_is_refused_by_name_and_nothing_is_created() {
    // A port that is taken for the whole test.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let taken = taken.local_addr().unwrap().to_string();
    // A port nothing listens on, for an unreachable PostgreSQL.
    let free = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let unreachable = format!("postgres://fieldsync@127.0.0.1:{free}/fieldsync");
    let cases = vec![
        case(
            "a database this server does not speak",
            &["--database", "mysql://root@127.0.0.1/fieldsync"],
            &["--database", "mysql", "sqlite://", "postgres://"],
        ),
        case(
            "not a URL at all",
            &["--database", "fieldsync.db"],
            &["--database", "not a database URL"],
        ),
        case(
            "an unreachable PostgreSQL, with how long it waited",
            &["--database", &unreachable],
            &["cannot open database", "within 10 s"],
        ),
        case(
            "a listen address that is not one",
            &["--listen", "localhost"],
            &["--listen localhost", "HOST:PORT"],
        ),
        case(
            "a port out of range",
            &["--listen", "127.0.0.1:99999"],
            &["--listen 127.0.0.1:99999", "not an address"],
        ),
        case(
            "an address in use",
            &["--listen", &taken],
            &["--listen", "cannot listen there"],
        ),
        case(
            "plain HTTP on a public address",
            &["--listen", "0.0.0.0:0"],
            &["--tls-cert", "--allow-insecure"],
        ),
        case(
            "TLS files that are not there",
            &[
                "--tls-cert",
                "/nonexistent/cert.pem",
                "--tls-key",
                "/nonexistent/key.pem",
            ],
            &["TLS certificate", "/nonexistent/cert.pem"],
        ),
        case(
            "a data directory that cannot be made",
            &["--data-dir", "/proc/fieldsync"],
            &["--data-dir /proc/fieldsync", "cannot create"],
        ),
        case(
            "a memory budget of zero",
            &["--cache-mb", "0"],
            &["--cache-mb", "between 1 and"],
        ),
        case(
            "a limit that is not a number",
            &["--max-connections", "lots"],
            &["--max-connections", "whole number"],
        ),
        case(
            "a zero timeout",
            &["--join-timeout-secs", "0"],
            &["--join-timeout-secs", "between 1 and"],
        ),
        case(
            "a frame limit too small for any sync message",
            &["--max-message-bytes", "100"],
            &["--max-message-bytes", "between 65536 and"],
        ),
        Case {
            why: "a setting from the environment",
            args: vec![],
            env: vec![("FIELDSYNC_CONNECTS_PER_MINUTE", "-5")],
            says: vec!["--connects-per-minute", "-5"],
        },
        Case {
            why: "a yes/no setting that is neither",
            args: vec![],
            env: vec![("FIELDSYNC_ALLOW_INSECURE", "maybe")],
            says: vec!["--allow-insecure", "maybe"],
        },
    ];
    let mut failures = Vec::new();
    for c in &cases {
        let dir = tempfile::tempdir().unwrap();
        let started = Instant::now();
        let (code, stderr, left) = serve(dir.path(), c);
        let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
        let ok = matches!(code, Some(c) if c != 0)
            && lines.len() == 1
            && c.says.iter().all(|s| lines[0].contains(s))
            && left.is_empty()
            && started.elapsed() < Duration::from_secs(30);
        if !ok {
            failures.push(format!(
                "{}: exit {code:?}, created {left:?}, stderr {stderr:?}",
                c.why
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    drop(taken);
}

#[test]
fn logs_written_to_a_file_or_pipe_carry_no_colour_codes() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_fieldsync"))
        .args(["serve", "--listen", "localhost"])
        .current_dir(dir.path())
        .env("FIELDSYNC_LOG", "info")
        .env_remove("NO_COLOR")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("open-file limit"), "a log line: {stdout:?}");
    assert!(!stdout.contains('\u{1b}'), "no escape codes: {stdout:?}");

    // And as JSON, one object per line.
    let out = Command::new(env!("CARGO_BIN_EXE_fieldsync"))
        .args(["--log-format", "json", "serve", "--listen", "localhost"])
        .current_dir(dir.path())
        .env("FIELDSYNC_LOG", "info")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout.lines().next().expect("a log line");
    let parsed: serde_json::Value = serde_json::from_str(line).unwrap();
    assert_eq!(parsed["level"], "INFO", "{line}");
}
