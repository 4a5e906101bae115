//! The HTTP handlers, one module per API area. Each module adds its routes
//! to a [`crate::app::RouteGroup`] with the permissions they require; the
//! router, its layers and the groups live in `crate::app`.

pub(crate) mod admin;
pub(crate) mod audit;
pub(crate) mod documents;
pub(crate) mod events;
pub(crate) mod jobs;
pub(crate) mod keys;
pub(crate) mod privacy;
