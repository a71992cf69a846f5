//! The server's log lines, captured for this test binary: `None` when logging went elsewhere
//! (FIELDSYNC_TEST_LOG set), in which case tests skip their log check.

use std::sync::{Arc, Mutex, OnceLock};

static LINES: OnceLock<Option<Arc<Mutex<Vec<u8>>>>> = OnceLock::new();

#[derive(Clone)]
struct Buffer(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Buffer {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Starts capturing (once per binary), before any server starts.
pub fn capture() {
    LINES.get_or_init(|| {
        if std::env::var_os("FIELDSYNC_TEST_LOG").is_some() {
            return None;
        }
        let buffer = Buffer(Arc::default());
        let writer = buffer.clone();
        tracing_subscriber::fmt()
            .with_max_level(tracing_subscriber::filter::LevelFilter::INFO)
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .try_init()
            .ok()
            .map(|()| buffer.0)
    });
}

/// Lines containing every one of `words`; `None` if the log is not captured.
pub fn lines_with(words: &[&str]) -> Option<Vec<String>> {
    let buffer = LINES.get()?.as_ref()?;
    let text = String::from_utf8_lossy(&buffer.lock().unwrap()).into_owned();
    Some(
        text.lines()
            .filter(|l| words.iter().all(|w| l.contains(w)))
            .map(str::to_owned)
            .collect(),
    )
}
