use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use docaiche_core::{Error, RateLimiter};
use tower_layer::Layer;

use super::RateLimit;
use super::concurrency::ConcurrencyGate;
use super::metrics::RateLimitMetrics;
use crate::policy::{Policy, PolicySet};

/// Wraps services in a [`RateLimit`] for one route class.
///
/// Cheap to clone. Layers made from one another with
/// [`for_class`](Self::for_class) share the limiter, the concurrency slots
/// and the [`RateLimitMetrics`]; apply one per route group:
///
/// ```
/// use std::num::NonZeroU32;
/// use std::sync::Arc;
/// # use docaiche_core::rate_limit::{Quota, RateLimitDecision, RateLimitKey};
/// # use docaiche_core::{RateLimiter, Result};
/// use docaiche_ratelimit::layer::RateLimitLayer;
/// use docaiche_ratelimit::policy::RateLimitConfig;
///
/// # #[derive(Debug)] struct Unlimited;
/// # #[async_trait::async_trait]
/// # impl RateLimiter for Unlimited {
/// #     async fn check(&self, _: &RateLimitKey, q: &Quota, _: NonZeroU32) -> Result<RateLimitDecision> {
/// #         Ok(RateLimitDecision::allow(q.limit.get(), q.limit.get(), q.period))
/// #     }
/// #     async fn peek(&self, k: &RateLimitKey, q: &Quota, c: NonZeroU32) -> Result<RateLimitDecision> {
/// #         self.check(k, q, c).await
/// #     }
/// # }
/// # fn main() -> Result<()> {
/// let config: RateLimitConfig = serde_json::from_value(serde_json::json!({
///     "policies": {
///         "default": { "limits": [{ "key": "tenant", "limit": 600, "period_secs": 60 }] },
///         "documents": { "limits": [{ "key": "tenant", "limit": 60, "period_secs": 60 }] }
///     }
/// })).expect("valid json");
/// let limiter: Arc<dyn RateLimiter> = Arc::new(Unlimited); // e.g. LocalRateLimiter
/// let reads = RateLimitLayer::new(limiter, config.build()?, "default")?;
/// let documents = reads.for_class("documents")?;
/// // Router::new().route("/documents", post(upload)).layer(documents)
/// //     .merge(Router::new().route("/documents/{id}", get(read)).layer(reads))
/// # let _ = documents;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct RateLimitLayer {
    pub(crate) shared: Arc<Shared>,
    pub(crate) class: Arc<str>,
    /// The class's own policy (tiers may replace it per request).
    pub(crate) base: Arc<Policy>,
}

/// What every layer and service made from one [`RateLimitLayer::new`]
/// shares.
pub(crate) struct Shared {
    pub(crate) limiter: Arc<dyn RateLimiter>,
    pub(crate) policies: PolicySet,
    pub(crate) metrics: RateLimitMetrics,
    /// Concurrency slots, by policy name.
    pub(crate) gates: HashMap<String, Arc<ConcurrencyGate>>,
}

impl RateLimitLayer {
    /// A layer limiting requests of route class `class` (a policy name)
    /// with `limiter` under `policies`.
    ///
    /// # Errors
    /// [`Error::Misconfigured`] if no policy is named `class`.
    pub fn new(
        limiter: Arc<dyn RateLimiter>,
        policies: PolicySet,
        class: &str,
    ) -> Result<Self, Error> {
        let gates = policies
            .policies()
            .filter_map(|p| {
                p.concurrency().map(|c| {
                    (
                        p.name().as_str().to_owned(),
                        Arc::new(ConcurrencyGate::new(c)),
                    )
                })
            })
            .collect();
        let metrics = RateLimitMetrics::new(&policies);
        let shared = Arc::new(Shared {
            limiter,
            policies,
            metrics,
            gates,
        });
        Self::with_shared(shared, class)
    }

    /// A layer for another route class, sharing this one's limiter,
    /// concurrency slots and metrics.
    ///
    /// # Errors
    /// [`Error::Misconfigured`] if no policy is named `class`.
    pub fn for_class(&self, class: &str) -> Result<Self, Error> {
        Self::with_shared(Arc::clone(&self.shared), class)
    }

    fn with_shared(shared: Arc<Shared>, class: &str) -> Result<Self, Error> {
        let Some(base) = shared.policies.policy(class).map(Arc::clone) else {
            return Err(Error::misconfigured(
                format!("rate_limit.policies.{class}"),
                format!("the route class `{class}` has no policy of that name"),
            ));
        };
        Ok(Self {
            shared,
            class: Arc::from(class),
            base,
        })
    }

    /// The route class.
    #[must_use]
    pub fn class(&self) -> &str {
        &self.class
    }

    /// The policies.
    #[must_use]
    pub fn policies(&self) -> &PolicySet {
        &self.shared.policies
    }

    /// The counters shared by every layer made from this one.
    #[must_use]
    pub fn metrics(&self) -> &RateLimitMetrics {
        &self.shared.metrics
    }
}

impl<S> Layer<S> for RateLimitLayer {
    type Service = RateLimit<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RateLimit::new(inner, self.clone())
    }
}

impl fmt::Debug for RateLimitLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RateLimitLayer")
            .field("class", &self.class)
            .field("limiter", &self.shared.limiter)
            .field("on_limiter_error", &self.shared.policies.on_limiter_error())
            .finish_non_exhaustive()
    }
}
