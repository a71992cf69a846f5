//! The allocator's view of memory. The `fieldsync` binary allocates with jemalloc
//! (`main.rs`): glibc's malloc kept memory that busy threads had freed, so a long-running
//! server's resident memory grew with time under a steady load (docs/soak.md). jemalloc gives
//! freed pages back after a few seconds, on background threads that [`start`] turns on, and
//! says how much of what it holds is live, which the metrics report.
//!
//! In a program that does not allocate with jemalloc (a test embedding the server), [`start`]
//! does nothing useful and [`stats`] reports jemalloc's own small heap.

/// What jemalloc holds, in bytes.
#[derive(Debug, Clone, Copy, Default)]
pub struct Stats {
    /// Live allocations: what the program has asked for and not freed.
    pub allocated: usize,
    /// Pages jemalloc holds in physical memory: live allocations, its own metadata, and freed
    /// pages not yet given back.
    pub resident: usize,
}

/// Turns on jemalloc's background threads, which give freed pages back to the system without
/// waiting for the next allocation; says so in the log when they do not start.
pub fn start() {
    #[cfg(unix)]
    let started = tikv_jemalloc_ctl::background_thread::write(true).is_ok();
    #[cfg(not(unix))]
    let started = false;
    if !started {
        tracing::warn!(
            "the allocator's background threads did not start: freed memory returns to the system only as the server allocates"
        );
    }
}

/// The allocator's figures now, or `None` where they cannot be read.
pub fn stats() -> Option<Stats> {
    #[cfg(unix)]
    {
        use tikv_jemalloc_ctl::{epoch, stats};
        // jemalloc caches its statistics; advancing the epoch refreshes them.
        epoch::advance().ok()?;
        Some(Stats {
            allocated: stats::allocated::read().ok()?,
            resident: stats::resident::read().ok()?,
        })
    }
    #[cfg(not(unix))]
    {
        None
    }
}
