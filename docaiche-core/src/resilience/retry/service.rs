use std::task::{Context, Poll};

use tower_service::Service;

use super::Retry;
use super::future::ResponseFuture;
use crate::error::Error;

/// A service whose failed calls are retried; from
/// [`RetryLayer`](super::RetryLayer).
///
/// Each attempt gets a clone of the request, sent to a clone of the inner
/// service that is driven to readiness first (after the wait), so the
/// request type must be `Clone` and the service cheap to clone.
#[derive(Debug, Clone)]
pub struct RetryService<S> {
    inner: S,
    retry: Retry,
}

impl<S> RetryService<S> {
    /// Retry calls to `inner` with `retry`.
    pub fn new(inner: S, retry: Retry) -> Self {
        Self { inner, retry }
    }

    /// The retry settings.
    pub fn retry(&self) -> &Retry {
        &self.retry
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

impl<S, Req> Service<Req> for RetryService<S>
where
    S: Service<Req> + Clone,
    S::Error: Into<Error>,
    Req: Clone,
{
    type Response = S::Response;
    type Error = Error;
    type Future = ResponseFuture<S, Req>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, request: Req) -> Self::Future {
        self.retry.deposit();
        // The first attempt goes to the service that was polled ready; the
        // clone serves the retries, each after its own `poll_ready`.
        let retries = self.inner.clone();
        let first = self.inner.call(request.clone());
        ResponseFuture::new(first, retries, request, self.retry.clone())
    }
}
