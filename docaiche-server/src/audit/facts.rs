//! Recording from handlers: the [`AuditFacts`] extractor (client address,
//! request id, user agent), document accesses queued without waiting, and
//! administrative attempts recorded before acting (fail-closed when
//! `[audit]` says so).

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::HeaderMap;
use axum::http::request::Parts;
use docaiche_compliance::audit::Criticality;
use docaiche_core::audit::{AuditEvent, AuditOutcome, AuditResource};
use docaiche_core::{Error, Principal, RequestContext};
use time::OffsetDateTime;

use crate::state::AppState;

/// The facts of a request for the audit trail: client address,
/// `X-Request-Id` and `User-Agent` (bounded), as an extractor.
pub(crate) struct AuditFacts(pub(crate) RequestContext);

impl<S: Send + Sync> FromRequestParts<S> for AuditFacts {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        if let Some(context) = parts.extensions.get::<RequestContext>() {
            return Ok(Self(context.clone()));
        }
        let mut context = RequestContext::new();
        if let Some(ConnectInfo(peer)) = parts.extensions.get::<ConnectInfo<SocketAddr>>() {
            context = context.with_client_addr(peer.ip());
        }
        Ok(Self(with_headers(context, &parts.headers)))
    }
}

/// The facts of `headers` for an audit event: `X-Request-Id` and
/// `User-Agent` (bounded), on top of `context`.
fn with_headers(mut context: RequestContext, headers: &HeaderMap) -> RequestContext {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .filter(|v| !v.is_empty() && v.len() <= 128)
    };
    if let Some(id) = header("x-request-id") {
        context = context.with_request_id(id);
    }
    if let Some(agent) = header("user-agent") {
        context = context.with_user_agent(agent);
    }
    context
}

/// An event of `caller` doing `action` to the document `id`.
fn document_event(caller: &Principal, action: &str, id: &str, headers: &HeaderMap) -> AuditEvent {
    AuditEvent::new(
        action,
        AuditOutcome::Success,
        OffsetDateTime::now_utc(),
        &with_headers(RequestContext::new(), headers),
    )
    .by(caller.tenant.clone(), Some(caller.id.clone()))
    .on(AuditResource::new("document", id))
}

/// Audit a document access (`document.create`, `document.read`,
/// `document.delete`): queued without waiting; a full buffer drops the
/// event (counted, alerted) rather than slowing the request.
pub(crate) fn document(
    state: &AppState,
    caller: &Principal,
    action: &'static str,
    id: &str,
    headers: &HeaderMap,
) {
    if let Some(trail) = &state.audit {
        let event = document_event(caller, action, id, headers);
        // Routine events never fail the request; drops are counted.
        let _ = trail.buffer.submit(event);
    }
}

/// Record that `caller` is about to perform the administrative `action`
/// (`<action>.attempt`), before acting.
///
/// # Errors
/// `Unavailable` (503) when the event cannot be recorded and `[audit]` is
/// fail-closed: the action must not happen.
pub(crate) async fn administrative(
    state: &AppState,
    caller: &Principal,
    action: &str,
    context: &RequestContext,
) -> Result<(), Error> {
    let Some(trail) = &state.audit else {
        return Ok(());
    };
    let event = AuditEvent::new(
        format!("{action}.attempt"),
        AuditOutcome::Success,
        OffsetDateTime::now_utc(),
        context,
    )
    .by(caller.tenant.clone(), Some(caller.id.clone()));
    trail
        .auditor
        .audit(event, Criticality::Administrative)
        .await
        .map(|_| ())
}
