//! The transport defences over real sockets, driven by a raw TCP client:
//! the header-read deadline (slowloris), the connection caps per client
//! address and server-wide, `Host` header rules (RFC 9112 §3.2) and the
//! HTTPS redirect that never follows the client's `Host`.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::oneshot;

use super::{BODY_LIMIT, config, read_head, write};
use crate::config::Config;
use crate::http::{HttpHardening, HttpsMode};
use crate::routes::router;
use crate::state::tests::local_state;
use crate::test_support::TestDir;
use crate::tls::ServerListener;

/// A running server started as `main` starts it (connection caps and
/// header-read deadline from `[http]`); stopped on drop.
struct Server {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    _dir: TestDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// Start the plain-HTTP server for `config`.
async fn start(config: Config) -> Server {
    start_with_metrics(config, None).await
}

/// Start the plain-HTTP server for `config`, with `/metrics` served on
/// `metrics` (the `metrics.bind` listener) as `main` does when given.
async fn start_with_metrics(mut config: Config, metrics: Option<TcpListener>) -> Server {
    assert_eq!(config.server.body_limit_bytes, BODY_LIMIT);
    let dir = TestDir::new("e2e-transport");
    config.storage.data_dir = dir.path().to_path_buf();
    let limits = HttpHardening::from_config(&config)
        .expect("valid http settings")
        .connection_limits;
    let state = local_state(&config);
    if let Some(listener) = metrics {
        tokio::spawn(crate::metrics::serve_separately(
            listener,
            state.metrics.clone(),
            std::future::pending(),
            config.http.header_read_timeout(),
        ));
    }
    let tcp = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = tcp.local_addr().expect("addr");
    let listener = ServerListener::new(tcp, None, config.http.idle_timeout()).with_limits(limits);
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(crate::shutdown::serve_with(
        listener.into_serve(),
        router(state),
        async move {
            let _ = stopped.await;
        },
        Duration::from_secs(1),
        config.http.header_read_timeout(),
    ));
    Server {
        addr,
        stop: Some(stop),
        _dir: dir,
    }
}

/// A connection to `server` from the loopback address `127.0.0.<last>`
/// (Linux routes all of 127.0.0.0/8 to the loopback interface).
async fn connect_from(last: u8, server: SocketAddr) -> TcpStream {
    let socket = TcpSocket::new_v4().expect("socket");
    socket
        .bind(SocketAddr::new(
            IpAddr::V4(Ipv4Addr::new(127, 0, 0, last)),
            0,
        ))
        .expect("bind a loopback address");
    socket.connect(server).await.expect("connect")
}

/// Everything the server sends on `stream` until it closes it (at most
/// five seconds).
async fn read_all(stream: &mut TcpStream) -> String {
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut out)).await;
    String::from_utf8_lossy(&out).into_owned()
}

/// A `GET /health/live` on a fresh connection from `127.0.0.<last>`: the
/// response head.
async fn probe_from(last: u8, server: SocketAddr) -> String {
    let mut stream = connect_from(last, server).await;
    write(
        &mut stream,
        b"GET /health/live HTTP/1.1\r\nHost: api.example\r\nConnection: close\r\n\r\n",
    )
    .await
    .expect("send");
    read_head(&mut stream).await
}

#[tokio::test]
async fn a_client_trickling_header_bytes_is_cut_off_at_the_header_read_deadline() {
    // The idle timeout never fires: a byte arrives every 100 ms.
    let server = start(config(|c| {
        c.http.header_read_timeout_secs = 1;
        c.http.idle_timeout_secs = 60;
    }))
    .await;
    let mut stream = TcpStream::connect(server.addr).await.expect("connect");
    let started = Instant::now();
    write(
        &mut stream,
        b"GET /health/live HTTP/1.1\r\nHost: api.example\r\n",
    )
    .await
    .expect("send");
    let mut buf = [0u8; 256];
    let closed_after = loop {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "a trickling client was not cut off within ten seconds"
        );
        if stream.write_all(b"X").await.is_err() {
            break started.elapsed();
        }
        match tokio::time::timeout(Duration::from_millis(100), stream.read(&mut buf)).await {
            Ok(Ok(0) | Err(_)) => break started.elapsed(),
            Ok(Ok(n)) => panic!(
                "the server answered a request head it never got: {}",
                String::from_utf8_lossy(&buf[..n])
            ),
            Err(_) => {}
        }
    };
    assert!(
        closed_after >= Duration::from_millis(900),
        "closed before the deadline: {closed_after:?}"
    );
    // A client that sends its head in time is served.
    assert!(probe_from(1, server.addr).await.starts_with("HTTP/1.1 200"));
}

#[tokio::test]
async fn the_connection_over_the_per_address_cap_is_refused_while_other_addresses_get_in() {
    let server = start(config(|c| {
        c.http.max_connections_per_address = 2;
        c.http.max_connections = 5;
        // A trusted proxy carries many clients: no per-address cap.
        c.rate_limit.limits.trusted_proxies = vec!["127.0.0.9/32".into()];
    }))
    .await;
    // Two idle connections from 127.0.0.2: the cap is full.
    let mut held = vec![
        connect_from(2, server.addr).await,
        connect_from(2, server.addr).await,
    ];
    // The third from the same address is answered 503 and closed.
    let mut third = connect_from(2, server.addr).await;
    let refused = read_all(&mut third).await;
    assert!(refused.starts_with("HTTP/1.1 503"), "{refused}");
    assert!(
        refused.contains("content-type: application/problem+json"),
        "{refused}"
    );
    assert!(refused.contains("retry-after: 1"), "{refused}");
    let body = refused.split("\r\n\r\n").nth(1).expect("a body");
    let problem: serde_json::Value = serde_json::from_str(body).expect("problem json");
    assert_eq!(problem["status"], 503, "{problem}");
    assert_eq!(problem["code"], "unavailable", "{problem}");
    assert!(
        problem["detail"]
            .as_str()
            .is_some_and(|d| d.contains("your address")),
        "{problem}"
    );

    // Another address still gets in.
    let answer = probe_from(3, server.addr).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");

    // A closed connection gives its place back.
    drop(held.pop());
    let mut freed = None;
    for _ in 0..50 {
        let answer = probe_from(2, server.addr).await;
        if answer.starts_with("HTTP/1.1 200") {
            freed = Some(answer);
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(freed.is_some(), "the freed place was not given back");

    drop(held);
}

#[tokio::test]
async fn the_server_wide_cap_holds_and_trusted_proxies_skip_the_per_address_cap() {
    let server = start(config(|c| {
        c.http.max_connections_per_address = 1;
        c.http.max_connections = 3;
        // A trusted proxy carries many clients on its one address.
        c.rate_limit.limits.trusted_proxies = vec!["127.0.0.9/32".into()];
    }))
    .await;
    // The proxy holds one connection and is still served on a second.
    let held_by_proxy = connect_from(9, server.addr).await;
    let answer = probe_from(9, server.addr).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    // Three open: the proxy's and one each from two clients.
    let held = [
        held_by_proxy,
        connect_from(5, server.addr).await,
        connect_from(6, server.addr).await,
    ];
    // A fourth, from an address holding none, meets the server-wide cap.
    let mut fourth = connect_from(7, server.addr).await;
    let refused = read_all(&mut fourth).await;
    assert!(refused.starts_with("HTTP/1.1 503"), "{refused}");
    assert!(refused.contains("too many open connections"), "{refused}");
    assert!(!refused.contains("your address"), "{refused}");
    drop(held);
}

#[tokio::test]
async fn requests_without_or_with_two_host_headers_are_refused_with_a_problem() {
    let server = start(config(|_| {})).await;
    for (what, request) in [
        ("no Host", &b"GET /health/live HTTP/1.1\r\n\r\n"[..]),
        (
            "two Hosts",
            b"GET /health/live HTTP/1.1\r\nHost: a.example\r\nHost: b.example\r\n\r\n",
        ),
        (
            "an invalid Host",
            b"GET /health/live HTTP/1.1\r\nHost: a b\r\n\r\n",
        ),
    ] {
        let mut stream = TcpStream::connect(server.addr).await.expect("connect");
        write(&mut stream, request).await.expect("send");
        let answer = read_head(&mut stream).await;
        assert!(answer.starts_with("HTTP/1.1 400"), "{what}: {answer}");
        let lower = answer.to_ascii_lowercase();
        assert!(
            lower.contains("content-type: application/problem+json"),
            "{what}: {answer}"
        );
        assert!(lower.contains("x-request-id:"), "{what}: {answer}");
        assert!(answer.contains("RFC 9112"), "{what}: {answer}");
    }
    // HTTP/1.0 may leave Host out; one Host is what HTTP/1.1 wants.
    for request in [
        &b"GET /health/live HTTP/1.0\r\n\r\n"[..],
        b"GET /health/live HTTP/1.1\r\nHost: a.example\r\nConnection: close\r\n\r\n",
    ] {
        let mut stream = TcpStream::connect(server.addr).await.expect("connect");
        write(&mut stream, request).await.expect("send");
        let answer = read_head(&mut stream).await;
        assert!(answer.starts_with("HTTP/1."), "{answer}");
        assert!(answer[..12].ends_with("200"), "{answer}");
    }
}

#[tokio::test]
async fn the_https_redirect_never_follows_the_clients_host() {
    // The test client connects from 127.0.0.1: it plays the trusted proxy.
    let redirecting = |origin: Option<&str>| {
        let origin = origin.map(str::to_owned);
        config(move |c| {
            c.http.https = HttpsMode::Redirect;
            c.http.trusted_proxies = vec!["127.0.0.1/32".into()];
            c.http.public_origin = origin;
        })
    };
    let server = start(redirecting(Some("https://api.example"))).await;
    for target in ["/v1/keys?limit=2", "http://evil.example/v1/keys?limit=2"] {
        let mut stream = TcpStream::connect(server.addr).await.expect("connect");
        let request =
            format!("GET {target} HTTP/1.1\r\nHost: evil.example\r\nConnection: close\r\n\r\n");
        write(&mut stream, request.as_bytes()).await.expect("send");
        let answer = read_head(&mut stream).await;
        assert!(answer.starts_with("HTTP/1.1 308"), "{answer}");
        assert!(
            answer
                .to_ascii_lowercase()
                .contains("location: https://api.example/v1/keys?limit=2\r\n"),
            "{answer}"
        );
        assert!(!answer.contains("evil.example"), "{answer}");
    }

    // Without a public origin (development), nothing is redirected.
    let server = start(redirecting(None)).await;
    let mut stream = TcpStream::connect(server.addr).await.expect("connect");
    write(
        &mut stream,
        b"GET /v1/keys HTTP/1.1\r\nHost: evil.example\r\nConnection: close\r\n\r\n",
    )
    .await
    .expect("send");
    let answer = read_all(&mut stream).await;
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    assert!(
        answer
            .to_ascii_lowercase()
            .contains("content-type: application/problem+json"),
        "{answer}"
    );
    assert!(!answer.contains("evil.example"), "{answer}");
}

#[tokio::test]
async fn metrics_on_their_own_listener_are_not_served_on_the_api_listener() {
    let metrics = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let metrics_addr = metrics.local_addr().expect("addr");
    let server = start_with_metrics(
        config(|c| c.metrics.bind = Some(metrics_addr)),
        Some(metrics),
    )
    .await;
    let get = |addr: SocketAddr, path: &'static str| async move {
        let mut stream = TcpStream::connect(addr).await.expect("connect");
        let request =
            format!("GET {path} HTTP/1.1\r\nHost: api.example\r\nConnection: close\r\n\r\n");
        write(&mut stream, request.as_bytes()).await.expect("send");
        read_all(&mut stream).await
    };
    // The API listener: 404, as for any unknown route.
    let public = get(server.addr, "/metrics").await;
    assert!(public.starts_with("HTTP/1.1 404"), "{public}");
    assert!(!public.contains("docaiche_http_requests"), "{public}");
    // The metrics listener: the scrape, and nothing else.
    let scraped = get(metrics_addr, "/metrics").await;
    assert!(scraped.starts_with("HTTP/1.1 200"), "{scraped}");
    assert!(
        scraped.contains("application/openmetrics-text"),
        "{scraped}"
    );
    assert!(scraped.contains("docaiche_http_requests"), "{scraped}");
    let other = get(metrics_addr, "/health/live").await;
    assert!(other.starts_with("HTTP/1.1 404"), "{other}");
}
