//! Builds the field app (`app/`, served at `/app/`) and embeds it in the binary.
//!
//! Runs `npm ci` when `app/node_modules` is missing or older than the lockfile, then
//! `node app/build.mjs` into `$OUT_DIR/app`, and writes `$OUT_DIR/app_files.rs`: a table of
//! (path, content type, bytes) that `src/web/app.rs` serves. Quiet unless something fails.
//! Without Node.js, `FIELDSYNC_WITHOUT_APP=1` builds the server with a page at `/app/` saying
//! the field app was not built.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap());
    let app = manifest.join("../app");
    let out = PathBuf::from(std::env::var("OUT_DIR").unwrap());
    println!("cargo:rerun-if-env-changed=FIELDSYNC_WITHOUT_APP");
    for watched in ["src", "build.mjs", "package.json", "package-lock.json"] {
        println!("cargo:rerun-if-changed={}", app.join(watched).display());
    }
    let table = out.join("app_files.rs");
    let without = std::env::var("FIELDSYNC_WITHOUT_APP").is_ok_and(|v| !v.is_empty() && v != "0");
    if without {
        std::fs::write(
            &table,
            "pub static APP_FILES: &[(&str, &str, &[u8])] = &[];\n",
        )
        .unwrap();
        return;
    }
    check_node();
    let stamp = app.join("node_modules/.fieldsync-package-lock.json");
    let lock = std::fs::read(app.join("package-lock.json")).expect("app/package-lock.json");
    if std::fs::read(&stamp).ok().as_deref() != Some(lock.as_slice()) {
        run(
            Command::new("npm")
                .args(["ci", "--no-audit", "--no-fund", "--loglevel=error"])
                .current_dir(&app),
            "npm ci (in app/)",
        );
        std::fs::write(&stamp, &lock).unwrap();
    }
    let dist = out.join("app");
    run(
        Command::new("node")
            .arg(app.join("build.mjs"))
            .arg("--out")
            .arg(&dist)
            .current_dir(&app),
        "node app/build.mjs",
    );
    let mut files = Vec::new();
    collect(&dist, &dist, &mut files);
    files.sort();
    let mut code = String::from("pub static APP_FILES: &[(&str, &str, &[u8])] = &[\n");
    for (path, file) in files {
        writeln!(
            code,
            "    ({path:?}, {:?}, include_bytes!({:?})),",
            content_type(&path),
            file.display()
        )
        .unwrap();
    }
    code.push_str("];\n");
    std::fs::write(&table, code).unwrap();
}

/// Stops the build with one clear message when Node.js 20 or newer and npm are not there.
fn check_node() {
    let version = Command::new("node").arg("--version").output().ok();
    let major = version
        .as_ref()
        .filter(|o| o.status.success())
        .and_then(|o| {
            String::from_utf8_lossy(&o.stdout)
                .trim()
                .strip_prefix('v')
                .map(str::to_owned)
        })
        .and_then(|v| v.split('.').next().and_then(|m| m.parse::<u32>().ok()));
    let npm = Command::new("npm")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if major.is_none_or(|m| m < 20) || !npm {
        panic!(
            "\n\nfieldsync embeds the field app (app/), which is built with Node.js 20 or newer and npm.\n\
             {}\n\
             Install them (Debian/Ubuntu: apt-get install nodejs npm), or build the server without the\n\
             field app: FIELDSYNC_WITHOUT_APP=1 cargo build (then /app/ says the app was not built).\n",
            match major {
                None => "Node.js was not found.".to_owned(),
                Some(m) if m < 20 => format!("Node.js {m} was found; 20 or newer is needed."),
                Some(_) => "npm was not found.".to_owned(),
            }
        );
    }
}

fn run(command: &mut Command, what: &str) {
    let output = command
        .output()
        .unwrap_or_else(|e| panic!("cannot run {what}: {e}"));
    if !output.status.success() {
        panic!(
            "{what} failed ({}):\n{}\n{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
}

fn collect(root: &Path, dir: &Path, files: &mut Vec<(String, PathBuf)>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            collect(root, &path, files);
        } else {
            let rel = path
                .strip_prefix(root)
                .unwrap()
                .to_string_lossy()
                .replace('\\', "/");
            files.push((rel, path));
        }
    }
}

fn content_type(path: &str) -> &'static str {
    match path.rsplit('.').next() {
        Some("html") => "text/html; charset=utf-8",
        Some("js") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("wasm") => "application/wasm",
        Some("webmanifest") => "application/manifest+json",
        Some("json") => "application/json",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("txt") => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}
