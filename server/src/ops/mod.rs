//! Commands for the operator who runs fieldsync for years: `fieldsync backup` and `fieldsync
//! check` (like [`crate::reindex`], they open the database directly and are safe while a
//! server runs on it). What an upgrade needs, the schema version and refusing a database a
//! newer fieldsync migrated, is part of opening storage: [`crate::storage::migrate`].

pub mod backup;
pub mod check;
