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

use axum::extract::ws::Utf8Bytes;
use docaiche_core::{Error, PrincipalId, TenantId};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore, mpsc};

use crate::config::{Config, EventsSection};
use crate::documents::{DocumentEvent, DocumentEventKind, DocumentServices};
use crate::metrics::{MetricSource, counter, counters, gauge};

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
pub(crate) struct Kick {
    pub(crate) kicked: AtomicBool,
    pub(crate) notify: Notify,
}

impl Kick {
    /// Ask the connection to close; whether it was not asked before.
    pub(crate) fn kick(&self) -> bool {
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
pub(crate) struct Counters {
    published: AtomicU64,
    delivered: AtomicU64,
    /// Intake events missed because the forwarder lagged behind.
    lagged: AtomicU64,
    pub(crate) slow_closed: AtomicU64,
    refused_global: AtomicU64,
    refused_tenant: AtomicU64,
    refused_principal: AtomicU64,
    pub(crate) heartbeat_closed: AtomicU64,
}

#[derive(Debug)]
pub(crate) struct Hub {
    pub(crate) limits: EventsSection,
    global: Arc<Semaphore>,
    tenants: Mutex<HashMap<TenantId, Tenant>>,
    next_id: AtomicU64,
    pub(crate) counters: Counters,
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
    pub(crate) hub: Arc<Hub>,
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
    pub(crate) fn reason(self) -> &'static str {
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
    pub(crate) fn subscribe(
        &self,
        tenant: &TenantId,
    ) -> (u64, mpsc::Receiver<Utf8Bytes>, Arc<Kick>) {
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
    pub(crate) fn unsubscribe(&self, tenant: &TenantId, id: u64) {
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

#[cfg(test)]
mod tests;
