//! `GET /v1/events`: the WebSocket upgrade and one session per connection
//! (hello, events of the caller's tenant, heartbeats, close codes), fed by
//! the [`EventBus`](crate::events::EventBus); the protocol is described in
//! `crate::events`.

use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::extract::State;
use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade, close_code};
use axum::http::{HeaderMap, Method, header};
use axum::response::{IntoResponse, Response};
use docaiche_auth::layer::Authenticated;
use docaiche_core::{Error, Permission, TenantId};
use time::OffsetDateTime;
use tokio::time::Instant;

use crate::events::{Admission, EventBus};
use crate::openapi::{Payload, RouteDoc};
use crate::routes::Endpoint;
use crate::routes::RouteGroup;
use crate::state::AppState;

/// Close code: the connection's send queue filled up or a send stalled.
pub(crate) const CLOSE_SLOW_CONSUMER: u16 = 4000;
/// Close code: no frame from the client within the idle timeout.
pub(crate) const CLOSE_HEARTBEAT_TIMEOUT: u16 = 4001;
/// Close code: the credential that opened the connection expired.
pub(crate) const CLOSE_CREDENTIAL_EXPIRED: u16 = 4003;

/// Read and write buffer size of each socket (tungstenite defaults to
/// 128 KiB each; events are small and a connection should cost kilobytes).
const SOCKET_BUFFER: usize = 4 * 1024;

/// Add `GET /v1/events` to `group` (a protected group).
pub(crate) fn routes(group: RouteGroup) -> RouteGroup {
    group.route(EVENTS, &[Permission::JOBS_READ], events)
}

/// `GET /v1/events`: the route of [`events`] and its documentation.
pub(crate) const EVENTS: Endpoint = Endpoint::new(
    Method::GET,
    "/v1/events",
    RouteDoc {
        description: Some(
            "A server-to-client WebSocket: a `hello` message, then one \
             JSON text message per event of the caller's tenant. A full \
             connection cap closes the socket at once with 1013.",
        ),
        status: 101,
        errors: &[(400, "not a WebSocket upgrade request")],
        ..RouteDoc::ok(
            "Live job and document events (WebSocket)",
            "switching to the WebSocket protocol",
            Payload::Empty,
        )
    },
);

/// `GET /v1/events`: admit under the caps, upgrade, stream the tenant's
/// events; a full cap is answered by an upgrade closed at once with 1013
/// and the reason, so browser clients can tell it from a network error.
async fn events(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    headers: HeaderMap,
    upgrade: Result<WebSocketUpgrade, axum::extract::ws::rejection::WebSocketUpgradeRejection>,
) -> Response {
    let upgrade = match upgrade {
        // axum takes any key; RFC 6455 §4.1 (and the OpenAPI document)
        // asks for 16 random bytes in base64.
        Ok(_)
            if !headers
                .get(header::SEC_WEBSOCKET_KEY)
                .is_some_and(|key| is_websocket_key(key.as_bytes())) =>
        {
            return Error::invalid_input(
                "/v1/events is a WebSocket: Sec-WebSocket-Key must be 16 bytes in base64",
            )
            .into_response();
        }
        Ok(upgrade) => upgrade,
        Err(rejection) => {
            return Error::invalid_input(format!(
                "/v1/events is a WebSocket: {}",
                rejection.body_text()
            ))
            .into_response();
        }
    };
    let bus = state.events.clone();
    bus.follow(&state.intake);
    let limits = &bus.hub.limits;
    let admission = bus.admit(&caller.tenant, &caller.id);
    let expires_at = caller.expires_at;
    let tenant = caller.tenant;
    upgrade
        .read_buffer_size(SOCKET_BUFFER)
        .write_buffer_size(SOCKET_BUFFER)
        .max_write_buffer_size(limits.max_write_buffer_bytes.max(SOCKET_BUFFER + 1))
        .max_message_size(limits.max_message_bytes)
        .max_frame_size(limits.max_message_bytes)
        .on_upgrade(move |socket| async move {
            match admission {
                Ok(admission) => session(socket, bus, tenant, expires_at, admission).await,
                Err(refusal) => {
                    let send = close(socket, close_code::AGAIN, refusal.reason());
                    let _ = tokio::time::timeout(Duration::from_secs(1), send).await;
                }
            }
        })
}

/// Whether `key` is 16 bytes in base64, as RFC 6455 §4.1 has clients send
/// (`^[A-Za-z0-9+/]{21}[AQgw]==$`).
fn is_websocket_key(key: &[u8]) -> bool {
    let alphabet = |b: &u8| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/');
    matches!(key, [head @ .., last, b'=', b'='] if head.len() == 21
        && head.iter().all(alphabet)
        && matches!(last, b'A' | b'Q' | b'g' | b'w'))
}

/// Send a close frame with `code` and `reason`.
async fn close(mut socket: WebSocket, code: u16, reason: &'static str) {
    let frame = CloseFrame {
        code,
        reason: Utf8Bytes::from_static(reason),
    };
    let _ = socket.send(Message::Close(Some(frame))).await;
}

/// How a session ended.
enum End {
    /// Close with this code and reason.
    Close(u16, &'static str),
    /// The peer is gone or closed; nothing to send.
    Gone,
}

/// One open connection: the hello, then events, pings and the checks.
async fn session(
    mut socket: WebSocket,
    bus: EventBus,
    tenant: TenantId,
    expires_at: Option<OffsetDateTime>,
    admission: Admission,
) {
    let limits = bus.hub.limits.clone();
    let (id, mut queue, kick) = bus.subscribe(&tenant);
    let send_timeout = Duration::from_secs(limits.send_timeout_secs);
    let idle_timeout = Duration::from_secs(limits.idle_timeout_secs);
    let heartbeat = Duration::from_secs(limits.heartbeat_secs);
    let expiry = expires_at.map(|at| {
        let left = (at - OffsetDateTime::now_utc()).max(time::Duration::ZERO);
        Instant::now() + Duration::try_from(left).unwrap_or(Duration::ZERO)
    });
    let hello = serde_json::json!({
        "type": "hello",
        "tenant": tenant.as_str(),
        "heartbeat_secs": limits.heartbeat_secs,
    })
    .to_string();
    let mut last_heard = Instant::now();
    let mut ticker = tokio::time::interval_at(Instant::now() + heartbeat, heartbeat);
    let end = match tokio::time::timeout(send_timeout, socket.send(Message::Text(hello.into())))
        .await
    {
        Ok(Ok(())) => loop {
            tokio::select! {
                () = kick.notify.notified() => {
                    break End::Close(CLOSE_SLOW_CONSUMER, "slow consumer: send queue full");
                }
                next = queue.recv() => {
                    let Some(text) = next else {
                        // Unsubscribed by the bus: kicked (checked first).
                        break if kick.kicked.load(Ordering::Acquire) {
                            End::Close(CLOSE_SLOW_CONSUMER, "slow consumer: send queue full")
                        } else {
                            End::Close(close_code::AWAY, "server shutting down")
                        };
                    };
                    // A stalled send loses to the bus's kick: the close
                    // goes out as soon as the client reads again.
                    tokio::select! {
                        sent = tokio::time::timeout(send_timeout, socket.send(Message::Text(text))) => {
                            match sent {
                                Ok(Ok(())) => {}
                                Ok(Err(_)) => break End::Gone,
                                Err(_) => {
                                    if kick.kick() {
                                        bus.hub.counters.slow_closed.fetch_add(1, Ordering::Relaxed);
                                    }
                                    break End::Close(CLOSE_SLOW_CONSUMER, "slow consumer: send stalled");
                                }
                            }
                        }
                        () = kick.notify.notified() => {
                            break End::Close(CLOSE_SLOW_CONSUMER, "slow consumer: send queue full");
                        }
                    }
                }
                _ = ticker.tick() => {
                    if last_heard.elapsed() >= idle_timeout {
                        bus.hub.counters.heartbeat_closed.fetch_add(1, Ordering::Relaxed);
                        break End::Close(CLOSE_HEARTBEAT_TIMEOUT, "heartbeat timeout");
                    }
                    let ping = socket.send(Message::Ping(axum::body::Bytes::from_static(b"hb")));
                    match tokio::time::timeout(send_timeout, ping).await {
                        Ok(Ok(())) => {}
                        Ok(Err(_)) => break End::Gone,
                        Err(_) => break End::Close(CLOSE_SLOW_CONSUMER, "slow consumer: send stalled"),
                    }
                }
                () = sleep_until(expiry) => {
                    break End::Close(CLOSE_CREDENTIAL_EXPIRED, "credential expired");
                }
                incoming = socket.recv() => {
                    match incoming {
                        Some(Ok(Message::Pong(_) | Message::Ping(_))) => last_heard = Instant::now(),
                        Some(Ok(Message::Close(_))) | None => break End::Gone,
                        Some(Ok(Message::Text(_) | Message::Binary(_))) => {
                            break End::Close(close_code::POLICY, "this channel is server to client only");
                        }
                        Some(Err(e)) => {
                            tracing::debug!(error = %e, "events connection failed");
                            break if e.to_string().contains("too long") || e.to_string().contains("too big") {
                                End::Close(close_code::SIZE, "message too large")
                            } else {
                                End::Gone
                            };
                        }
                    }
                }
            }
        },
        _ => End::Gone,
    };
    bus.unsubscribe(&tenant, id);
    drop(queue);
    if let End::Close(code, reason) = end {
        tracing::debug!(tenant = %tenant, code, reason, "closing events connection");
        let _ = tokio::time::timeout(send_timeout, close(socket, code, reason)).await;
    }
    drop(admission);
}

/// Sleep until `deadline`, or forever without one.
async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}
