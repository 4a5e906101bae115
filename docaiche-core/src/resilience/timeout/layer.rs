use tower_layer::Layer;

use super::{Timeout, TimeoutService};

/// Wraps services in a [`TimeoutService`].
///
/// Cheap to clone.
///
/// ```
/// use std::sync::Arc;
/// use std::time::Duration;
/// use docaiche_core::clock::SystemClock;
/// use docaiche_core::resilience::{Timeout, TimeoutLayer};
/// use docaiche_core::Error;
/// use tower::{ServiceBuilder, ServiceExt};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Error> {
/// let timeout = Timeout::new(Duration::from_secs(2), "ocr", Arc::new(SystemClock::new()));
/// let service = ServiceBuilder::new()
///     .layer(TimeoutLayer::new(timeout))
///     .service_fn(|page: u32| async move { Ok::<_, Error>(page + 1) });
/// assert_eq!(service.oneshot(1).await?, 2);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct TimeoutLayer {
    timeout: Timeout,
}

impl TimeoutLayer {
    /// A layer applying `timeout` to every call.
    #[must_use]
    pub fn new(timeout: Timeout) -> Self {
        Self { timeout }
    }
}

impl<S> Layer<S> for TimeoutLayer {
    type Service = TimeoutService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        TimeoutService::new(inner, self.timeout.clone())
    }
}
