//! The HTML rendering of a report. Hand-written (a template engine would be
//! a dependency for one page); every dynamic value goes through [`esc`].

use std::fmt::{Display, Write};

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::{ChainStatus, ComplianceReport};

/// HTML-escape text for element content and double-quoted attributes.
pub(super) fn esc(value: impl Display) -> String {
    let raw = value.to_string();
    let mut out = String::with_capacity(raw.len());
    for c in raw.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn date(at: OffsetDateTime) -> String {
    esc(at.format(&Rfc3339).unwrap_or_default())
}

fn row(out: &mut String, cells: &[String]) {
    out.push_str("<tr>");
    for cell in cells {
        let _ = write!(out, "<td>{cell}</td>");
    }
    out.push_str("</tr>\n");
}

fn table(out: &mut String, headers: &[&str], rows: impl FnOnce(&mut String)) {
    out.push_str("<table><thead><tr>");
    for h in headers {
        let _ = write!(out, "<th>{}</th>", esc(h));
    }
    out.push_str("</tr></thead><tbody>\n");
    rows(out);
    out.push_str("</tbody></table>\n");
}

fn flag(bad: bool, text: &str) -> String {
    if bad {
        format!("<span class=\"bad\">{}</span>", esc(text))
    } else {
        esc(text)
    }
}

pub(super) fn render(report: &ComplianceReport) -> String {
    let mut out = String::with_capacity(8 * 1024);
    let scope = report
        .tenant
        .as_ref()
        .map_or_else(|| "all tenants".to_owned(), |t| format!("tenant {t}"));
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>Compliance report — {scope}</title>\
         <style>body{{font-family:system-ui,sans-serif;margin:2rem;max-width:72rem}}\
         table{{border-collapse:collapse;margin:.5rem 0 1.5rem}}\
         th,td{{border:1px solid #ccc;padding:.25rem .6rem;text-align:left}}\
         th{{background:#f3f3f3}}.bad{{color:#b00020;font-weight:600}}\
         .ok{{color:#1b5e20;font-weight:600}}</style></head><body>\n\
         <h1>Compliance report</h1>\n<p>{scope}, generated {generated}. Overall: {overall}</p>\n",
        scope = esc(&scope),
        generated = date(report.generated_at),
        overall = if report.needs_attention() {
            "<span class=\"bad\">needs attention</span>"
        } else {
            "<span class=\"ok\">no findings</span>"
        },
    );

    // Audit.
    out.push_str("<h2>Audit trail</h2>\n");
    let chain = match &report.audit.chain {
        ChainStatus::NotChecked => "not checked".to_owned(),
        ChainStatus::Verified { events } => {
            format!(
                "<span class=\"ok\">verified</span> ({} events)",
                esc(events)
            )
        }
        ChainStatus::Broken {
            at_sequence,
            detail,
        } => format!(
            "<span class=\"bad\">BROKEN</span> at {}: {}",
            at_sequence.map_or_else(
                || "unknown position".to_owned(),
                |s| format!("sequence {s}")
            ),
            esc(detail)
        ),
    };
    let _ = writeln!(
        out,
        "<p>Chain: {chain}. Events in period: {}.</p>",
        esc(report.audit.events_total)
    );
    if !report.audit.missing_actions.is_empty() {
        let _ = writeln!(
            out,
            "<p class=\"bad\">Expected actions never audited: {}</p>",
            esc(report.audit.missing_actions.join(", "))
        );
    }
    table(&mut out, &["action", "events"], |out| {
        for (action, count) in &report.audit.events_by_action {
            row(out, &[esc(action), esc(count)]);
        }
    });

    // Authentication.
    let auth = &report.auth;
    out.push_str("<h2>Authentication</h2>\n");
    let _ = writeln!(
        out,
        "<p>Successful logins: {}. Failed logins: {}. Lockouts: {}.</p>",
        esc(auth.successful_logins),
        esc(auth.failed_logins),
        esc(auth.lockouts)
    );
    if !auth.failures_by_reason.is_empty() {
        table(&mut out, &["failure reason", "count"], |out| {
            for (reason, count) in &auth.failures_by_reason {
                row(out, &[esc(reason), esc(count)]);
            }
        });
    }

    // Retention.
    let retention = &report.retention;
    out.push_str("<h2>Retention</h2>\n");
    table(
        &mut out,
        &["scope", "resource kind", "kept (days)"],
        |out| {
            for (kind, days) in &retention.policies.default {
                row(out, &[esc("default"), esc(kind), esc(days)]);
            }
            for (tenant, kinds) in &retention.policies.tenants {
                for (kind, days) in kinds {
                    row(out, &[esc(tenant), esc(kind), esc(days)]);
                }
            }
        },
    );
    let _ = writeln!(
        out,
        "<p>Active legal holds: {}.</p>",
        esc(retention.active_holds.len())
    );
    if !retention.active_holds.is_empty() {
        table(
            &mut out,
            &["tenant", "subject", "resource kind", "reason", "placed"],
            |out| {
                for hold in &retention.active_holds {
                    row(
                        out,
                        &[
                            esc(&hold.tenant),
                            esc(hold.subject.as_ref().map_or("all", |s| s.as_str())),
                            esc(hold.resource_kind.as_deref().unwrap_or("all")),
                            esc(&hold.reason),
                            date(hold.placed_at),
                        ],
                    );
                }
            },
        );
    }
    match &retention.last_purge {
        Some(purge) => {
            let _ = writeln!(
                out,
                "<p>Last purge finished {}: {} purged, {} held, {}.</p>",
                purge.finished_at.map_or_else(|| esc("—"), date),
                esc(purge.purged()),
                esc(purge.held()),
                flag(
                    !purge.failures.is_empty(),
                    &format!("{} tenant(s) failed", purge.failures.len())
                )
            );
        }
        None => out.push_str("<p>No purge has run yet.</p>\n"),
    }

    // Privacy.
    let privacy = &report.privacy;
    out.push_str("<h2>Data-subject requests</h2>\n");
    let _ = writeln!(
        out,
        "<p>Open: {}. Overdue: {}. Completed: {}. Rejected: {}.</p>",
        esc(privacy.open.len()),
        flag(privacy.overdue > 0, &privacy.overdue.to_string()),
        esc(privacy.completed),
        esc(privacy.rejected)
    );
    if !privacy.open.is_empty() {
        table(
            &mut out,
            &[
                "request",
                "tenant",
                "kind",
                "regulation",
                "status",
                "received",
                "deadline",
                "days left",
            ],
            |out| {
                for r in &privacy.open {
                    row(
                        out,
                        &[
                            esc(r.id),
                            esc(&r.tenant),
                            esc(r.kind.as_str()),
                            esc(r.regulation.as_str()),
                            esc(r.status.as_str()),
                            date(r.received_at),
                            date(r.deadline),
                            flag(r.overdue, &r.days_left.to_string()),
                        ],
                    );
                }
            },
        );
    }

    // Keys and secrets.
    let keys = &report.keys;
    out.push_str("<h2>Keys and secrets</h2>\n");
    let _ = writeln!(
        out,
        "<p>API keys in use: {} (rotation after {} days).</p>",
        esc(keys.api_keys.len()),
        esc(keys.api_key_rotation_days)
    );
    if !keys.api_keys.is_empty() {
        table(
            &mut out,
            &["key", "tenant", "name", "age (days)", "idle (days)"],
            |out| {
                for k in &keys.api_keys {
                    row(
                        out,
                        &[
                            esc(k.id),
                            esc(&k.tenant),
                            esc(&k.name),
                            flag(k.rotation_due, &k.age_days.to_string()),
                            k.idle_days.map_or_else(|| esc("never used"), esc),
                        ],
                    );
                }
            },
        );
    }
    if !keys.secrets.is_empty() {
        table(
            &mut out,
            &["secret", "age (days)", "rotate after (days)"],
            |out| {
                for s in &keys.secrets {
                    row(
                        out,
                        &[
                            esc(&s.name),
                            flag(s.overdue, &s.age_days.to_string()),
                            esc(s.max_age_days),
                        ],
                    );
                }
            },
        );
    }
    out.push_str("</body></html>\n");
    out
}
