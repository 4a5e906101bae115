use std::task::{Context, Poll};

use tower_service::Service;

use super::CircuitBreaker;
use super::future::ResponseFuture;
use crate::error::Error;

/// A service guarded by a [`CircuitBreaker`]; from
/// [`CircuitBreakerLayer`](super::CircuitBreakerLayer).
///
/// A refused call answers [`Error::CircuitOpen`] without reaching the inner
/// service. Readiness is the inner service's: the breaker decides in `call`,
/// so an open breaker does not make the service look unready to a balancer or
/// a buffer.
#[derive(Debug, Clone)]
pub struct CircuitBreakerService<S> {
    inner: S,
    breaker: CircuitBreaker,
}

impl<S> CircuitBreakerService<S> {
    /// Guard `inner` with `breaker`.
    pub fn new(inner: S, breaker: CircuitBreaker) -> Self {
        Self { inner, breaker }
    }

    /// The breaker.
    pub fn breaker(&self) -> &CircuitBreaker {
        &self.breaker
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

impl<S, Req> Service<Req> for CircuitBreakerService<S>
where
    S: Service<Req>,
    S::Error: Into<Error>,
{
    type Response = S::Response;
    type Error = Error;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, request: Req) -> Self::Future {
        match self.breaker.try_acquire_untimed() {
            Ok(permit) => ResponseFuture::admitted(self.inner.call(request), permit),
            Err(error) => ResponseFuture::rejected(error),
        }
    }
}
