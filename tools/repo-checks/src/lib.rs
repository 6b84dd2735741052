//! Test-only crate: see `tests/`. It checks files of the repository against each other.
