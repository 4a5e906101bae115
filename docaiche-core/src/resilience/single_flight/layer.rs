use std::fmt;
use std::hash::Hash;

use tower_layer::Layer;

use super::{SingleFlight, SingleFlightService};

/// Wraps services in a [`SingleFlightService`] keyed by `key_fn`.
///
/// Every service made by this layer (and every clone of it) shares the
/// layer's [`SingleFlight`] group; [`SingleFlightLayer::with_group`] shares a
/// group with direct [`SingleFlight::run`] calls too. Cheap to clone when the
/// key function is.
///
/// ```
/// use docaiche_core::resilience::SingleFlightLayer;
/// use docaiche_core::Error;
/// use tower::{ServiceBuilder, ServiceExt};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Error> {
/// // Concurrent lookups of one document id share one backend call.
/// let service = ServiceBuilder::new()
///     .layer(SingleFlightLayer::new(|id: &u64| *id))
///     .service_fn(|id: u64| async move { Ok::<_, Error>(format!("document {id}")) });
/// assert_eq!(service.oneshot(7).await?, "document 7");
/// # Ok(()) }
/// ```
pub struct SingleFlightLayer<K, V, F> {
    group: SingleFlight<K, V>,
    key_fn: F,
}

impl<K, V, F> SingleFlightLayer<K, V, F>
where
    K: Hash + Eq + Clone,
    V: Clone,
{
    /// A layer with a group of its own, keying requests by `key_fn`.
    pub fn new(key_fn: F) -> Self {
        Self::with_group(SingleFlight::new(), key_fn)
    }

    /// A layer sharing `group`, keying requests by `key_fn`.
    pub fn with_group(group: SingleFlight<K, V>, key_fn: F) -> Self {
        Self { group, key_fn }
    }
}

impl<K, V, F: Clone> Clone for SingleFlightLayer<K, V, F> {
    fn clone(&self) -> Self {
        Self {
            group: self.group.clone(),
            key_fn: self.key_fn.clone(),
        }
    }
}

impl<K, V, F> fmt::Debug for SingleFlightLayer<K, V, F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SingleFlightLayer")
            .field("group", &self.group)
            .finish_non_exhaustive()
    }
}

impl<S, K, V, F: Clone> Layer<S> for SingleFlightLayer<K, V, F> {
    type Service = SingleFlightService<S, K, V, F>;

    fn layer(&self, inner: S) -> Self::Service {
        SingleFlightService::new(inner, self.group.clone(), self.key_fn.clone())
    }
}
