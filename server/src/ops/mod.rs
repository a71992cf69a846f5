//! Commands for the operator who runs fieldsync for years: `fieldsync backup`, `fieldsync
//! check` (like [`crate::reindex`], they open the database directly and are safe while a
//! server runs on it), and what an upgrade needs: the schema version, and refusing a database
//! a newer fieldsync migrated.

pub mod backup;
pub mod check;
pub mod upgrade;
