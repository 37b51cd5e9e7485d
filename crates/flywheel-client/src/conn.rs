//! One keep-alive HTTP/1.1 connection to a server (hyper's connection API,
//! so a load-test connection is exactly one TCP connection), reused request
//! after request.

use crate::ClientError;
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::client::conn::http1::SendRequest;
use hyper::{Method, Request, StatusCode, header};
use hyper_util::rt::TokioIo;
use std::net::SocketAddr;
use std::time::Duration;

/// How long one request may take before it counts as failed.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// One connection to the server.
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

/// Extra request headers: `(name, value)`.
pub type Headers<'a> = &'a [(&'static str, &'a str)];

impl Conn {
    pub async fn open(addr: SocketAddr) -> Result<Conn, ClientError> {
        let refused = |why: String| ClientError::Connect { addr, why };
        let stream = tokio::net::TcpStream::connect(addr).await.map_err(|e| refused(e.to_string()))?;
        // One small request at a time: Nagle's algorithm would only add delay.
        stream.set_nodelay(true).map_err(|e| refused(format!("cannot set TCP_NODELAY: {e}")))?;
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| refused(format!("HTTP handshake failed: {e}")))?;
        let driver = tokio::spawn(async move {
            let _ = conn.await;
        });
        Ok(Conn { addr, sender, driver })
    }

    /// POSTs `body` as JSON to `path`; the status and the whole answer.
    pub async fn post(&mut self, path: &str, body: Bytes) -> Result<(StatusCode, Bytes), ClientError> {
        self.send(Method::POST, path, &[], body).await
    }

    pub async fn get(&mut self, path: &str) -> Result<(StatusCode, Bytes), ClientError> {
        self.send(Method::GET, path, &[], Bytes::new()).await
    }

    /// Sends one request (a JSON body, when there is one, and `headers`);
    /// the status and the whole answer, or an error past `REQUEST_TIMEOUT`.
    pub async fn send(
        &mut self,
        method: Method,
        path: &str,
        headers: Headers<'_>,
        body: Bytes,
    ) -> Result<(StatusCode, Bytes), ClientError> {
        let failed = |why: String| ClientError::Request { method: method.to_string(), path: path.to_string(), why };
        let mut request =
            Request::builder().method(method.clone()).uri(path).header(header::HOST, self.addr.to_string());
        if !body.is_empty() {
            request = request.header(header::CONTENT_TYPE, "application/json");
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let request = request.body(Full::new(body)).map_err(|e| failed(format!("cannot build it: {e}")))?;
        let exchange = async {
            self.sender.ready().await.map_err(|e| failed(format!("connection closed: {e}")))?;
            let response = self.sender.send_request(request).await.map_err(|e| failed(e.to_string()))?;
            let status = response.status();
            let body = response.into_body().collect().await.map_err(|e| failed(e.to_string()))?;
            Ok((status, body.to_bytes()))
        };
        tokio::time::timeout(REQUEST_TIMEOUT, exchange)
            .await
            .map_err(|_| failed(format!("no answer within {} s", REQUEST_TIMEOUT.as_secs())))?
    }
}
