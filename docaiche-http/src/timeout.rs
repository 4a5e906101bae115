//! The request deadline: [`RequestTimeoutLayer`].
//!
//! A request not answered within its deadline is answered with an empty
//! answer of the layer's status (504 in [`crate::secure_stack`], where
//! [`crate::rejection::ProblemAnswersLayer`] turns it into a problem), and
//! the inner future is dropped with the response future.
//!
//! # Why not tower-http's `Timeout`
//!
//! tower-http's `Timeout` answers the same, but polls its timer before the
//! inner future: every request registers a timer in tokio's timer wheel
//! and removes it again (two trips through the wheel's lock), though most
//! answers are ready on the first poll. [`RequestTimeout`] polls the inner
//! future first and arms the timer only when it is still pending, at the
//! same deadline (measured from the call). The timer is boxed then, which
//! keeps the response future small for the answers that never need it.
//! The one difference: an answer and the deadline ready at the same poll
//! give the answer, not the timeout.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use http::{Response, StatusCode};
use tokio::time::{Instant, Sleep};
use tower_layer::Layer;
use tower_service::Service;

/// Answers requests not done within a deadline; see the
/// [module docs](self).
#[derive(Debug, Clone, Copy)]
pub struct RequestTimeoutLayer {
    timeout: Duration,
    status: StatusCode,
}

impl RequestTimeoutLayer {
    /// Answer a request not done within `timeout` with an empty answer of
    /// `status`.
    #[must_use]
    pub const fn new(timeout: Duration, status: StatusCode) -> Self {
        Self { timeout, status }
    }
}

impl<S> Layer<S> for RequestTimeoutLayer {
    type Service = RequestTimeout<S>;

    fn layer(&self, inner: S) -> RequestTimeout<S> {
        RequestTimeout {
            inner,
            timeout: self.timeout,
            status: self.status,
        }
    }
}

/// The service of [`RequestTimeoutLayer`].
#[derive(Debug, Clone, Copy)]
pub struct RequestTimeout<S> {
    inner: S,
    timeout: Duration,
    status: StatusCode,
}

impl<S> RequestTimeout<S> {
    /// The inner service.
    pub const fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The inner service, mutably.
    pub const fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// The inner service, unwrapped.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S, Req, B> Service<Req> for RequestTimeout<S>
where
    S: Service<Req, Response = Response<B>>,
    B: Default,
{
    type Response = Response<B>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Req) -> Self::Future {
        ResponseFuture {
            deadline: Instant::now() + self.timeout,
            inner: self.inner.call(request),
            sleep: None,
            status: self.status,
        }
    }
}

pin_project_lite::pin_project! {
    /// The response future of [`RequestTimeout`].
    pub struct ResponseFuture<F> {
        #[pin]
        inner: F,
        deadline: Instant,
        // Armed once the inner future is pending.
        sleep: Option<Pin<Box<Sleep>>>,
        status: StatusCode,
    }
}

impl<F: std::fmt::Debug> std::fmt::Debug for ResponseFuture<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResponseFuture")
            .field("inner", &self.inner)
            .field("deadline", &self.deadline)
            .field("status", &self.status)
            .finish_non_exhaustive()
    }
}

impl<F, B, E> Future for ResponseFuture<F>
where
    F: Future<Output = Result<Response<B>, E>>,
    B: Default,
{
    type Output = Result<Response<B>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        if let Poll::Ready(answer) = this.inner.poll(cx) {
            return Poll::Ready(answer);
        }
        let deadline = *this.deadline;
        let sleep = this
            .sleep
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
        ready!(sleep.as_mut().poll(cx));
        let mut answer = Response::new(B::default());
        *answer.status_mut() = *this.status;
        Poll::Ready(Ok(answer))
    }
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;

    use tower::ServiceExt as _;

    use super::*;

    /// Answers `200` after `delay`.
    fn slow(delay: Duration) -> impl Service<(), Response = Response<()>, Error = Infallible> {
        tower::service_fn(move |()| async move {
            tokio::time::sleep(delay).await;
            Ok::<_, Infallible>(Response::new(()))
        })
    }

    #[tokio::test(start_paused = true)]
    async fn an_answer_within_the_deadline_passes() {
        let layer = RequestTimeoutLayer::new(Duration::from_secs(5), StatusCode::GATEWAY_TIMEOUT);
        let answer = layer
            .layer(slow(Duration::from_secs(4)))
            .oneshot(())
            .await
            .expect("infallible");
        assert_eq!(answer.status(), StatusCode::OK);
    }

    #[tokio::test(start_paused = true)]
    async fn a_late_answer_is_replaced_at_the_deadline_counted_from_the_call() {
        let layer = RequestTimeoutLayer::new(Duration::from_secs(5), StatusCode::GATEWAY_TIMEOUT);
        let started = Instant::now();
        let mut service = layer.layer(slow(Duration::from_secs(60)));
        let future = service.ready().await.expect("ready").call(());
        // Time passes between the call and the first poll: the deadline
        // still counts from the call.
        tokio::time::advance(Duration::from_secs(2)).await;
        let answer = future.await.expect("infallible");
        assert_eq!(answer.status(), StatusCode::GATEWAY_TIMEOUT);
        assert_eq!(started.elapsed(), Duration::from_secs(5));
    }

    #[tokio::test]
    async fn an_immediate_answer_is_ready_at_the_first_poll() {
        let layer = RequestTimeoutLayer::new(Duration::from_secs(5), StatusCode::GATEWAY_TIMEOUT);
        let service = layer.layer(tower::service_fn(|()| async {
            Ok::<_, Infallible>(Response::new(()))
        }));
        let mut future = std::pin::pin!(service.oneshot(()));
        let waker = std::task::Waker::noop();
        let answer = future.as_mut().poll(&mut Context::from_waker(waker));
        assert!(matches!(answer, Poll::Ready(Ok(ref r)) if r.status() == StatusCode::OK));
    }
}
