//! Just enough RESP (the Redis protocol) to prove a server stores keys.

use std::io;

use crate::{conn::Conn, endpoint::Endpoint, invalid, unique_suffix};

/// One reply, for the reply types these checks meet.
#[derive(Debug, PartialEq, Eq)]
enum Reply {
    Simple(String),
    Error(String),
    Integer(i64),
    Bulk(Option<Vec<u8>>),
}

/// `PING`, then `SET` a fresh key with a 30 s expiry, `GET` it back and
/// `DEL` it; returns a line for the report.
///
/// # Errors
///
/// I/O failures and any reply other than the expected one.
pub(crate) async fn check(mut conn: Conn, endpoint: &Endpoint) -> io::Result<String> {
    if let Some(password) = &endpoint.password {
        let mut auth = vec!["AUTH"];
        auth.extend(endpoint.user.as_deref());
        auth.push(password);
        expect(&mut conn, &auth, Reply::Simple("OK".into())).await?;
    }
    if !endpoint.path.is_empty() {
        expect(
            &mut conn,
            &["SELECT", &endpoint.path],
            Reply::Simple("OK".into()),
        )
        .await?;
    }
    expect(&mut conn, &["PING"], Reply::Simple("PONG".into())).await?;

    let key = format!("docaiche:test:backends:{}", unique_suffix());
    let value = format!("reachable-{}", unique_suffix());
    expect(
        &mut conn,
        &["SET", &key, &value, "PX", "30000"],
        Reply::Simple("OK".into()),
    )
    .await?;
    expect(
        &mut conn,
        &["GET", &key],
        Reply::Bulk(Some(value.into_bytes())),
    )
    .await?;
    expect(&mut conn, &["DEL", &key], Reply::Integer(1)).await?;
    expect(&mut conn, &["GET", &key], Reply::Bulk(None)).await?;

    Ok(format!("redis at {}: PING, SET/GET/DEL ok", endpoint.addr))
}

async fn expect(conn: &mut Conn, command: &[&str], want: Reply) -> io::Result<()> {
    let got = call(conn, command).await?;
    if got == want {
        Ok(())
    } else {
        // AUTH's arguments never reach the message.
        Err(invalid(format!(
            "`{}` answered {got:?}, expected {want:?}",
            command[0]
        )))
    }
}

async fn call(conn: &mut Conn, command: &[&str]) -> io::Result<Reply> {
    let mut frame = format!("*{}\r\n", command.len()).into_bytes();
    for arg in command {
        frame.extend_from_slice(format!("${}\r\n", arg.len()).as_bytes());
        frame.extend_from_slice(arg.as_bytes());
        frame.extend_from_slice(b"\r\n");
    }
    conn.write_all(&frame).await?;
    read_reply(conn).await
}

async fn read_reply(conn: &mut Conn) -> io::Result<Reply> {
    let line = conn.read_line().await?;
    let line = String::from_utf8(line).map_err(|_| invalid("reply line is not UTF-8"))?;
    let (kind, rest) = line.split_at_checked(1).unwrap_or(("", ""));
    match kind {
        "+" => Ok(Reply::Simple(rest.to_owned())),
        "-" => Ok(Reply::Error(rest.to_owned())),
        ":" => rest
            .parse()
            .map(Reply::Integer)
            .map_err(|_| invalid(format!("bad integer reply {rest:?}"))),
        "$" => {
            let len: i64 = rest
                .parse()
                .map_err(|_| invalid(format!("bad bulk length {rest:?}")))?;
            let Ok(len) = usize::try_from(len) else {
                return Ok(Reply::Bulk(None)); // `$-1`: no such key
            };
            let mut data = conn.read_exact(len + 2).await?;
            if !data.ends_with(b"\r\n") {
                return Err(invalid("bulk reply without trailing CRLF"));
            }
            data.truncate(len);
            Ok(Reply::Bulk(Some(data)))
        }
        _ => Err(invalid(format!("unexpected reply {line:?}"))),
    }
}
