//! The console's TOTP second factor ([`docaiche_auth::mfa`]): who must use
//! one, the code page of a sign-in, and the enrolment pages.
//!
//! **Who.** An account with an *active* enrolment passes its second factor
//! at every console sign-in. Enrolment is *required* of platform
//! administrators (holding `tenants:cross`, or a cross-tenant role: on the
//! principal, in `[[auth.bindings]]` or among the account's stored roles)
//! and, when their tenant's settings say
//! `require_admin_mfa` (`PATCH /v1/tenants/{id}`), of the tenant's
//! administrators (`accounts:manage` or `admin:access`). Someone required
//! to enrol who has not is signed in only as far as the enrolment page
//! (first enrolment on trust: whoever knows the password then enrols;
//! the cost of requiring a factor of accounts that existed before).
//!
//! **Sign-in.** After the password, such a person holds a *pending*
//! session ([`SecondFactor::Pending`], five idle minutes): it reaches only
//! `GET|POST /console/sign-in/code` or the enrolment pages, never another
//! page. A code (or a recovery code) that passes *promotes* the session:
//! a new cookie, the pending one ended.
//!
//! **Guessing** is throttled by the password login's
//! [`FailedAuthTracker`](docaiche_auth::lockout::FailedAuthTracker): every
//! refused code (wrong, malformed, replayed, unknown recovery code) is a
//! failure of the account's *second-factor subject* (kept apart from the
//! password's, which a right password clears) and of the client's address
//! and network, and a locked subject is answered 429 before any code is
//! checked. A code is accepted once, across instances (the store's
//! compare-and-set).
//!
//! **Audit**: `console.mfa.enrolled`, `console.mfa.confirmed`,
//! `console.mfa.disabled`, `console.mfa.recovery_code_used`, and
//! `console.sign_in` with `method: "password+totp"` (or
//! `"password+recovery_code"`) once the factor passes.

use std::time::Duration;

use axum::Form;
use axum::extract::State;
use axum::extract::rejection::FormRejection;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use docaiche_auth::lockout::FailureSubject;
use docaiche_auth::mfa::{MfaError, Verified};
use docaiche_auth::web_session::SecondFactor;
use docaiche_core::audit::{AuditEvent, AuditOutcome};
use docaiche_core::{AuthFailure, Error, Permission, Principal, RequestContext};
use maud::{Markup, html};
use serde::Deserialize;

use super::layout;
use super::session::{self, AnySession, SignedIn};
use crate::audit::AuditFacts;
use crate::state::AppState;

/// The code page of a sign-in.
pub(super) const CODE_PATH: &str = "/console/sign-in/code";

/// The second factor's status and enrolment page.
pub(super) const ACCOUNT_PATH: &str = "/console/account/mfa";

/// What a signed-in person's second factor asks of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Factor {
    /// Nothing: none enrolled, none required.
    Nothing,
    /// A code at every sign-in (an active enrolment).
    Code,
    /// Enrolment, before anything else (required, not active).
    Enrolment,
}

/// Whether `principal` is a platform administrator: holds `tenants:cross`,
/// or a cross-tenant role of `auth`'s policy, whether on the principal,
/// bound to it in `[[auth.bindings]]`, or named among `stored_roles` (an
/// account's stored roles: the login drops a cross-tenant one from the
/// principal, but whoever holds it is meant to be a platform
/// administrator, so it is not taken as a reason to need less).
pub(crate) fn is_platform_admin(
    auth: &crate::auth::AuthServices,
    principal: &Principal,
    stored_roles: &[String],
) -> bool {
    let policy = &auth.policy;
    principal.has_permission(&Permission::TENANTS_CROSS)
        || principal
            .roles
            .iter()
            .chain(stored_roles)
            .any(|r| policy.is_cross_tenant(r))
        || auth
            .bindings
            .roles_of(&principal.tenant, &principal.id)
            .any(|r| policy.is_cross_tenant(r))
}

/// Whether `principal` must have a second factor: always as a platform
/// administrator ([`is_platform_admin`]); as a tenant administrator
/// (`accounts:manage` or `admin:access`) when the tenant's settings
/// require it.
///
/// # Errors
/// The account store's and the tenant registry's.
pub(crate) async fn is_required(state: &AppState, principal: &Principal) -> Result<bool, Error> {
    let stored_roles = state
        .auth
        .stores
        .accounts
        .get(&principal.tenant, &principal.id)
        .await?
        .map(|account| account.roles)
        .unwrap_or_default();
    if is_platform_admin(&state.auth, principal, &stored_roles) {
        return Ok(true);
    }
    let administrator = principal.has_permission(&Permission::ACCOUNTS_MANAGE)
        || principal.has_permission(&Permission::ADMIN_ACCESS);
    if !administrator {
        return Ok(false);
    }
    Ok(state
        .auth
        .tenants
        .lookup(&principal.tenant)
        .await?
        .is_some_and(|t| t.settings.require_admin_mfa))
}

/// What `principal`'s second factor asks of them now.
///
/// # Errors
/// The stores'.
pub(super) async fn factor_of(state: &AppState, principal: &Principal) -> Result<Factor, Error> {
    let active = state
        .auth
        .mfa
        .enrolment(&principal.tenant, &principal.id)
        .await
        .map_err(Error::from)?
        .is_some_and(|e| e.is_active());
    Ok(if active {
        Factor::Code
    } else if is_required(state, principal).await? {
        Factor::Enrolment
    } else {
        Factor::Nothing
    })
}

/// The factor state a new session of `principal` starts in, and where its
/// browser goes next.
///
/// # Errors
/// As [`factor_of`].
pub(super) async fn start_of(
    state: &AppState,
    principal: &Principal,
) -> Result<(SecondFactor, &'static str), Error> {
    Ok(match factor_of(state, principal).await? {
        Factor::Nothing => (SecondFactor::NotRequired, "/console"),
        Factor::Code => (SecondFactor::Pending, CODE_PATH),
        Factor::Enrolment => (SecondFactor::Pending, ACCOUNT_PATH),
    })
}

/// A form carrying a code (and the CSRF token).
#[derive(Default, Deserialize)]
pub(super) struct CodeForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    code: String,
}

impl std::fmt::Debug for CodeForm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CodeForm").finish_non_exhaustive()
    }
}

/// A form carrying only the CSRF token.
#[derive(Debug, Default, Deserialize)]
pub(super) struct CsrfForm {
    #[serde(default)]
    csrf: String,
}

/// How a code passed.
#[derive(Debug, Clone, Copy)]
enum Passed {
    Totp,
    RecoveryCode { remaining: usize },
}

impl Passed {
    const fn method(self) -> &'static str {
        match self {
            Self::Totp => "password+totp",
            Self::RecoveryCode { .. } => "password+recovery_code",
        }
    }
}

/// Why a code did not pass.
#[derive(Debug)]
enum Refusal {
    /// A subject is locked: come back after this long.
    Locked(Duration),
    /// The code was refused (and counted).
    Refused,
    /// The enrolment is not in the state the page expects.
    State(MfaError),
}

/// Which check a code goes through.
#[derive(Debug, Clone, Copy)]
enum Check {
    /// A sign-in's (or a disabling's) code or recovery code.
    Verify,
    /// The first code of a pending enrolment.
    Confirm,
}

/// What guesses of `who`'s codes count against: the account's
/// second-factor subject (a right password does not clear it) and the
/// client's address and network.
fn subjects(who: &SignedIn, context: &RequestContext) -> Vec<FailureSubject> {
    let mut subjects = vec![FailureSubject::account(
        Some(who.principal.tenant.clone()),
        &format!("second-factor:{}", who.principal.id),
    )];
    if let Some(addr) = context.client_addr {
        subjects.extend(FailureSubject::for_client(addr));
    }
    subjects
}

/// Check `code` for `who`, throttled by the login's failure tracker.
async fn attempt(
    state: &AppState,
    who: &SignedIn,
    context: &RequestContext,
    code: &str,
    check: Check,
) -> Result<Passed, Result<Refusal, Error>> {
    let tracker = state.login.tracker();
    let subjects = subjects(who, context);
    if let Err(lockout) = tracker.check(&subjects) {
        return Err(Ok(Refusal::Locked(lockout.retry_after)));
    }
    let (tenant, account) = (&who.principal.tenant, &who.principal.id);
    let mfa = &state.auth.mfa;
    let result = match check {
        Check::Verify => mfa.verify(tenant, account, code).await.map(|v| match v {
            Verified::RecoveryCode { remaining } => Passed::RecoveryCode { remaining },
            _ => Passed::Totp,
        }),
        Check::Confirm => mfa
            .confirm(tenant, account, code)
            .await
            .map(|_| Passed::Totp),
    };
    match result {
        Ok(passed) => {
            tracker.record_success(&subjects);
            Ok(passed)
        }
        Err(refused) if refused.is_refused_code() => {
            let reason = match refused {
                MfaError::Malformed => AuthFailure::Malformed,
                MfaError::Replayed { .. } => AuthFailure::Revoked,
                _ => AuthFailure::BadCredential,
            };
            tracing::info!(
                tenant = %tenant,
                account = %account,
                refusal = refused.as_str(),
                "console second-factor code refused"
            );
            tracker.record_failure(&subjects, context, reason).await;
            Err(Ok(Refusal::Refused))
        }
        Err(MfaError::Failed(error)) => Err(Err(error)),
        Err(MfaError::Unsealable) => Err(Err(MfaError::Unsealable.into())),
        Err(other) => Err(Ok(Refusal::State(other))),
    }
}

/// Record a second-factor event of `who`.
async fn audit(
    state: &AppState,
    who: &SignedIn,
    context: &RequestContext,
    action: &str,
    detail: Option<(&str, serde_json::Value)>,
) {
    let mut event = AuditEvent::new(
        action,
        AuditOutcome::Success,
        state.auth.clock.now(),
        context,
    )
    .by(who.principal.tenant.clone(), Some(who.principal.id.clone()));
    if let Some((key, value)) = detail {
        event = event.with_detail(key, value);
    }
    super::signin::audit(state, event).await;
}

/// Audit what passing `passed` says beyond itself (a recovery code spent).
async fn audit_passed(state: &AppState, who: &SignedIn, context: &RequestContext, passed: Passed) {
    if let Passed::RecoveryCode { remaining } = passed {
        audit(
            state,
            who,
            context,
            "console.mfa.recovery_code_used",
            Some(("remaining", remaining.into())),
        )
        .await;
    }
}

/// Promote `who`'s pending session (a new cookie), audit the sign-in it
/// completes, and send the browser to the console.
async fn complete_sign_in(
    state: &AppState,
    who: &SignedIn,
    context: &RequestContext,
    passed: Passed,
) -> Response {
    let token = match state.console.sessions.promote(&who.session).await {
        Ok((token, _)) => token,
        Err(error) => return layout::error_page(&error),
    };
    audit(
        state,
        who,
        context,
        "console.sign_in",
        Some(("method", passed.method().into())),
    )
    .await;
    let mut response = Redirect::to("/console").into_response();
    if let Some(cookie) = session::session_cookie(token.expose_secret()) {
        response.headers_mut().insert(header::SET_COOKIE, cookie);
    }
    response
}

/// Where a pending session belongs when it is not where `here` is, if
/// elsewhere: the code page, enrolment, or (nothing owed any more: an
/// administrator reset the enrolment) a fresh sign-in.
async fn pending_elsewhere(
    state: &AppState,
    who: &SignedIn,
    headers: &HeaderMap,
    here: Factor,
) -> Option<Response> {
    if !who.is_pending() {
        return None;
    }
    match factor_of(state, &who.principal).await {
        Ok(factor) if factor == here => None,
        Ok(Factor::Code) => Some(Redirect::to(CODE_PATH).into_response()),
        Ok(Factor::Enrolment) => Some(Redirect::to(ACCOUNT_PATH).into_response()),
        Ok(Factor::Nothing) => {
            if let Some(cookie) = session::cookie_value(headers, super::COOKIE) {
                let _ = state.console.sessions.end(cookie).await;
            }
            Some(session::to_sign_in(true))
        }
        Err(error) => Some(layout::error_page(&error)),
    }
}

/// The answer to a refused code: the page `again` with a problem (401), or
/// 429 with `Retry-After` for a locked subject.
fn refused(
    refusal: Result<Refusal, Error>,
    again: impl FnOnce(StatusCode, &str) -> Response,
) -> Response {
    match refusal {
        Ok(Refusal::Refused) => again(
            StatusCode::UNAUTHORIZED,
            "The code was not accepted. Codes are used once: wait for the next one.",
        ),
        Ok(Refusal::Locked(retry_after)) => {
            let mut response = again(
                StatusCode::TOO_MANY_REQUESTS,
                "Too many failed attempts: wait a while before trying again.",
            );
            let secs = retry_after.as_secs().max(1);
            if let Ok(value) = HeaderValue::from_str(&secs.to_string()) {
                response.headers_mut().insert(header::RETRY_AFTER, value);
            }
            response
        }
        Ok(Refusal::State(state)) => {
            layout::refusal(StatusCode::CONFLICT, "Second factor", &state.to_string())
        }
        Err(error) => layout::error_page(&error),
    }
}

/// The code field of a form.
fn code_field() -> Markup {
    html! {
        label { "Code from your authenticator app, or a recovery code"
            input name="code" required autocomplete="one-time-code" autocapitalize="off"
                spellcheck="false" maxlength="64";
        }
    }
}

/// The code page of a sign-in.
fn code_page(status: StatusCode, who: &SignedIn, problem: Option<&str>) -> Response {
    layout::respond(
        status,
        "Second factor",
        None,
        &html! {
            @if let Some(problem) = problem {
                p.problem role="alert" { (problem) }
            }
            p { "Enter the six-digit code your authenticator app shows for DocAIche, or one of your recovery codes." }
            form.stack method="post" action=(CODE_PATH) {
                input type="hidden" name="csrf" value=(who.csrf);
                (code_field())
                button type="submit" { "Continue" }
            }
        },
    )
}

/// `GET /console/sign-in/code`.
pub(super) async fn code_form(
    State(state): State<AppState>,
    AnySession(who): AnySession,
    headers: HeaderMap,
) -> Response {
    if !who.is_pending() {
        return Redirect::to("/console").into_response();
    }
    if let Some(elsewhere) = pending_elsewhere(&state, &who, &headers, Factor::Code).await {
        return elsewhere;
    }
    code_page(StatusCode::OK, &who, None)
}

/// `POST /console/sign-in/code`: a code or a recovery code; on success the
/// session is promoted (a new cookie).
pub(super) async fn code_submit(
    State(state): State<AppState>,
    AnySession(who): AnySession,
    AuditFacts(context): AuditFacts,
    headers: HeaderMap,
    form: Result<Form<CodeForm>, FormRejection>,
) -> Response {
    let form = form.map(|Form(f)| f).unwrap_or_default();
    if let Err(refused) = session::check_post(&state, &headers, &who, &form.csrf) {
        return refused;
    }
    if !who.is_pending() {
        return Redirect::to("/console").into_response();
    }
    if let Some(elsewhere) = pending_elsewhere(&state, &who, &headers, Factor::Code).await {
        return elsewhere;
    }
    match attempt(&state, &who, &context, &form.code, Check::Verify).await {
        Ok(passed) => {
            audit_passed(&state, &who, &context, passed).await;
            complete_sign_in(&state, &who, &context, passed).await
        }
        Err(refusal) => refused(refusal, |status, problem| {
            code_page(status, &who, Some(problem))
        }),
    }
}

/// The shell of a second-factor page: without navigation for a pending
/// session, which can go nowhere else.
fn account_page(status: StatusCode, who: &SignedIn, title: &str, body: &Markup) -> Response {
    let shown = (!who.is_pending()).then_some(who);
    layout::respond(status, title, shown, body)
}

/// `GET /console/account/mfa`: the status, and how to set up or disable.
pub(super) async fn status(
    State(state): State<AppState>,
    AnySession(who): AnySession,
    headers: HeaderMap,
) -> Response {
    if let Some(elsewhere) = pending_elsewhere(&state, &who, &headers, Factor::Enrolment).await {
        return elsewhere;
    }
    let principal = &who.principal;
    let enrolment = match state
        .auth
        .mfa
        .enrolment(&principal.tenant, &principal.id)
        .await
    {
        Ok(enrolment) => enrolment.filter(|e| e.is_active()),
        Err(error) => return layout::error_page(&error.into()),
    };
    let required = match is_required(&state, principal).await {
        Ok(required) => required,
        Err(error) => return layout::error_page(&error),
    };
    account_page(
        StatusCode::OK,
        &who,
        "Second factor",
        &html! {
            @if let Some(enrolment) = &enrolment {
                p { span.badge.active { "active" } " A code from your authenticator app is asked at every sign-in." }
                p.muted { (enrolment.recovery_codes_remaining) " unused recovery codes left." }
                h2 { "Turn it off" }
                @if required {
                    p.notice { "Your role requires a second factor: you will be asked to set up a new one at your next sign-in." }
                }
                form.stack method="post" action="/console/account/mfa/disable" {
                    input type="hidden" name="csrf" value=(who.csrf);
                    (code_field())
                    button.danger type="submit" { "Turn off the second factor" }
                }
            } @else {
                @if required {
                    p.notice role="alert" { "Your role requires a second factor: set one up to continue." }
                } @else {
                    p { "No second factor is set up: your password alone signs you in." }
                }
                form.stack method="post" action="/console/account/mfa/enroll" {
                    input type="hidden" name="csrf" value=(who.csrf);
                    button type="submit" { "Set up a second factor" }
                }
            }
        },
    )
}

/// The confirmation form of a pending enrolment.
fn confirm_form(who: &SignedIn) -> Markup {
    html! {
        form.stack method="post" action="/console/account/mfa/confirm" {
            input type="hidden" name="csrf" value=(who.csrf);
            label { "The code your app shows now"
                input name="code" required inputmode="numeric" autocomplete="one-time-code"
                    pattern="[0-9 ]{6,9}" maxlength="9";
            }
            button type="submit" { "Confirm" }
        }
    }
}

/// `POST /console/account/mfa/enroll`: a new secret and recovery codes,
/// shown once, pending until confirmed.
pub(super) async fn enroll(
    State(state): State<AppState>,
    AnySession(who): AnySession,
    AuditFacts(context): AuditFacts,
    headers: HeaderMap,
    form: Result<Form<CsrfForm>, FormRejection>,
) -> Response {
    let form = form.map(|Form(f)| f).unwrap_or_default();
    if let Err(refused) = session::check_post(&state, &headers, &who, &form.csrf) {
        return refused;
    }
    if let Some(elsewhere) = pending_elsewhere(&state, &who, &headers, Factor::Enrolment).await {
        return elsewhere;
    }
    let principal = &who.principal;
    let label = match account_label(&state, principal).await {
        Ok(label) => label,
        Err(error) => return layout::error_page(&error),
    };
    let enrolled = match state
        .auth
        .mfa
        .enroll(&principal.tenant, &principal.id, &label)
        .await
    {
        Ok(enrolled) => enrolled,
        Err(MfaError::AlreadyActive) => return Redirect::to(ACCOUNT_PATH).into_response(),
        Err(error) => return layout::error_page(&error.into()),
    };
    audit(&state, &who, &context, "console.mfa.enrolled", None).await;
    account_page(
        StatusCode::OK,
        &who,
        "Set up a second factor",
        &html! {
            div.secret {
                p { "Add this account to your authenticator app with the setup URI (most apps import it) or by typing the secret. They are shown only now." }
                dl {
                    dt { "Setup URI" }
                    dd { code id="mfa-uri" { (enrolled.provisioning_uri.expose_secret()) } }
                    dt { "Secret" }
                    dd { code id="mfa-secret" { (enrolled.secret.expose_secret()) } }
                }
                h2 { "Recovery codes" }
                p { "Each signs you in once if you lose your phone. Write them down now: they are not shown again." }
                ol id="mfa-recovery-codes" {
                    @for code in enrolled.recovery_codes.iter() {
                        li { code { (code.to_display_form().expose_secret()) } }
                    }
                }
            }
            h2 { "Confirm" }
            (confirm_form(&who))
        },
    )
}

/// How the account is named in authenticator apps: its e-mail address.
async fn account_label(state: &AppState, principal: &Principal) -> Result<String, Error> {
    let login = state.login.service().await?;
    let account = login
        .accounts()
        .get(&principal.tenant, &principal.id)
        .await?
        .ok_or_else(|| Error::not_found("account"))?;
    Ok(account.email.as_str().to_owned())
}

/// `POST /console/account/mfa/confirm`: the first code activates the
/// enrolment; a pending session is then promoted.
pub(super) async fn confirm(
    State(state): State<AppState>,
    AnySession(who): AnySession,
    AuditFacts(context): AuditFacts,
    headers: HeaderMap,
    form: Result<Form<CodeForm>, FormRejection>,
) -> Response {
    let form = form.map(|Form(f)| f).unwrap_or_default();
    if let Err(refused) = session::check_post(&state, &headers, &who, &form.csrf) {
        return refused;
    }
    if let Some(elsewhere) = pending_elsewhere(&state, &who, &headers, Factor::Enrolment).await {
        return elsewhere;
    }
    match attempt(&state, &who, &context, &form.code, Check::Confirm).await {
        Ok(passed) => {
            audit(&state, &who, &context, "console.mfa.confirmed", None).await;
            if who.is_pending() {
                complete_sign_in(&state, &who, &context, passed).await
            } else {
                Redirect::to(ACCOUNT_PATH).into_response()
            }
        }
        Err(Ok(Refusal::State(MfaError::AlreadyActive))) => {
            Redirect::to(ACCOUNT_PATH).into_response()
        }
        Err(refusal) => refused(refusal, |status, problem| {
            account_page(
                status,
                &who,
                "Set up a second factor",
                &html! {
                    p.problem role="alert" { (problem) }
                    (confirm_form(&who))
                },
            )
        }),
    }
}

/// `POST /console/account/mfa/disable`: with a current code (or a recovery
/// code), the enrolment and its recovery codes are removed.
pub(super) async fn disable(
    State(state): State<AppState>,
    who: SignedIn,
    AuditFacts(context): AuditFacts,
    headers: HeaderMap,
    form: Result<Form<CodeForm>, FormRejection>,
) -> Response {
    let form = form.map(|Form(f)| f).unwrap_or_default();
    if let Err(refused) = session::check_post(&state, &headers, &who, &form.csrf) {
        return refused;
    }
    match attempt(&state, &who, &context, &form.code, Check::Verify).await {
        Ok(passed) => {
            audit_passed(&state, &who, &context, passed).await;
            let principal = &who.principal;
            if let Err(error) = state
                .auth
                .mfa
                .disable(&principal.tenant, &principal.id)
                .await
            {
                return layout::error_page(&error.into());
            }
            audit(&state, &who, &context, "console.mfa.disabled", None).await;
            Redirect::to(ACCOUNT_PATH).into_response()
        }
        Err(refusal) => refused(refusal, |status, problem| {
            account_page(
                status,
                &who,
                "Second factor",
                &html! {
                    p.problem role="alert" { (problem) }
                    p { a href=(ACCOUNT_PATH) { "Back" } }
                },
            )
        }),
    }
}

#[cfg(test)]
mod tests;
