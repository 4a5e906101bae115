//! Who is signed in: the [`SignedIn`] extractor, the session cookie, and
//! the checks every state-changing request passes (CSRF token, Fetch
//! Metadata).

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use docaiche_auth::web_session::WebSession;
use docaiche_core::{Error, Principal};

use super::COOKIE;
use super::layout;
use crate::state::AppState;

/// The signed-in person of a console request: the live session, the
/// principal its account signs in as now (roles re-read on every request,
/// so a change applies at once), and the session's CSRF token.
#[derive(Debug)]
pub(crate) struct SignedIn {
    /// The session.
    pub(crate) session: WebSession,
    /// The principal.
    pub(crate) principal: Principal,
    /// The session's CSRF token, for the page's forms.
    pub(crate) csrf: String,
}

impl FromRequestParts<AppState> for SignedIn {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        let signed_in = resolve(parts, state).await?;
        if signed_in.is_pending() {
            // Password right, second factor owed: nowhere but the factor's
            // pages (which send an enrolling person on to enrolment).
            return Err(Redirect::to("/console/sign-in/code").into_response());
        }
        Ok(signed_in)
    }
}

impl SignedIn {
    /// Whether the session still owes its second factor.
    pub(crate) const fn is_pending(&self) -> bool {
        !self.session.second_factor.is_complete()
    }
}

/// A signed-in person whose session may still owe its second factor: what
/// the second factor's own pages (code entry, enrolment) accept. Every
/// handler taking it decides what a pending session may do there.
#[derive(Debug)]
pub(crate) struct AnySession(pub(crate) SignedIn);

impl FromRequestParts<AppState> for AnySession {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        resolve(parts, state).await.map(Self)
    }
}

/// The live session of the request's cookie, whatever its second factor.
async fn resolve(parts: &Parts, state: &AppState) -> Result<SignedIn, Response> {
    let Some(cookie) = cookie_value(&parts.headers, COOKIE) else {
        return Err(to_sign_in(false));
    };
    let sessions = &state.console.sessions;
    let session = match sessions.resolve(cookie).await {
        Ok(session) => session,
        Err(Error::Unauthenticated { .. }) => return Err(to_sign_in(true)),
        Err(e) => return Err(layout::error_page(&e)),
    };
    let principal = match principal_of(state, &session).await {
        Ok(Some(principal)) => principal,
        Ok(None) => {
            // Deleted or disabled: the session has nothing to act for.
            let _ = sessions.end(cookie).await;
            return Err(to_sign_in(true));
        }
        Err(e) => return Err(layout::error_page(&e)),
    };
    let csrf = sessions.csrf_token(&session);
    Ok(SignedIn {
        session,
        principal,
        csrf,
    })
}

/// The principal `session`'s account signs in as now; `None` when the
/// account is gone or disabled.
///
/// # Errors
/// `TenantSuspended` for a suspended tenant; the stores' errors.
async fn principal_of(state: &AppState, session: &WebSession) -> Result<Option<Principal>, Error> {
    if state
        .auth
        .tenants
        .lookup(&session.tenant)
        .await?
        .is_some_and(|t| t.is_suspended())
    {
        return Err(Error::TenantSuspended);
    }
    let login = state.login.service().await?;
    let Some(account) = login
        .accounts()
        .get(&session.tenant, &session.subject)
        .await?
        .filter(|a| !a.disabled)
    else {
        return Ok(None);
    };
    login.principal_for(&account).await.map(Some)
}

/// Refuse a state-changing request that a browser says comes from another
/// site, or whose CSRF token is not `signed_in`'s.
///
/// # Errors
/// A 403 page.
pub(crate) fn check_post(
    state: &AppState,
    headers: &HeaderMap,
    signed_in: &SignedIn,
    token: &str,
) -> Result<(), Response> {
    same_origin(headers)?;
    if state
        .console
        .sessions
        .verify_csrf(&signed_in.session, token)
    {
        Ok(())
    } else {
        Err(forbidden("The form's CSRF token is not this session's."))
    }
}

/// Refuse a request a browser marks as cross-site: `Sec-Fetch-Site` must
/// be `same-origin`; without it, `Origin` (when sent) must name the
/// `Host`. A request with neither comes from no browser, which CSRF needs.
///
/// # Errors
/// A 403 page.
pub(crate) fn same_origin(headers: &HeaderMap) -> Result<(), Response> {
    let text = |name| {
        headers
            .get(name)
            .and_then(|v: &HeaderValue| v.to_str().ok())
    };
    if let Some(site) = text("sec-fetch-site") {
        return if site == "same-origin" {
            Ok(())
        } else {
            Err(forbidden("Cross-site requests are refused."))
        };
    }
    match (text("origin"), text("host")) {
        (None, _) => Ok(()),
        (Some(origin), Some(host))
            if origin
                .split_once("://")
                .is_some_and(|(_, authority)| authority == host) =>
        {
            Ok(())
        }
        _ => Err(forbidden("Cross-site requests are refused.")),
    }
}

fn forbidden(detail: &'static str) -> Response {
    layout::refusal(StatusCode::FORBIDDEN, "Request refused", detail)
}

/// The value of cookie `name` among the request's `Cookie` headers, if
/// one short ASCII value is there.
pub(crate) fn cookie_value<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(n, _)| *n == name)
        .map(|(_, value)| value)
        .filter(|value| value.len() <= 128)
}

/// The `Set-Cookie` value carrying session cookie `token`.
pub(crate) fn session_cookie(token: &str) -> Option<HeaderValue> {
    let mut value = HeaderValue::from_str(&format!(
        "{COOKIE}={token}; Path=/; Secure; HttpOnly; SameSite=Lax"
    ))
    .ok()?;
    value.set_sensitive(true);
    Some(value)
}

/// The `Set-Cookie` value removing the session cookie.
pub(crate) fn cleared_cookie() -> HeaderValue {
    HeaderValue::from_static(
        "__Host-docaiche-console=; Path=/; Secure; HttpOnly; SameSite=Lax; Max-Age=0",
    )
}

/// A redirect to the sign-in page, removing a dead cookie when `clear`.
pub(crate) fn to_sign_in(clear: bool) -> Response {
    let mut response = Redirect::to("/console/sign-in").into_response();
    if clear {
        response
            .headers_mut()
            .insert(header::SET_COOKIE, cleared_cookie());
    }
    response
}
