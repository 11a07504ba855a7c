//! Runtime (filled in by later issues).
