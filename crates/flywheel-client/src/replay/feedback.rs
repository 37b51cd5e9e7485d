//! Labels posted as feedback while a replay runs: gathered from answered
//! requests, sent in chunks (`{"feedback": [...]}`) on a connection of
//! their own, so that predictions never wait for them.

use crate::{ClientError, Conn, Target, error_message};
use serde_json::{Value as Json, json};
use std::net::SocketAddr;
use std::time::Duration;
use tokio::sync::mpsc;

/// Items posted at most this many at a time; the channel looked at least
/// every `EVERY` for its end.
const CHUNK: usize = 500;
const EVERY: Duration = Duration::from_millis(200);

/// What the server made of the labels.
#[derive(Debug, Default, Clone)]
pub struct Posted {
    /// Labels the server took.
    pub labels: u64,
    /// Requests it had no log of (ids it did not know).
    pub unknown: u64,
    /// Why it stopped taking them, if it did (the first refusal: a label
    /// of the wrong kind, the log turned off).
    pub refused: Option<String>,
}

/// Posts what arrives on `items` until the channel closes.
pub async fn post_all(
    addr: SocketAddr,
    target: Target,
    token: Option<String>,
    mut items: mpsc::UnboundedReceiver<Json>,
) -> Posted {
    let mut posted = Posted::default();
    let mut conn = None;
    let mut waiting = Vec::new();
    loop {
        let closed = match tokio::time::timeout(EVERY, items.recv()).await {
            Ok(Some(item)) => {
                waiting.push(item);
                false
            }
            Ok(None) => true,
            Err(_) => false,
        };
        // What arrived while the last chunk was being posted goes together.
        while waiting.len() < CHUNK
            && let Ok(item) = items.try_recv()
        {
            waiting.push(item);
        }
        let chunk = std::mem::take(&mut waiting);
        if !chunk.is_empty()
            && posted.refused.is_none()
            && let Err(why) = post(&mut conn, addr, &target, token.as_deref(), chunk, &mut posted).await
        {
            posted.refused = Some(why.to_string());
        }
        if closed {
            return posted;
        }
    }
}

async fn post(
    conn: &mut Option<Conn>,
    addr: SocketAddr,
    target: &Target,
    token: Option<&str>,
    chunk: Vec<Json>,
    posted: &mut Posted,
) -> Result<(), ClientError> {
    if conn.is_none() {
        *conn = Some(Conn::open(addr).await?);
    }
    let Some(c) = conn.as_mut() else { return Ok(()) };
    let bearer = token.map(|t| format!("Bearer {t}"));
    let headers: Vec<(&'static str, &str)> = bearer.iter().map(|b| ("authorization", b.as_str())).collect();
    let body = json!({ "feedback": chunk }).to_string();
    let sent = c.send(hyper::Method::POST, &target.path("/feedback"), &headers, body.into()).await;
    let (status, answer) = match sent {
        Ok(answered) => answered,
        Err(e) => {
            *conn = None;
            return Err(e);
        }
    };
    if !status.is_success() {
        let what = "POST /feedback".to_string();
        return Err(ClientError::Refused { what, status: status.as_u16(), message: error_message(&answer) });
    }
    let answer: Json = serde_json::from_slice(&answer).unwrap_or_default();
    posted.labels += answer["labels"].as_u64().unwrap_or(0);
    posted.unknown += answer["unknown"].as_array().map_or(0, |u| u.len() as u64);
    Ok(())
}
