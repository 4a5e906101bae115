//! The overview: who is signed in, the tenant's requests of the last 24
//! hours by outcome (with the chart loaded after the first paint), and the
//! dead jobs waiting for a retry.

use axum::extract::State;
use axum::http::Method;
use axum::response::Response;
use docaiche_core::Permission;
use maud::{Markup, html};
use serde::Deserialize;

use super::api::{Api, CallContext};
use super::chart::usage_uri;
use super::layout;
use super::session::SignedIn;
use crate::routes::usage::UsageSeries;
use crate::state::AppState;

/// A page of jobs, as far as the overview reads it.
#[derive(Debug, Deserialize)]
struct JobPage {
    items: Vec<serde_json::Value>,
    next: Option<String>,
}

/// `GET /console`.
pub(super) async fn page(
    State(state): State<AppState>,
    axum::Extension(api): axum::Extension<Api>,
    signed_in: SignedIn,
    context: CallContext,
) -> Result<Response, Response> {
    let principal = &signed_in.principal;
    let usage = if principal.has_permission(&Permission::KEYS_MANAGE) {
        let uri = usage_uri(state.auth.clock.now(), None);
        let series: UsageSeries = api
            .call(&state, principal, &context, Method::GET, &uri, None)
            .await
            .map_err(|e| layout::error_page(&e))?
            .into_ok()?;
        Some(series)
    } else {
        None
    };
    let dead = if principal.has_permission(&Permission::JOBS_READ) {
        let page: JobPage = api
            .call(
                &state,
                principal,
                &context,
                Method::GET,
                "/v1/jobs?state=dead&limit=100",
                None,
            )
            .await
            .map_err(|e| layout::error_page(&e))?
            .into_ok()?;
        Some(page)
    } else {
        None
    };
    Ok(layout::page(
        "Overview",
        Some(&signed_in),
        &html! {
            (whoami(&signed_in))
            @if let Some(series) = &usage { (totals(series)) }
            @if let Some(page) = &dead {
                h2 { "Dead jobs" }
                p {
                    @if page.items.is_empty() { "None." }
                    @else {
                        (page.items.len()) @if page.next.is_some() { " or more" }
                        " jobs failed for good and wait for a retry or a deletion."
                    }
                }
            }
        },
    ))
}

fn whoami(signed_in: &SignedIn) -> Markup {
    let principal = &signed_in.principal;
    html! {
        p {
            "Signed in as " strong { (principal.id.as_str()) }
            " in tenant " strong { (principal.tenant.as_str()) }
            @if !principal.roles.is_empty() { " with roles " (principal.roles.join(", ")) }
            "."
        }
    }
}

/// The tenant's requests of the last 24 hours, by outcome.
fn totals(series: &UsageSeries) -> Markup {
    let mut sums = [0_u64; 5];
    for point in &series.points {
        let c = &point.counts;
        for (sum, value) in sums.iter_mut().zip([
            c.requests,
            c.allowed,
            c.rate_limited,
            c.denied,
            c.invalid_credential,
        ]) {
            *sum = sum.saturating_add(value);
        }
    }
    let [requests, allowed, limited, denied, invalid] = sums;
    let share = |part: u64| {
        if requests == 0 {
            "–".to_owned()
        } else {
            format!("{:.1} %", part as f64 * 100.0 / requests as f64)
        }
    };
    html! {
        h2 { "Requests, last 24 hours" }
        div.cards {
            div.card { div.figure { (requests) } div.label { "requests" } }
            div.card { div.figure { (allowed) } div.label { "allowed" } }
            div.card { div.figure { (share(limited)) } div.label { "rate-limited (" (limited) ")" } }
            div.card { div.figure { (share(denied + invalid)) } div.label { "refused: denied or invalid credential (" (denied + invalid) ")" } }
        }
        section data-panel="/console/usage-chart" aria-busy="true" {
            a href="/console/usage-chart" { "Show the chart" }
        }
    }
}
