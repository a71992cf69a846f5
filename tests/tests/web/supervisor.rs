//! The supervisor part of the web (placeholder).
