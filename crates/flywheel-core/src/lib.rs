//! The small core every other Flywheel crate points toward.
//!
//! It holds only what two or more crates must agree on: the kinds of artifacts
//! that flow between steps, the typed spec of a component (its parameters,
//! inputs and outputs), and the contract between the launcher and a
//! component's executor. Nothing here does I/O beyond what an executor's
//! context hands out.

pub mod exec;
pub mod spec;

pub use exec::{
    CancelToken, Component, ComponentRegistry, ExecContext, ExecError, InputArtifact, ModelRegistry, RegisteredModel};
pub use spec::{ArtifactType, ComponentSpec, ParamSpec, ParamType, PortSpec};

/// Hex blake3 digest of a byte slice. Used for content addresses and cache keys.
pub fn digest_bytes(bytes: &[u8]) -> String {
    blake3::hash(bytes).to_hex().to_string()
}
