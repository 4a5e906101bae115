//! The listener: TLS from certificate files (rustls, ring provider) and the
//! connection idle timeout.
//!
//! [`ServerListener`] is an axum [`Listener`], so the server keeps
//! `axum::serve` with its graceful shutdown and WebSocket upgrades (see
//! [`crate::shutdown::serve`]). Each accepted socket becomes a
//! [`Connection`] that
//!
//! - performs the TLS handshake lazily, inside the connection's own task,
//!   so a client that connects and stalls cannot hold up `accept` for
//!   everyone else, and must finish the handshake within
//!   [`HANDSHAKE_TIMEOUT`];
//! - is closed when no byte has moved in either direction for the idle
//!   timeout (`http.idle_timeout_secs`): idle keep-alive connections,
//!   clients that stop sending half-way through headers or a body, clients
//!   that stop reading a response. It is a connection-level bound; the
//!   whole-request deadline is `server.request_timeout_secs`, which the
//!   idle timeout must exceed because hyper keeps polling the socket while
//!   a handler works.
//!
//! The certificate is read once at start-up; rotating it means restarting
//! (or, behind a proxy, letting the proxy hold it). Only HTTP/1.1 is
//! offered in ALPN: the server is built without HTTP/2.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use axum::serve::{Listener, ListenerExt as _, TapIo};
use docaiche_core::Error;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::{Instant, Sleep};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

/// How long a client has to complete the TLS handshake.
pub(crate) const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// A rustls server configuration for the PEM certificate chain `cert` and
/// private key `key`: ring provider, TLS 1.2 and 1.3, no client
/// certificates, ALPN `http/1.1`.
///
/// # Errors
/// [`Error::Misconfigured`] naming the setting whose file cannot be read,
/// holds nothing usable, or does not match the other.
pub(crate) fn server_config(cert: &Path, key: &Path) -> Result<Arc<rustls::ServerConfig>, Error> {
    let certs = CertificateDer::pem_file_iter(cert)
        .and_then(Iterator::collect::<Result<Vec<_>, _>>)
        .map_err(|e| {
            Error::misconfigured(
                "http.tls_cert_file",
                format!("cannot read certificates from {}: {e}", cert.display()),
            )
        })?;
    if certs.is_empty() {
        return Err(Error::misconfigured(
            "http.tls_cert_file",
            format!("{} holds no PEM certificate", cert.display()),
        ));
    }
    // The error names the file and the PEM problem, never key bytes.
    let key = PrivateKeyDer::from_pem_file(key).map_err(|e| {
        Error::misconfigured(
            "http.tls_key_file",
            format!("cannot read a private key from {}: {e}", key.display()),
        )
    })?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::internal_with("the ring provider lacks safe TLS versions", e))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| {
            Error::misconfigured(
                "http.tls_key_file",
                format!("is unusable or does not match http.tls_cert_file: {e}"),
            )
        })?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// Accepts TCP connections, optionally speaking TLS, each closed when idle.
pub(crate) struct ServerListener {
    tcp: TcpListener,
    tls: Option<TlsAcceptor>,
    idle_timeout: Duration,
}

impl std::fmt::Debug for ServerListener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerListener")
            .field("local_addr", &self.tcp.local_addr().ok())
            .field("tls", &self.tls.is_some())
            .field("idle_timeout", &self.idle_timeout)
            .finish()
    }
}

/// What `axum::serve` is given: a [`ServerListener`] whose connections get
/// `TCP_NODELAY`. (The tap also gives it axum's `ConnectInfo<SocketAddr>`,
/// which the rate limiter and the HTTPS layer read.)
pub(crate) type ServeListener = TapIo<ServerListener, fn(&mut Connection)>;

impl ServerListener {
    /// Listen on `tcp`, with TLS if `tls` is given.
    pub(crate) fn new(
        tcp: TcpListener,
        tls: Option<Arc<rustls::ServerConfig>>,
        idle_timeout: Duration,
    ) -> Self {
        Self {
            tcp,
            tls: tls.map(TlsAcceptor::from),
            idle_timeout,
        }
    }

    /// Whether connections speak TLS.
    pub(crate) const fn is_tls(&self) -> bool {
        self.tls.is_some()
    }

    /// The listener for `axum::serve`.
    pub(crate) fn into_serve(self) -> ServeListener {
        self.tap_io(Connection::set_nodelay)
    }
}

impl Listener for ServerListener {
    type Io = Connection;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            match self.tcp.accept().await {
                Ok((stream, peer)) => {
                    return (
                        Connection::new(stream, self.tls.as_ref(), self.idle_timeout),
                        peer,
                    );
                }
                // The peer went away between SYN and accept: not our problem.
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::ConnectionRefused
                            | io::ErrorKind::ConnectionAborted
                            | io::ErrorKind::ConnectionReset
                    ) => {}
                // Out of file descriptors and the like: back off instead of
                // spinning.
                Err(e) => {
                    tracing::error!(error = %e, "accept failed; retrying in a second");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        self.tcp.local_addr()
    }
}

/// Both halves of a stream, as one object.
trait Stream: AsyncRead + AsyncWrite + Unpin {}
impl<T: AsyncRead + AsyncWrite + Unpin> Stream for T {}

/// Where a connection is.
enum State {
    /// Plain TCP.
    Plain(TcpStream),
    /// The TLS handshake is under way.
    Handshaking(Box<tokio_rustls::Accept<TcpStream>>),
    /// TLS established.
    Tls(Box<TlsStream<TcpStream>>),
    /// Failed or timed out; every operation fails.
    Closed,
}

/// One accepted connection: TCP or TLS, closed after the idle timeout.
pub(crate) struct Connection {
    state: State,
    timer: IdleTimer,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = match self.state {
            State::Plain(_) => "plain",
            State::Handshaking(_) => "handshaking",
            State::Tls(_) => "tls",
            State::Closed => "closed",
        };
        f.debug_struct("Connection").field("state", &state).finish()
    }
}

impl Connection {
    /// Wrap an accepted `stream`; with `tls`, the handshake starts on first
    /// use.
    fn new(stream: TcpStream, tls: Option<&TlsAcceptor>, idle_timeout: Duration) -> Self {
        match tls {
            Some(acceptor) => Self {
                state: State::Handshaking(Box::new(acceptor.accept(stream))),
                timer: IdleTimer::new(HANDSHAKE_TIMEOUT.min(idle_timeout), idle_timeout),
            },
            None => Self {
                state: State::Plain(stream),
                timer: IdleTimer::new(idle_timeout, idle_timeout),
            },
        }
    }

    /// Turn Nagle's algorithm off: responses are written whole.
    fn set_nodelay(&mut self) {
        let stream = match &self.state {
            State::Plain(stream) => Some(stream),
            State::Handshaking(accept) => accept.get_ref(),
            State::Tls(tls) => Some(tls.get_ref().0),
            State::Closed => None,
        };
        if let Some(Err(e)) = stream.map(|s| s.set_nodelay(true)) {
            tracing::debug!(error = %e, "cannot set TCP_NODELAY");
        }
    }

    /// Ready once the stream can carry data: at once for plain TCP, after
    /// the handshake for TLS.
    fn poll_established(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if let State::Handshaking(accept) = &mut self.state {
            match Pin::new(&mut **accept).poll(cx) {
                Poll::Ready(Ok(stream)) => {
                    self.state = State::Tls(Box::new(stream));
                    self.timer.start_idle();
                }
                Poll::Ready(Err(e)) => {
                    tracing::debug!(error = %e, "TLS handshake failed");
                    self.state = State::Closed;
                    return Poll::Ready(Err(e));
                }
                Poll::Pending => {
                    let expired = ready!(self.timer.poll_expired(cx));
                    tracing::debug!("TLS handshake timed out");
                    self.state = State::Closed;
                    return Poll::Ready(Err(expired));
                }
            }
        }
        match self.state {
            State::Closed => Poll::Ready(Err(io::ErrorKind::NotConnected.into())),
            _ => Poll::Ready(Ok(())),
        }
    }

    /// Run `op` on the established stream, counting progress as activity
    /// and failing once the connection has been idle too long.
    fn poll_io<T>(
        &mut self,
        cx: &mut Context<'_>,
        op: impl FnOnce(Pin<&mut dyn Stream>, &mut Context<'_>) -> Poll<io::Result<T>>,
    ) -> Poll<io::Result<T>> {
        ready!(self.poll_established(cx))?;
        let stream: Pin<&mut dyn Stream> = match &mut self.state {
            State::Plain(stream) => Pin::new(stream),
            State::Tls(stream) => Pin::new(&mut **stream),
            State::Handshaking(_) | State::Closed => {
                return Poll::Ready(Err(io::ErrorKind::NotConnected.into()));
            }
        };
        match op(stream, cx) {
            Poll::Ready(result) => {
                self.timer.touch();
                Poll::Ready(result)
            }
            Poll::Pending => {
                let expired = ready!(self.timer.poll_expired(cx));
                tracing::debug!("idle connection closed");
                self.state = State::Closed;
                Poll::Ready(Err(expired))
            }
        }
    }
}

impl AsyncRead for Connection {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        self.get_mut()
            .poll_io(cx, |stream, cx| stream.poll_read(cx, buf))
    }
}

impl AsyncWrite for Connection {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.get_mut()
            .poll_io(cx, |stream, cx| stream.poll_write(cx, buf))
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.get_mut()
            .poll_io(cx, |stream, cx| stream.poll_write_vectored(cx, bufs))
    }

    fn is_write_vectored(&self) -> bool {
        match &self.state {
            State::Plain(stream) => stream.is_write_vectored(),
            State::Tls(stream) => stream.is_write_vectored(),
            State::Handshaking(_) | State::Closed => false,
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.get_mut()
            .poll_io(cx, |stream, cx| stream.poll_flush(cx))
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.get_mut()
            .poll_io(cx, |stream, cx| stream.poll_shutdown(cx))
    }
}

/// Fires when a connection has made no progress for its limit. Progress
/// only records the time; the timer is re-armed lazily, when an operation
/// would block, so a busy connection costs no timer updates.
struct IdleTimer {
    /// The current limit: the handshake's, then the idle timeout.
    limit: Duration,
    /// The idle timeout.
    idle: Duration,
    /// When the connection last made progress.
    last: Instant,
    /// Armed at `last + limit`.
    sleep: Pin<Box<Sleep>>,
}

impl IdleTimer {
    /// A timer allowing `limit` from now, then `idle` after
    /// [`Self::start_idle`].
    fn new(limit: Duration, idle: Duration) -> Self {
        let now = Instant::now();
        Self {
            limit,
            idle,
            last: now,
            sleep: Box::pin(tokio::time::sleep_until(now + limit)),
        }
    }

    /// The handshake is over: from now on, the idle timeout applies.
    fn start_idle(&mut self) {
        self.limit = self.idle;
        self.touch();
    }

    /// The connection made progress.
    fn touch(&mut self) {
        self.last = Instant::now();
    }

    /// Ready with a `TimedOut` error once the limit has passed since the
    /// last progress; otherwise wakes `cx` when it will have.
    fn poll_expired(&mut self, cx: &mut Context<'_>) -> Poll<io::Error> {
        let deadline = self.last + self.limit;
        if self.sleep.deadline() != deadline {
            self.sleep.as_mut().reset(deadline);
        }
        ready!(self.sleep.as_mut().poll(cx));
        Poll::Ready(io::Error::new(
            io::ErrorKind::TimedOut,
            "connection idle for too long",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::TestDir;

    #[test]
    fn unreadable_or_mismatched_files_name_their_setting() {
        let dir = TestDir::new("tls-files");
        let missing = dir.path().join("missing.pem");
        let err = server_config(&missing, &missing).expect_err("missing files");
        assert!(err.to_string().contains("http.tls_cert_file"), "{err}");

        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "not a pem file\n").expect("write");
        let err = server_config(&empty, &empty).expect_err("no certificate");
        assert!(
            err.to_string().contains("holds no PEM certificate"),
            "{err}"
        );

        let first = rcgen::generate_simple_self_signed(vec!["localhost".into()]).expect("cert");
        let second = rcgen::generate_simple_self_signed(vec!["localhost".into()]).expect("cert");
        let cert = dir.path().join("cert.pem");
        let key = dir.path().join("key.pem");
        std::fs::write(&cert, first.cert.pem()).expect("write");
        std::fs::write(&key, second.signing_key.serialize_pem()).expect("write");
        let err = server_config(&cert, &key).expect_err("mismatched key");
        assert!(err.to_string().contains("http.tls_key_file"), "{err}");
        let secret = second.signing_key.serialize_pem();
        let body = secret.lines().nth(1).expect("a base64 line");
        assert!(!err.to_string().contains(body), "no key bytes in errors");

        std::fs::write(&key, first.signing_key.serialize_pem()).expect("write");
        let config = server_config(&cert, &key).expect("matching pair");
        assert_eq!(config.alpn_protocols, [b"http/1.1".to_vec()]);
    }
}
