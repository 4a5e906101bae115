//! The compliance report: JSON or escaped HTML for administrators only,
//! and the audit purges (file and PostgreSQL) it still verifies across.

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_report_is_json_or_escaped_html_for_admins_only() {
    let dir = TestDir::new("compliance-report");
    let mut config = config(&dir);
    config.retention.default.insert("documents".into(), 90);
    let state = state_with_trail(&config).await;
    let acme = unique("acme.x@y");
    let admin = key_with(&state, "ops", &["tenants:cross", "audit:read"]).await;
    // A key in the tenant, and events of the period on its stream.
    let _member = key_with(&state, &acme, &["documents:read"]).await;
    let sink = state.audit.as_ref().expect("trail").sink();
    let now = OffsetDateTime::now_utc();
    let ctx = RequestContext::new();
    for event in [
        AuditEvent::new("auth.failure", AuditOutcome::Failure, now, &ctx).because("bad_credential"),
        AuditEvent::new("auth.lockout", AuditOutcome::Denied, now, &ctx).because("locked_out"),
        AuditEvent::new("document.create", AuditOutcome::Success, now, &ctx),
    ] {
        sink.record(&event.by(tenant(&acme), None))
            .await
            .expect("recorded");
    }
    state
        .compliance
        .holds
        .place(LegalHold::new(
            tenant(&acme),
            "<script>alert(1)</script>",
            PrincipalId::new("counsel").expect("id"),
            OffsetDateTime::now_utc(),
        ))
        .await
        .expect("hold");
    let app = crate::routes::router(state.clone());
    flush(&state).await;

    let uri = format!("/v1/admin/compliance/report?tenant={acme}");
    let (status, headers, body) = send(app.clone(), request("GET", &uri, Some(&admin), None)).await;
    assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
    assert_eq!(headers[header::CACHE_CONTROL], "no-store");
    assert!(
        headers[header::CONTENT_TYPE]
            .to_str()
            .expect("ascii")
            .starts_with("application/json")
    );
    let report = json(&body);
    for section in ["audit", "retention", "privacy", "keys", "auth", "notes"] {
        assert!(!report[section].is_null(), "{section} missing: {report}");
    }
    assert_eq!(report["tenant"], acme.as_str());
    assert_eq!(report["audit"]["events_by_action"]["document.create"], 1);
    assert_eq!(report["audit"]["events_total"], 3);
    assert_eq!(report["audit"]["chain"]["status"], "verified");
    assert_eq!(report["retention"]["policies"]["default"]["documents"], 90);
    assert_eq!(
        report["retention"]["active_holds"].as_array().map(Vec::len),
        Some(1)
    );
    assert_eq!(report["keys"]["api_keys"].as_array().map(Vec::len), Some(1));
    assert_eq!(report["auth"]["failed_logins"], 1);
    assert_eq!(report["auth"]["lockouts"], 1);
    let missing = report["audit"]["missing_actions"].to_string();
    assert!(!missing.contains("document.create"), "{missing}");
    assert!(missing.contains("document.delete"), "{missing}");
    assert!(missing.contains("retention.purge"), "{missing}");

    // HTML: by `format` or by `Accept`; every value escaped.
    for (uri, accept) in [
        (format!("{uri}&format=html"), None),
        (uri.clone(), Some("text/html,application/xhtml+xml;q=0.9")),
    ] {
        let mut req = request("GET", &uri, Some(&admin), None);
        if let Some(accept) = accept {
            req.headers_mut()
                .insert(header::ACCEPT, accept.parse().expect("header"));
        }
        let (status, headers, body) = send(app.clone(), req).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(headers[header::CONTENT_TYPE], "text/html; charset=utf-8");
        assert_eq!(headers[header::CACHE_CONTROL], "no-store");
        let html = String::from_utf8(body).expect("utf-8");
        assert!(html.starts_with("<!DOCTYPE html>"));
        assert!(html.contains(&acme), "the tenant is named");
        assert!(!html.contains("<script>"), "reason escaped");
        assert!(html.contains("&lt;script&gt;"), "reason escaped");
    }

    for bad in [
        format!("{uri}&format=pdf"),
        format!("{uri}&days=0"),
        "/v1/admin/compliance/report?tenant=not%20a%20tenant".to_owned(),
    ] {
        let (status, _, _) = send(app.clone(), request("GET", &bad, Some(&admin), None)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}");
    }
    // A tenant's own administrator: its own report, by default or by name;
    // another tenant's is 404, as if it did not exist; without
    // `audit:read`, 403.
    let tenant_admin = key_with(&state, &acme, &["audit:read", "admin:access"]).await;
    for own in [uri.clone(), "/v1/admin/compliance/report".to_owned()] {
        let (status, _, body) =
            send(app.clone(), request("GET", &own, Some(&tenant_admin), None)).await;
        assert_eq!(status, StatusCode::OK, "{own}");
        assert_eq!(json(&body)["tenant"], acme.as_str(), "{own}");
    }
    let other = "/v1/admin/compliance/report?tenant=globex";
    let (status, _, _) = send(
        app.clone(),
        request("GET", other, Some(&tenant_admin), None),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let reader = key_with(&state, &acme, &["admin:access"]).await;
    let (status, _, _) = send(app.clone(), request("GET", &uri, Some(&reader), None)).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _, _) = send(app, request("GET", &uri, None, None)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[cfg(feature = "postgres")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_audit_purge_cuts_the_postgres_trail_and_the_report_still_verifies() {
    use crate::wiring::tests::on_test_schema;
    const SUITE: &str = "server-postgres";
    let Some(url) = crate::report::require_backend(SUITE, "DOCAICHE_TEST_POSTGRES_URL") else {
        return;
    };
    let dir = TestDir::new("audit-purge-postgres");
    let mut config = config(&dir);
    let (schema, database) = on_test_schema(&url, "audit_purge", &mut config).await;
    config.audit.sink = crate::audit::AuditSinkKind::Postgres;
    config.audit.checkpoint_every = 4;
    config.retention.default.insert("audit".into(), 1);
    config.secrets.sources = vec!["env".into()];
    let checkpoint = "p".repeat(32);
    let env = move |name: &str| match name {
        "DOCAICHE_SECRET_AUDIT_CHECKPOINT_KEY" => Some(checkpoint.clone()),
        _ => database(name),
    };
    let mut state = local_state(&config);
    let secrets = Secrets::from_config(&config, &env).await.expect("secrets");
    let trail = crate::audit::open(&config, &secrets, &env)
        .await
        .expect("trail");
    let acme = unique("acme");
    let sink = trail.sink();
    for i in 0..6 {
        let event = AuditEvent::new(
            "document.read",
            AuditOutcome::Success,
            OffsetDateTime::now_utc(),
            &RequestContext::new(),
        )
        .by(tenant(&acme), None)
        .on(AuditResource::new("document", format!("doc-{i}")));
        sink.record(&event).await.expect("recorded");
    }
    trail.buffer.flush().await.expect("flushed");
    // The purge runs two days later: a one-day period has expired.
    let later = Arc::new(ManualClock::starting_at(
        OffsetDateTime::now_utc() + time::Duration::days(2),
    ));
    let documents = Arc::clone(&state.documents) as Arc<dyn DocumentStore>;
    let compliance = Compliance::new(
        &config,
        Arc::clone(&documents),
        trail.sink(),
        later,
        Arc::clone(&state.auth.stores.tenants),
    )
    .expect("compliance")
    .with_audit_trail(&trail, documents)
    .expect("audit retention");
    state.compliance = Arc::new(compliance);
    state.audit = Some(trail);
    let report = state.compliance.purger.run(&[tenant(&acme)]).await;
    assert_eq!(report.trail_failure, None, "{report:?}");
    assert_eq!(report.tenants[&tenant(&acme)][resource::AUDIT].purged, 6);
    let (rows,): (i64,) = docaiche_store::postgres::sqlx::query_as(&format!(
        "SELECT count(*) FROM {}.audit_trail WHERE stream = $1",
        schema.name
    ))
    .bind(&acme)
    .fetch_one(&schema.admin)
    .await
    .expect("count");
    // The purge event itself (recorded before the cut) stays.
    assert_eq!(rows, 1);

    let admin_key = key_with(&state, "ops", &["tenants:cross", "audit:read"]).await;
    flush(&state).await;
    let report = report_json(&state, &admin_key, &acme).await;
    assert_eq!(report["audit"]["chain"]["status"], "verified", "{report}");
    crate::report::mark_ran(SUITE, &format!("audit purge schema {}", schema.name));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_audit_purge_removes_expired_segments_and_the_report_still_verifies() {
    let dir = TestDir::new("compliance-audit-purge");
    let mut config = config(&dir);
    config.audit.rotate_bytes = 2048;
    config.audit.checkpoint_every = 4;
    config.retention.default.insert("audit".into(), 365);
    config.secrets.sources = vec!["env".into()];
    let checkpoint = "k".repeat(32);
    let env = move |name: &str| {
        (name == "DOCAICHE_SECRET_AUDIT_CHECKPOINT_KEY").then(|| checkpoint.clone())
    };
    let mut state = local_state(&config);
    let secrets = Secrets::from_config(&config, &env).await.expect("secrets");
    let trail = crate::audit::open(&config, &secrets, &env)
        .await
        .expect("trail");
    assert!(trail.anchor_key.is_some(), "the key comes from the chain");
    let documents = Arc::clone(&state.documents) as Arc<dyn DocumentStore>;
    let compliance = Compliance::new(
        &config,
        Arc::clone(&documents),
        trail.sink(),
        Arc::clone(&state.auth.clock),
        Arc::clone(&state.auth.stores.tenants),
    )
    .expect("compliance")
    .with_audit_trail(&trail, documents)
    .expect("audit retention");
    state.compliance = Arc::new(compliance);
    state.audit = Some(trail);

    // Two years old, then today: the old ones fill rotated segments.
    let acme = unique("acme");
    let sink = state.audit.as_ref().expect("trail").sink();
    let old = OffsetDateTime::now_utc() - time::Duration::days(730);
    for i in 0..40 {
        let at = if i < 30 {
            old
        } else {
            OffsetDateTime::now_utc()
        };
        let event = AuditEvent::new(
            "document.read",
            AuditOutcome::Success,
            at,
            &RequestContext::new(),
        )
        .by(tenant(&acme), None)
        .on(AuditResource::new("document", format!("doc-{i}")));
        sink.record(&event).await.expect("recorded");
    }
    flush(&state).await;
    let path = config.audit.file_path(&config);
    let before: Vec<_> = docaiche_compliance::audit::trail_segments(&path)
        .expect("segments")
        .into_iter()
        .filter(|s| s != &path)
        .collect();
    assert!(before.len() > 2, "{before:?}");

    let report = state.compliance.purger.run(&[tenant(&acme)]).await;
    flush(&state).await;
    assert_eq!(report.trail_failure, None);
    let purged = &report.tenants[&tenant(&acme)][resource::AUDIT];
    assert!(purged.purged > 0, "{report:?}");
    assert!(before.iter().any(|s| !s.exists()), "old segments are gone");
    assert!(docaiche_compliance::audit::Anchor::path_for(&path).exists());
    assert!(
        trail_text(&state, &config)
            .await
            .contains("retention.purge")
            || {
                // The purge event may sit in a segment rotated since.
                docaiche_compliance::audit::trail_segments(&path)
                    .expect("segments")
                    .iter()
                    .any(|s| {
                        std::fs::read_to_string(s).is_ok_and(|t| t.contains("retention.purge"))
                    })
            }
    );

    let admin = key_with(&state, "ops", &["tenants:cross", "audit:read"]).await;
    flush(&state).await;
    let report = report_json(&state, &admin, &acme).await;
    assert_eq!(report["audit"]["chain"]["status"], "verified", "{report}");
    assert!(
        !report["notes"].to_string().contains("audit retention"),
        "{report}"
    );
}
