use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::task::{Context, Poll};

use docaiche_core::Principal;
use http::{Extensions, Request, Response};
use tower_service::Service;

use super::RateLimitLayer;
use super::check::{Denial, PlannedCheck, Progress, Round};
use super::concurrency::ConcurrencyPermit;
use super::future::{Early, ResponseFuture, RoundContext};
use super::metrics::Outcome;
use crate::headers::ServiceLimitItem;
use crate::policy::{Policy, QuotaOverride, RequestIdentity, TenantTier};

/// A service whose requests are rate limited; from
/// [`RateLimitLayer`](super::RateLimitLayer).
///
/// `poll_ready` is the inner service's: waiting is never how this service
/// limits (an API wants an immediate 429, not a queue). The inner service
/// is cloned per request because it is called only after the limiter
/// answers (the ready clone is the one called).
#[derive(Debug, Clone)]
pub struct RateLimit<S> {
    inner: S,
    layer: RateLimitLayer,
}

impl<S> RateLimit<S> {
    /// Limit calls to `inner` as `layer` says.
    pub fn new(inner: S, layer: RateLimitLayer) -> Self {
        Self { inner, layer }
    }

    /// The layer's configuration (class, policies, metrics).
    pub fn layer(&self) -> &RateLimitLayer {
        &self.layer
    }

    /// The inner service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The inner service, mutably.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// The inner service, unwrapped.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for RateLimit<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>> + Clone,
    ResBody: From<String>,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = ResponseFuture<S, ReqBody, S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        let shared = &self.layer.shared;
        let extensions = request.extensions();
        let principal = Principal::from_extensions(extensions);
        let client_addr = shared
            .policies
            .client_addr()
            .resolve(peer_addr(extensions), request.headers());
        let identity = RequestIdentity::new(principal, client_addr);
        let policy = shared
            .policies
            .resolve(
                &self.layer.class,
                identity.tenant(),
                extensions.get::<TenantTier>(),
            )
            .map_or_else(|| Arc::clone(&self.layer.base), Arc::clone);
        let ipv6_prefix = shared.policies.ipv6_prefix();

        let mut permit = None;
        if let Some(limit) = policy.concurrency()
            && let Some(gate) = shared.gates.get(policy.name().as_str())
        {
            match gate.try_acquire(limit.key(&identity, ipv6_prefix)) {
                Ok(p) => permit = Some(p),
                Err(refused) => {
                    tracing::debug!(policy = %policy.name(), ?refused, "concurrency limit reached");
                    shared
                        .metrics
                        .record(policy.name().as_str(), Outcome::Limited, false);
                    let denial = Denial::concurrency(limit.name().clone());
                    let context = self.context(policy, None, None);
                    return ResponseFuture::answered(Early::Denied(denial), context);
                }
            }
        }

        if policy.limits().is_empty() {
            // Concurrency only: nothing to ask the limiter.
            shared
                .metrics
                .record(policy.name().as_str(), Outcome::Allowed, false);
            let current = policy.concurrency().zip(permit.as_ref()).map(|(limit, p)| {
                ServiceLimitItem::without_window(limit.name().clone(), p.remaining())
            });
            let context = self.context(policy, permit, current);
            return ResponseFuture::calling(self.inner.call(request), context);
        }

        let overrides = extensions.get::<QuotaOverride>();
        let checks = policy
            .limits()
            .iter()
            .map(|limit| {
                let (key, quota) = match overrides.and_then(|o| o.replacement(limit.key_selector()))
                {
                    Some((selector, quota)) => {
                        (limit.key_by(selector, &identity, ipv6_prefix), quota)
                    }
                    None => (limit.key(&identity, ipv6_prefix), *limit.quota()),
                };
                PlannedCheck {
                    name: limit.name().clone(),
                    key,
                    quota,
                    cost: limit.cost_rule().cost(extensions),
                }
            })
            .collect();
        let mut context = self.context(policy, permit, None);
        match Round::new(checks).decide_now(&*shared.limiter) {
            // Decided without waiting (an in-process limiter): no boxed
            // future, and the ready inner service is called at once.
            Progress::Done(outcome) => match context.settle(outcome) {
                Some(early) => ResponseFuture::answered(early, context),
                None => ResponseFuture::calling(self.inner.call(request), context),
            },
            Progress::Pending(round) => {
                let round = Box::pin((*round).decide(Arc::clone(&shared.limiter)));
                // Call the instance that was driven to readiness; keep a
                // fresh clone.
                let clone = self.inner.clone();
                let ready = std::mem::replace(&mut self.inner, clone);
                ResponseFuture::checking(round, ready, request, context)
            }
        }
    }
}

impl<S> RateLimit<S> {
    fn context(
        &self,
        policy: Arc<Policy>,
        permit: Option<ConcurrencyPermit>,
        current: Option<ServiceLimitItem>,
    ) -> RoundContext {
        RoundContext {
            policy,
            metrics: self.layer.shared.metrics.clone(),
            on_limiter_error: self.layer.shared.policies.on_limiter_error(),
            permit,
            current,
        }
    }
}

/// The socket peer: axum's `ConnectInfo<SocketAddr>` (with the `axum`
/// feature), else a plain `SocketAddr` extension (insert one per
/// connection when serving with hyper directly).
fn peer_addr(extensions: &Extensions) -> Option<IpAddr> {
    #[cfg(feature = "axum")]
    if let Some(info) = extensions.get::<axum::extract::ConnectInfo<SocketAddr>>() {
        return Some(info.0.ip());
    }
    extensions.get::<SocketAddr>().map(SocketAddr::ip)
}
