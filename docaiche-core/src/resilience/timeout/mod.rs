//! A deadline for one operation, on the injected [`Clock`].
//!
//! The operation's future races [`Clock::sleep`]; if the sleep wins, the
//! operation is dropped (cancelled) and the caller gets [`Error::Timeout`],
//! which is retryable and counts as a dependency failure for a circuit breaker.
//!
//! **The deadline starts at the first poll that finds the operation not
//! ready**, not when `call` is made: an operation that completes on its first
//! poll (a cache hit, an in-memory backend) never creates a timer, which saves
//! an allocation and a timer registration on the fast path. The cost is that
//! the time spent inside that first poll is not counted, and a future that is
//! created but not polled has no deadline yet; both are negligible for the
//! I/O-bound operations this guards.
//!
//! ```
//! use std::sync::Arc;
//! use std::time::Duration;
//! use docaiche_core::clock::ManualClock;
//! use docaiche_core::resilience::Timeout;
//! use docaiche_core::Error;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let clock = ManualClock::new().with_auto_advance();
//! let timeout = Timeout::new(Duration::from_secs(5), "pdf_extract", Arc::new(clock));
//!
//! assert_eq!(timeout.call(async { Ok(7) }).await.unwrap(), 7);
//!
//! let stuck = timeout.call(std::future::pending::<Result<(), Error>>());
//! assert!(matches!(stuck.await, Err(Error::Timeout { .. })));
//! # }
//! ```

use std::borrow::Cow;
use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use crate::clock::Clock;
use crate::error::Error;

pub mod future;
mod layer;
mod service;

pub use layer::TimeoutLayer;
pub use service::TimeoutService;

use future::ResponseFuture;

/// A deadline for an operation named for the error and the logs.
///
/// Cheap to clone (an `Arc` inside).
#[derive(Clone)]
pub struct Timeout {
    inner: Arc<TimeoutInner>,
}

struct TimeoutInner {
    duration: Duration,
    operation: Cow<'static, str>,
    clock: Arc<dyn Clock>,
}

impl Timeout {
    /// Give `operation` at most `duration`, measured on `clock`.
    pub fn new(
        duration: Duration,
        operation: impl Into<Cow<'static, str>>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            inner: Arc::new(TimeoutInner {
                duration,
                operation: operation.into(),
                clock,
            }),
        }
    }

    /// The deadline.
    #[must_use]
    pub fn duration(&self) -> Duration {
        self.inner.duration
    }

    /// The operation's name.
    #[must_use]
    pub fn operation(&self) -> &str {
        &self.inner.operation
    }

    /// Run `future` with the deadline.
    ///
    /// The returned future resolves to `future`'s output, or to
    /// [`Error::Timeout`] once the deadline passes (dropping `future`).
    pub fn call<T, F>(&self, future: F) -> ResponseFuture<F>
    where
        F: Future<Output = Result<T, Error>>,
    {
        ResponseFuture::new(future, self.clone())
    }

    fn clock(&self) -> &dyn Clock {
        &*self.inner.clock
    }

    fn elapsed(&self) -> Error {
        Error::Timeout {
            operation: self.inner.operation.clone(),
            after: self.inner.duration,
        }
    }
}

impl fmt::Debug for Timeout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Timeout")
            .field("duration", &self.inner.duration)
            .field("operation", &self.inner.operation)
            .field("clock", &self.inner.clock)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use std::task::{Context, Poll, Waker};

    use tower::{ServiceExt, service_fn};
    use tower_layer::Layer as _;

    use super::*;
    use crate::clock::ManualClock;

    fn timeout(clock: &ManualClock) -> Timeout {
        Timeout::new(Duration::from_secs(5), "extract", Arc::new(clock.clone()))
    }

    #[tokio::test]
    async fn completes_when_the_future_wins() {
        let clock = ManualClock::new();
        let timeout = timeout(&clock);
        assert_eq!(
            timeout.call(async { Ok("text") }).await.expect("ready"),
            "text"
        );
        // Completed on its first poll: no timer was ever created.
        assert!(clock.sleeps().is_empty());

        // Completing before the deadline after waiting also wins.
        let gate = clock.sleep(Duration::from_secs(4));
        let result = timeout.call(async move {
            gate.await;
            Ok(4)
        });
        let mut result = Box::pin(result);
        assert!(futures_util::poll!(result.as_mut()).is_pending());
        clock.advance(Duration::from_secs(4));
        assert_eq!(result.await.expect("within the deadline"), 4);
    }

    #[test]
    fn returns_timeout_once_the_clock_passes_the_deadline() {
        let clock = ManualClock::new();
        let timeout = timeout(&clock);
        let mut cx = Context::from_waker(Waker::noop());
        let mut stuck = Box::pin(timeout.call(std::future::pending::<Result<()>>()));
        assert!(stuck.as_mut().poll(&mut cx).is_pending());
        clock.advance(Duration::from_millis(4_999));
        assert!(stuck.as_mut().poll(&mut cx).is_pending());
        clock.advance(Duration::from_millis(1));
        match stuck.as_mut().poll(&mut cx) {
            Poll::Ready(Err(Error::Timeout { operation, after })) => {
                assert_eq!(operation, "extract");
                assert_eq!(after, Duration::from_secs(5));
            }
            other => panic!("expected a timeout, got {other:?}"),
        }
        drop(stuck);
        assert_eq!(clock.pending_sleepers(), 0, "the timer was released");
    }

    #[tokio::test]
    async fn layer_times_out_a_slow_inner_service() {
        let clock = ManualClock::new().with_auto_advance();
        let service =
            TimeoutLayer::new(timeout(&clock)).layer(service_fn(|slow: bool| async move {
                if slow {
                    std::future::pending::<()>().await;
                }
                Ok::<_, Error>("done")
            }));
        assert_eq!(service.clone().oneshot(false).await.expect("fast"), "done");
        let err = service.oneshot(true).await.expect_err("slow");
        assert!(matches!(err, Error::Timeout { .. }), "{err}");
        assert_eq!(clock.sleeps(), [Duration::from_secs(5)]);
    }

    use crate::error::Result;
}
