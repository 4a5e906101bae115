//! [`HttpJwksFetcher`]: discovery and JWKS over HTTPS with reqwest.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use docaiche_core::{Error, Result};
use rustls_platform_verifier::BuilderVerifierExt as _;

use super::{JwksFetcher, issuer_problem};

/// Fetches documents over HTTPS: reqwest with rustls (the `ring` provider,
/// passed explicitly so no process-wide provider is installed) and the
/// platform's trust store. Redirects are not followed, HTTP/1.1 only, a
/// connect and a total timeout apply, and bodies are capped while read.
#[derive(Clone)]
pub struct HttpJwksFetcher {
    client: reqwest::Client,
}

impl fmt::Debug for HttpJwksFetcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpJwksFetcher").finish_non_exhaustive()
    }
}

impl HttpJwksFetcher {
    /// A fetcher whose requests give up after `timeout`.
    ///
    /// # Errors
    /// [`Error::Misconfigured`] if the TLS configuration or the platform
    /// trust store cannot be loaded.
    pub fn new(timeout: Duration) -> Result<Self> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .and_then(|builder| builder.with_platform_verifier())
            .map_err(|err| Error::misconfigured("oidc.tls", format!("TLS setup failed: {err}")))?
            .with_no_client_auth();
        let client = reqwest::Client::builder()
            .tls_backend_preconfigured(tls)
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(timeout)
            .timeout(timeout)
            .user_agent(concat!("docaiche-auth/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|err| {
                Error::misconfigured("oidc.http", format!("HTTP client setup failed: {err}"))
            })?;
        Ok(Self { client })
    }
}

#[async_trait::async_trait]
impl JwksFetcher for HttpJwksFetcher {
    async fn fetch(&self, url: &str, max_len: usize) -> Result<Vec<u8>> {
        let mut response = self
            .client
            .get(url)
            .header(reqwest::header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(|err| Error::unavailable("oidc issuer", err.without_url()))?;
        if !response.status().is_success() {
            return Err(issuer_problem("issuer answered with a non-success status"));
        }
        let too_large = || issuer_problem("issuer document exceeds the size limit");
        if response
            .content_length()
            .is_some_and(|len| usize::try_from(len).map_or(true, |len| len > max_len))
        {
            return Err(too_large());
        }
        let mut body = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|err| Error::unavailable("oidc issuer", err.without_url()))?
        {
            if body.len() + chunk.len() > max_len {
                return Err(too_large());
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    }
}
