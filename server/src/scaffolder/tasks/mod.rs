//! The task engine on Postgres: a task row per run, claimed with `FOR UPDATE SKIP LOCKED` and a lease
//! renewed by heartbeat, every write fenced by the lease token, every log line an event row.
//!
//! - `db`: the SQL;
//! - `runner`: the step loop, shared by real runs and dry runs;
//! - `redact`: secrets out of everything written;
//! - `worker`: claiming, heartbeats, running a claimed task to its end.

pub mod db;
pub mod redact;
pub mod runner;
pub mod worker;
