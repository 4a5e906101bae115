//! Reachability of the real servers the adapter suites run against.
//!
//! One test per server speaks its protocol minimally over a plain tokio TCP
//! connection, with no client crate, so that a failure here means "the server
//! is not there or not as configured", never "the adapter is wrong":
//!
//! | test | variable(s) | checks |
//! |---|---|---|
//! | `postgres_is_reachable_and_answers_queries` | `DOCAICHE_TEST_POSTGRES_URL` | trust login, `SELECT 1` |
//! | `redis_is_reachable_and_stores_keys` | `DOCAICHE_TEST_REDIS_URL` | `PING`, `SET`/`GET`/`DEL` |
//! | `openbao_is_unsealed_and_accepts_the_token` | `DOCAICHE_TEST_VAULT_ADDR`, `DOCAICHE_TEST_VAULT_TOKEN` | health, `lookup-self` |
//!
//! `./scripts/test.sh` starts the servers and sets the variables
//! (`eval "$(./scripts/test.sh --services-only)"` does only that). Hosts
//! must be loopback. A missing variable or a refused connection skips the
//! suite loudly, or fails it under `CI=true` / `DOCAICHE_REQUIRE_BACKENDS=1`
//! (see [`report`]); a server that answers wrongly always fails.

mod conn;
mod endpoint;
mod openbao;
mod postgres;
mod redis;
mod report;

use std::{
    collections::hash_map::RandomState,
    future::Future,
    hash::{BuildHasher, Hasher},
    io,
    net::SocketAddr,
    time::Duration,
};

use tokio::{net::TcpStream, time::timeout};

use crate::{conn::Conn, endpoint::Endpoint};

/// How long a connection attempt may take before the server counts as unreachable.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a whole protocol exchange may take once connected.
const EXCHANGE_TIMEOUT: Duration = Duration::from_secs(20);

#[tokio::test]
async fn postgres_is_reachable_and_answers_queries() {
    const SUITE: &str = "postgres";
    let Some(url) = report::require_backend(SUITE, "DOCAICHE_TEST_POSTGRES_URL") else {
        return;
    };
    let endpoint = parse(
        SUITE,
        "DOCAICHE_TEST_POSTGRES_URL",
        &url,
        &["postgres", "postgresql"],
        5432,
    );
    let Some(stream) = connect(SUITE, endpoint.addr).await else {
        return;
    };
    let detail = exchange(SUITE, &endpoint, postgres::check(stream, &endpoint)).await;
    report::mark_ran(SUITE, &detail);
}

#[tokio::test]
async fn redis_is_reachable_and_stores_keys() {
    const SUITE: &str = "redis";
    let Some(url) = report::require_backend(SUITE, "DOCAICHE_TEST_REDIS_URL") else {
        return;
    };
    let endpoint = parse(SUITE, "DOCAICHE_TEST_REDIS_URL", &url, &["redis"], 6379);
    let Some(stream) = connect(SUITE, endpoint.addr).await else {
        return;
    };
    let detail = exchange(SUITE, &endpoint, redis::check(stream, &endpoint)).await;
    report::mark_ran(SUITE, &detail);
}

#[tokio::test]
async fn openbao_is_unsealed_and_accepts_the_token() {
    const SUITE: &str = "openbao";
    let Some(addr) = report::require_backend(SUITE, "DOCAICHE_TEST_VAULT_ADDR") else {
        return;
    };
    let Some(token) = report::require_backend(SUITE, "DOCAICHE_TEST_VAULT_TOKEN") else {
        return;
    };
    let endpoint = parse(SUITE, "DOCAICHE_TEST_VAULT_ADDR", &addr, &["http"], 8200);
    let Some(stream) = connect(SUITE, endpoint.addr).await else {
        return;
    };
    let detail = exchange(SUITE, &endpoint, openbao::check(stream, &endpoint, &token)).await;
    report::mark_ran(SUITE, &detail);
}

/// The endpoint in `url`; a malformed or off-loopback URL is a configuration
/// error, so it fails the test even outside CI.
fn parse(suite: &str, var: &str, url: &str, schemes: &[&str], default_port: u16) -> Endpoint {
    Endpoint::parse(url, schemes, default_port)
        .unwrap_or_else(|e| panic!("backend suite `{suite}`: {var} is unusable: {e}"))
}

/// A connection to `addr`, or `None` after [`report::skip`] when nothing
/// answers there in time.
async fn connect(suite: &str, addr: SocketAddr) -> Option<Conn> {
    let reason = match timeout(CONNECT_TIMEOUT, TcpStream::connect(addr)).await {
        Ok(Ok(stream)) => return Some(Conn::new(stream)),
        Ok(Err(e)) => format!("cannot connect to {addr}: {e}"),
        Err(_) => format!("no answer from {addr} within {CONNECT_TIMEOUT:?}"),
    };
    report::skip(suite, &reason);
    None
}

/// Runs a connected server's checks; any failure there is the server
/// misbehaving, which fails the test in every mode.
async fn exchange(
    suite: &str,
    endpoint: &Endpoint,
    checks: impl Future<Output = io::Result<String>>,
) -> String {
    match timeout(EXCHANGE_TIMEOUT, checks).await {
        Ok(Ok(detail)) => detail,
        Ok(Err(e)) => panic!(
            "backend suite `{suite}`: the server at {} answered, but wrongly: {e}",
            endpoint.addr
        ),
        Err(_) => panic!(
            "backend suite `{suite}`: the server at {} accepted a connection but did not finish within {EXCHANGE_TIMEOUT:?}",
            endpoint.addr
        ),
    }
}

/// An error for a reply that breaks the protocol or the expectation.
pub(crate) fn invalid(message: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message.into())
}

/// 16 hex digits from the standard library's per-process random keys, so
/// parallel runs never share a key or value.
pub(crate) fn unique_suffix() -> String {
    let mut hasher = RandomState::new().build_hasher();
    hasher.write_u32(std::process::id());
    format!("{:016x}", hasher.finish())
}
