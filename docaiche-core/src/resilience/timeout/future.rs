//! The future of [`Timeout::call`](super::Timeout::call) and
//! [`TimeoutService`](super::TimeoutService).

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use pin_project_lite::pin_project;

use super::Timeout;
use crate::clock::BoxFuture;
use crate::error::Error;

pin_project! {
    /// Resolves to the inner future's output, or to [`Error::Timeout`] once
    /// the deadline passes.
    pub struct ResponseFuture<F> {
        #[pin]
        inner: F,
        deadline: Option<BoxFuture<'static, ()>>,
        timeout: Timeout,
    }
}

impl<F> ResponseFuture<F> {
    pub(crate) fn new(inner: F, timeout: Timeout) -> Self {
        Self {
            inner,
            deadline: None,
            timeout,
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
        let this = self.project();
        // The operation first: if both are ready, the result wins.
        if let Poll::Ready(result) = this.inner.poll(cx) {
            return Poll::Ready(result.map_err(Into::into));
        }
        let timeout = &*this.timeout;
        let deadline = this
            .deadline
            .get_or_insert_with(|| timeout.clock().sleep(timeout.duration()));
        match deadline.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(timeout.elapsed())),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl<F> fmt::Debug for ResponseFuture<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseFuture")
            .field("timeout", &self.timeout)
            .field("started", &self.deadline.is_some())
            .finish_non_exhaustive()
    }
}
