use tower_layer::Layer;

use super::{Retry, RetryService};

/// Wraps services in a [`RetryService`].
///
/// Cheap to clone; every service it makes shares the [`Retry`]'s budget.
///
/// ```
/// use std::sync::Arc;
/// use docaiche_core::clock::ManualClock;
/// use docaiche_core::resilience::{Retry, RetryLayer, RetryPolicy};
/// use docaiche_core::Error;
/// use tower::{ServiceBuilder, ServiceExt};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Error> {
/// let retry = Retry::new(RetryPolicy::builder().build()?, Arc::new(ManualClock::new()));
/// let service = ServiceBuilder::new()
///     .layer(RetryLayer::new(retry))
///     .service_fn(|id: u32| async move { Ok::<_, Error>(id * 2) });
/// assert_eq!(service.oneshot(21).await?, 42);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct RetryLayer {
    retry: Retry,
}

impl RetryLayer {
    /// A layer retrying with `retry`.
    #[must_use]
    pub fn new(retry: Retry) -> Self {
        Self { retry }
    }
}

impl<S> Layer<S> for RetryLayer {
    type Service = RetryService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RetryService::new(inner, self.retry.clone())
    }
}
