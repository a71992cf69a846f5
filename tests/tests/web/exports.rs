//! The exports part of the web (placeholder).
