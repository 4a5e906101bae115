//! CORS from the `[cors]` allowlist: `docaiche_http`'s typed
//! [`CorsPolicy`] (see [`docaiche_http::cors`]), exposing the rate-limit
//! headers too.

use axum::http::HeaderValue;
use docaiche_http::cors::CorsPolicy;

/// The CORS policy for validated `origins`: nothing allowed when empty;
/// credentials only with listed origins (validation refuses them with `*`).
pub(crate) fn policy(origins: &[String], credentials: bool) -> CorsPolicy {
    let policy = CorsPolicy::new()
        .allow_credentials(credentials)
        .expose_headers([
            docaiche_ratelimit::headers::RATELIMIT,
            docaiche_ratelimit::headers::RATELIMIT_POLICY,
        ]);
    if origins.iter().any(|o| o == "*") {
        policy.allow_any_origin()
    } else {
        // Config::validate has checked every origin; skip rather than panic.
        policy.allow_origins(origins.iter().filter_map(|o| HeaderValue::from_str(o).ok()))
    }
}
