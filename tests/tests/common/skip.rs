//! Tests that cannot run here say so where the test command counts it: a line in the file
//! named by `FIELDSYNC_TEST_SKIPS` (set by `scripts/test`), and on standard error.
//! Shared by `tests/` and `server/tests/` (included with `#[path]`).

use std::io::Write;

/// Records that a test did not run, and why (`reason` groups the count in the closing line).
pub fn skipped(test: &str, reason: &str) {
    eprintln!("SKIPPED: {test} ({reason})");
    if let Some(path) = std::env::var_os("FIELDSYNC_TEST_SKIPS")
        && let Ok(mut file) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
    {
        // One short line per write: appends this small are not interleaved.
        let _ = file.write_all(format!("{reason}\n").as_bytes());
    }
}
