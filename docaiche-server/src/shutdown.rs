//! Serving and graceful shutdown: the accept loop ([`serve_with`]), which
//! gives each connection its header-read deadline; on SIGINT or SIGTERM it
//! stops accepting connections, lets in-flight requests finish within the
//! grace period, then returns.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll, Wake, Waker, ready};
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use axum::http::Request;
use axum::serve::Listener;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
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
    http.header_read_timeout(header_read_timeout);
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
        let connection = http
            .clone()
            .timer(HeadTimer::new(header_read_timeout))
            .serve_connection(TokioIo::new(io), service);
        let mut stopping = stopping.clone();
        let finished = finished.clone();
        tokio::spawn(async move {
            let connection = connection.with_upgrades();
            let mut connection = std::pin::pin!(connection);
            // The sender is dropped: the server is shutting down.
            let stop = WhenWoken::new(async move {
                let _ = stopping.changed().await;
            });
            tokio::select! {
                biased;
                result = connection.as_mut() => {
                    if let Err(e) = result {
                        tracing::trace!(error = %e, "connection ended with an error");
                    }
                }
                () = stop => {
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

/// A future polled only when it woke the task (and at first): the shutdown
/// signal beside each connection. Polling a `watch` channel's `changed()`
/// takes the lock of the channel every connection waits on, and the
/// connection's task wakes at least twice per request; this skips those
/// polls.
struct WhenWoken<F> {
    /// The future.
    future: Pin<Box<F>>,
    /// The waker it was last polled with, and whether it has woken since.
    woken: Option<(Arc<WokenFlag>, Waker)>,
}

/// A task's waker that also records that it was used.
struct WokenFlag {
    /// Set by a wake, cleared by the next poll.
    woken: AtomicBool,
    /// The task's own waker.
    task: Waker,
}

impl Wake for WokenFlag {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.woken.store(true, Ordering::Release);
        self.task.wake_by_ref();
    }
}

impl<F: Future> WhenWoken<F> {
    /// `future`, polled only when it woke the task.
    fn new(future: F) -> Self {
        Self {
            future: Box::pin(future),
            woken: None,
        }
    }
}

impl<F: Future> Future for WhenWoken<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.get_mut();
        match &this.woken {
            // Not woken since the last poll, by the same task: nothing new.
            Some((flag, _)) if flag.task.will_wake(cx.waker()) => {
                if !flag.woken.swap(false, Ordering::Acquire) {
                    return Poll::Pending;
                }
            }
            _ => {
                let flag = Arc::new(WokenFlag {
                    woken: AtomicBool::new(false),
                    task: cx.waker().clone(),
                });
                let waker = Waker::from(Arc::clone(&flag));
                this.woken = Some((flag, waker));
            }
        }
        match &this.woken {
            Some((_, waker)) => this.future.as_mut().poll(&mut Context::from_waker(waker)),
            None => Poll::Pending,
        }
    }
}

/// hyper's timer for one connection. hyper uses it for the header-read
/// deadline only (on an HTTP/1 server connection), asking for a new timer
/// each time it starts waiting for a request head and dropping it once the
/// head is read. Each of those is one tokio timer here, kept armed across
/// requests: a later deadline leaves it armed where it is, and when it fires
/// before the deadline a waiting head asks for, it is re-armed then. A busy
/// keep-alive connection so costs no timer-wheel update per request (a
/// fresh tokio timer per head costs two: registered when the wait for the
/// next request begins, removed when the head arrives).
#[derive(Debug, Clone)]
struct HeadTimer {
    /// The connection's one timer.
    sleep: Arc<Mutex<Pin<Box<tokio::time::Sleep>>>>,
}

impl HeadTimer {
    /// A timer first armed `header_read_timeout` from now (it is re-armed
    /// for the first head's own deadline when that comes later).
    fn new(header_read_timeout: Duration) -> Self {
        Self {
            sleep: Arc::new(Mutex::new(Box::pin(tokio::time::sleep(
                header_read_timeout,
            )))),
        }
    }
}

impl hyper::rt::Timer for HeadTimer {
    fn sleep(&self, duration: Duration) -> Pin<Box<dyn hyper::rt::Sleep>> {
        self.sleep_until(self.now() + duration)
    }

    fn sleep_until(&self, deadline: std::time::Instant) -> Pin<Box<dyn hyper::rt::Sleep>> {
        Box::pin(HeadSleep {
            timer: Arc::clone(&self.sleep),
            deadline: deadline.into(),
        })
    }

    fn now(&self) -> std::time::Instant {
        // The runtime's clock, which tests may pause.
        tokio::time::Instant::now().into_std()
    }
}

/// One deadline of a [`HeadTimer`]: ready once the connection's timer has
/// fired at (or after) it.
struct HeadSleep {
    /// The connection's timer.
    timer: Arc<Mutex<Pin<Box<tokio::time::Sleep>>>>,
    /// When this sleep is over.
    deadline: tokio::time::Instant,
}

impl Future for HeadSleep {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        // A timer is plain data between statements: recover from a panic
        // elsewhere rather than failing the connection.
        let mut sleep = self.timer.lock().unwrap_or_else(PoisonError::into_inner);
        if sleep.deadline() > self.deadline {
            sleep.as_mut().reset(self.deadline);
        }
        loop {
            ready!(sleep.as_mut().poll(cx));
            if sleep.deadline() >= self.deadline {
                return Poll::Ready(());
            }
            // Fired for an earlier deadline, since pushed back.
            sleep.as_mut().reset(self.deadline);
        }
    }
}

impl hyper::rt::Sleep for HeadSleep {}

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
