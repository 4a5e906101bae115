//! WebSocket load client for `scripts/load-ws.sh`: opens many concurrent
//! `/v1/events` connections on loopback, reports the server's memory per
//! connection and checks that the connection caps hold.
//!
//! ```text
//! cargo run --release -p docaiche-server --example ws_load -- --addr 127.0.0.1:18080 \
//!     --server-pid 1234 --key acme:4000:KEY1 --key globex:4000:KEY2 \
//!     --key initech:2000:KEY3 --tenant-cap 4000 --server-cap 10000
//! ```
//!
//! Each `--key TENANT:COUNT:APIKEY` opens COUNT connections as that tenant
//! (at most 256 handshakes in flight). Once every connection has its hello,
//! the server's resident memory (`VmRSS` of `/proc/PID/status`) is read
//! again; the difference over the connections is the cost of one. Then one
//! more connection of a tenant at its cap and, when the server-wide cap is
//! full, one of a tenant below its cap must both be closed with 1013. The
//! run is bounded: every step has a deadline, and it stops by itself.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt as _;
use tokio::net::TcpStream;
use tokio::sync::Semaphore;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
use tokio_tungstenite::tungstenite::http::HeaderValue;

/// Handshakes in flight at once.
const PARALLEL_HANDSHAKES: usize = 256;
/// Deadline of one connection (handshake and hello).
const CONNECT_DEADLINE: Duration = Duration::from_secs(30);

/// One `--key TENANT:COUNT:APIKEY`.
#[derive(Debug, Clone)]
struct Tenant {
    name: String,
    count: usize,
    key: String,
}

/// Parsed arguments.
#[derive(Debug)]
struct Args {
    addr: SocketAddr,
    server_pid: Option<u32>,
    tenants: Vec<Tenant>,
    tenant_cap: usize,
    server_cap: usize,
    hold: Duration,
}

fn parse() -> Result<Args, String> {
    let mut addr = None;
    let mut server_pid = None;
    let mut tenants = Vec::new();
    let mut tenant_cap = None;
    let mut server_cap = None;
    let mut hold = Duration::from_secs(2);
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().ok_or_else(|| format!("{arg} needs a value"));
        match arg.as_str() {
            "--addr" => addr = Some(value()?.parse().map_err(|e| format!("--addr: {e}"))?),
            "--server-pid" => {
                server_pid = Some(value()?.parse().map_err(|e| format!("--server-pid: {e}"))?);
            }
            "--tenant-cap" => {
                tenant_cap = Some(value()?.parse().map_err(|e| format!("--tenant-cap: {e}"))?);
            }
            "--server-cap" => {
                server_cap = Some(value()?.parse().map_err(|e| format!("--server-cap: {e}"))?);
            }
            "--hold-secs" => {
                hold =
                    Duration::from_secs(value()?.parse().map_err(|e| format!("--hold-secs: {e}"))?);
            }
            "--key" => {
                let spec = value()?;
                let mut parts = spec.splitn(3, ':');
                let (Some(name), Some(count), Some(key)) =
                    (parts.next(), parts.next(), parts.next())
                else {
                    return Err("--key takes TENANT:COUNT:APIKEY".into());
                };
                tenants.push(Tenant {
                    name: name.to_owned(),
                    count: count.parse().map_err(|e| format!("--key count: {e}"))?,
                    key: key.to_owned(),
                });
            }
            other => return Err(format!("unexpected argument `{other}`")),
        }
    }
    Ok(Args {
        addr: addr.ok_or("--addr is required")?,
        server_pid,
        tenants,
        tenant_cap: tenant_cap.ok_or("--tenant-cap is required")?,
        server_cap: server_cap.ok_or("--server-cap is required")?,
        hold,
    })
}

/// The resident memory of `pid`, in KiB.
fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// How one connection attempt ended.
enum Outcome {
    /// Open, hello received.
    Open(Box<WebSocketStream<TcpStream>>),
    /// Closed by the server with this code and reason.
    Closed(u16, String),
    /// Failed otherwise.
    Failed(String),
}

/// Connect as `key` and wait for the hello (or the close).
async fn connect(addr: SocketAddr, key: &str) -> Outcome {
    let attempt = async {
        let stream = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
        let mut request = format!("ws://{addr}/v1/events")
            .into_client_request()
            .map_err(|e| e.to_string())?;
        request.headers_mut().insert(
            "x-api-key",
            HeaderValue::from_str(key).map_err(|e| e.to_string())?,
        );
        let (mut socket, _) = tokio_tungstenite::client_async(request, stream)
            .await
            .map_err(|e| e.to_string())?;
        loop {
            match socket.next().await {
                Some(Ok(Message::Text(_))) => return Ok(Outcome::Open(Box::new(socket))),
                Some(Ok(Message::Close(frame))) => {
                    let (code, reason) = frame
                        .map(|f| (u16::from(f.code), f.reason.to_string()))
                        .unwrap_or((1005, String::new()));
                    return Ok(Outcome::Closed(code, reason));
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => return Err(e.to_string()),
                None => return Err("closed without a close frame".to_owned()),
            }
        }
    };
    match tokio::time::timeout(CONNECT_DEADLINE, attempt).await {
        Ok(Ok(outcome)) => outcome,
        Ok(Err(e)) => Outcome::Failed(e),
        Err(_) => Outcome::Failed("timed out".to_owned()),
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = match parse() {
        Ok(args) => args,
        Err(e) => {
            eprintln!("ws_load: {e}");
            return ExitCode::from(2);
        }
    };
    let before = args.server_pid.and_then(rss_kib);
    let total: usize = args.tenants.iter().map(|t| t.count).sum();
    let started = Instant::now();
    let gate = Arc::new(Semaphore::new(PARALLEL_HANDSHAKES));
    let mut tasks = Vec::with_capacity(total);
    for tenant in &args.tenants {
        for _ in 0..tenant.count {
            let gate = Arc::clone(&gate);
            let key = tenant.key.clone();
            let addr = args.addr;
            tasks.push(tokio::spawn(async move {
                let _slot = gate.acquire_owned().await;
                connect(addr, &key).await
            }));
        }
    }
    let mut open = Vec::with_capacity(total);
    let mut refused = 0usize;
    let mut failed = 0usize;
    let mut first_failure = None;
    for task in tasks {
        match task.await {
            Ok(Outcome::Open(socket)) => open.push(socket),
            Ok(Outcome::Closed(code, reason)) => {
                refused += 1;
                first_failure.get_or_insert(format!("closed {code}: {reason}"));
            }
            Ok(Outcome::Failed(e)) => {
                failed += 1;
                first_failure.get_or_insert(e);
            }
            Err(e) => {
                failed += 1;
                first_failure.get_or_insert(e.to_string());
            }
        }
    }
    let took = started.elapsed();
    // Let the server settle, then measure with every connection open.
    tokio::time::sleep(args.hold).await;
    let after = args.server_pid.and_then(rss_kib);
    println!(
        "connections: {} open of {total} asked ({refused} refused, {failed} failed) in {:.2} s",
        open.len(),
        took.as_secs_f64()
    );
    if let Some(first) = &first_failure {
        println!("first refusal/failure: {first}");
    }
    let mut ok = open.len() == total;
    match (before, after) {
        (Some(before), Some(after)) if !open.is_empty() => {
            let per = after.saturating_sub(before) as f64 / open.len() as f64;
            println!(
                "server RSS: {before} KiB before, {after} KiB with {} connections: {per:.1} KiB per connection (target <= 32 KiB): {}",
                open.len(),
                if per <= 32.0 { "PASS" } else { "FAIL" }
            );
            ok &= per <= 32.0;
        }
        _ => println!("server RSS: not measured (no --server-pid or /proc)"),
    }

    // The caps: a tenant at its cap, then (server full) a tenant below it.
    if let Some(full) = args.tenants.iter().find(|t| t.count >= args.tenant_cap) {
        let outcome = connect(args.addr, &full.key).await;
        ok &= report_cap(
            &format!("tenant cap ({} at {})", full.name, args.tenant_cap),
            outcome,
            "tenant",
        );
    }
    if total >= args.server_cap
        && let Some(below) = args.tenants.iter().find(|t| t.count < args.tenant_cap)
    {
        let outcome = connect(args.addr, &below.key).await;
        ok &= report_cap(
            &format!("server cap ({} open)", args.server_cap),
            outcome,
            "server",
        );
    }
    drop(open);
    if ok {
        println!("result: PASS");
        ExitCode::SUCCESS
    } else {
        println!("result: FAIL");
        ExitCode::FAILURE
    }
}

/// Print whether `outcome` is a 1013 close naming `which` cap.
fn report_cap(what: &str, outcome: Outcome, which: &str) -> bool {
    match outcome {
        Outcome::Closed(1013, reason) if reason.contains(which) => {
            println!("{what}: one more connection closed with 1013 \"{reason}\": PASS");
            true
        }
        Outcome::Closed(code, reason) => {
            println!("{what}: closed with {code} \"{reason}\": FAIL");
            false
        }
        Outcome::Open(_) => {
            println!("{what}: one more connection was accepted: FAIL");
            false
        }
        Outcome::Failed(e) => {
            println!("{what}: {e}: FAIL");
            false
        }
    }
}
