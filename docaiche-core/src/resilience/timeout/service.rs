use std::task::{Context, Poll};

use tower_service::Service;

use super::Timeout;
use super::future::ResponseFuture;
use crate::error::Error;

/// A service whose calls get a deadline; from
/// [`TimeoutLayer`](super::TimeoutLayer).
///
/// Only the call is timed, not `poll_ready`: waiting for readiness is
/// backpressure, which belongs to a load-shedding or concurrency layer.
#[derive(Debug, Clone)]
pub struct TimeoutService<S> {
    inner: S,
    timeout: Timeout,
}

impl<S> TimeoutService<S> {
    /// Apply `timeout` to calls to `inner`.
    pub fn new(inner: S, timeout: Timeout) -> Self {
        Self { inner, timeout }
    }

    /// The timeout.
    pub fn timeout(&self) -> &Timeout {
        &self.timeout
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

impl<S, Req> Service<Req> for TimeoutService<S>
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
        ResponseFuture::new(self.inner.call(request), self.timeout.clone())
    }
}
