//! Just enough HTTP/1.1 to ask OpenBao (or Vault) whether it is unsealed and
//! whether it accepts a token.

use std::io;

use serde_json::Value;
use tokio::net::TcpStream;

use crate::{conn::Conn, endpoint::Endpoint, invalid};

/// A response: status code and (de-chunked) body.
struct Response {
    status: u16,
    body: Vec<u8>,
}

/// `GET /v1/sys/health` on `stream` must answer 200 with
/// `"initialized":true,"sealed":false`; then, on a new connection,
/// `GET /v1/auth/token/lookup-self` with `X-Vault-Token: token` must answer
/// 200 for that very token. Returns a line for the report.
///
/// # Errors
///
/// I/O failures, another status, or a body that says otherwise.
pub(crate) async fn check(stream: Conn, endpoint: &Endpoint, token: &str) -> io::Result<String> {
    let health = get(stream, endpoint, "/v1/sys/health", None).await?;
    if health.status != 200 {
        return Err(invalid(format!(
            "/v1/sys/health answered {} (429: standby, 472/473: performance standby or DR, \
             501: not initialized, 503: sealed): {}",
            health.status,
            String::from_utf8_lossy(&health.body)
        )));
    }
    let json = parse_json(&health.body, "/v1/sys/health")?;
    if json["initialized"] != Value::Bool(true) || json["sealed"] != Value::Bool(false) {
        return Err(invalid(format!(
            "/v1/sys/health is not initialized and unsealed: {json}"
        )));
    }
    let version = json["version"]
        .as_str()
        .unwrap_or("unknown version")
        .to_owned();

    let stream = Conn::new(TcpStream::connect(endpoint.addr).await?);
    let lookup = get(stream, endpoint, "/v1/auth/token/lookup-self", Some(token)).await?;
    if lookup.status != 200 {
        // The body of a refusal names no secret; the token stays out of it.
        return Err(invalid(format!(
            "/v1/auth/token/lookup-self answered {} for DOCAICHE_TEST_VAULT_TOKEN: {}",
            lookup.status,
            String::from_utf8_lossy(&lookup.body)
        )));
    }
    let json = parse_json(&lookup.body, "/v1/auth/token/lookup-self")?;
    if json["data"]["id"].as_str() != Some(token) {
        return Err(invalid(
            "/v1/auth/token/lookup-self described another token than DOCAICHE_TEST_VAULT_TOKEN",
        ));
    }
    let policies = json["data"]["policies"].to_string();

    Ok(format!(
        "OpenBao/Vault {version} at {}: unsealed, token accepted (policies {policies})",
        endpoint.addr
    ))
}

async fn get(
    mut stream: Conn,
    endpoint: &Endpoint,
    path: &str,
    token: Option<&str>,
) -> io::Result<Response> {
    let mut request = format!(
        "GET {path} HTTP/1.1\r\nHost: {}\r\nAccept: application/json\r\n\
         User-Agent: docaiche-backends-test\r\nConnection: close\r\n",
        endpoint.addr
    );
    if let Some(token) = token {
        request.push_str(&format!("X-Vault-Token: {token}\r\n"));
    }
    request.push_str("\r\n");
    stream.write_all(request.as_bytes()).await?;

    parse_response(&stream.read_to_end().await?)
}

fn parse_response(raw: &[u8]) -> io::Result<Response> {
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| invalid("HTTP response without a header end"))?;
    let head = std::str::from_utf8(&raw[..split]).map_err(|_| invalid("HTTP head is not UTF-8"))?;
    let body = &raw[split + 4..];
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status = status_line
        .strip_prefix("HTTP/1.")
        .and_then(|rest| rest.get(2..5))
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| invalid(format!("bad HTTP status line {status_line:?}")))?;
    let chunked = lines.any(|line| {
        line.split_once(':').is_some_and(|(name, value)| {
            name.trim().eq_ignore_ascii_case("transfer-encoding")
                && value.to_ascii_lowercase().contains("chunked")
        })
    });
    let body = if chunked {
        dechunk(body)?
    } else {
        body.to_vec()
    };
    Ok(Response { status, body })
}

fn dechunk(mut data: &[u8]) -> io::Result<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let line_end = data
            .windows(2)
            .position(|w| w == b"\r\n")
            .ok_or_else(|| invalid("chunk size line without CRLF"))?;
        let size_text = std::str::from_utf8(&data[..line_end]).unwrap_or("");
        let size_text = size_text.split(';').next().unwrap_or("").trim();
        let size = usize::from_str_radix(size_text, 16)
            .map_err(|_| invalid(format!("bad chunk size {size_text:?}")))?;
        data = &data[line_end + 2..];
        if size == 0 {
            return Ok(out);
        }
        let chunk = data.get(..size).ok_or_else(|| invalid("chunk truncated"))?;
        out.extend_from_slice(chunk);
        data = data
            .get(size + 2..)
            .ok_or_else(|| invalid("chunk without CRLF"))?;
    }
}

fn parse_json(body: &[u8], what: &str) -> io::Result<Value> {
    serde_json::from_slice(body).map_err(|e| invalid(format!("{what} did not answer JSON: {e}")))
}
