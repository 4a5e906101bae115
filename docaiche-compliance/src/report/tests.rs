use docaiche_core::api_key::{ApiKeyLookup, ApiKeyRecord};
use docaiche_core::audit::{AuditEvent, AuditOutcome};
use docaiche_core::{ApiKeyId, Clock, ManualClock, PrincipalId, RequestContext, TenantId};

use super::*;
use crate::privacy::{PrivacyRequest, Regulation, RequestKind};
use crate::retention::{LegalHold, RetentionPolicies};

fn tenant(name: &str) -> TenantId {
    TenantId::new(name).expect("valid")
}

fn principal(name: &str) -> PrincipalId {
    PrincipalId::new(name).expect("valid")
}

#[test]
fn figures_come_from_the_pieces() {
    let clock = ManualClock::new();
    let now = clock.now();
    let ctx = RequestContext::new();
    let events = [
        AuditEvent::new("auth.login", AuditOutcome::Success, now, &ctx),
        AuditEvent::new("auth.login", AuditOutcome::Failure, now, &ctx).because("bad_credential"),
        AuditEvent::new("auth.login", AuditOutcome::Failure, now, &ctx).because("bad_credential"),
        AuditEvent::new("auth.login", AuditOutcome::Denied, now, &ctx).because("locked_out"),
        AuditEvent::new("document.delete", AuditOutcome::Success, now, &ctx),
    ];
    let old = PrivacyRequest::new(
        tenant("acme"),
        principal("alice"),
        RequestKind::Erase,
        Regulation::Gdpr,
        principal("dpo"),
        now - time::Duration::days(40),
    );
    let fresh = PrivacyRequest::new(
        tenant("acme"),
        principal("bob"),
        RequestKind::Export,
        Regulation::Ccpa,
        principal("dpo"),
        now - time::Duration::days(5),
    );
    let key = ApiKeyRecord::new(
        ApiKeyId::new(),
        tenant("acme"),
        principal("alice"),
        ApiKeyLookup::new("lookup0001").expect("valid"),
        now - time::Duration::days(120),
    )
    .with_name("ci");
    let report = ComplianceReport::builder(now)
        .tenant(tenant("acme"))
        .audit_events(&events)
        .chain_status(ChainStatus::Verified { events: 5 })
        .retention(
            RetentionPolicies::new().with_default("documents", 90),
            [LegalHold::new(
                tenant("acme"),
                "case",
                principal("counsel"),
                now,
            )],
            None,
        )
        .privacy_requests([&old, &fresh])
        .api_keys([&key])
        .secret("pepper", now - time::Duration::days(10), 365)
        .build();
    assert_eq!(report.auth.successful_logins, 1);
    assert_eq!(report.auth.failed_logins, 2);
    assert_eq!(report.auth.lockouts, 1);
    assert_eq!(report.audit.events_total, 5);
    assert!(
        !report
            .audit
            .missing_actions
            .contains(&"auth.login".to_owned())
    );
    assert!(
        report
            .audit
            .missing_actions
            .contains(&"privacy.erase".to_owned())
    );
    // What servers record on upload (`document.create`, beside
    // `document.read` and `document.delete`) is what the report expects.
    assert!(EXPECTED_ACTIONS.contains(&"document.create"));
    assert!(!EXPECTED_ACTIONS.contains(&"document.upload"));
    assert_eq!(report.privacy.open.len(), 2);
    assert_eq!(report.privacy.overdue, 1);
    assert_eq!(report.privacy.open[0].id, old.id, "nearest deadline first");
    assert_eq!(report.privacy.open[0].days_left, -10);
    assert!(report.keys.api_keys[0].rotation_due);
    assert!(!report.keys.secrets[0].overdue);
    assert!(report.needs_attention());
    let json = serde_json::to_value(&report).expect("serialises");
    assert_eq!(json["audit"]["chain"]["status"], "verified");
    let back: ComplianceReport = serde_json::from_value(json).expect("round-trips");
    assert_eq!(back, report);
}

#[test]
fn html_escapes_every_value() {
    let clock = ManualClock::new();
    let now = clock.now();
    let hostile = "<script>alert('x')</script>&\"";
    let key = ApiKeyRecord::new(
        ApiKeyId::new(),
        tenant("acme"),
        principal("alice"),
        ApiKeyLookup::new("lookup0001").expect("valid"),
        now,
    )
    .with_name(hostile);
    let report = ComplianceReport::builder(now)
        .chain_status(ChainStatus::Broken {
            at_sequence: Some(7),
            detail: hostile.to_owned(),
        })
        .retention(
            RetentionPolicies::new().with_default(hostile, 90),
            [LegalHold::new(tenant("acme"), hostile, principal("counsel"), now).on_kind(hostile)],
            None,
        )
        .api_keys([&key])
        .secret(hostile, now, 90)
        .audit_events(&[AuditEvent::new(
            hostile,
            AuditOutcome::Failure,
            now,
            &RequestContext::new(),
        )
        .because(hostile)])
        .build();
    let html = report.to_html();
    assert!(!html.contains("<script>"), "{html}");
    assert!(!html.contains("alert('x')"), "{html}");
    assert!(html.contains("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;&amp;&quot;"));
    assert!(html.contains("BROKEN"));
}
