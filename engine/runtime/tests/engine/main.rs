//! The scheduler end to end against real storage (SQLite and PostgreSQL),
//! with a scripted executor standing in for the plugin host. One test
//! binary, split by concept.

mod approvals;
mod children;
mod common;
mod concurrency;
mod lifecycle;
mod recovery;
mod rollouts;
