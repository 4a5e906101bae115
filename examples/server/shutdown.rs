//! Graceful shutdown: on SIGINT or SIGTERM stop accepting connections, let
//! in-flight requests finish within the grace period, then return.

use std::future::{Future, IntoFuture as _};
use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::extract::connect_info::Connected;
use axum::serve::{IncomingStream, Listener};
use tokio::sync::oneshot;

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

/// Serve `app` on `listener` (a `TcpListener`, or the TLS-capable
/// [`crate::tls::ServerListener`]) until `shutdown` resolves, then stop
/// accepting and wait at most `grace` for in-flight requests.
///
/// # Errors
/// An I/O error from the server.
pub(crate) async fn serve<L>(
    listener: L,
    app: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
    grace: Duration,
) -> io::Result<Stopped>
where
    L: Listener<Addr = SocketAddr>,
    for<'a> SocketAddr: Connected<IncomingStream<'a, L>>,
{
    let (draining_tx, draining_rx) = oneshot::channel::<()>();
    let signal = async move {
        shutdown.await;
        tracing::info!(
            grace_secs = grace.as_secs_f64(),
            "stopped accepting connections; draining in-flight requests"
        );
        // The receiver is gone only if serving already ended.
        let _ = draining_tx.send(());
    };
    // The socket peer reaches the rate-limit layer as ConnectInfo.
    let server = axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(signal)
    .into_future();
    let deadline = async move {
        if draining_rx.await.is_err() {
            // Serving ended on its own; the other branch has won.
            std::future::pending::<()>().await;
        }
        tokio::time::sleep(grace).await;
    };
    tokio::select! {
        result = server => result.map(|()| Stopped::Drained),
        () = deadline => {
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
    use tokio::sync::Notify;

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
