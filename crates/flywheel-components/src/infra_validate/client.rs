//! The HTTP side of infra validation: one keep-alive HTTP/1.1 connection
//! per client (hyper's connection API, so a load-test connection is exactly
//! one TCP connection), and the bodies of both protocols the server speaks,
//! built from a model frame: MLflow's `dataframe_split` for `/invocations`
//! and OIP v2 tensors for `/v2/models/{name}/infer`.

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::client::conn::http1::SendRequest;
use hyper::{Method, Request, StatusCode, header};
use hyper_util::rt::TokioIo;
use serde_json::{Value as Json, json};
use std::net::SocketAddr;
use std::time::Duration;

/// How long one request may take before it counts as failed.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// One connection to the server, reused request after request.
pub struct Conn {
    addr: SocketAddr,
    sender: SendRequest<Full<Bytes>>,
    /// Drives the connection; aborted when the client goes.
    driver: tokio::task::JoinHandle<()>,
}

impl Drop for Conn {
    fn drop(&mut self) {
        self.driver.abort();
    }
}

impl Conn {
    pub async fn open(addr: SocketAddr) -> Result<Conn, String> {
        let stream =
            tokio::net::TcpStream::connect(addr).await.map_err(|e| format!("cannot connect to {addr}: {e}"))?;
        // One small request at a time: Nagle's algorithm would only add delay.
        stream.set_nodelay(true).map_err(|e| format!("cannot set TCP_NODELAY: {e}"))?;
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| format!("HTTP handshake with {addr} failed: {e}"))?;
        let driver = tokio::spawn(async move {
            let _ = conn.await;
        });
        Ok(Conn { addr, sender, driver })
    }

    /// POSTs `body` as JSON to `path`; the status and the whole answer.
    pub async fn post(&mut self, path: &str, body: Bytes) -> Result<(StatusCode, Bytes), String> {
        let request = Request::builder()
            .method(Method::POST)
            .uri(path)
            .header(header::HOST, self.addr.to_string())
            .header(header::CONTENT_TYPE, "application/json")
            .body(Full::new(body))
            .map_err(|e| format!("cannot build the request: {e}"))?;
        let exchange = async {
            self.sender.ready().await.map_err(|e| format!("connection closed: {e}"))?;
            let response = self.sender.send_request(request).await.map_err(|e| format!("POST {path}: {e}"))?;
            let status = response.status();
            let body = response.into_body().collect().await.map_err(|e| format!("POST {path}: {e}"))?;
            Ok((status, body.to_bytes()))
        };
        tokio::time::timeout(REQUEST_TIMEOUT, exchange)
            .await
            .map_err(|_| format!("POST {path}: no answer within {} s", REQUEST_TIMEOUT.as_secs()))?
    }
}

/// A number for JSON: NaN (missing) as `null`, as the server reads it.
fn number(v: f64) -> Json {
    serde_json::Number::from_f64(v).map_or(Json::Null, Json::Number)
}

/// The values of rows `rows` of one frame column, as JSON.
fn column_values(col: &flywheel_ml::Column, rows: std::ops::Range<usize>) -> Vec<Json> {
    match col {
        flywheel_ml::Column::Num(v) => v[rows].iter().map(|x| number(*x)).collect(),
        flywheel_ml::Column::Text(t) => rows.map(|r| t.get(r).map_or(Json::Null, |s| json!(s))).collect(),
    }
}

/// `POST /invocations` of rows `rows`: `{"dataframe_split": {...}}`.
pub fn invocations_body(frame: &flywheel_ml::Frame, rows: std::ops::Range<usize>) -> Bytes {
    let columns: Vec<Vec<Json>> = frame.columns().map(|(_, c)| column_values(c, rows.clone())).collect();
    let data: Vec<Json> =
        (0..rows.len()).map(|r| Json::Array(columns.iter().map(|c| c[r].clone()).collect())).collect();
    let columns: Vec<&str> = frame.names().iter().map(|n| &**n).collect();
    let body = json!({ "dataframe_split": { "columns": columns, "data": data } });
    Bytes::from(body.to_string())
}

/// `POST /v2/models/{name}/infer` of rows `rows`: one tensor per column.
pub fn infer_body(frame: &flywheel_ml::Frame, rows: std::ops::Range<usize>) -> Bytes {
    let inputs: Vec<Json> = frame
        .columns()
        .map(|(name, c)| {
            let datatype = match c {
                flywheel_ml::Column::Num(_) => "FP64",
                flywheel_ml::Column::Text(_) => "BYTES",
            };
            json!({ "name": name, "datatype": datatype, "shape": [rows.len()], "data": column_values(c, rows.clone()) })
        })
        .collect();
    Bytes::from(json!({ "inputs": inputs }).to_string())
}

/// What an endpoint answered for a batch: numbers (regression) or labels,
/// and for OIP classifiers the probabilities, row-major.
#[derive(Debug, Default)]
pub struct Answer {
    pub values: Vec<Json>,
    pub probabilities: Option<Vec<Json>>,
}

/// Reads `{"predictions": [...]}`.
pub fn read_invocations(body: &[u8]) -> Result<Answer, String> {
    let v: Json = serde_json::from_slice(body).map_err(|e| format!("/invocations answered invalid JSON: {e}"))?;
    let values = v["predictions"].as_array().ok_or("/invocations answered without a `predictions` list")?.clone();
    Ok(Answer { values, probabilities: None })
}

/// Reads an OIP answer's `prediction` and `probabilities` outputs.
pub fn read_infer(body: &[u8]) -> Result<Answer, String> {
    let v: Json = serde_json::from_slice(body).map_err(|e| format!("/v2 infer answered invalid JSON: {e}"))?;
    let outputs = v["outputs"].as_array().ok_or("/v2 infer answered without `outputs`")?;
    let data = |name: &str| outputs.iter().find(|o| o["name"] == name).and_then(|o| o["data"].as_array()).cloned();
    let values = data("prediction").ok_or("/v2 infer answered without a `prediction` output")?;
    Ok(Answer { values, probabilities: data("probabilities") })
}
