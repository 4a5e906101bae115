//! The response future of [`CircuitBreakerService`](super::CircuitBreakerService).

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use pin_project_lite::pin_project;

use super::Permit;
use crate::error::Error;

pin_project! {
    /// Resolves to the inner service's answer, recording its outcome, or at
    /// once to [`Error::CircuitOpen`] when the breaker refused the call.
    pub struct ResponseFuture<F> {
        #[pin]
        inner: Option<F>,
        permit: Option<Permit>,
        rejected: Option<Error>,
    }
}

impl<F> ResponseFuture<F> {
    pub(crate) fn admitted(inner: F, permit: Permit) -> Self {
        Self {
            inner: Some(inner),
            permit: Some(permit),
            rejected: None,
        }
    }

    pub(crate) fn rejected(error: Error) -> Self {
        Self {
            inner: None,
            permit: None,
            rejected: Some(error),
        }
    }
}

impl<F, T, E> Future for ResponseFuture<F>
where
    F: Future<Output = Result<T, E>>,
    E: Into<Error>,
{
    type Output = Result<T, Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        if let Some(error) = this.rejected.take() {
            return Poll::Ready(Err(error));
        }
        let inner = this
            .inner
            .as_mut()
            .as_pin_mut()
            .expect("circuit breaker future polled after completion");
        let Poll::Ready(result) = inner.poll(cx) else {
            if let Some(permit) = this.permit.as_mut() {
                permit.start_waiting();
            }
            return Poll::Pending;
        };
        let result = result.map_err(Into::into);
        this.inner.set(None);
        if let Some(permit) = this.permit.take() {
            permit.record(&result);
        }
        Poll::Ready(result)
    }
}

impl<F> fmt::Debug for ResponseFuture<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseFuture")
            .field("permit", &self.permit)
            .field("rejected", &self.rejected)
            .finish_non_exhaustive()
    }
}
