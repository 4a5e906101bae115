//! `/v1/accounts`: a tenant administrator's password accounts (permission
//! `accounts:manage`), over the server's login service
//! ([`crate::login::Login`], `docaiche-auth`'s `PasswordLogin`).
//!
//! | route | what |
//! |---|---|
//! | `POST /v1/accounts` | invite: the account, and an invitation token for its owner |
//! | `GET /v1/accounts` | a page of accounts, by role, status and e-mail prefix |
//! | `GET /v1/accounts/{id}` | one account |
//! | `PUT /v1/accounts/{id}/roles` | replace the roles (no escalation) |
//! | `POST /v1/accounts/{id}/disable`, `…/enable` | disabling ends its sessions and revokes its API keys |
//! | `POST /v1/accounts/{id}/password-reset` | a password-reset token for its owner |
//! | `POST /v1/accounts/{id}/sign-out` | end every session of the account |
//! | `DELETE /v1/accounts/{id}/mfa` | remove its TOTP second factor (a lost phone) |
//! | `DELETE /v1/accounts/{id}` | erase the account's owner (also needs `privacy:erase`) |
//!
//! The owner redeems an invitation or a reset with the public
//! `POST /v1/auth/password` ([`crate::routes::auth`]). Accounts are only
//! created by invitation: the administrator never chooses, sees or sends a
//! password, and no password travels through the administrator's hands.
//! The token is handed back to the caller to pass on (there is no mail
//! server): it is single use, expires (7 days; resets 1 hour), and is spent
//! by any password change.
//!
//! Every route acts on the caller's tenant, or with `tenants:cross` on the
//! tenant named by `?tenant=`; an account of another tenant answers 404
//! like a missing one. A role (a tenant role of the configuration or a
//! custom role of the tenant, [`crate::routes::roles`]) can be given or
//! taken away only by a caller holding every permission of the role, and
//! never a cross-tenant role (those are bound in configuration only):
//! anything else is 403. Every
//! change is audited before it happens (`<action>.attempt`, refused when
//! `[audit]` is fail-closed and the trail is down) and after, with the
//! actor and, for role changes, the roles before and after.

use axum::extract::rejection::QueryRejection;
use axum::extract::{FromRequestParts, Query, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::Response;
use docaiche_auth::layer::Authenticated;
use docaiche_auth::login::{AccountToken, AccountTokens};
use docaiche_core::account::{Account, AccountEmail};
use docaiche_core::audit::{AuditEvent, AuditOutcome, AuditResource};
use docaiche_core::error::FieldError;
use docaiche_core::page::PageRequest;
use docaiche_core::{Error, Grant, Permission, Principal, PrincipalId, RequestContext, TenantId};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::keys::no_store;
use crate::audit::AuditFacts;
use crate::json::{ValidJson, Validate};
use crate::openapi::{Param, Payload, RequestBody, RouteDoc, grammar, schema_ref};
use crate::rejection::Path;
use crate::routes::{Endpoint, RouteGroup};
use crate::state::AppState;

/// Most roles an account holds.
pub(crate) const MAX_ROLES: usize = 32;

/// Default page size of the listing.
const DEFAULT_PAGE: u32 = 50;

/// Longest `email_prefix`.
const MAX_PREFIX: usize = docaiche_core::account::MAX_EMAIL_LEN;

/// Add the account routes to `group` (the protected `default` group).
pub(crate) fn routes(group: RouteGroup) -> RouteGroup {
    let manage = [Permission::ACCOUNTS_MANAGE];
    let erase = [Permission::ACCOUNTS_MANAGE, Permission::PRIVACY_ERASE];
    group
        .route(CREATE, &manage, create)
        .route(LIST, &manage, list)
        .route(GET, &manage, get)
        .route(SET_ROLES, &manage, set_roles)
        .route(actions::DISABLE, &manage, actions::disable)
        .route(actions::ENABLE, &manage, actions::enable)
        .route(actions::RESET, &manage, actions::reset)
        .route(actions::SIGN_OUT, &manage, actions::sign_out)
        .route(actions::RESET_MFA, &manage, actions::reset_mfa)
        .route(actions::DELETE, &erase, actions::delete)
}

/// `?tenant=` of every account route.
const TENANT_PARAM: (&str, Param, &str) = (
    "tenant",
    Param::Pattern(grammar::NAME_ID),
    "the tenant whose accounts are managed (default: the caller's; another \
     needs `tenants:cross`, else 404)",
);

/// The `?tenant=` query.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct TenantQuery {
    tenant: Option<String>,
}

impl TenantQuery {
    /// The tenant named, if any.
    pub(crate) fn tenant(&self) -> Option<&str> {
        self.tenant.as_deref()
    }
}

/// The tenant `caller` manages accounts of.
fn tenant_of(
    caller: &Principal,
    query: Result<Query<TenantQuery>, QueryRejection>,
) -> Result<TenantId, Error> {
    let query = crate::rejection::query(query)?;
    super::audit::readable_tenant(caller, query.tenant.as_deref())
}

/// An account id from the path; an invalid one is as missing as any other.
fn account_id(raw: &str) -> Result<PrincipalId, Error> {
    PrincipalId::new(raw).map_err(|_| Error::not_found("account"))
}

/// What every route on one account starts from: the caller, the request's
/// audit facts, and the account's tenant (`?tenant=`) and id (the path),
/// checked. An id that is not an account id is 404, like a missing one.
pub(crate) struct Target {
    /// The caller.
    caller: Principal,
    /// The request's facts for the audit trail.
    context: RequestContext,
    /// The account's tenant.
    tenant: TenantId,
    /// The account's id.
    id: PrincipalId,
}

impl FromRequestParts<AppState> for Target {
    type Rejection = Error;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &AppState,
    ) -> Result<Self, Error> {
        let Authenticated(caller) = Authenticated::from_request_parts(parts, state).await?;
        let Ok(AuditFacts(context)) = AuditFacts::from_request_parts(parts, state).await;
        let Path(id) = Path::<String>::from_request_parts(parts, state).await?;
        let query = Query::<TenantQuery>::from_request_parts(parts, state).await;
        let tenant = tenant_of(&caller, query)?;
        Ok(Self {
            caller,
            context,
            tenant,
            id: account_id(&id)?,
        })
    }
}

impl Target {
    /// The event of the caller doing `action` to the account.
    fn event(&self, action: &str) -> AuditEvent {
        event(action, &self.caller, &self.tenant, &self.id, &self.context)
    }
}

/// An account as the API shows it (never its password hash).
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct AccountView {
    /// The account id (the principal it signs in as).
    id: String,
    /// Its tenant.
    tenant: String,
    /// Its login e-mail, normalised.
    email: String,
    /// The roles it holds.
    roles: Vec<String>,
    /// `active` or `disabled`.
    #[schema(pattern = "^(active|disabled)$")]
    status: &'static str,
    /// Creation time (RFC 3339).
    #[schema(format = DateTime)]
    created_at: String,
    /// Last change (RFC 3339).
    #[schema(format = DateTime)]
    updated_at: String,
}

/// RFC 3339, or empty for a time no store writes.
fn rfc3339(at: OffsetDateTime) -> String {
    at.format(&Rfc3339).unwrap_or_default()
}

impl From<&Account> for AccountView {
    fn from(account: &Account) -> Self {
        Self {
            id: account.id.to_string(),
            tenant: account.tenant.to_string(),
            email: account.email.to_string(),
            roles: account.roles.clone(),
            status: if account.disabled {
                "disabled"
            } else {
                "active"
            },
            created_at: rfc3339(account.created_at),
            updated_at: rfc3339(account.updated_at),
        }
    }
}

/// A single-use token for an account's owner.
#[derive(Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct TokenView<'a> {
    /// The token: hand it to the account's owner, who sets a password with
    /// `POST /v1/auth/password`. Shown this once; never stored.
    token: &'a str,
    /// `invitation` or `password_reset`.
    #[schema(pattern = "^(invitation|password_reset)$")]
    kind: &'static str,
    /// When it stops being accepted (RFC 3339).
    #[schema(format = DateTime)]
    expires_at: String,
}

impl<'a> From<&'a AccountToken> for TokenView<'a> {
    fn from(token: &'a AccountToken) -> Self {
        Self {
            token: token.token.expose_secret(),
            kind: token.kind.as_str(),
            expires_at: rfc3339(token.expires_at),
        }
    }
}

/// The answer of `POST /v1/accounts`.
#[derive(Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct InvitedAccount<'a> {
    /// The new account.
    account: AccountView,
    /// Its invitation.
    invitation: TokenView<'a>,
}

/// The roles of a request body: each a configured, tenant-scoped role or a
/// custom role of the tenant, named once, at most [`MAX_ROLES`] (checked
/// by [`RoleNames::problems`]).
#[derive(Debug, Deserialize)]
#[serde(transparent)]
pub(crate) struct RoleNames(Vec<String>);

impl utoipa::PartialSchema for RoleNames {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{ArrayBuilder, ObjectBuilder, Type};

        ArrayBuilder::new()
            .description(Some(
                "Tenant roles of the configuration or custom roles of the tenant \
                 (`GET /v1/roles`), each named once, whose permissions the caller holds.",
            ))
            .items(
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .pattern(Some(grammar::NAME_ID)),
            )
            .max_items(Some(MAX_ROLES))
            .unique_items(true)
            .into()
    }
}

impl utoipa::ToSchema for RoleNames {}

impl RoleNames {
    /// The names, as sent.
    pub(crate) fn names(&self) -> &[String] {
        &self.0
    }

    /// The field errors of these names under `pointer`: too many, or one
    /// repeated (what the document's schema states).
    fn problems(&self, pointer: &str) -> Vec<FieldError> {
        if self.0.len() > MAX_ROLES {
            return vec![FieldError::new(
                pointer,
                format!("at most {MAX_ROLES} roles"),
            )];
        }
        self.0
            .iter()
            .enumerate()
            .filter(|(index, name)| self.0[..*index].contains(name))
            .map(|(index, _)| {
                FieldError::new(format!("{pointer}/{index}"), "repeats an earlier role")
            })
            .collect()
    }
}

/// The body of `POST /v1/accounts`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct CreateAccount {
    /// The login e-mail (compared lowercased).
    #[schema(pattern = "^[!-~]+@[!-?A-~]+$", max_length = 254)]
    email: String,
    // The roles (tenant roles of the configuration, each within the
    // caller's permissions). The schema is `RoleNames`'.
    roles: RoleNames,
}

impl Validate for CreateAccount {
    fn validate(&self) -> Vec<FieldError> {
        match AccountEmail::new(&self.email) {
            Ok(_) => Vec::new(),
            Err(e) => vec![FieldError::new("/email", e.to_string())],
        }
    }
}

/// The body of `PUT /v1/accounts/{id}/roles`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct SetRoles {
    // The roles the account holds from now on. The schema is `RoleNames`'.
    roles: RoleNames,
}

impl Validate for SetRoles {
    fn validate(&self) -> Vec<FieldError> {
        Vec::new()
    }
}

/// Check the role names of a body: 400 for too many or repeated names
/// (the schema's rules); 403 for a cross-tenant role of the configuration
/// (those are bound in `[[auth.bindings]]` only, never on an account); 404
/// for a name that is neither a tenant role of `state`'s configuration nor
/// a custom role of `tenant` (a reference to a role that does not exist).
async fn check_roles(state: &AppState, tenant: &TenantId, roles: &RoleNames) -> Result<(), Error> {
    let fields = roles.problems("/roles");
    if !fields.is_empty() {
        return Err(Error::invalid_fields(
            "the JSON body failed validation",
            fields,
        ));
    }
    let policy = &state.auth.policy;
    if roles.0.iter().any(|name| policy.is_cross_tenant(name)) {
        return Err(Error::missing_permission(Permission::TENANTS_CROSS));
    }
    if roles.0.iter().all(|name| policy.role(name).is_some()) {
        return Ok(());
    }
    let custom: Vec<String> = state
        .auth
        .stores
        .custom_roles
        .list(tenant)
        .await?
        .into_iter()
        .map(|role| role.name)
        .collect();
    if roles
        .0
        .iter()
        .all(|name| policy.role(name).is_some() || custom.contains(name))
    {
        Ok(())
    } else {
        Err(Error::not_found("role"))
    }
}

/// Refuse with 403 unless `caller` may give or take away every role of
/// `changed` on an account of `tenant` (the login service's rule, over
/// configured and custom roles: it holds all their permissions), naming a
/// missing permission when one is. A name that grants nothing (a custom
/// role deleted since) may always be taken away; [`check_roles`] keeps
/// unknown names from being given.
async fn check_grantable(
    login: &docaiche_auth::login::PasswordLogin,
    caller: &Principal,
    tenant: &TenantId,
    changed: &[String],
) -> Result<(), Error> {
    for role in changed {
        let Some(grants) = login.grants_of(tenant, role).await? else {
            if login.policy().is_cross_tenant(role) {
                return Err(Error::Forbidden { permission: None });
            }
            continue;
        };
        if caller.permissions.contains_all(&grants) {
            continue;
        }
        let missing = grants.iter().find_map(|grant| match grant {
            Grant::Exact(p) if !caller.has_permission(p) => Some(p.clone()),
            _ => None,
        });
        return Err(match missing {
            Some(permission) => Error::missing_permission(permission),
            None => Error::Forbidden { permission: None },
        });
    }
    Ok(())
}

/// The event of `caller` doing `action` to account `id` of `tenant`.
fn event(
    action: &str,
    caller: &Principal,
    tenant: &TenantId,
    id: &PrincipalId,
    context: &RequestContext,
) -> AuditEvent {
    event_on(
        action,
        caller,
        tenant,
        AuditResource::new("account", id.as_str()),
        context,
    )
}

/// The event of `caller` doing `action` to `resource` of `tenant`, with the
/// caller's own tenant beside it (they differ under `tenants:cross`).
pub(crate) fn event_on(
    action: &str,
    caller: &Principal,
    tenant: &TenantId,
    resource: AuditResource,
    context: &RequestContext,
) -> AuditEvent {
    AuditEvent::new(
        action,
        AuditOutcome::Success,
        OffsetDateTime::now_utc(),
        context,
    )
    .by(tenant.clone(), Some(caller.id.clone()))
    .on(resource)
    .with_detail("actor_tenant", caller.tenant.as_str().into())
}

/// Record `event` as an attempt (`<action>.attempt`) before acting: refused
/// when `[audit]` is fail-closed and the trail cannot take it.
pub(crate) async fn attempt(state: &AppState, event: &AuditEvent) -> Result<(), Error> {
    let mut attempt = event.clone();
    attempt.action = format!("{}.attempt", event.action);
    super::admin::record_administrative(state, attempt).await
}

/// Record `event` once done, through the same administrative path as the
/// attempt; a failure is logged and does not fail the request (the change
/// has happened, and its attempt is already on the trail).
pub(crate) async fn done(state: &AppState, event: AuditEvent) {
    if let Err(e) = super::admin::record_administrative(state, event).await {
        tracing::warn!(error = %e.log_chain(), "account audit event not recorded");
    }
}

/// `POST /v1/accounts`: the route of [`create`] and its documentation.
pub(crate) const CREATE: Endpoint = Endpoint::new(
    Method::POST,
    "/v1/accounts",
    RouteDoc {
        description: Some(
            "Creates the account with a password nobody knows and answers with a \
             single-use invitation (7 days) for the caller to hand to its owner, who \
             sets a password with `POST /v1/auth/password`. Each role must be a \
             tenant role whose permissions the caller holds.",
        ),
        query: &[TENANT_PARAM],
        body: RequestBody::Json {
            schema: schema_ref::<CreateAccount>,
            required: true,
        },
        status: 201,
        errors: &[
            (
                403,
                "a role holds permissions the caller lacks, or is a cross-tenant role",
            ),
            (
                404,
                "a role is neither a tenant role of the configuration nor a custom role \
                 of the tenant",
            ),
            (409, "the e-mail has an account in the tenant"),
        ],
        ..RouteDoc::ok(
            "Invite a person: a new account and its invitation",
            "the account and its invitation, shown this once \
             (`Location: /v1/accounts/{id}`)",
            Payload::Json(schema_ref::<InvitedAccount<'static>>),
        )
    },
);

/// `POST /v1/accounts`: invite a person.
async fn create(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    AuditFacts(context): AuditFacts,
    query: Result<Query<TenantQuery>, QueryRejection>,
    ValidJson(body): ValidJson<CreateAccount>,
) -> Result<Response, Error> {
    let tenant = tenant_of(&caller, query)?;
    check_roles(&state, &tenant, &body.roles).await?;
    let email = AccountEmail::new(&body.email)?;
    let login = state.login.service().await?;
    check_grantable(login, &caller, &tenant, &body.roles.0).await?;
    let pending = PrincipalId::new("pending")?;
    let mut record = event("account.create", &caller, &tenant, &pending, &context)
        .with_detail("roles_after", body.roles.0.join(" ").into());
    attempt(&state, &record).await?;
    let (account, invitation) = login
        .invite(
            &tenant,
            email,
            body.roles.0,
            AccountTokens::DEFAULT_INVITATION_TTL,
        )
        .await
        .map_err(|e| match e {
            Error::Conflict { .. } => {
                Error::conflict("an account with this e-mail exists in the tenant")
            }
            other => other,
        })?;
    record.resource = Some(AuditResource::new("account", account.id.as_str()));
    done(&state, record).await;
    let body = InvitedAccount {
        account: AccountView::from(&account),
        invitation: TokenView::from(&invitation),
    };
    let mut response = no_store(StatusCode::CREATED, &body);
    if let Ok(location) = HeaderValue::from_str(&format!("/v1/accounts/{}", account.id)) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    Ok(response)
}

/// `GET /v1/accounts`: the route of [`list`] and its documentation.
pub(crate) const LIST: Endpoint = Endpoint::new(
    Method::GET,
    "/v1/accounts",
    RouteDoc {
        description: Some(
            "By id. The filters are applied to at most 8 pages of accounts per \
             request: a page may hold fewer than `limit` accounts, even none; follow \
             `next` until it is absent.",
        ),
        query: &[
            TENANT_PARAM,
            (
                "role",
                Param::Pattern(grammar::NAME_ID),
                "only accounts holding this role",
            ),
            (
                "status",
                Param::OneOf(&["active", "disabled"]),
                "only `active` or `disabled` accounts",
            ),
            (
                "email_prefix",
                Param::TextUpTo(MAX_PREFIX),
                "only accounts whose e-mail starts with this (compared lowercased)",
            ),
            (
                "after",
                Param::Pattern(grammar::NAME_ID),
                "the cursor of the previous page's `next`",
            ),
            crate::openapi::PAGE_LIMIT_50,
        ],
        errors: &[(400, "an invalid filter, `after` cursor or `limit`")],
        ..RouteDoc::ok(
            "A tenant's accounts, a page at a time",
            "a page of accounts",
            Payload::Json(schema_ref::<AccountPage>),
        )
    },
);

/// The query of `GET /v1/accounts`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ListQuery {
    tenant: Option<String>,
    role: Option<String>,
    status: Option<String>,
    email_prefix: Option<String>,
    after: Option<String>,
    #[serde(default, deserialize_with = "crate::json::integer::query")]
    limit: Option<u32>,
}

/// A page of accounts.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct AccountPage {
    /// The accounts, by id.
    items: Vec<AccountView>,
    /// The cursor of the next page (`?after=`); none on the last page.
    next: Option<String>,
}

/// `GET /v1/accounts`: a page of the tenant's accounts.
async fn list(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> Result<Response, Error> {
    let query = crate::rejection::query(query)?;
    let tenant = super::audit::readable_tenant(&caller, query.tenant.as_deref())?;
    let disabled = match query.status.as_deref() {
        None => None,
        Some("active") => Some(false),
        Some("disabled") => Some(true),
        Some(_) => return Err(Error::invalid_input("status must be active or disabled")),
    };
    if let Some(role) = &query.role
        && TenantId::new(role.as_str()).is_err()
    {
        // The grammar of ids, which role names are a part of.
        return Err(Error::invalid_input("role is not a role name"));
    }
    let prefix = query.email_prefix.as_deref().map(str::to_lowercase);
    if prefix.as_ref().is_some_and(|p| p.len() > MAX_PREFIX) {
        return Err(Error::invalid_input(format!(
            "email_prefix must be at most {MAX_PREFIX} bytes"
        )));
    }
    let request = PageRequest::new(query.after, query.limit.unwrap_or(DEFAULT_PAGE))?;
    let accounts = &state.auth.stores.accounts;
    let tenant = &tenant;
    let (found, next) = crate::page::filtered(
        request,
        |page| async move { accounts.list(tenant, &page).await },
        |account: &Account| {
            disabled.is_none_or(|d| account.disabled == d)
                && query
                    .role
                    .as_ref()
                    .is_none_or(|r| account.roles.contains(r))
                && prefix
                    .as_deref()
                    .is_none_or(|p| account.email.as_str().starts_with(p))
        },
        |account| account.id.to_string(),
    )
    .await?;
    let items = found.iter().map(AccountView::from).collect();
    Ok(no_store(StatusCode::OK, &AccountPage { items, next }))
}

/// `GET /v1/accounts/{id}`: the route of [`get`] and its documentation.
pub(crate) const GET: Endpoint = Endpoint::new(
    Method::GET,
    "/v1/accounts/{id}",
    RouteDoc {
        query: &[TENANT_PARAM],
        ..RouteDoc::ok(
            "One account",
            "the account",
            Payload::Json(schema_ref::<AccountView>),
        )
    },
);

/// The account `id` of `tenant`, or 404.
async fn find(state: &AppState, tenant: &TenantId, id: &PrincipalId) -> Result<Account, Error> {
    state
        .auth
        .stores
        .accounts
        .get(tenant, id)
        .await?
        .ok_or_else(|| Error::not_found("account"))
}

/// `GET /v1/accounts/{id}`: one account.
async fn get(State(state): State<AppState>, target: Target) -> Result<Response, Error> {
    let account = find(&state, &target.tenant, &target.id).await?;
    Ok(no_store(StatusCode::OK, &AccountView::from(&account)))
}

/// `PUT /v1/accounts/{id}/roles`: the route of [`set_roles`] and its
/// documentation.
pub(crate) const SET_ROLES: Endpoint = Endpoint::new(
    Method::PUT,
    "/v1/accounts/{id}/roles",
    RouteDoc {
        description: Some(
            "The caller must hold every permission of each role it gives or takes \
             away. Tokens already issued keep their roles until they expire; the \
             next refresh carries the new ones.",
        ),
        query: &[TENANT_PARAM],
        body: RequestBody::Json {
            schema: schema_ref::<SetRoles>,
            required: true,
        },
        errors: &[
            (
                403,
                "a role given or taken away holds permissions the caller lacks, or is a \
                 cross-tenant role",
            ),
            (
                404,
                "the account, or a role that is neither a tenant role of the \
                 configuration nor a custom role of the tenant",
            ),
        ],
        ..RouteDoc::ok(
            "Replace an account's roles",
            "the account with its new roles",
            Payload::Json(schema_ref::<AccountView>),
        )
    },
);

/// `PUT /v1/accounts/{id}/roles`: replace the roles.
async fn set_roles(
    State(state): State<AppState>,
    target: Target,
    ValidJson(body): ValidJson<SetRoles>,
) -> Result<Response, Error> {
    let Target {
        caller, tenant, id, ..
    } = &target;
    check_roles(&state, tenant, &body.roles).await?;
    let mut account = find(&state, tenant, id).await?;
    let login = state.login.service().await?;
    let after = body.roles.0;
    let changed: Vec<String> = account
        .roles
        .iter()
        .filter(|r| !after.contains(r))
        .chain(after.iter().filter(|r| !account.roles.contains(r)))
        .cloned()
        .collect();
    check_grantable(login, caller, tenant, &changed).await?;
    let record = target
        .event("account.roles")
        .with_detail("roles_before", account.roles.join(" ").into())
        .with_detail("roles_after", after.join(" ").into());
    attempt(&state, &record).await?;
    let now = state.auth.clock.now();
    if !state
        .auth
        .stores
        .accounts
        .set_roles(tenant, id, &after, now)
        .await?
    {
        return Err(Error::not_found("account"));
    }
    done(&state, record).await;
    account.roles = after;
    account.updated_at = now;
    Ok(no_store(StatusCode::OK, &AccountView::from(&account)))
}

mod actions;
#[cfg(test)]
pub(crate) mod tests;
