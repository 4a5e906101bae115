//! Just enough of the PostgreSQL wire protocol (v3) to log in with trust
//! authentication and run `SELECT 1`.

use std::{io, net::SocketAddr};

use tokio::net::TcpStream;

use crate::{conn::Conn, endpoint::Endpoint, invalid};

/// The `SSLRequest` code from the protocol documentation.
const SSL_REQUEST: i32 = 80_877_103;
/// Protocol version 3.0.
const PROTOCOL_3_0: i32 = 196_608;

/// Sends an `SSLRequest` on `stream` (accepting `S` or `N`), then logs in
/// over plain TCP as the URL's user into the URL's database and checks that
/// `SELECT 1` returns one row holding `1`; returns a line for the report.
///
/// TLS is out of reach without a TLS crate, so after an `S` the probe
/// reconnects and starts without SSL, as `sslmode=disable` clients do.
///
/// # Errors
///
/// I/O failures, an authentication method other than trust, an
/// `ErrorResponse`, or any message out of protocol order.
pub(crate) async fn check(mut stream: Conn, endpoint: &Endpoint) -> io::Result<String> {
    let user = endpoint.user.as_deref().unwrap_or("postgres");
    let database = match endpoint.path.as_str() {
        "" => user,
        path => path,
    };

    let mut request = Vec::with_capacity(8);
    request.extend_from_slice(&8_i32.to_be_bytes());
    request.extend_from_slice(&SSL_REQUEST.to_be_bytes());
    stream.write_all(&request).await?;
    let ssl = match stream.read_exact(1).await?[0] {
        b'N' => "refused",
        b'S' => {
            stream = reconnect(endpoint.addr).await?;
            "offered, not used"
        }
        other => {
            return Err(invalid(format!(
                "SSLRequest answered {:?}, expected 'S' or 'N'",
                char::from(other)
            )));
        }
    };

    let mut body = Vec::new();
    body.extend_from_slice(&PROTOCOL_3_0.to_be_bytes());
    for (key, value) in [
        ("user", user),
        ("database", database),
        ("application_name", "docaiche-backends-test"),
    ] {
        body.extend_from_slice(key.as_bytes());
        body.push(0);
        body.extend_from_slice(value.as_bytes());
        body.push(0);
    }
    body.push(0);
    stream.write_all(&frame(None, &body)).await?;

    let mut server_version = String::from("unknown version");
    let mut authenticated = false;
    loop {
        let (tag, body) = read_message(&mut stream).await?;
        match tag {
            b'R' => {
                let code = i32::from_be_bytes(first4(&body)?);
                if code != 0 {
                    return Err(invalid(format!(
                        "the server wants authentication method {code} for role `{user}`; \
                         the tests expect trust auth on loopback (pg_hba.conf)"
                    )));
                }
                authenticated = true;
            }
            b'S' => {
                let mut fields = body.split(|b| *b == 0);
                if fields.next() == Some(b"server_version".as_slice())
                    && let Some(version) = fields.next()
                {
                    server_version = String::from_utf8_lossy(version).into_owned();
                }
            }
            b'K' | b'N' => {}
            b'Z' if authenticated => break,
            b'E' => return Err(invalid(format!("login failed: {}", error_text(&body)))),
            other => return Err(unexpected(other, "during login")),
        }
    }

    stream.write_all(&frame(Some(b'Q'), b"SELECT 1\0")).await?;
    let mut rows = Vec::new();
    loop {
        let (tag, body) = read_message(&mut stream).await?;
        match tag {
            b'T' | b'C' | b'N' => {}
            b'D' => rows.push(first_column(&body)?),
            b'Z' => break,
            b'E' => return Err(invalid(format!("SELECT 1 failed: {}", error_text(&body)))),
            other => return Err(unexpected(other, "answering SELECT 1")),
        }
    }
    if rows != [Some(b"1".to_vec())] {
        return Err(invalid(format!("SELECT 1 returned rows {rows:?}")));
    }
    stream.write_all(&frame(Some(b'X'), &[])).await?;

    Ok(format!(
        "PostgreSQL {server_version} at {} as `{user}` in `{database}` (SSL {ssl}): SELECT 1 ok",
        endpoint.addr
    ))
}

async fn reconnect(addr: SocketAddr) -> io::Result<Conn> {
    TcpStream::connect(addr)
        .await
        .map(Conn::new)
        .map_err(|e| io::Error::new(e.kind(), format!("reconnecting after SSLRequest: {e}")))
}

/// A message: optional type byte, then the length (itself included), then `body`.
fn frame(tag: Option<u8>, body: &[u8]) -> Vec<u8> {
    let len = i32::try_from(body.len() + 4).expect("probe messages are a few bytes long");
    let mut out = Vec::with_capacity(body.len() + 5);
    out.extend(tag);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(body);
    out
}

async fn read_message(stream: &mut Conn) -> io::Result<(u8, Vec<u8>)> {
    let head = stream.read_exact(5).await?;
    let tag = head[0];
    let len = i32::from_be_bytes(first4(&head[1..])?);
    let len = usize::try_from(len)
        .ok()
        .and_then(|len| len.checked_sub(4))
        .filter(|len| *len <= 1 << 20)
        .ok_or_else(|| invalid(format!("implausible message length {len}")))?;
    Ok((tag, stream.read_exact(len).await?))
}

fn first4(body: &[u8]) -> io::Result<[u8; 4]> {
    body.get(..4)
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| invalid("message shorter than 4 bytes"))
}

/// The first column of a `DataRow`, `None` for SQL NULL.
fn first_column(body: &[u8]) -> io::Result<Option<Vec<u8>>> {
    let columns = body
        .get(..2)
        .map(|b| i16::from_be_bytes([b[0], b[1]]))
        .ok_or_else(|| invalid("DataRow too short"))?;
    if columns != 1 {
        return Err(invalid(format!(
            "DataRow has {columns} columns, expected 1"
        )));
    }
    let len = i32::from_be_bytes(first4(&body[2..])?);
    let Ok(len) = usize::try_from(len) else {
        return Ok(None);
    };
    body.get(6..6 + len)
        .map(|value| Some(value.to_vec()))
        .ok_or_else(|| invalid("DataRow value truncated"))
}

/// Severity, SQLSTATE and message of an `ErrorResponse`.
fn error_text(body: &[u8]) -> String {
    let mut parts = Vec::new();
    for field in body.split(|b| *b == 0) {
        if let Some((kind, value)) = field.split_first()
            && matches!(kind, b'S' | b'C' | b'M')
        {
            parts.push(String::from_utf8_lossy(value).into_owned());
        }
    }
    parts.join(" ")
}

fn unexpected(tag: u8, when: &str) -> io::Error {
    invalid(format!("unexpected message {:?} {when}", char::from(tag)))
}
