//! In-process tests of the orchestrator, after Meilisearch's index-scheduler
//! tests: test components ([`components`]) in pipelines compiled from TOML
//! text, an orchestrator on a temporary home ([`harness`]), failures planned
//! at named points of the launcher and scheduler (`crate::failpoint`),
//! waits on the observer's events to act while a step runs, and the store
//! snapshotted as text with `insta` ([`snapshot`]; the `.snap` files under
//! `src/snapshots/` are the specification).

mod components;
mod harness;
mod scenarios;
mod snapshot;
