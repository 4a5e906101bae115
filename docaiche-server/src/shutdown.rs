//! Serving and graceful shutdown: the accept loop ([`serve_with`]), which
//! gives each connection its header-read deadline; on SIGINT or SIGTERM it
//! stops accepting connections, lets in-flight requests finish within the
//! grace period, then returns.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use axum::http::Request;
use axum::serve::Listener;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::sync::watch;
use tower::ServiceExt as _;

/// How [`serve`] ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stopped {
    /// Every in-flight request finished within the grace period.
    Drained,
    /// The grace period ran out; remaining connections were dropped.
    GraceExpired,
}

/// Resolves on the first SIGINT (Ctrl-C) or SIGTERM.
pub(crate) async fn signal() {
    let interrupt = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %e, "cannot listen for SIGINT");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut stream) => {
                stream.recv().await;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();

    tokio::select! {
        () = interrupt => tracing::info!(signal = "SIGINT", "shutdown requested"),
        () = terminate => tracing::info!(signal = "SIGTERM", "shutdown requested"),
    }
}

/// The default header-read deadline of each connection
/// (`http.header_read_timeout_secs`).
pub(crate) const DEFAULT_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// [`serve_with`] with the [`DEFAULT_HEADER_READ_TIMEOUT`] (tests).
///
/// # Errors
/// An I/O error from the server.
#[cfg(test)]
pub(crate) async fn serve<L>(
    listener: L,
    app: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
    grace: Duration,
) -> io::Result<Stopped>
where
    L: Listener<Addr = SocketAddr>,
{
    serve_with(listener, app, shutdown, grace, DEFAULT_HEADER_READ_TIMEOUT).await
}

/// Serve `app` on `listener` (a `TcpListener`, or the TLS-capable
/// [`crate::tls::ServerListener`]) until `shutdown` resolves, then stop
/// accepting and wait at most `grace` for in-flight requests. A client has
/// `header_read_timeout` to send each request head (request line and
/// headers, counted from when the server starts waiting for it, so an idle
/// keep-alive connection gets no longer either): a client that trickles
/// header bytes slowly enough to stay under the idle timeout is still cut
/// off, with no answer.
///
/// The loop is `axum::serve`'s, written out because `axum::serve` does not
/// expose hyper's builder: hyper's HTTP/1 connection
/// (`hyper::server::conn::http1`, with upgrades for WebSockets) with a
/// tokio timer and the header-read deadline. Not hyper-util's `auto`
/// builder: it first reads the client's preface to choose between HTTP/1
/// and HTTP/2 with no deadline at all, and the server speaks HTTP/1.1 only.
/// Each request carries the socket peer as axum's `ConnectInfo`, and is
/// marked when its `Host` header is missing or repeated
/// ([`crate::http::HostHeaderFault`]), for the HTTP layer to refuse.
///
/// # Errors
/// An I/O error from the server (none today: accept errors are handled
/// by the listener).
pub(crate) async fn serve_with<L>(
    mut listener: L,
    app: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
    grace: Duration,
    header_read_timeout: Duration,
) -> io::Result<Stopped>
where
    L: Listener<Addr = SocketAddr>,
{
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(header_read_timeout);
    // Dropping `stop` asks every connection to finish its request and close;
    // `done` is closed once every connection task has let go of its copy.
    let (stop, stopping) = watch::channel(());
    let (done, finished) = watch::channel(());
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (io, peer) = tokio::select! {
            accepted = listener.accept() => accepted,
            () = &mut shutdown => break,
        };
        let app = app.clone();
        let service = hyper::service::service_fn(move |mut request: Request<Incoming>| {
            if let Some(fault) = crate::http::HostHeaderFault::of(&request) {
                request.extensions_mut().insert(fault);
            }
            request.extensions_mut().insert(ConnectInfo(peer));
            app.clone().oneshot(request)
        });
        let connection = http.serve_connection(TokioIo::new(io), service);
        let mut stopping = stopping.clone();
        let finished = finished.clone();
        tokio::spawn(async move {
            let connection = connection.with_upgrades();
            let mut connection = std::pin::pin!(connection);
            tokio::select! {
                result = connection.as_mut() => {
                    if let Err(e) = result {
                        tracing::trace!(error = %e, "connection ended with an error");
                    }
                }
                // The sender is dropped: the server is shutting down.
                _ = stopping.changed() => {
                    connection.as_mut().graceful_shutdown();
                    if let Err(e) = connection.await {
                        tracing::trace!(error = %e, "connection ended with an error");
                    }
                }
            }
            drop(finished);
        });
    }
    drop(listener);
    tracing::info!(
        grace_secs = grace.as_secs_f64(),
        "stopped accepting connections; draining in-flight requests"
    );
    drop(stop);
    drop(stopping);
    drop(finished);
    tokio::select! {
        () = done.closed() => Ok(Stopped::Drained),
        () = tokio::time::sleep(grace) => {
            tracing::warn!("grace period elapsed; dropping the remaining connections");
            Ok(Stopped::GraceExpired)
        }
    }
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;
    use std::sync::Arc;

    use axum::routing::get;
    use tokio::net::TcpListener;
    use tokio::sync::{Notify, oneshot};

    use super::*;

    /// A router whose `/slow` handler announces it started, then takes `delay`.
    fn slow_router(started: Arc<Notify>, delay: Option<Duration>) -> Router {
        Router::new().route(
            "/slow",
            get(move || async move {
                started.notify_one();
                match delay {
                    Some(delay) => tokio::time::sleep(delay).await,
                    None => std::future::pending().await,
                }
                "finished"
            }),
        )
    }

    /// Send a GET for `/slow` on a fresh connection. (Plain non-blocking
    /// socket calls: the workspace builds tokio without `io-util`.)
    async fn send_request(addr: SocketAddr) -> tokio::net::TcpStream {
        let stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
        let mut request: &[u8] = b"GET /slow HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n";
        while !request.is_empty() {
            stream.writable().await.expect("writable");
            match stream.try_write(request) {
                Ok(n) => request = &request[n..],
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => panic!("send: {e}"),
            }
        }
        stream
    }

    /// Read until the server closes the connection.
    async fn read_to_end(stream: &tokio::net::TcpStream) -> String {
        let mut out = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            stream.readable().await.expect("readable");
            match stream.try_read(&mut buf) {
                Ok(0) => break,
                Ok(n) => out.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => panic!("read: {e}"),
            }
        }
        String::from_utf8(out).expect("utf-8 response")
    }

    #[tokio::test]
    async fn in_flight_requests_finish_then_the_server_stops() {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let started = Arc::new(Notify::new());
        let (stop_tx, stop_rx) = oneshot::channel::<()>();
        let server = tokio::spawn(serve(
            listener,
            slow_router(started.clone(), Some(Duration::from_millis(150))),
            async move {
                let _ = stop_rx.await;
            },
            Duration::from_secs(5),
        ));

        let stream = send_request(addr).await;
        started.notified().await;
        stop_tx.send(()).expect("server is running");

        let response = read_to_end(&stream).await;
        assert!(response.starts_with("HTTP/1.1 200"), "{response}");
        assert!(response.ends_with("finished"), "{response}");

        let stopped = tokio::time::timeout(Duration::from_secs(2), server)
            .await
            .expect("the server stops after draining")
            .expect("no panic")
            .expect("no I/O error");
        assert_eq!(stopped, Stopped::Drained);
        assert!(
            tokio::net::TcpStream::connect(addr).await.is_err(),
            "the listener is closed"
        );
    }

    #[tokio::test]
    async fn the_grace_period_bounds_a_request_that_never_ends() {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let started = Arc::new(Notify::new());
        let (stop_tx, stop_rx) = oneshot::channel::<()>();
        let server = tokio::spawn(serve(
            listener,
            slow_router(started.clone(), None),
            async move {
                let _ = stop_rx.await;
            },
            Duration::from_millis(100),
        ));
        let _stream = send_request(addr).await;
        started.notified().await;
        stop_tx.send(()).expect("server is running");
        let stopped = tokio::time::timeout(Duration::from_secs(2), server)
            .await
            .expect("the grace period ends serving")
            .expect("no panic")
            .expect("no I/O error");
        assert_eq!(stopped, Stopped::GraceExpired);
    }
}
