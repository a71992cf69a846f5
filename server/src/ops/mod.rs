//! Commands for the operator who runs fieldsync for years: `fieldsync backup` and
//! `fieldsync check`. Like [`crate::reindex`], they open the database directly and are safe
//! while a server runs on it.

pub mod backup;
pub mod check;
