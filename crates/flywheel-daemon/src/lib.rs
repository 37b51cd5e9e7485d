//! `flywheel up`'s service. Today it holds the part every other piece
//! asks: when a deployment's triggers fire (`triggers.rs`, pure: the
//! windows monitored, the trigger's state and the time in, a firing with
//! its reason out). The loop that hosts the server, the monitor and the
//! runs comes next, and records each trigger's state so that none fires
//! twice across a restart.

pub mod triggers;

pub use triggers::{Firing, TriggerState, WindowView, decide};
