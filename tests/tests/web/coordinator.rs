//! The coordinator part of the web (placeholder).
