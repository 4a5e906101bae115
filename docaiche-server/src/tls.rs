//! The listener: TLS from certificate files (rustls, ring provider), caps
//! on open connections, and the connection idle timeout.
//!
//! [`ServerListener`] is an axum [`Listener`], served by the accept loop of
//! [`crate::shutdown::serve_with`] (graceful shutdown, WebSocket upgrades,
//! the header-read deadline). Each accepted socket becomes a
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
//! Before that, [`ServerListener::accept`] counts the connection against
//! two caps ([`ConnectionLimits`]): the server-wide `http.max_connections`
//! and `http.max_connections_per_address`, the connections one client
//! address holds open (an IPv6 client counts per /64, the block one
//! subscriber is usually given). A connection over either cap is answered
//! at once with a 503 `application/problem+json` and `Connection: close`
//! (plain HTTP, one non-blocking write, so best effort: a client that
//! already sent its request may see the close as a reset; a TLS connection
//! is just closed, there is no session to answer in) and never reaches
//! hyper, so a client holding many idle
//! connections cannot exhaust the server's sockets for everyone else. The
//! cap counts the TCP peer, the only address the listener knows before it
//! reads a request: peers in the trusted proxies
//! (`http.trusted_proxies`, else `rate_limit.trusted_proxies`) are exempt
//! from the per-address cap, since a proxy carries many clients on its one
//! address (bound those at the proxy, which sees them); they still count
//! toward the server-wide cap. The header-read deadline of each connection
//! (`http.header_read_timeout_secs`) is hyper's; see
//! [`crate::shutdown::serve_with`].
//!
//! The certificate is read once at start-up; rotating it means restarting
//! (or, behind a proxy, letting the proxy hold it). Only HTTP/1.1 is
//! offered in ALPN: the server is built without HTTP/2.

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use axum::serve::{Listener, ListenerExt as _, TapIo};
use docaiche_core::Error;
use docaiche_ratelimit::policy::IpNet;
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

/// The caps on open connections (see the [module docs](self)).
#[derive(Debug, Clone)]
pub(crate) struct ConnectionLimits {
    /// Most connections open at once, server-wide.
    pub(crate) max_connections: usize,
    /// Most connections open at once from one client address (IPv6: one
    /// /64).
    pub(crate) max_per_address: usize,
    /// Peers exempt from the per-address cap: the trusted proxies.
    pub(crate) exempt: Arc<[IpNet]>,
}

impl Default for ConnectionLimits {
    /// The defaults of `[http]`: 10 000 connections, 64 per address, no
    /// proxy exempt.
    fn default() -> Self {
        Self {
            max_connections: 10_000,
            max_per_address: 64,
            exempt: Arc::from([]),
        }
    }
}

/// Which cap refused a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Full {
    /// `http.max_connections`.
    Server,
    /// `http.max_connections_per_address`.
    Address,
}

/// The connections open now, server-wide and per client address.
#[derive(Debug, Default)]
struct OpenConnections {
    counts: std::sync::Mutex<Counts>,
}

/// What [`OpenConnections`] guards.
#[derive(Debug, Default)]
struct Counts {
    /// Connections open server-wide.
    total: usize,
    /// Only addresses with open connections: the map never outgrows the
    /// server-wide cap.
    per_address: HashMap<IpAddr, usize>,
}

impl OpenConnections {
    /// Count a connection from `peer` under `limits`, or say which cap is
    /// full.
    fn admit(
        self: &Arc<Self>,
        peer: IpAddr,
        limits: &ConnectionLimits,
    ) -> Result<ConnectionPermit, Full> {
        let exempt = limits.exempt.iter().any(|net| net.contains(peer));
        let address = (!exempt).then(|| client_address(peer));
        // A poisoned lock only means a panic elsewhere mid-update of plain
        // counters; keep counting.
        let mut counts = self
            .counts
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if counts.total >= limits.max_connections {
            return Err(Full::Server);
        }
        if let Some(address) = address {
            let open = counts.per_address.entry(address).or_insert(0);
            if *open >= limits.max_per_address {
                return Err(Full::Address);
            }
            *open += 1;
        }
        counts.total += 1;
        Ok(ConnectionPermit {
            open: Arc::clone(self),
            address,
        })
    }
}

/// The address a client is counted under: IPv4 as it is, IPv6 by its /64
/// (IPv4-mapped IPv6 as the IPv4 address).
fn client_address(peer: IpAddr) -> IpAddr {
    match peer.to_canonical() {
        IpAddr::V6(v6) => {
            let s = v6.segments();
            IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
        }
        v4 => v4,
    }
}

/// One counted connection; dropping it gives the place back.
struct ConnectionPermit {
    open: Arc<OpenConnections>,
    /// The client address counted, unless exempt.
    address: Option<IpAddr>,
}

impl Drop for ConnectionPermit {
    fn drop(&mut self) {
        let mut counts = self
            .open
            .counts
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        counts.total = counts.total.saturating_sub(1);
        if let Some(address) = self.address
            && let std::collections::hash_map::Entry::Occupied(mut open) =
                counts.per_address.entry(address)
        {
            *open.get_mut() -= 1;
            if *open.get() == 0 {
                open.remove();
            }
        }
    }
}

/// The whole answer to a plain-HTTP connection over a cap: a 503 problem
/// (`unavailable`, retry after a second), then the connection is closed.
fn refusal(full: Full) -> Vec<u8> {
    let detail = match full {
        Full::Server => "the server has too many open connections; retry later",
        Full::Address => "too many open connections from your address; close some first",
    };
    // `bare`, not `from_error`: a refusal is expected under load and must
    // not log a server error per connection.
    let mut problem =
        docaiche_core::problem::Problem::bare(docaiche_core::error::ErrorCode::Unavailable);
    problem.detail = Some(detail.to_owned());
    problem.retry_after = Some(1);
    // A struct of strings and numbers always serializes.
    let body = serde_json::to_vec(&problem).unwrap_or_default();
    let mut answer = format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: {}\r\nretry-after: 1\r\n\
         connection: close\r\ncontent-length: {}\r\n\r\n",
        docaiche_core::problem::PROBLEM_JSON,
        body.len()
    )
    .into_bytes();
    answer.extend_from_slice(&body);
    answer
}

/// Accepts TCP connections, optionally speaking TLS, each closed when idle,
/// within the [`ConnectionLimits`].
pub(crate) struct ServerListener {
    tcp: TcpListener,
    tls: Option<TlsAcceptor>,
    idle_timeout: Duration,
    limits: ConnectionLimits,
    open: Arc<OpenConnections>,
}

impl std::fmt::Debug for ServerListener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerListener")
            .field("local_addr", &self.tcp.local_addr().ok())
            .field("tls", &self.tls.is_some())
            .field("idle_timeout", &self.idle_timeout)
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

/// What `axum::serve` is given: a [`ServerListener`] whose connections get
/// `TCP_NODELAY`. (The tap also gives it axum's `ConnectInfo<SocketAddr>`,
/// which the rate limiter and the HTTPS layer read.)
pub(crate) type ServeListener = TapIo<ServerListener, fn(&mut Connection)>;

impl ServerListener {
    /// Listen on `tcp`, with TLS if `tls` is given, under the default
    /// [`ConnectionLimits`].
    pub(crate) fn new(
        tcp: TcpListener,
        tls: Option<Arc<rustls::ServerConfig>>,
        idle_timeout: Duration,
    ) -> Self {
        Self {
            tcp,
            tls: tls.map(TlsAcceptor::from),
            idle_timeout,
            limits: ConnectionLimits::default(),
            open: Arc::default(),
        }
    }

    /// The same listener under `limits`.
    pub(crate) fn with_limits(mut self, limits: ConnectionLimits) -> Self {
        self.limits = limits;
        self
    }

    /// Answer (plain HTTP) and close a connection over a cap. The answer
    /// is one small write into an empty socket buffer; if even that would
    /// block, the client gets the close alone.
    fn refuse(&self, stream: TcpStream, peer: SocketAddr, full: Full) {
        tracing::debug!(peer = %peer, cap = ?full, "connection refused: connection cap full");
        if self.tls.is_none() {
            let _ = stream.try_write(&refusal(full));
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
                Ok((stream, peer)) => match self.open.admit(peer.ip(), &self.limits) {
                    Ok(permit) => {
                        return (
                            Connection::new(stream, self.tls.as_ref(), self.idle_timeout, permit),
                            peer,
                        );
                    }
                    Err(full) => self.refuse(stream, peer, full),
                },
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

/// One accepted connection: TCP or TLS, closed after the idle timeout,
/// counted against the connection caps until dropped.
pub(crate) struct Connection {
    state: State,
    timer: IdleTimer,
    _permit: ConnectionPermit,
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
    fn new(
        stream: TcpStream,
        tls: Option<&TlsAcceptor>,
        idle_timeout: Duration,
        permit: ConnectionPermit,
    ) -> Self {
        match tls {
            Some(acceptor) => Self {
                state: State::Handshaking(Box::new(acceptor.accept(stream))),
                timer: IdleTimer::new(HANDSHAKE_TIMEOUT.min(idle_timeout), idle_timeout),
                _permit: permit,
            },
            None => Self {
                state: State::Plain(stream),
                timer: IdleTimer::new(idle_timeout, idle_timeout),
                _permit: permit,
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
/// only records the time; the timer is re-armed lazily, when it fires
/// before the current deadline, so a busy connection costs no timer
/// updates.
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
        // Armed for later (the limit shrank): re-arm now. Armed for earlier
        // (progress since): leave it, and re-arm when it fires, so that a
        // busy connection moves no timer in tokio's wheel per request.
        if self.sleep.deadline() > deadline {
            self.sleep.as_mut().reset(deadline);
        }
        loop {
            ready!(self.sleep.as_mut().poll(cx));
            if self.sleep.deadline() >= deadline {
                break;
            }
            self.sleep.as_mut().reset(deadline);
        }
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
