//! One copy of a service per thread: [`PerThreadLayer`].
//!
//! Routers that keep their routes as boxed, cloneable services (axum's
//! `Route`) clone a route's whole service for every request. For a deep
//! stack — this crate's, then authentication and rate limiting — that
//! clone touches every shared `Arc` the layers hold: a dozen or more
//! atomic increments and decrements per request, on counters every worker
//! thread shares, so their cache lines move between cores on each request.
//! [`PerThread`] is cheap to clone (one `Arc`) and calls a copy of the
//! service kept for the calling thread, made on the thread's first request.
//!
//! Each call drives its copy to readiness first (with a no-op waker) and
//! calls it at once, as tower requires. A copy that is not ready at once,
//! or that is already in use on this thread (a service calling itself),
//! is not waited for: that request gets a fresh clone of its own, driven
//! to readiness inside its response future, exactly as without this layer.
//!
//! Use it only over services whose clones are interchangeable, the usual
//! case for tower middleware (configuration and shared state behind `Arc`s,
//! no per-instance state a caller relies on between calls).

use std::cell::RefCell;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use thread_local::ThreadLocal;
use tower_layer::Layer;
use tower_service::Service;

/// Wraps a service in [`PerThread`].
#[derive(Debug, Clone, Copy, Default)]
#[non_exhaustive]
pub struct PerThreadLayer;

impl PerThreadLayer {
    /// The layer.
    #[must_use]
    pub const fn new() -> Self {
        Self
    }
}

impl<S: Send> Layer<S> for PerThreadLayer {
    type Service = PerThread<S>;

    fn layer(&self, inner: S) -> PerThread<S> {
        PerThread::new(inner)
    }
}

/// A service calling its calling thread's copy of `S`; see the
/// [module docs](self).
pub struct PerThread<S: Send> {
    shared: Arc<Copies<S>>,
}

/// The original and each thread's copy.
struct Copies<S: Send> {
    original: S,
    copies: ThreadLocal<RefCell<S>>,
}

impl<S: Send> PerThread<S> {
    /// `inner`, copied once per calling thread.
    pub fn new(inner: S) -> Self {
        Self {
            shared: Arc::new(Copies {
                original: inner,
                copies: ThreadLocal::new(),
            }),
        }
    }

    /// The original service (each thread's copy is a clone of it).
    pub fn get_ref(&self) -> &S {
        &self.shared.original
    }
}

impl<S: Send> Clone for PerThread<S> {
    fn clone(&self) -> Self {
        Self {
            shared: Arc::clone(&self.shared),
        }
    }
}

impl<S: Send + fmt::Debug> fmt::Debug for PerThread<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PerThread")
            .field("inner", &self.shared.original)
            .finish_non_exhaustive()
    }
}

impl<S, Request> Service<Request> for PerThread<S>
where
    S: Service<Request> + Clone + Send,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = PerThreadFuture<S, Request>;

    /// Always ready: readiness is the thread's copy's, checked in `call`.
    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request) -> Self::Future {
        let shared = &*self.shared;
        let copy = shared
            .copies
            .get_or(|| RefCell::new(shared.original.clone()));
        if let Ok(mut service) = copy.try_borrow_mut() {
            match service.poll_ready(&mut Context::from_waker(Waker::noop())) {
                Poll::Ready(Ok(())) => {
                    return PerThreadFuture {
                        state: State::Called {
                            future: service.call(request),
                        },
                    };
                }
                Poll::Ready(Err(error)) => {
                    return PerThreadFuture {
                        state: State::Failed { error: Some(error) },
                    };
                }
                Poll::Pending => {}
            }
        }
        PerThreadFuture {
            state: State::Waiting {
                waiting: Box::new((shared.original.clone(), Some(request))),
            },
        }
    }
}

pin_project_lite::pin_project! {
    /// The response future of [`PerThread`].
    pub struct PerThreadFuture<S: Service<Request>, Request> {
        #[pin]
        state: State<S, Request>,
    }
}

pin_project_lite::pin_project! {
    #[project = StateProjection]
    enum State<S: Service<Request>, Request> {
        /// The thread's copy was called.
        Called { #[pin] future: S::Future },
        /// The thread's copy failed its readiness check.
        Failed { error: Option<S::Error> },
        /// A fresh clone, driven to readiness before the call. Boxed: the
        /// service and the request are large, and the common path should
        /// not carry their size in its future.
        Waiting { waiting: Box<(S, Option<Request>)> },
    }
}

impl<S: Service<Request>, Request> fmt::Debug for PerThreadFuture<S, Request> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PerThreadFuture").finish_non_exhaustive()
    }
}

impl<S: Service<Request>, Request> Future for PerThreadFuture<S, Request> {
    type Output = Result<S::Response, S::Error>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        loop {
            let next = match self.as_mut().project().state.project() {
                StateProjection::Called { future } => return future.poll(cx),
                StateProjection::Failed { error } => {
                    return match error.take() {
                        Some(error) => Poll::Ready(Err(error)),
                        // Polled after completion: nothing left to give.
                        None => Poll::Pending,
                    };
                }
                StateProjection::Waiting { waiting } => {
                    let (service, request) = &mut **waiting;
                    if let Err(error) = std::task::ready!(service.poll_ready(cx)) {
                        return Poll::Ready(Err(error));
                    }
                    match request.take() {
                        Some(request) => service.call(request),
                        None => return Poll::Pending,
                    }
                }
            };
            self.as_mut()
                .project()
                .state
                .set(State::Called { future: next });
        }
    }
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use tower::ServiceExt as _;

    use super::*;

    /// Counts its clones; answers with the number of calls its instance
    /// has had.
    #[derive(Debug)]
    struct Counting {
        clones: Arc<AtomicUsize>,
        calls: usize,
    }

    impl Clone for Counting {
        fn clone(&self) -> Self {
            self.clones.fetch_add(1, Ordering::Relaxed);
            Self {
                clones: Arc::clone(&self.clones),
                calls: 0,
            }
        }
    }

    impl Service<()> for Counting {
        type Response = usize;
        type Error = Infallible;
        type Future = std::future::Ready<Result<usize, Infallible>>;

        fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
            Poll::Ready(Ok(()))
        }

        fn call(&mut self, (): ()) -> Self::Future {
            self.calls += 1;
            std::future::ready(Ok(self.calls))
        }
    }

    #[tokio::test]
    async fn a_thread_clones_the_service_once_however_many_requests() {
        let clones = Arc::new(AtomicUsize::new(0));
        let service = PerThreadLayer::new().layer(Counting {
            clones: Arc::clone(&clones),
            calls: 0,
        });
        for expected in 1..=5 {
            // A clone per request, as a router makes.
            let answer = service.clone().oneshot(()).await.expect("infallible");
            assert_eq!(answer, expected, "the thread's copy answered");
        }
        assert_eq!(clones.load(Ordering::Relaxed), 1);
    }

    /// Ready only on the second poll.
    #[derive(Debug, Clone, Default)]
    struct Reluctant {
        polled: bool,
    }

    impl Service<u8> for Reluctant {
        type Response = u8;
        type Error = Infallible;
        type Future = std::future::Ready<Result<u8, Infallible>>;

        fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
            if std::mem::replace(&mut self.polled, true) {
                Poll::Ready(Ok(()))
            } else {
                cx.waker().wake_by_ref();
                Poll::Pending
            }
        }

        fn call(&mut self, request: u8) -> Self::Future {
            self.polled = false;
            std::future::ready(Ok(request))
        }
    }

    #[tokio::test]
    async fn a_copy_not_ready_at_once_is_not_waited_for() {
        let service = PerThread::new(Reluctant::default());
        assert_eq!(service.clone().oneshot(7).await, Ok(7));
        assert_eq!(service.oneshot(8).await, Ok(8));
    }
}
