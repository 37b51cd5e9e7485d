//! A client of Flywheel's prediction server, for what talks to a running
//! server: infra validation's comparisons and load test, and
//! `flywheel replay`, which sends a dataset's rows as live traffic and
//! their labels as feedback.
//!
//! - `conn.rs`: one keep-alive HTTP/1.1 connection (hyper), requests with a
//!   timeout.
//! - `bodies.rs`: request bodies of both protocols from a model frame, and
//!   their answers read back.
//! - `target.rs`: the server's URL as given (`http://HOST:PORT[/PREFIX]`).
//! - `replay/`: the replay: `plan.rs` reads and orders the data against the
//!   served model's inputs; `mod.rs` sends it; `feedback.rs` posts labels.

mod bodies;
mod conn;
pub mod replay;
mod target;

pub use bodies::{Answer, column_values, infer_body, invocations_body, read_infer, read_invocations};
pub use conn::{Conn, Headers, REQUEST_TIMEOUT};
pub use target::Target;

use std::net::SocketAddr;

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("`{given}` is not a server address: {why}")]
    Url { given: String, why: String },
    #[error("cannot connect to {addr}: {why} (is `flywheel serve` running there?)")]
    Connect { addr: SocketAddr, why: String },
    #[error("{method} {path}: {why}")]
    Request { method: String, path: String, why: String },
    #[error("{endpoint} answered what is not its protocol: {why}")]
    Answer { endpoint: String, why: String },
    /// The server refused a request the client needs to go on.
    #[error("{what}: the server answered {status}: {message}")]
    Refused { what: String, status: u16, message: String },
    #[error(transparent)]
    Data(#[from] flywheel_data::DataError),
    /// The data or the options cannot be replayed as given.
    #[error("{0}")]
    Input(String),
}

/// The message of a JSON `{"error": ...}` answer, or the body as text.
pub fn error_message(body: &[u8]) -> String {
    let parsed: Option<serde_json::Value> = serde_json::from_slice(body).ok();
    match parsed.as_ref().and_then(|v| v["error"].as_str()) {
        Some(m) => m.to_string(),
        None => String::from_utf8_lossy(&body[..body.len().min(300)]).trim().to_string(),
    }
}
