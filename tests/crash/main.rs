//! Crash recovery, proven on the real process: `cordon worker` is killed
//! with SIGKILL at failpoints compiled into the `crash-harness` build, then
//! restarted; several workers share one PostgreSQL database and one is
//! killed mid-run. See `engine/cli/src/harness.rs` for the process's side.

mod kill_points;
mod nodes;
mod support;
