//! The API keys pages: the list (filters, pages), creating a key (shown
//! once, with a copy button), revoking one, and a key's page with its
//! usage chart. Each action is the API's (`GET`/`POST /v1/keys`,
//! `DELETE /v1/keys/{id}`, `GET /v1/usage`), called as the signed-in
//! person.

use axum::Form;
use axum::extract::rejection::{FormRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use docaiche_core::Permission;
use maud::{Markup, html};
use serde::Deserialize;

use super::api::{Api, CallContext};
use super::layout;
use super::session::{self, SignedIn};
use crate::state::AppState;

/// A key as the list shows it.
#[derive(Debug, Deserialize)]
struct Key {
    id: String,
    name: String,
    principal: String,
    scopes: Vec<String>,
    created_at: String,
    expires_at: Option<String>,
    last_used_at: Option<String>,
    revoked_at: Option<String>,
}

/// A page of keys.
#[derive(Debug, Deserialize)]
struct KeyPage {
    items: Vec<Key>,
    next: Option<String>,
}

/// A created key: its record and the secret, shown once.
#[derive(Deserialize)]
struct Created {
    #[serde(flatten)]
    record: Key,
    key: String,
}

/// The list's query: the API's filters and cursor.
#[derive(Debug, Default, Deserialize)]
pub(super) struct ListQuery {
    status: Option<String>,
    after: Option<String>,
}

/// The statuses the list filters by.
const STATUSES: [&str; 3] = ["active", "expired", "revoked"];

/// `GET /console/keys`.
pub(super) async fn list(
    State(state): State<AppState>,
    axum::Extension(api): axum::Extension<Api>,
    signed_in: SignedIn,
    context: CallContext,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> Result<Response, Response> {
    let query = query.map(|Query(q)| q).unwrap_or_default();
    let page = list_page(&state, &api, &signed_in, &context, &query).await?;
    Ok(layout::page(
        "API keys",
        Some(&signed_in),
        &html! {
            (filters(&query))
            (key_table(&page, &signed_in))
            (create_form(&signed_in))
        },
    ))
}

async fn list_page(
    state: &AppState,
    api: &Api,
    signed_in: &SignedIn,
    context: &CallContext,
    query: &ListQuery,
) -> Result<KeyPage, Response> {
    let mut uri = "/v1/keys?limit=50".to_owned();
    if let Some(status) = query.status.as_deref().filter(|s| STATUSES.contains(s)) {
        uri.push_str("&status=");
        uri.push_str(status);
    }
    if let Some(after) = &query.after {
        uri.push_str("&after=");
        uri.push_str(&percent(after));
    }
    api.call(
        state,
        &signed_in.principal,
        context,
        Method::GET,
        &uri,
        None,
    )
    .await
    .map_err(|e| layout::error_page(&e))?
    .into_ok()
}

/// `value` percent-encoded for a query string (every byte but unreserved
/// ones).
fn percent(value: &str) -> String {
    value
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

fn filters(query: &ListQuery) -> Markup {
    html! {
        form.inline method="get" action="/console/keys" {
            label { "Status "
                select name="status" {
                    option value="" { "any" }
                    @for status in STATUSES {
                        option value=(status) selected[query.status.as_deref() == Some(status)] { (status) }
                    }
                }
            }
            " "
            button.secondary type="submit" { "Filter" }
        }
    }
}

fn status_of(key: &Key) -> &'static str {
    if key.revoked_at.is_some() {
        "revoked"
    } else if key
        .expires_at
        .as_deref()
        .and_then(|t| {
            time::OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339).ok()
        })
        .is_some_and(|t| t <= time::OffsetDateTime::now_utc())
    {
        "expired"
    } else {
        "active"
    }
}

fn key_table(page: &KeyPage, signed_in: &SignedIn) -> Markup {
    html! {
        @if page.items.is_empty() {
            p.muted { "No keys on this page." }
        } @else {
            table {
                thead { tr {
                    th { "Name" } th { "Id" } th { "Owner" } th { "Scopes" }
                    th { "Created" } th { "Last used" } th { "Status" } th { span.visually-hidden { "Actions" } }
                } }
                tbody {
                    @for key in &page.items {
                        @let status = status_of(key);
                        tr {
                            td { a href=(format!("/console/keys/{}", key.id)) { (key.name) } }
                            td.mono { (key.id) }
                            td { (key.principal) }
                            td { (key.scopes.join(", ")) }
                            td { (key.created_at) }
                            td { (key.last_used_at.as_deref().unwrap_or("never")) }
                            td { span class=(format!("badge {status}")) { (status) } }
                            td {
                                @if status != "revoked" {
                                    form.inline method="post" action=(format!("/console/keys/{}/revoke", key.id)) {
                                        input type="hidden" name="csrf" value=(signed_in.csrf);
                                        button.danger type="submit" aria-label=(format!("Revoke key {}", key.name)) { "Revoke" }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        @if let Some(next) = &page.next {
            p.pager { a href=(format!("/console/keys?after={}", percent(next))) { "Next page" } }
        }
    }
}

/// The permissions a new key may carry: those the person holds.
fn grantable(signed_in: &SignedIn) -> Vec<Permission> {
    Permission::BUILTIN
        .into_iter()
        .filter(|p| signed_in.principal.has_permission(p))
        .collect()
}

fn create_form(signed_in: &SignedIn) -> Markup {
    html! {
        h2 { "Create a key" }
        form.stack method="post" action="/console/keys" {
            input type="hidden" name="csrf" value=(signed_in.csrf);
            label { "Name" input name="name" required maxlength="200"; }
            fieldset {
                legend { "Scopes" }
                @for permission in grantable(signed_in) {
                    @let name = permission.to_string();
                    label { input type="checkbox" name="scopes" value=(name); " " (name) }
                }
            }
            label { "Expires after (days, empty for never)"
                input name="expires_in_days" type="number" min="1" max="3650";
            }
            button type="submit" { "Create key" }
        }
    }
}

/// The create form as posted.
#[derive(Debug, Default)]
struct CreateForm {
    csrf: String,
    name: String,
    scopes: Vec<String>,
    expires_in_days: String,
}

impl CreateForm {
    /// The form from its pairs (`scopes` repeats, which a struct cannot
    /// take from `serde_urlencoded`); unknown fields are ignored.
    fn from_pairs(pairs: Vec<(String, String)>) -> Self {
        let mut form = Self::default();
        for (name, value) in pairs {
            match name.as_str() {
                "csrf" => form.csrf = value,
                "name" => form.name = value,
                "scopes" => form.scopes.push(value),
                "expires_in_days" => form.expires_in_days = value,
                _ => {}
            }
        }
        form
    }
}

/// `POST /console/keys`: create a key and show it once.
pub(super) async fn create(
    State(state): State<AppState>,
    axum::Extension(api): axum::Extension<Api>,
    signed_in: SignedIn,
    headers: HeaderMap,
    context: CallContext,
    form: Result<Form<Vec<(String, String)>>, FormRejection>,
) -> Result<Response, Response> {
    let Ok(Form(pairs)) = form else {
        return Err(layout::refusal(
            StatusCode::BAD_REQUEST,
            "Invalid form",
            "The form could not be read; reload the page and try again.",
        ));
    };
    let form = CreateForm::from_pairs(pairs);
    session::check_post(&state, &headers, &signed_in, &form.csrf)?;
    let mut body = serde_json::json!({ "name": form.name, "scopes": form.scopes });
    if !form.expires_in_days.trim().is_empty() {
        let days: u64 = form.expires_in_days.trim().parse().map_err(|_| {
            layout::refusal(
                StatusCode::BAD_REQUEST,
                "Invalid input",
                "The expiry must be a whole number of days.",
            )
        })?;
        body["expires_in_secs"] = days.saturating_mul(86_400).into();
    }
    let created: Created = api
        .call(
            &state,
            &signed_in.principal,
            &context,
            Method::POST,
            "/v1/keys",
            Some(&body),
        )
        .await
        .map_err(|e| layout::error_page(&e))?
        .into_ok()?;
    Ok(layout::respond(
        StatusCode::CREATED,
        "Key created",
        Some(&signed_in),
        &html! {
            p.notice role="status" {
                "Key " strong { (created.record.name) } " was created. Copy it now: "
                "it is shown only this once."
            }
            div.secret {
                code id="new-key" { (created.key) }
                button.secondary type="button" data-copy="new-key" hidden { "Copy" }
            }
            p { a href=(format!("/console/keys/{}", created.record.id)) { "The key's page" }
                " · " a href="/console/keys" { "All keys" } }
        },
    ))
}

/// The revoke form.
#[derive(Debug, Deserialize)]
pub(super) struct RevokeForm {
    csrf: String,
}

/// `POST /console/keys/{id}/revoke`.
pub(super) async fn revoke(
    State(state): State<AppState>,
    axum::Extension(api): axum::Extension<Api>,
    signed_in: SignedIn,
    headers: HeaderMap,
    context: CallContext,
    Path(id): Path<String>,
    form: Result<Form<RevokeForm>, FormRejection>,
) -> Result<Response, Response> {
    let token = form.map(|Form(f)| f.csrf).unwrap_or_default();
    session::check_post(&state, &headers, &signed_in, &token)?;
    let answer = api
        .call(
            &state,
            &signed_in.principal,
            &context,
            Method::DELETE,
            &format!("/v1/keys/{}", percent(&id)),
            None,
        )
        .await
        .map_err(|e| layout::error_page(&e))?;
    if !answer.status.is_success() {
        return Err(answer.refusal());
    }
    Ok(Redirect::to("/console/keys?status=revoked").into_response())
}

/// `GET /console/keys/{id}`: a key's details and its usage chart (loaded
/// after the first paint).
pub(super) async fn show(
    State(state): State<AppState>,
    axum::Extension(api): axum::Extension<Api>,
    signed_in: SignedIn,
    context: CallContext,
    Path(id): Path<String>,
) -> Result<Response, Response> {
    let key: Key = api
        .call(
            &state,
            &signed_in.principal,
            &context,
            Method::GET,
            &format!("/v1/keys/{}", percent(&id)),
            None,
        )
        .await
        .map_err(|e| layout::error_page(&e))?
        .into_ok()?;
    let chart = format!("/console/usage-chart?key={}", percent(&key.id));
    let status = status_of(&key);
    Ok(layout::page(
        &format!("Key {}", key.name),
        Some(&signed_in),
        &html! {
            table {
                tbody {
                    tr { th { "Id" } td.mono { (key.id) } }
                    tr { th { "Owner" } td { (key.principal) } }
                    tr { th { "Scopes" } td { (key.scopes.join(", ")) } }
                    tr { th { "Created" } td { (key.created_at) } }
                    tr { th { "Expires" } td { (key.expires_at.as_deref().unwrap_or("never")) } }
                    tr { th { "Last used" } td { (key.last_used_at.as_deref().unwrap_or("never")) } }
                    tr { th { "Status" } td { span class=(format!("badge {status}")) { (status) } } }
                }
            }
            h2 { "Requests per hour, last 24 hours" }
            section data-panel=(chart) aria-busy="true" {
                a href=(chart) { "Show the chart" }
            }
        },
    ))
}
