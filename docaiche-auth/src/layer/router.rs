//! [`CredentialRouter`]: one [`Authenticator`] per kind of credential.

use std::sync::Arc;

use docaiche_core::{
    AuthFailure, Authenticator, Credential, Error, Principal, RequestContext, Result,
};

/// Sends each credential to the authenticator for its kind: API keys to
/// one (an [`ApiKeyService`](crate::api_key::ApiKeyService)), bearer
/// tokens to another (the JWT verifier). A kind with no authenticator is
/// refused as `Malformed`.
#[derive(Debug, Clone, Default)]
pub struct CredentialRouter {
    api_key: Option<Arc<dyn Authenticator>>,
    bearer: Option<Arc<dyn Authenticator>>,
}

impl CredentialRouter {
    /// A router that accepts nothing yet.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Verify API keys with `authenticator`.
    #[must_use]
    pub fn api_keys(mut self, authenticator: Arc<dyn Authenticator>) -> Self {
        self.api_key = Some(authenticator);
        self
    }

    /// Verify bearer tokens with `authenticator`.
    #[must_use]
    pub fn bearer(mut self, authenticator: Arc<dyn Authenticator>) -> Self {
        self.bearer = Some(authenticator);
        self
    }
}

#[async_trait::async_trait]
impl Authenticator for CredentialRouter {
    async fn authenticate(
        &self,
        credential: &Credential,
        context: &RequestContext,
    ) -> Result<Principal> {
        match self.target(credential) {
            Some(authenticator) => authenticator.authenticate(credential, context).await,
            None => Err(Error::unauthenticated(AuthFailure::Malformed)),
        }
    }

    fn authenticate_now(
        &self,
        credential: &Credential,
        context: &RequestContext,
    ) -> Option<Result<Arc<Principal>>> {
        match self.target(credential) {
            Some(authenticator) => authenticator.authenticate_now(credential, context),
            None => Some(Err(Error::unauthenticated(AuthFailure::Malformed))),
        }
    }
}

impl CredentialRouter {
    /// The authenticator for `credential`'s kind.
    fn target(&self, credential: &Credential) -> Option<&Arc<dyn Authenticator>> {
        match credential {
            Credential::ApiKey(_) => self.api_key.as_ref(),
            Credential::Bearer(_) => self.bearer.as_ref(),
            _ => None,
        }
    }
}
