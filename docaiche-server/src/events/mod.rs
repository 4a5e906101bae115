//! `GET /v1/events`: a WebSocket carrying the caller's tenant's job
//! progress and document events, and the [`EventBus`] that feeds it.
//!
//! # Protocol
//!
//! The route sits behind the auth gate like every `/v1` route: the upgrade
//! request carries an API key (`X-API-Key`) or a bearer JWT, and the
//! principal needs `jobs:read`; without them the upgrade is answered 401 /
//! 403 problem+json and no socket is opened. The channel is server to
//! client only. After the upgrade the server sends one
//! `{"type":"hello","tenant":…,"heartbeat_secs":…}` text message, then one
//! text message per event of the caller's tenant:
//! `{"type":"job.progress","tenant":…,"at":"<RFC 3339>","data":{…}}`
//! (types are the publisher's: `document.created`, `document.deleted`,
//! `job.progress`, `job.finished`, …). Events of other tenants never reach
//! the socket: the bus keys subscribers by tenant.
//!
//! Every `events.heartbeat_secs` the server pings; a client that has sent
//! nothing (a pong included) for `events.idle_timeout_secs` is closed.
//! Text or binary messages from the client are a policy violation.
//!
//! | close code | meaning |
//! | --- | --- |
//! | 1000 | normal closure (the client closed) |
//! | 1001 | the server is shutting down |
//! | 1008 | policy: the client sent a data message |
//! | 1009 | a client message over `events.max_message_bytes` |
//! | 1013 | try again later: the server-wide (`events.max_connections`), the tenant's (`events.max_connections_per_tenant`) or the principal's (`events.max_connections_per_principal`: one API key or user cannot take the whole tenant's share) connection cap is full; the reason names which |
//! | 4000 | slow consumer: the connection's send queue (`events.send_queue`) filled up, or one send stalled longer than `events.send_timeout_secs` |
//! | 4001 | heartbeat timeout |
//! | 4003 | the credential expired |
//!
//! # Bounded memory
//!
//! Each connection holds one permit of the global cap, one slot of its
//! tenant's cap and of its principal's, a bounded queue of `events.send_queue` encoded events
//! (shared `Bytes`, encoded once per publish) and small WebSocket buffers
//! (4 KiB read, 4 KiB write, at most `events.max_write_buffer_bytes`
//! pending). [`EventBus::publish`] never waits: a full queue closes that
//! connection (4000) instead of buffering more, so a slow consumer costs
//! at most its queue.

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::Duration;

use axum::extract::State;
use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade, close_code};
use axum::http::{HeaderMap, Method, header};
use axum::response::{IntoResponse, Response};
use docaiche_auth::layer::Authenticated;
use docaiche_core::{Error, Permission, PrincipalId, TenantId};
use serde::Deserialize;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore, mpsc};
use tokio::time::Instant;

use crate::app::{AppState, RouteGroup};
use crate::config::Config;
use crate::documents::{DocumentEvent, DocumentEventKind, DocumentServices};
use crate::metrics::{MetricSource, counter, counters, gauge};

/// Close code: the connection's send queue filled up or a send stalled.
pub(crate) const CLOSE_SLOW_CONSUMER: u16 = 4000;
/// Close code: no frame from the client within the idle timeout.
pub(crate) const CLOSE_HEARTBEAT_TIMEOUT: u16 = 4001;
/// Close code: the credential that opened the connection expired.
pub(crate) const CLOSE_CREDENTIAL_EXPIRED: u16 = 4003;

/// Read and write buffer size of each socket (tungstenite defaults to
/// 128 KiB each; events are small and a connection should cost kilobytes).
const SOCKET_BUFFER: usize = 4 * 1024;

/// `[events]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct EventsSection {
    /// Open connections the server accepts in all.
    pub(crate) max_connections: usize,
    /// Open connections one tenant may hold.
    pub(crate) max_connections_per_tenant: usize,
    /// Open connections one principal (an API key's or a user's identity)
    /// may hold within its tenant's.
    pub(crate) max_connections_per_principal: usize,
    /// Events queued per connection before it is closed as slow.
    pub(crate) send_queue: usize,
    /// Seconds between pings.
    pub(crate) heartbeat_secs: u64,
    /// Seconds without any frame from the client before closing.
    pub(crate) idle_timeout_secs: u64,
    /// Longest one send may take before the client counts as slow.
    pub(crate) send_timeout_secs: u64,
    /// Largest message accepted from the client (only control frames are
    /// expected).
    pub(crate) max_message_bytes: usize,
    /// Most bytes buffered for writing on one socket.
    pub(crate) max_write_buffer_bytes: usize,
}

impl Default for EventsSection {
    fn default() -> Self {
        Self {
            max_connections: 10_000,
            max_connections_per_tenant: 1_000,
            max_connections_per_principal: 16,
            send_queue: 64,
            heartbeat_secs: 20,
            idle_timeout_secs: 60,
            send_timeout_secs: 10,
            max_message_bytes: 4 * 1024,
            max_write_buffer_bytes: 1024 * 1024,
        }
    }
}

impl EventsSection {
    /// Check the limits.
    ///
    /// # Errors
    /// [`Error::Misconfigured`] naming the first zero limit, or an idle
    /// timeout not longer than the heartbeat.
    fn validate(&self) -> Result<(), Error> {
        for (setting, value) in [
            ("events.max_connections", self.max_connections),
            (
                "events.max_connections_per_tenant",
                self.max_connections_per_tenant,
            ),
            (
                "events.max_connections_per_principal",
                self.max_connections_per_principal,
            ),
            ("events.send_queue", self.send_queue),
            ("events.max_message_bytes", self.max_message_bytes),
            ("events.max_write_buffer_bytes", self.max_write_buffer_bytes),
        ] {
            if value == 0 {
                return Err(Error::misconfigured(setting, "must be at least 1"));
            }
        }
        if self.max_connections > Semaphore::MAX_PERMITS {
            return Err(Error::misconfigured(
                "events.max_connections",
                "is too large",
            ));
        }
        if self.heartbeat_secs == 0 || self.send_timeout_secs == 0 {
            return Err(Error::misconfigured(
                "events.heartbeat_secs",
                "heartbeat_secs and send_timeout_secs must be at least 1",
            ));
        }
        if self.idle_timeout_secs <= self.heartbeat_secs {
            return Err(Error::misconfigured(
                "events.idle_timeout_secs",
                "must be longer than events.heartbeat_secs",
            ));
        }
        Ok(())
    }
}

/// One event for the subscribers of a tenant.
#[derive(Debug, Clone)]
pub(crate) struct Event {
    /// `document.stored`, `job.progress`, …
    pub(crate) kind: Cow<'static, str>,
    /// The event's body.
    pub(crate) data: serde_json::Value,
}

impl Event {
    /// An event of type `kind` with body `data`.
    #[cfg_attr(
        not(test),
        allow(dead_code, reason = "for publishers beyond the document intake")
    )]
    pub(crate) fn new(kind: impl Into<Cow<'static, str>>, data: serde_json::Value) -> Self {
        Self {
            kind: kind.into(),
            data,
        }
    }

    /// The `/v1/events` form of a document intake event: `job.progress`
    /// for a job (id, state, progress), `document.<kind>` otherwise.
    fn from_document(event: &DocumentEvent) -> Self {
        let kind = match event.kind {
            DocumentEventKind::Job => Cow::Borrowed("job.progress"),
            other => match serde_json::to_value(other) {
                Ok(serde_json::Value::String(name)) => Cow::Owned(format!("document.{name}")),
                _ => Cow::Borrowed("document.changed"),
            },
        };
        let mut data = serde_json::json!({ "id": event.id });
        if let Some(state) = event.state {
            data["state"] = state.into();
        }
        if let Some(progress) = event.progress {
            data["progress"] = progress.into();
        }
        Self { kind, data }
    }
}

/// Asks one connection to close as a slow consumer.
#[derive(Debug, Default)]
struct Kick {
    kicked: AtomicBool,
    notify: Notify,
}

impl Kick {
    /// Ask the connection to close; whether it was not asked before.
    fn kick(&self) -> bool {
        let first = !self.kicked.swap(true, Ordering::AcqRel);
        self.notify.notify_one();
        first
    }
}

/// One open connection, as the bus sees it.
#[derive(Debug)]
struct Subscriber {
    id: u64,
    queue: mpsc::Sender<Utf8Bytes>,
    kick: Arc<Kick>,
}

/// A tenant's open connections.
#[derive(Debug, Default)]
struct Tenant {
    /// Admitted connections (upgrading or open).
    admitted: usize,
    /// Admitted connections per principal; only principals holding one.
    principals: HashMap<PrincipalId, usize>,
    /// Connections receiving events.
    subscribers: Vec<Subscriber>,
}

/// Counters of the bus.
#[derive(Debug, Default)]
struct Counters {
    published: AtomicU64,
    delivered: AtomicU64,
    /// Intake events missed because the forwarder lagged behind.
    lagged: AtomicU64,
    slow_closed: AtomicU64,
    refused_global: AtomicU64,
    refused_tenant: AtomicU64,
    refused_principal: AtomicU64,
    heartbeat_closed: AtomicU64,
}

#[derive(Debug)]
struct Hub {
    limits: EventsSection,
    global: Arc<Semaphore>,
    tenants: Mutex<HashMap<TenantId, Tenant>>,
    next_id: AtomicU64,
    counters: Counters,
    /// Set once the document intake's channel is forwarded.
    following: OnceLock<()>,
}

/// The publish side of `/v1/events`, shared through `AppState::events`.
///
/// Publishers (document routes, job workers) call [`EventBus::publish`]
/// with the tenant the event belongs to; it never blocks and never fails:
/// connections that cannot keep up are closed instead.
#[derive(Debug, Clone)]
pub(crate) struct EventBus {
    hub: Arc<Hub>,
}

/// Why a connection was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// `events.max_connections` open.
    Server,
    /// `events.max_connections_per_tenant` open for this tenant.
    Tenant,
    /// `events.max_connections_per_principal` open for this principal.
    Principal,
}

impl Refusal {
    fn reason(self) -> &'static str {
        match self {
            Self::Server => "server connection limit reached; retry later",
            Self::Tenant => "tenant connection limit reached; retry later",
            Self::Principal => "principal connection limit reached; close another connection first",
        }
    }
}

/// A connection's place under both caps; gives it back when dropped.
#[derive(Debug)]
pub(crate) struct Admission {
    hub: Arc<Hub>,
    tenant: TenantId,
    principal: PrincipalId,
    _permit: OwnedSemaphorePermit,
}

impl Drop for Admission {
    fn drop(&mut self) {
        let mut tenants = self.hub.lock();
        if let Some(entry) = tenants.get_mut(&self.tenant) {
            entry.admitted = entry.admitted.saturating_sub(1);
            if let Some(held) = entry.principals.get_mut(&self.principal) {
                *held = held.saturating_sub(1);
                if *held == 0 {
                    entry.principals.remove(&self.principal);
                }
            }
            if entry.admitted == 0 && entry.subscribers.is_empty() {
                tenants.remove(&self.tenant);
            }
        }
    }
}

impl Hub {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<TenantId, Tenant>> {
        // The map stays consistent under every early exit: never poisoned
        // by a half-done update.
        self.tenants.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl EventBus {
    /// The bus of `config`'s `[events]`.
    ///
    /// # Errors
    /// [`Error::Misconfigured`] for invalid limits.
    pub(crate) fn from_config(config: &Config) -> Result<Self, Error> {
        config.events.validate()?;
        Ok(Self::new(config.events.clone()))
    }

    /// A bus with these (valid) limits.
    fn new(limits: EventsSection) -> Self {
        Self {
            hub: Arc::new(Hub {
                global: Arc::new(Semaphore::new(limits.max_connections)),
                limits,
                tenants: Mutex::new(HashMap::new()),
                next_id: AtomicU64::new(0),
                counters: Counters::default(),
                following: OnceLock::new(),
            }),
        }
    }

    /// Send `event` to every open connection of `tenant`; returns how many
    /// queued it. A connection whose queue is full is closed as a slow
    /// consumer (code 4000).
    pub(crate) fn publish(&self, tenant: &TenantId, event: &Event) -> usize {
        let hub = &*self.hub;
        hub.counters.published.fetch_add(1, Ordering::Relaxed);
        let at = OffsetDateTime::now_utc()
            .format(&Rfc3339)
            .unwrap_or_default();
        let text = serde_json::json!({
            "type": event.kind,
            "tenant": tenant.as_str(),
            "at": at,
            "data": event.data,
        })
        .to_string();
        let text = Utf8Bytes::from(text);
        let mut delivered = 0;
        let mut tenants = hub.lock();
        let Some(entry) = tenants.get_mut(tenant) else {
            return 0;
        };
        entry
            .subscribers
            .retain(|subscriber| match subscriber.queue.try_send(text.clone()) {
                Ok(()) => {
                    delivered += 1;
                    true
                }
                Err(mpsc::error::TrySendError::Full(_)) => {
                    if subscriber.kick.kick() {
                        hub.counters.slow_closed.fetch_add(1, Ordering::Relaxed);
                    }
                    false
                }
                Err(mpsc::error::TrySendError::Closed(_)) => false,
            });
        drop(tenants);
        hub.counters.delivered.fetch_add(
            u64::try_from(delivered).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
        delivered
    }

    /// Forward the events of `intake`'s broadcast channel (documents
    /// stored, extracted, deleted; job progress) to their tenants'
    /// connections, from now on; once per bus, later calls do nothing.
    /// Must run inside the runtime.
    pub(crate) fn follow(&self, intake: &DocumentServices) {
        if self.hub.following.set(()).is_err() {
            return;
        }
        let mut events = intake.events.subscribe();
        let bus = self.clone();
        tokio::spawn(async move {
            loop {
                match events.recv().await {
                    Ok(event) => {
                        bus.publish(&event.tenant, &Event::from_document(&event));
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(missed)) => {
                        bus.hub.counters.lagged.fetch_add(missed, Ordering::Relaxed);
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => break,
                }
            }
        });
    }

    /// Take a place for a connection of `principal` of `tenant` under the
    /// three caps.
    ///
    /// # Errors
    /// The [`Refusal`] naming the full cap.
    pub(crate) fn admit(
        &self,
        tenant: &TenantId,
        principal: &PrincipalId,
    ) -> Result<Admission, Refusal> {
        let hub = &self.hub;
        // The narrowest cap first: its reason is the more useful one when
        // several are full.
        let mut tenants = hub.lock();
        let entry = tenants.entry(tenant.clone()).or_default();
        let held = entry.principals.get(principal).copied().unwrap_or(0);
        let refusal = if held >= hub.limits.max_connections_per_principal {
            hub.counters
                .refused_principal
                .fetch_add(1, Ordering::Relaxed);
            Some(Refusal::Principal)
        } else if entry.admitted >= hub.limits.max_connections_per_tenant {
            hub.counters.refused_tenant.fetch_add(1, Ordering::Relaxed);
            Some(Refusal::Tenant)
        } else {
            None
        };
        if let Some(refusal) = refusal {
            if entry.admitted == 0 && entry.subscribers.is_empty() {
                tenants.remove(tenant);
            }
            return Err(refusal);
        }
        let Ok(permit) = Arc::clone(&hub.global).try_acquire_owned() else {
            hub.counters.refused_global.fetch_add(1, Ordering::Relaxed);
            if entry.admitted == 0 && entry.subscribers.is_empty() {
                tenants.remove(tenant);
            }
            return Err(Refusal::Server);
        };
        entry.admitted += 1;
        *entry.principals.entry(principal.clone()).or_insert(0) += 1;
        drop(tenants);
        Ok(Admission {
            hub: Arc::clone(hub),
            tenant: tenant.clone(),
            principal: principal.clone(),
            _permit: permit,
        })
    }

    /// Register a connection's queue under its tenant.
    fn subscribe(&self, tenant: &TenantId) -> (u64, mpsc::Receiver<Utf8Bytes>, Arc<Kick>) {
        let (queue, receiver) = mpsc::channel(self.hub.limits.send_queue);
        let kick = Arc::new(Kick::default());
        let id = self.hub.next_id.fetch_add(1, Ordering::Relaxed);
        self.hub
            .lock()
            .entry(tenant.clone())
            .or_default()
            .subscribers
            .push(Subscriber {
                id,
                queue,
                kick: Arc::clone(&kick),
            });
        (id, receiver, kick)
    }

    /// Remove a connection's queue.
    fn unsubscribe(&self, tenant: &TenantId, id: u64) {
        if let Some(entry) = self.hub.lock().get_mut(tenant) {
            entry.subscribers.retain(|s| s.id != id);
        }
    }

    /// Connections open (admitted) right now.
    pub(crate) fn connections(&self) -> usize {
        self.hub.limits.max_connections - self.hub.global.available_permits()
    }

    /// Connections closed as slow consumers since start.
    #[cfg(test)]
    fn slow_closed(&self) -> u64 {
        self.hub.counters.slow_closed.load(Ordering::Relaxed)
    }
}

impl MetricSource for EventBus {
    fn encode(&self, e: &mut prometheus_client::encoding::DescriptorEncoder<'_>) -> fmt::Result {
        let c = &self.hub.counters;
        let load = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        gauge(
            e,
            "events_connections",
            "Open /v1/events connections",
            i64::try_from(self.connections()).unwrap_or(i64::MAX),
        )?;
        gauge(
            e,
            "events_max_connections",
            "The server-wide /v1/events connection cap",
            i64::try_from(self.hub.limits.max_connections).unwrap_or(i64::MAX),
        )?;
        counter(
            e,
            "events_published",
            "Events published",
            load(&c.published),
        )?;
        counter(
            e,
            "events_delivered",
            "Events queued to a connection",
            load(&c.delivered),
        )?;
        counter(
            e,
            "events_lagged",
            "Document intake events the forwarder missed (it fell behind)",
            load(&c.lagged),
        )?;
        counters(
            e,
            "events_closed",
            "Connections closed by the server, by reason",
            [
                ([("reason", "slow_consumer")], load(&c.slow_closed)),
                ([("reason", "heartbeat_timeout")], load(&c.heartbeat_closed)),
            ],
        )?;
        counters(
            e,
            "events_refused",
            "Connections refused (close 1013), by full cap",
            [
                ([("cap", "server")], load(&c.refused_global)),
                ([("cap", "tenant")], load(&c.refused_tenant)),
                ([("cap", "principal")], load(&c.refused_principal)),
            ],
        )
    }
}

/// Add `GET /v1/events` to `group` (a protected group).
pub(crate) fn routes(group: RouteGroup) -> RouteGroup {
    group.route(Method::GET, "/v1/events", &[Permission::JOBS_READ], events)
}

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

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;

    use futures_util::{SinkExt as _, StreamExt as _};
    use tokio::net::{TcpListener, TcpStream};
    use tokio_tungstenite::WebSocketStream;
    use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
    use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
    use tokio_tungstenite::tungstenite::{Message as Frame, http};

    use super::*;
    use crate::app::router;
    use crate::app::tests::local_state;
    use crate::test_support::TestDir;

    type Client = WebSocketStream<TcpStream>;

    /// A server on 127.0.0.1:0 with `[events]` = `events`, and API keys of
    /// the tenants `acme` and `globex`.
    async fn serve(events: EventsSection) -> (SocketAddr, EventBus, String, String, TestDir) {
        let dir = TestDir::new("events");
        let mut config = Config::default();
        config.storage.data_dir = dir.path().to_path_buf();
        config.events = events;
        let state = local_state(&config);
        let acme = state
            .auth
            .bootstrap_key("acme", "admin", "events")
            .await
            .expect("key");
        let globex = state
            .auth
            .bootstrap_key("globex", "admin", "events")
            .await
            .expect("key");
        let bus = state.events.clone();
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let app = router(state).into_make_service_with_connect_info::<SocketAddr>();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        (
            addr,
            bus,
            acme.key.expose_secret().clone(),
            globex.key.expose_secret().clone(),
            dir,
        )
    }

    async fn connect(addr: SocketAddr, key: &str) -> Result<Client, String> {
        let stream = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
        let mut request = format!("ws://{addr}/v1/events")
            .into_client_request()
            .map_err(|e| e.to_string())?;
        request.headers_mut().insert(
            "x-api-key",
            http::HeaderValue::from_str(key).map_err(|e| e.to_string())?,
        );
        let (client, _) = tokio_tungstenite::client_async(request, stream)
            .await
            .map_err(|e| e.to_string())?;
        Ok(client)
    }

    /// The next data or close message, skipping pings.
    async fn next(client: &mut Client) -> Frame {
        loop {
            let frame = tokio::time::timeout(Duration::from_secs(10), client.next())
                .await
                .expect("a message within 10 s")
                .expect("open")
                .expect("frame");
            if !matches!(frame, Frame::Ping(_) | Frame::Pong(_)) {
                return frame;
            }
        }
    }

    fn json(frame: &Frame) -> serde_json::Value {
        match frame {
            Frame::Text(text) => serde_json::from_str(text).expect("json"),
            other => panic!("expected text, got {other:?}"),
        }
    }

    fn close_code(frame: &Frame) -> (u16, String) {
        match frame {
            Frame::Close(Some(close)) => (u16::from(close.code), close.reason.to_string()),
            other => panic!("expected a close frame, got {other:?}"),
        }
    }

    fn limits() -> EventsSection {
        EventsSection {
            max_connections: 3,
            max_connections_per_tenant: 2,
            ..EventsSection::default()
        }
    }

    #[tokio::test]
    async fn caps_refuse_with_1013_and_free_up_when_a_connection_closes() {
        let (addr, bus, acme, globex, _dir) = serve(limits()).await;
        let mut a1 = connect(addr, &acme).await.expect("acme 1");
        let mut a2 = connect(addr, &acme).await.expect("acme 2");
        assert_eq!(json(&next(&mut a1).await)["type"], "hello");
        assert_eq!(json(&next(&mut a2).await)["tenant"], "acme");

        // The tenant's cap: a third acme connection is closed with 1013.
        let mut a3 = connect(addr, &acme).await.expect("upgraded");
        let (code, reason) = close_code(&next(&mut a3).await);
        assert_eq!(code, close_code::AGAIN);
        assert!(reason.contains("tenant"), "{reason}");

        // The server's cap: globex gets the third place, not a fourth.
        let mut g1 = connect(addr, &globex).await.expect("globex 1");
        assert_eq!(json(&next(&mut g1).await)["tenant"], "globex");
        let mut g2 = connect(addr, &globex).await.expect("upgraded");
        let (code, reason) = close_code(&next(&mut g2).await);
        assert_eq!(code, close_code::AGAIN);
        assert!(reason.contains("server"), "{reason}");
        assert_eq!(bus.connections(), 3);

        // Closing one frees its place.
        a1.close(None).await.expect("close");
        drop(a1);
        let mut freed = false;
        for _ in 0..100 {
            if bus.connections() < 3 {
                freed = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(freed, "the closed connection gave back its place");
        let mut g3 = connect(addr, &globex).await.expect("globex again");
        assert_eq!(json(&next(&mut g3).await)["type"], "hello");
    }

    #[tokio::test]
    async fn one_principal_cannot_take_its_tenants_whole_share() {
        let dir = TestDir::new("events-principal");
        let mut config = Config::default();
        config.storage.data_dir = dir.path().to_path_buf();
        config.events = EventsSection {
            max_connections_per_tenant: 3,
            max_connections_per_principal: 2,
            ..EventsSection::default()
        };
        let state = local_state(&config);
        let key = |principal: &'static str| {
            let auth = Arc::clone(&state.auth);
            async move {
                auth.bootstrap_key("acme", principal, "events")
                    .await
                    .expect("key")
                    .key
                    .expose_secret()
                    .clone()
            }
        };
        let (robot, person) = (key("robot").await, key("person").await);
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let bus = state.events.clone();
        tokio::spawn(crate::shutdown::serve(
            listener,
            router(state),
            std::future::pending(),
            Duration::from_secs(1),
        ));

        let mut r1 = connect(addr, &robot).await.expect("robot 1");
        let mut r2 = connect(addr, &robot).await.expect("robot 2");
        assert_eq!(json(&next(&mut r1).await)["type"], "hello");
        assert_eq!(json(&next(&mut r2).await)["type"], "hello");
        // The principal's third is closed with 1013, naming its cap.
        let mut r3 = connect(addr, &robot).await.expect("upgraded");
        let (code, reason) = close_code(&next(&mut r3).await);
        assert_eq!(code, close_code::AGAIN);
        assert!(reason.contains("principal"), "{reason}");
        // Another principal of the same tenant still gets in.
        let mut p1 = connect(addr, &person).await.expect("person 1");
        assert_eq!(json(&next(&mut p1).await)["tenant"], "acme");
        assert_eq!(bus.connections(), 3);
        // Closing one of the robot's gives the robot a place again.
        r1.close(None).await.expect("close");
        drop(r1);
        let mut freed = false;
        for _ in 0..100 {
            if bus.connections() < 3 {
                freed = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(freed, "the closed connection gave back its place");
        let mut r4 = connect(addr, &robot).await.expect("robot again");
        assert_eq!(json(&next(&mut r4).await)["type"], "hello");
    }

    #[tokio::test]
    async fn events_reach_only_the_callers_tenant() {
        let (addr, bus, acme, globex, _dir) = serve(limits()).await;
        let mut a = connect(addr, &acme).await.expect("acme");
        let mut g = connect(addr, &globex).await.expect("globex");
        next(&mut a).await;
        next(&mut g).await;
        let acme_id = TenantId::new("acme").expect("tenant");
        let globex_id = TenantId::new("globex").expect("tenant");
        let progress = Event::new(
            "job.progress",
            serde_json::json!({ "job": "j1", "done": 3 }),
        );
        assert_eq!(bus.publish(&acme_id, &progress), 1);
        let marker = Event::new("document.created", serde_json::json!({ "id": "d9" }));
        assert_eq!(bus.publish(&globex_id, &marker), 1);
        let event = json(&next(&mut a).await);
        assert_eq!(event["type"], "job.progress");
        assert_eq!(event["tenant"], "acme");
        assert_eq!(event["data"]["done"], 3);
        // globex's first event is its own: acme's never reached it.
        let event = json(&next(&mut g).await);
        assert_eq!(event["type"], "document.created");
        assert_eq!(event["tenant"], "globex");
    }

    #[tokio::test]
    async fn a_slow_consumer_is_closed_with_4000_and_its_queue_stays_bounded() {
        let (addr, bus, acme, _, _dir) = serve(EventsSection {
            send_queue: 4,
            send_timeout_secs: 5,
            ..limits()
        })
        .await;
        // A client that never reads.
        let mut slow = connect(addr, &acme).await.expect("acme");
        let tenant = TenantId::new("acme").expect("tenant");
        let payload = "x".repeat(64 * 1024);
        let event = Event::new("document.created", serde_json::json!({ "pad": payload }));
        let mut published = 0;
        while bus.slow_closed() == 0 {
            published += 1;
            assert!(published < 10_000, "never counted as slow");
            bus.publish(&tenant, &event);
            // Let the connection's task run between publishes.
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        // Unsubscribed: further events are not queued for it.
        assert_eq!(bus.publish(&tenant, &event), 0);
        // The client finally reads: the queued events, then the close.
        let mut seen = 0;
        let (code, reason) = loop {
            match next(&mut slow).await {
                Frame::Text(_) => seen += 1,
                Frame::Close(frame) => {
                    break close_code(&Frame::Close(frame));
                }
                other => panic!("unexpected {other:?}"),
            }
        };
        assert_eq!(code, CLOSE_SLOW_CONSUMER, "{reason}");
        assert!(reason.starts_with("slow consumer"), "{reason}");
        assert!(
            seen < published,
            "not everything was buffered: {seen}/{published}"
        );
        let _ = CloseCode::from(code);
    }

    #[tokio::test]
    async fn a_client_data_message_is_a_policy_violation_and_anonymous_upgrades_are_401() {
        let (addr, _, acme, _, _dir) = serve(limits()).await;
        let mut client = connect(addr, &acme).await.expect("acme");
        next(&mut client).await;
        client
            .send(Frame::Text("hello?".into()))
            .await
            .expect("send");
        let (code, _) = close_code(&next(&mut client).await);
        assert_eq!(code, close_code::POLICY);

        let err = connect(addr, "dcak_not_a_key").await.expect_err("refused");
        assert!(err.contains("401"), "{err}");
    }

    #[tokio::test]
    async fn a_silent_client_is_closed_after_the_idle_timeout() {
        let (addr, _, acme, _, _dir) = serve(EventsSection {
            heartbeat_secs: 1,
            idle_timeout_secs: 2,
            ..limits()
        })
        .await;
        // tungstenite answers pings only while the client reads; a raw
        // client that reads nothing after the hello never pongs.
        let mut client = connect(addr, &acme).await.expect("acme");
        next(&mut client).await;
        tokio::time::sleep(Duration::from_millis(3500)).await;
        let mut code = None;
        while let Some(Ok(frame)) = client.next().await {
            if let Frame::Close(Some(close)) = frame {
                code = Some(u16::from(close.code));
                break;
            }
        }
        assert_eq!(code, Some(CLOSE_HEARTBEAT_TIMEOUT));
    }

    #[test]
    fn limits_are_validated() {
        assert!(EventsSection::default().validate().is_ok());
        for bad in [
            EventsSection {
                max_connections: 0,
                ..EventsSection::default()
            },
            EventsSection {
                send_queue: 0,
                ..EventsSection::default()
            },
            EventsSection {
                idle_timeout_secs: 5,
                heartbeat_secs: 5,
                ..EventsSection::default()
            },
        ] {
            assert!(bad.validate().is_err(), "{bad:?}");
        }
    }
}
