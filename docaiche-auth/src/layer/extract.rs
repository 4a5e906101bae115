//! The axum extractor for the authenticated [`Principal`].

use docaiche_core::{AuthFailure, Error, Principal};

use super::permission::principal_of;

/// The authenticated caller, for axum handlers:
/// `async fn handler(Authenticated(principal): Authenticated)`.
///
/// Reads the [`Principal`] the [`AuthLayer`](super::AuthLayer) put in the
/// request extensions; without one (a route not behind the layer) the
/// request is refused with the core's 401 problem+json.
#[derive(Debug, Clone, PartialEq, Eq)]
// Exhaustive on purpose: a newtype extractor is meant to be destructured in
// handler signatures, and it will never grow a field.
#[allow(clippy::exhaustive_structs)]
pub struct Authenticated(pub Principal);

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for Authenticated {
    type Rejection = Error;

    async fn from_request_parts(
        parts: &mut http::request::Parts,
        _state: &S,
    ) -> Result<Self, Self::Rejection> {
        principal_of(&parts.extensions)
            .cloned()
            .map(Self)
            .ok_or(Error::unauthenticated(AuthFailure::Missing))
    }
}
