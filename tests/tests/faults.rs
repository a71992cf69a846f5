//! Faults injected while phones edit: a network that cuts, crawls, corrupts and swallows
//! (through `common::proxy`), a PostgreSQL restarted under the server (`common::pgcluster`), and
//! an SQLite disk that fills up and empties again. Each test ends with the same settlement:
//! every change a phone saw acknowledged is in the database, every replica has the server's
//! heads, the server still serves a new phone and `/healthz` says 200, and the server's log says
//! what happened in a line.

mod common;
#[path = "faults/fleet.rs"]
mod fleet;
#[path = "faults/log.rs"]
mod log;
#[path = "faults/network.rs"]
mod network;
#[path = "faults/storage.rs"]
mod storage;
