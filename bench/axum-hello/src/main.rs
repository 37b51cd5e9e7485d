//! A bare axum server for bench/serve.py: every POST gets the same small
//! JSON answer, so what it measures is HTTP and the runtime alone, the
//! upper bound for a prediction server on the same stack.
//!
//!     axum-hello 127.0.0.1:PORT

use axum::Router;
use axum::http::header;
use axum::routing::post;

const ANSWER: &str = r#"{"predictions":["yes"]}"#;

fn main() {
    let addr = std::env::args().nth(1).unwrap_or_else(|| "127.0.0.1:8081".into());
    // Two workers, as `flywheel serve` runs with.
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build();
    let runtime = runtime.unwrap_or_else(|e| exit(&format!("cannot start the runtime: {e}")));
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(&addr)
            .await
            .unwrap_or_else(|e| exit(&format!("cannot listen on {addr}: {e}")));
        let app = Router::new().fallback(post(|| async { ([(header::CONTENT_TYPE, "application/json")], ANSWER) }));
        println!("listening on http://{addr}");
        if let Err(e) = axum::serve(listener, app).await {
            exit(&format!("server stopped: {e}"));
        }
    });
}

fn exit(message: &str) -> ! {
    eprintln!("axum-hello: {message}");
    std::process::exit(1)
}
