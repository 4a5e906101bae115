//! The routes acting on one account's standing: disable, enable, password
//! reset, sign-out and deletion (see the [parent module](super)).

use axum::extract::State;
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use docaiche_auth::login::AccountTokens;
use docaiche_core::page::PageRequest;
use docaiche_core::{AuthMethod, Error, Permission, Principal, PrincipalId, TenantId};

use super::{AccountView, TENANT_PARAM, Target, TokenView, attempt, done, find, no_store};
use crate::openapi::{Payload, RouteDoc, schema_ref};
use crate::routes::Endpoint;
use crate::state::AppState;

/// `POST /v1/accounts/{id}/disable`: the route of [`disable`] and its
/// documentation.
pub(crate) const DISABLE: Endpoint = Endpoint::new(
    Method::POST,
    "/v1/accounts/{id}/disable",
    RouteDoc {
        description: Some(
            "The account can no longer sign in; its refresh tokens stop at once and \
             its access tokens on every instance sharing the revocation store; its \
             API keys are revoked (announced to other instances with `[revocation] \
             announce_api_keys`). Enabling it again does not bring them back.",
        ),
        query: &[TENANT_PARAM],
        ..RouteDoc::ok(
            "Disable an account: its sessions end, its API keys are revoked",
            "the account, disabled",
            Payload::Json(schema_ref::<AccountView>),
        )
    },
);

/// `POST /v1/accounts/{id}/disable`.
pub(super) async fn disable(
    State(state): State<AppState>,
    target: Target,
) -> Result<Response, Error> {
    switch(&state, &target, true).await
}

/// `POST /v1/accounts/{id}/enable`: the route of [`enable`] and its
/// documentation.
pub(crate) const ENABLE: Endpoint = Endpoint::new(
    Method::POST,
    "/v1/accounts/{id}/enable",
    RouteDoc {
        query: &[TENANT_PARAM],
        ..RouteDoc::ok(
            "Enable a disabled account again",
            "the account, enabled",
            Payload::Json(schema_ref::<AccountView>),
        )
    },
);

/// `POST /v1/accounts/{id}/enable`.
pub(super) async fn enable(
    State(state): State<AppState>,
    target: Target,
) -> Result<Response, Error> {
    switch(&state, &target, false).await
}

/// Disable or enable account `id`.
async fn switch(state: &AppState, target: &Target, disabled: bool) -> Result<Response, Error> {
    let Target { tenant, id, .. } = target;
    let mut account = find(state, tenant, id).await?;
    let mut record = target.event(if disabled {
        "account.disable"
    } else {
        "account.enable"
    });
    attempt(state, &record).await?;
    let login = state.login.service().await?;
    if !login.set_disabled(tenant, id, disabled).await? {
        return Err(Error::not_found("account"));
    }
    if disabled {
        let revoked = revoke_keys_of(state, tenant, id).await?;
        record = record.with_detail("api_keys_revoked", revoked.into());
    }
    done(state, record).await;
    account.disabled = disabled;
    account.updated_at = state.auth.clock.now();
    Ok(no_store(StatusCode::OK, &AccountView::from(&account)))
}

/// Revoke every unrevoked API key acting as `id` in `tenant`, through the
/// API key service (so the revocations take effect at once here and are
/// announced to other instances); how many.
async fn revoke_keys_of(
    state: &AppState,
    tenant: &TenantId,
    id: &PrincipalId,
) -> Result<u64, Error> {
    let revoker = Principal::new(
        PrincipalId::new("account-admin")?,
        tenant.clone(),
        AuthMethod::Internal,
    )
    .with_permissions([Permission::KEYS_MANAGE].into_iter().collect());
    let mut after = None;
    let mut revoked = 0;
    loop {
        let page = state
            .auth
            .stores
            .api_keys
            .list(tenant, &PageRequest::new(after, 100)?)
            .await?;
        for key in &page.items {
            if key.principal == *id && key.revoked_at.is_none() {
                match state.auth.api_keys.revoke(&revoker, tenant, &key.id).await {
                    Ok(()) => revoked += 1,
                    // Deleted meanwhile: nothing left to stop.
                    Err(Error::NotFound { .. }) => {}
                    Err(e) => return Err(e),
                }
            }
        }
        match page.next {
            Some(next) => after = Some(next),
            None => return Ok(revoked),
        }
    }
}

/// `POST /v1/accounts/{id}/password-reset`: the route of [`reset`] and
/// its documentation.
pub(crate) const RESET: Endpoint = Endpoint::new(
    Method::POST,
    "/v1/accounts/{id}/password-reset",
    RouteDoc {
        description: Some(
            "A single-use token (1 hour) for the caller to hand to the account's \
             owner, who sets a new password with `POST /v1/auth/password`; that ends \
             the account's sessions. The current password keeps working until then.",
        ),
        query: &[TENANT_PARAM],
        status: 201,
        ..RouteDoc::ok(
            "A password-reset token for an account's owner",
            "the token, shown this once",
            Payload::Json(schema_ref::<TokenView<'static>>),
        )
    },
);

/// `POST /v1/accounts/{id}/password-reset`.
pub(super) async fn reset(
    State(state): State<AppState>,
    target: Target,
) -> Result<Response, Error> {
    let Target { tenant, id, .. } = &target;
    find(&state, tenant, id).await?;
    let record = target.event("account.password_reset");
    attempt(&state, &record).await?;
    let login = state.login.service().await?;
    let token = login
        .reset_token(tenant, id, AccountTokens::DEFAULT_RESET_TTL)
        .await?
        .ok_or_else(|| Error::not_found("account"))?;
    done(&state, record).await;
    Ok(no_store(StatusCode::CREATED, &TokenView::from(&token)))
}

/// `POST /v1/accounts/{id}/sign-out`: the route of [`sign_out`] and its
/// documentation.
pub(crate) const SIGN_OUT: Endpoint = Endpoint::new(
    Method::POST,
    "/v1/accounts/{id}/sign-out",
    RouteDoc {
        description: Some(
            "Every refresh token and access token issued to the account until now \
             stops working, on every instance sharing the revocation store. Its API \
             keys are not touched.",
        ),
        query: &[TENANT_PARAM],
        status: 204,
        ..RouteDoc::ok("End every session of an account", "done", Payload::Empty)
    },
);

/// `POST /v1/accounts/{id}/sign-out`.
pub(super) async fn sign_out(
    State(state): State<AppState>,
    target: Target,
) -> Result<StatusCode, Error> {
    let Target { tenant, id, .. } = &target;
    find(&state, tenant, id).await?;
    let record = target.event("account.sign_out");
    attempt(&state, &record).await?;
    let login = state.login.service().await?;
    login.sessions().revoke_subject(tenant, id).await?;
    done(&state, record).await;
    Ok(StatusCode::NO_CONTENT)
}

/// `DELETE /v1/accounts/{id}`: the route of [`delete`] and its
/// documentation.
pub(crate) const DELETE: Endpoint = Endpoint::new(
    Method::DELETE,
    "/v1/accounts/{id}",
    RouteDoc {
        description: Some(
            "Through the erasure of `POST /v1/privacy/erase` (GDPR deadline): the \
             account's owner is revoked everywhere, then their documents, account \
             and API keys are deleted, their data key destroyed, and a pseudonymised \
             tombstone stays on the audit trail \
             (`Location: /v1/privacy/requests/{id}`).",
        ),
        query: &[TENANT_PARAM],
        errors: &[
            (409, "a legal hold covers the account's owner"),
            (503, "the privacy services are not configured"),
        ],
        ..RouteDoc::ok(
            "Delete an account by erasing its owner",
            "the completed erasure request and what was erased",
            Payload::Json(schema_ref::<crate::routes::privacy::Erasure<'static>>),
        )
    },
);

/// `DELETE /v1/accounts/{id}`: erase the account's owner.
pub(super) async fn delete(
    State(state): State<AppState>,
    target: Target,
) -> Result<Response, Error> {
    let Target {
        caller,
        context,
        tenant,
        id,
    } = &target;
    find(&state, tenant, id).await?;
    let record = target.event("account.delete");
    attempt(&state, &record).await?;
    let response =
        crate::routes::privacy::erase_subject(&state, caller, context, tenant, id.clone()).await?;
    done(&state, record).await;
    Ok(response.into_response())
}

/// `DELETE /v1/accounts/{id}/mfa`: the route of [`reset_mfa`] and its
/// documentation.
pub(crate) const RESET_MFA: Endpoint = Endpoint::new(
    Method::DELETE,
    "/v1/accounts/{id}/mfa",
    RouteDoc {
        description: Some(
            "Removes the account's TOTP second factor and its recovery codes (a lost \
             phone): its next console sign-in needs the password only, or, when a \
             second factor is required of it, leads to a new enrolment. Only for an \
             account whose every role the caller could grant. Idempotent. Audited \
             (`account.mfa_reset`, with whether there was one).",
        ),
        query: &[TENANT_PARAM],
        status: 204,
        errors: &[(403, "the account holds a role the caller could not grant")],
        ..RouteDoc::ok("Reset an account's second factor", "done", Payload::Empty)
    },
);

/// `DELETE /v1/accounts/{id}/mfa`.
pub(super) async fn reset_mfa(
    State(state): State<AppState>,
    target: Target,
) -> Result<StatusCode, Error> {
    let Target {
        caller, tenant, id, ..
    } = &target;
    let account = find(&state, tenant, id).await?;
    let login = state.login.service().await?;
    super::check_grantable(login, caller, tenant, &account.roles).await?;
    let record = target.event("account.mfa_reset");
    attempt(&state, &record).await?;
    let removed = state
        .auth
        .mfa
        .disable(tenant, id)
        .await
        .map_err(Error::from)?;
    done(&state, record.with_detail("removed", removed.into())).await;
    Ok(StatusCode::NO_CONTENT)
}
