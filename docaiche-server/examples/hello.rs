//! A bare axum "hello world": the baseline `scripts/load-http.sh` measures
//! the full DocAIche stack against.
//!
//! ```text
//! cargo run --release -p docaiche-server --example hello -- 127.0.0.1:8090
//! curl 127.0.0.1:8090/hello
//! ```
//!
//! Same runtime (tokio, multi-threaded), same HTTP/1 server (`axum::serve`)
//! as the server, same global allocator (mimalloc), and nothing
//! else: no layers, no state.

use std::net::SocketAddr;
use std::process::ExitCode;

use axum::Router;
use axum::routing::get;

/// The server's global allocator, so that the baseline differs
/// from it only by the DocAIche stack.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> ExitCode {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:8090".to_owned());
    let addr: SocketAddr = match addr.parse() {
        Ok(addr) => addr,
        Err(e) => {
            eprintln!("hello: `{addr}` is not an address: {e}");
            return ExitCode::from(2);
        }
    };
    let app = Router::new().route("/hello", get(|| async { "hello, world\n" }));
    let listener = match tokio::net::TcpListener::bind(addr).await {
        Ok(listener) => listener,
        Err(e) => {
            eprintln!("hello: cannot listen on {addr}: {e}");
            return ExitCode::FAILURE;
        }
    };
    eprintln!("hello: listening on {addr}");
    match axum::serve(listener, app).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("hello: {e}");
            ExitCode::FAILURE
        }
    }
}
