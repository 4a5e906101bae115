use tower_layer::Layer;

use super::{CircuitBreaker, CircuitBreakerService};

/// Wraps services in a [`CircuitBreakerService`] sharing one
/// [`CircuitBreaker`].
///
/// Cheap to clone (the breaker is an `Arc`). Every service this layer makes,
/// and every direct [`CircuitBreaker::call`] on the same breaker, feeds and
/// obeys the same state.
///
/// ```
/// use std::sync::Arc;
/// use docaiche_core::clock::ManualClock;
/// use docaiche_core::resilience::{CircuitBreaker, CircuitBreakerLayer};
/// use docaiche_core::Error;
/// use tower::{ServiceBuilder, ServiceExt};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Error> {
/// let breaker = CircuitBreaker::builder("vault")
///     .clock(Arc::new(ManualClock::new()))
///     .build()?;
/// let service = ServiceBuilder::new()
///     .layer(CircuitBreakerLayer::new(breaker))
///     .service_fn(|name: &'static str| async move { Ok::<_, Error>(name.len()) });
/// assert_eq!(service.oneshot("secret").await?, 6);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct CircuitBreakerLayer {
    breaker: CircuitBreaker,
}

impl CircuitBreakerLayer {
    /// A layer guarding services with `breaker`.
    #[must_use]
    pub fn new(breaker: CircuitBreaker) -> Self {
        Self { breaker }
    }
}

impl<S> Layer<S> for CircuitBreakerLayer {
    type Service = CircuitBreakerService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        CircuitBreakerService::new(inner, self.breaker.clone())
    }
}
