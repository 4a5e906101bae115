//! Signing in and out of the console.
//!
//! Sign-in checks the password through the API login's own service
//! ([`docaiche_auth::login::PasswordLogin::authenticate`]: lockout, failure
//! tracking, disabled accounts refused alike), then starts a *new* web
//! session: a cookie planted before sign-in is never promoted. A suspended
//! tenant's people are refused after the password check, as by the token
//! endpoint. Someone who owes a second factor gets a *pending* session and
//! goes on to the code or enrolment page ([`super::mfa`]). Both sign-in
//! and sign-out are audited (`console.sign_in`, `console.sign_out`).

use axum::Form;
use axum::extract::rejection::FormRejection;
use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use docaiche_auth::web_session::SecondFactor;
use docaiche_core::account::AccountEmail;
use docaiche_core::audit::{AuditEvent, AuditOutcome};
use docaiche_core::{Error, RequestContext, SecretString, TenantId};
use maud::html;
use serde::Deserialize;

use super::layout;
use super::session::{self, SignedIn};
use crate::state::AppState;

/// The sign-in form's fields.
#[derive(Deserialize)]
pub(super) struct SignInForm {
    tenant: String,
    email: String,
    password: String,
}

impl std::fmt::Debug for SignInForm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignInForm")
            .field("tenant", &self.tenant)
            .field("email", &self.email)
            .finish_non_exhaustive()
    }
}

/// `GET /console/sign-in`.
pub(super) async fn form() -> Response {
    sign_in_page(StatusCode::OK, None, "", "")
}

/// The sign-in page with `status`, an optional problem, and the tenant
/// and e-mail typed before.
fn sign_in_page(status: StatusCode, problem: Option<&str>, tenant: &str, email: &str) -> Response {
    layout::respond(
        status,
        "Sign in",
        None,
        &html! {
            @if let Some(problem) = problem {
                p.problem role="alert" { (problem) }
            }
            form.stack method="post" action="/console/sign-in" {
                label { "Tenant"
                    input name="tenant" required autocomplete="organization" value=(tenant);
                }
                label { "E-mail address"
                    input name="email" type="email" required autocomplete="username" value=(email);
                }
                label { "Password"
                    input name="password" type="password" required autocomplete="current-password";
                }
                button type="submit" { "Sign in" }
            }
        },
    )
}

/// `POST /console/sign-in`.
pub(super) async fn submit(State(state): State<AppState>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    if let Err(refused) = session::same_origin(&parts.headers) {
        return refused;
    }
    let context = crate::routes::auth::request_context(&parts);
    let form: Result<Form<SignInForm>, FormRejection> =
        <Form<SignInForm> as axum::extract::FromRequest<AppState>>::from_request(
            Request::from_parts(parts, body),
            &state,
        )
        .await;
    let Ok(Form(form)) = form else {
        return sign_in_page(
            StatusCode::BAD_REQUEST,
            Some("Fill in the tenant, your e-mail address and your password."),
            "",
            "",
        );
    };
    match sign_in(&state, &context, &form).await {
        Ok((token, next)) => {
            let mut response = Redirect::to(next).into_response();
            if let Some(cookie) = session::session_cookie(token.expose_secret()) {
                response.headers_mut().insert(header::SET_COOKIE, cookie);
            }
            response
        }
        Err(error) => {
            let (status, problem) = match &error {
                Error::InvalidInput { .. } | Error::Unauthenticated { .. } => (
                    StatusCode::UNAUTHORIZED,
                    "The tenant, e-mail address or password is wrong.",
                ),
                Error::RateLimited { .. } => (
                    StatusCode::TOO_MANY_REQUESTS,
                    "Too many failed attempts: wait a while before trying again.",
                ),
                Error::TenantSuspended => (
                    StatusCode::FORBIDDEN,
                    "This tenant is suspended: ask the platform's operator.",
                ),
                _ => return layout::error_page(&error),
            };
            sign_in_page(status, Some(problem), &form.tenant, &form.email)
        }
    }
}

/// Check the form's password and start a session: the cookie value and
/// where the browser goes next (the console, or the second factor's code
/// or enrolment page with a pending session).
async fn sign_in(
    state: &AppState,
    context: &RequestContext,
    form: &SignInForm,
) -> Result<(SecretString, &'static str), Error> {
    let tenant = TenantId::new(form.tenant.trim())?;
    let email = AccountEmail::new(form.email.trim())?;
    let password = SecretString::from(form.password.clone());
    let login = state.login.service().await?;
    let checked = login
        .authenticate(&tenant, &email, &password, None, context)
        .await?;
    if state
        .auth
        .tenants
        .lookup(&tenant)
        .await?
        .is_some_and(|t| t.is_suspended())
    {
        return Err(Error::TenantSuspended);
    }
    let (factor, next) = super::mfa::start_of(state, &checked.principal).await?;
    let (token, _) = state
        .console
        .sessions
        .start(&tenant, &checked.account.id, factor)
        .await?;
    if factor == SecondFactor::Pending {
        // Audited as signed in once the second factor passes.
        return Ok((token, next));
    }
    let event = AuditEvent::new(
        "console.sign_in",
        AuditOutcome::Success,
        state.auth.clock.now(),
        context,
    )
    .by(tenant, Some(checked.account.id))
    .with_detail("method", "password".into());
    audit(state, event).await;
    Ok((token, next))
}

/// The sign-out form's one field.
#[derive(Debug, Deserialize)]
pub(super) struct SignOutForm {
    csrf: String,
}

/// `POST /console/sign-out`: ends the session (on every instance: it
/// leaves the shared store) and removes the cookie.
pub(super) async fn sign_out(
    State(state): State<AppState>,
    signed_in: SignedIn,
    headers: axum::http::HeaderMap,
    form: Result<Form<SignOutForm>, FormRejection>,
) -> Response {
    let token = form.map(|Form(f)| f.csrf).unwrap_or_default();
    if let Err(refused) = session::check_post(&state, &headers, &signed_in, &token) {
        return refused;
    }
    if let Some(cookie) = session::cookie_value(&headers, super::COOKIE)
        && let Err(error) = state.console.sessions.end(cookie).await
    {
        return layout::error_page(&error);
    }
    let event = AuditEvent::new(
        "console.sign_out",
        AuditOutcome::Success,
        state.auth.clock.now(),
        &RequestContext::new(),
    )
    .by(
        signed_in.principal.tenant.clone(),
        Some(signed_in.principal.id.clone()),
    );
    audit(&state, event).await;
    let mut response = Redirect::to("/console/sign-in").into_response();
    response
        .headers_mut()
        .insert(header::SET_COOKIE, session::cleared_cookie());
    response
}

/// Record a sign-in, a sign-out or a second-factor event (administrative:
/// waits for the trail; a failure is logged, the person is not kept out
/// by it).
pub(super) async fn audit(state: &AppState, event: AuditEvent) {
    if let Err(error) = crate::routes::admin::record_administrative(state, event).await {
        tracing::warn!(error = %error.log_chain(), "console sign-in event not recorded");
    }
}
