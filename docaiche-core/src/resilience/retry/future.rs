//! The response future of [`RetryService`](super::RetryService).

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use pin_project_lite::pin_project;
use tower_service::Service;

use super::Retry;
use crate::clock::BoxFuture;
use crate::error::Error;

pin_project! {
    /// Drives attempts, waits and readiness until an attempt succeeds or the
    /// retry gives up.
    pub struct ResponseFuture<S, Req>
    where
        S: Service<Req>,
    {
        #[pin]
        attempt: Option<S::Future>,
        wait: Option<BoxFuture<'static, ()>>,
        service: S,
        request: Req,
        retry: Retry,
        attempts: u32,
    }
}

impl<S, Req> ResponseFuture<S, Req>
where
    S: Service<Req>,
{
    pub(crate) fn new(first: S::Future, service: S, request: Req, retry: Retry) -> Self {
        Self {
            attempt: Some(first),
            wait: None,
            service,
            request,
            retry,
            attempts: 0,
        }
    }
}

impl<S, Req> Future for ResponseFuture<S, Req>
where
    S: Service<Req>,
    S::Error: Into<Error>,
    Req: Clone,
{
    type Output = Result<S::Response, Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        loop {
            if let Some(attempt) = this.attempt.as_mut().as_pin_mut() {
                let error = match ready!(attempt.poll(cx)) {
                    Ok(response) => return Poll::Ready(Ok(response)),
                    Err(error) => error.into(),
                };
                this.attempt.set(None);
                *this.attempts += 1;
                match this.retry.next_delay(&error, *this.attempts) {
                    Some(delay) => *this.wait = Some(this.retry.clock().sleep(delay)),
                    None => return Poll::Ready(Err(error)),
                }
            }
            if let Some(wait) = this.wait.as_mut() {
                ready!(wait.as_mut().poll(cx));
                *this.wait = None;
            }
            // Waited: the next attempt once the service is ready.
            if let Err(error) = ready!(this.service.poll_ready(cx)) {
                return Poll::Ready(Err(error.into()));
            }
            let attempt = this.service.call(this.request.clone());
            this.attempt.set(Some(attempt));
        }
    }
}

impl<S, Req> fmt::Debug for ResponseFuture<S, Req>
where
    S: Service<Req>,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseFuture")
            .field("attempts", &self.attempts)
            .field("waiting", &self.wait.is_some())
            .finish_non_exhaustive()
    }
}
