//! Usage charts: requests per hour stacked by outcome, drawn on the server
//! as SVG (no script, nothing inline for the CSP to refuse), from the
//! answer of `GET /v1/usage`.

use std::collections::BTreeMap;

use axum::extract::{Query, State};
use axum::http::Method;
use axum::response::Response;
use maud::{Markup, html};
use serde::Deserialize;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::api::{Api, CallContext};
use super::layout;
use super::session::SignedIn;
use crate::routes::usage::{Counts, UsageSeries};
use crate::state::AppState;

/// The outcomes, bottom of the stack first, with their legend labels.
const OUTCOMES: [(&str, &str); 4] = [
    ("allowed", "allowed"),
    ("rate_limited", "rate-limited"),
    ("denied", "denied"),
    ("invalid_credential", "invalid credential"),
];

/// Hours a chart covers.
pub(crate) const HOURS: i64 = 24;

/// The query of the chart panel.
#[derive(Debug, Deserialize)]
pub(super) struct ChartQuery {
    key: Option<String>,
}

/// The `GET /v1/usage` URI of the last [`HOURS`] hours before `now`, of
/// `key` or of the whole tenant.
pub(crate) fn usage_uri(now: OffsetDateTime, key: Option<&str>) -> String {
    let to = now
        .replace_minute(0)
        .and_then(|t| t.replace_second(0))
        .map_or(now, |t| {
            t.replace_nanosecond(0).unwrap_or(t) + time::Duration::HOUR
        });
    let from = to - time::Duration::hours(HOURS);
    let stamp = |t: OffsetDateTime| t.format(&Rfc3339).unwrap_or_default();
    let mut uri = format!(
        "/v1/usage?bucket=hour&from={}&to={}",
        stamp(from).replace('+', "%2B"),
        stamp(to).replace('+', "%2B")
    );
    if let Some(key) = key {
        uri.push_str("&key=");
        uri.push_str(key);
    }
    uri
}

/// `GET /console/usage-chart?key=`: the chart panel (loaded after the
/// first paint by the pages that show it; a page of its own without
/// script).
pub(super) async fn panel(
    State(state): State<AppState>,
    axum::Extension(api): axum::Extension<Api>,
    signed_in: SignedIn,
    context: CallContext,
    Query(query): Query<ChartQuery>,
) -> Result<Response, Response> {
    let uri = usage_uri(state.auth.clock.now(), query.key.as_deref());
    let series: UsageSeries = api
        .call(
            &state,
            &signed_in.principal,
            &context,
            Method::GET,
            &uri,
            None,
        )
        .await
        .map_err(|e| layout::error_page(&e))?
        .into_ok()?;
    let title = match &query.key {
        Some(key) => format!("Requests per hour of key {key}"),
        None => "Requests per hour".to_owned(),
    };
    Ok(layout::page(
        &title,
        Some(&signed_in),
        &html! { div data-panel-content { (chart(&series)) } },
    ))
}

/// The figures of one hour: each outcome's count, in [`OUTCOMES`] order.
type Hour = [u64; 4];

/// `counts` in [`OUTCOMES`] order.
const fn by_outcome(counts: &Counts) -> Hour {
    [
        counts.allowed,
        counts.rate_limited,
        counts.denied,
        counts.invalid_credential,
    ]
}

/// Per-hour totals of `series` by outcome, all route classes added.
fn hourly(series: &UsageSeries) -> BTreeMap<&str, Hour> {
    let mut hours: BTreeMap<&str, Hour> = BTreeMap::new();
    for point in &series.points {
        let slot = hours.entry(point.start.as_str()).or_default();
        for (sum, value) in slot.iter_mut().zip(by_outcome(&point.counts)) {
            *sum = sum.saturating_add(value);
        }
    }
    hours
}

/// One drawn bar segment: outcome, x, y, height.
type Segment = (&'static str, u64, u64, u64);

/// The stacked bar chart of `series`, with a table of the same figures
/// for screen readers.
pub(crate) fn chart(series: &UsageSeries) -> Markup {
    const WIDTH: u64 = 720;
    const HEIGHT: u64 = 180;
    const BAR: u64 = WIDTH / HOURS.unsigned_abs();
    let hours = hourly(series);
    let sum = |hour: &Hour| hour.iter().sum::<u64>();
    let peak = hours.values().map(sum).max().unwrap_or(0).max(1);
    let total: u64 = hours.values().map(sum).sum();
    let mut segments: Vec<Segment> = Vec::new();
    let parse = |t: &str| OffsetDateTime::parse(t, &Rfc3339).ok();
    let from = parse(&series.from);
    for (start, hour) in &hours {
        // Hours without requests have no point: place each by its start.
        let Some(slot) = from
            .zip(parse(start))
            .and_then(|(from, start)| u64::try_from((start - from).whole_hours()).ok())
            .filter(|slot| *slot < HOURS.unsigned_abs())
        else {
            continue;
        };
        let x = slot * BAR;
        let mut y = HEIGHT;
        for ((outcome, _), value) in OUTCOMES.iter().zip(hour) {
            if *value > 0 {
                let h = (value * HEIGHT).div_ceil(peak);
                y = y.saturating_sub(h);
                segments.push((outcome, x, y, h));
            }
        }
    }
    html! {
        figure {
            svg.chart viewBox=(format!("0 0 {WIDTH} {}", HEIGHT + 20)) role="img"
                aria-label=(format!("{total} requests in the last 24 hours, per hour, by outcome")) {
                @for (outcome, x, y, h) in &segments {
                    rect class=(outcome) x=(x + 2) y=(y) width=(BAR - 4) height=(h) {}
                }
                text x="0" y=(HEIGHT + 15) { "24 h ago" }
                text x=(WIDTH - 30) y=(HEIGHT + 15) { "now" }
                text x="0" y="12" { "peak " (peak) "/h" }
            }
            figcaption.legend {
                @for (outcome, label) in OUTCOMES {
                    span { i class=(outcome) {} (label) }
                }
            }
        }
        details {
            summary { "The figures" }
            table {
                thead { tr {
                    th { "Hour (UTC)" }
                    @for (_, label) in OUTCOMES { th.num { (label) } }
                } }
                tbody {
                    @for (start, hour) in &hours {
                        tr {
                            td { (start) }
                            @for value in hour { td.num { (value) } }
                        }
                    }
                }
            }
        }
    }
}
