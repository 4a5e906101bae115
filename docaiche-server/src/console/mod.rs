//! The admin console: HTML pages at `/console` for tenant and platform
//! administrators.
//!
//! **A backend for the browser.** Each page is rendered on the server
//! ([maud](https://maud.lambda.xyz): templates checked at compile time,
//! every interpolated string escaped for HTML text and attributes) from
//! the answers of the same API routes its users could call themselves,
//! called in-process ([`api`]) with an access token minted for the
//! signed-in person for that one call. The console therefore shows and does
//! nothing the API would refuse that person: the same permissions, rate
//! limits, usage counting and audit trail.
//!
//! **Sessions** are server-side ([`docaiche_auth::web_session`]): the
//! browser holds only the cookie `__Host-docaiche-console` (`HttpOnly`,
//! `Secure`, `SameSite=Lax`, `Path=/`; browsers accept `Secure` cookies
//! from `http://localhost` and `127.0.0.1`, so the console works on a
//! loopback development server and otherwise needs HTTPS). Signing in
//! always starts a new session (no fixation); sessions end after 30 idle
//! minutes or 12 hours, on sign-out (on every instance sharing the session
//! store), and when the person is signed out or disabled through the API.
//!
//! **CSRF**: every state-changing form carries the session's synchronizer
//! token (an HMAC of the session, [`WebSessions::csrf_token`]); every
//! `POST` is also refused unless Fetch Metadata (`Sec-Fetch-Site`) says
//! `same-origin` (or, from a browser without it, `Origin` names this
//! host).
//!
//! **Content-Security-Policy** of every page: scripts, styles and images
//! from this origin only, no inline script or style, no framing
//! ([`CONSOLE_CSP`]). Static assets are embedded in the binary and served
//! under content-hashed names with immutable caching ([`assets`]).
//!
//! **Second factor**: a TOTP code after the password for accounts that
//! enrolled one, required of platform administrators and, when their
//! tenant says so, of its administrators ([`mfa`]).
//!
//! The console's routes have their own rate-limit class, `console`
//! (per client address), besides the API limits each in-process call
//! meets.

// Console handlers and their helpers answer `Result<Response, Response>`:
// the refusal *is* the page sent, built once where it is decided; boxing it
// would only add an allocation to every refusal.
#![allow(clippy::result_large_err)]

pub(crate) mod api;
pub(crate) mod assets;
mod chart;
mod keys;
mod layout;
mod mfa;
mod overview;
pub(crate) mod purge;
mod session;
mod signin;
#[cfg(test)]
pub(crate) mod tests;

use std::sync::Arc;

use axum::Router;
use axum::routing::{get, post};
use docaiche_auth::web_session::{WebSessionConfig, WebSessionStore, WebSessions};
use docaiche_core::{Clock, Error, SecretBytes};
use docaiche_store::memory::MemoryWebSessionStore;

use crate::state::AppState;

/// The `Content-Security-Policy` of every console answer.
pub(crate) const CONSOLE_CSP: &str = "default-src 'none'; script-src 'self'; \
     style-src 'self'; img-src 'self'; connect-src 'self'; form-action 'self'; \
     frame-ancestors 'none'; base-uri 'none'";

/// The session cookie's name.
pub(crate) const COOKIE: &str = "__Host-docaiche-console";

/// The console's rate-limit class.
pub(crate) const CLASS: &str = "console";

/// The console's services.
#[derive(Debug)]
pub(crate) struct Console {
    /// Browser sessions.
    pub(crate) sessions: WebSessions,
}

impl Console {
    /// The console with sessions in `store`, CSRF tokens under `key`,
    /// sessions ended by the subject revocations of `revocations`.
    ///
    /// # Errors
    /// As [`WebSessions::new`].
    pub(crate) fn new(
        store: Arc<dyn WebSessionStore>,
        key: &SecretBytes,
        revocations: Arc<dyn docaiche_core::revocation::TokenRevocationStore>,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, Error> {
        let sessions = WebSessions::new(store, key, WebSessionConfig::default(), clock)?
            .with_revocations(revocations);
        Ok(Self { sessions })
    }

    /// The console of `auth`, with sessions in this process's memory.
    ///
    /// # Errors
    /// As [`Console::new`].
    pub(crate) fn in_memory(auth: &crate::auth::AuthServices) -> Result<Self, Error> {
        Self::new(
            Arc::new(MemoryWebSessionStore::new()),
            &auth.console_key,
            Arc::clone(&auth.stores.revocations),
            Arc::clone(&auth.clock),
        )
    }
}

/// The console's routes; `api` is the API router its pages call.
pub(crate) fn routes(api: Router) -> Router<AppState> {
    Router::new()
        .route("/console", get(overview::page))
        .route("/console/sign-in", get(signin::form).post(signin::submit))
        .route("/console/sign-out", post(signin::sign_out))
        .route(mfa::CODE_PATH, get(mfa::code_form).post(mfa::code_submit))
        .route(mfa::ACCOUNT_PATH, get(mfa::status))
        .route("/console/account/mfa/enroll", post(mfa::enroll))
        .route("/console/account/mfa/confirm", post(mfa::confirm))
        .route("/console/account/mfa/disable", post(mfa::disable))
        .route("/console/keys", get(keys::list).post(keys::create))
        .route("/console/keys/{id}", get(keys::show))
        .route("/console/keys/{id}/revoke", post(keys::revoke))
        .route("/console/usage-chart", get(chart::panel))
        .route("/console/assets/{name}", get(assets::serve))
        .layer(axum::Extension(api::Api::new(api)))
}
