//! The conformance suite of privacy request stores and legal hold
//! registries, shared by the memory, SQLite and PostgreSQL test binaries:
//! each runs the very same checks against its store.
//!
//! Tenant ids differ only where a SQL `LIKE` wildcard (`_`) sits, subjects
//! and free text carry quotes, comments and `%`, so a store that builds
//! SQL from input or matches loosely fails here.

#![allow(dead_code, unreachable_pub, clippy::unwrap_used, clippy::expect_used)]

use docaiche_compliance::privacy::{
    PrivacyRequest, PrivacyRequestStore, Regulation, RequestKind, RequestStatus,
};
use docaiche_compliance::retention::{LegalHold, LegalHoldRegistry};
use docaiche_core::{ErrorCode, PrincipalId, TenantId};
use time::{Duration, OffsetDateTime, UtcOffset};

pub fn tenant(name: &str) -> TenantId {
    TenantId::new(name).expect("valid tenant")
}

pub fn subject(name: &str) -> PrincipalId {
    PrincipalId::new(name).expect("valid principal")
}

/// Two tenants of `run` a `LIKE` would confuse: `<run>-a_c` and `<run>-abc`.
pub fn tenants(run: &str) -> (TenantId, TenantId) {
    (tenant(&format!("{run}-a_c")), tenant(&format!("{run}-abc")))
}

/// A subject id with every metacharacter a principal id admits.
pub fn odd_subject() -> PrincipalId {
    subject("o.brien+dsr@ex_ample.com")
}

fn now() -> OffsetDateTime {
    // Sub-second precision and a non-UTC offset must survive the store.
    OffsetDateTime::now_utc().to_offset(UtcOffset::from_hms(2, 0, 0).expect("offset"))
}

/// The [`PrivacyRequestStore`] contract.
pub async fn privacy_requests(store: &dyn PrivacyRequestStore, run: &str) {
    let (a, b) = tenants(run);
    let alice = odd_subject();
    let dpo = subject("dpo");
    let t0 = now();
    let r1 = PrivacyRequest::new(
        a.clone(),
        alice.clone(),
        RequestKind::Export,
        Regulation::Gdpr,
        dpo.clone(),
        t0,
    );
    let r2 = PrivacyRequest::new(
        a.clone(),
        subject("bob"),
        RequestKind::Erase,
        Regulation::Ccpa,
        dpo.clone(),
        t0 + Duration::seconds(1),
    );
    let r3 = PrivacyRequest::new(
        b.clone(),
        alice.clone(),
        RequestKind::Erase,
        Regulation::Gdpr,
        dpo.clone(),
        t0,
    );
    for r in [&r1, &r2, &r3] {
        store.insert(r).await.expect("inserted");
    }

    // A duplicate id is a conflict, in its own tenant and in another.
    let again = store.insert(&r1).await.expect_err("duplicate");
    assert_eq!(again.code(), ErrorCode::Conflict);
    let mut elsewhere = r1.clone();
    elsewhere.tenant = b.clone();
    let again = store.insert(&elsewhere).await.expect_err("duplicate id");
    assert_eq!(again.code(), ErrorCode::Conflict);

    // Read back exactly; never across tenants.
    assert_eq!(store.get(&a, &r1.id).await.expect("read"), Some(r1.clone()));
    assert_eq!(store.get(&b, &r1.id).await.expect("read"), None);
    assert_eq!(store.get(&a, &r3.id).await.expect("read"), None);
    assert_eq!(
        store.get(&a, &uuid::Uuid::now_v7()).await.expect("read"),
        None
    );
    assert_eq!(
        store.list(&a).await.expect("listed"),
        [r1.clone(), r2.clone()]
    );
    assert_eq!(
        store.list(&b).await.expect("listed"),
        std::slice::from_ref(&r3)
    );
    assert!(
        store
            .list(&tenant(&format!("{run}-a")))
            .await
            .expect("listed")
            .is_empty()
    );

    // Update replaces the stored request, subject included (erasure
    // pseudonymises it).
    let mut done = r1.clone();
    done.status = RequestStatus::Rejected;
    done.completed_at = Some(t0 + Duration::days(2));
    done.failure = Some("legal_hold'; DROP TABLE compliance_privacy_requests; --".into());
    done.subject = subject("erased-0123456789abcdef");
    assert!(store.update(&done).await.expect("updated"));
    assert_eq!(
        store.get(&a, &r1.id).await.expect("read"),
        Some(done.clone())
    );

    // An update naming another tenant does not reach the request.
    let mut hijack = r3.clone();
    hijack.tenant = a.clone();
    hijack.status = RequestStatus::Completed;
    assert!(!store.update(&hijack).await.expect("no such request"));
    assert_eq!(store.get(&b, &r3.id).await.expect("read"), Some(r3.clone()));
    assert_eq!(store.get(&a, &r3.id).await.expect("read"), None);
    let unknown = PrivacyRequest::new(
        a.clone(),
        alice,
        RequestKind::Export,
        Regulation::Gdpr,
        dpo,
        t0,
    );
    assert!(!store.update(&unknown).await.expect("no such request"));
    assert_eq!(
        store.list(&a).await.expect("listed"),
        [done.clone(), r2.clone()]
    );
    assert_eq!(
        store.list(&b).await.expect("listed"),
        std::slice::from_ref(&r3)
    );

    // Delete is tenant-scoped and idempotent.
    assert!(!store.delete(&b, &done.id).await.expect("not b's"));
    assert!(!store.delete(&a, &r3.id).await.expect("not a's"));
    assert!(!store.delete(&a, &unknown.id).await.expect("unknown"));
    assert_eq!(store.list(&a).await.expect("listed").len(), 2);
    assert!(store.delete(&a, &done.id).await.expect("deleted"));
    assert!(!store.delete(&a, &done.id).await.expect("already gone"));
    assert_eq!(store.get(&a, &done.id).await.expect("read"), None);
    assert!(!store.update(&done).await.expect("gone"));
    assert_eq!(
        store.list(&a).await.expect("listed"),
        std::slice::from_ref(&r2)
    );
    assert_eq!(store.list(&b).await.expect("listed"), [r3]);
}

/// The [`LegalHoldRegistry`] contract.
pub async fn legal_holds(registry: &dyn LegalHoldRegistry, run: &str) {
    let (a, b) = tenants(run);
    let alice = odd_subject();
    let counsel = subject("counsel");
    let t0 = now();
    let h1 = LegalHold::new(
        a.clone(),
        "matter 17'; DROP TABLE compliance_legal_holds; -- 100% _",
        counsel.clone(),
        t0,
    )
    .on_subject(alice.clone())
    .on_kind("documents");
    let h2 = LegalHold::new(a.clone(), "tenant-wide", counsel.clone(), t0).on_kind("audit'--");
    let h3 = LegalHold::new(b.clone(), "other tenant", counsel.clone(), t0)
        .on_subject(subject("bob"))
        .on_kind("documents");
    for h in [&h1, &h2, &h3] {
        registry.place(h.clone()).await.expect("placed");
    }
    let again = registry.place(h1.clone()).await.expect_err("duplicate");
    assert_eq!(again.code(), ErrorCode::Conflict);
    let mut elsewhere = h1.clone();
    elsewhere.tenant = b.clone();
    let again = registry.place(elsewhere).await.expect_err("duplicate id");
    assert_eq!(again.code(), ErrorCode::Conflict);

    assert_eq!(
        registry.all(&a).await.expect("listed"),
        [h1.clone(), h2.clone()]
    );
    assert_eq!(
        registry.all(&b).await.expect("listed"),
        std::slice::from_ref(&h3)
    );
    assert_eq!(
        registry.active(&a).await.expect("listed"),
        [h1.clone(), h2.clone()]
    );
    assert!(
        registry
            .is_held(&a, "documents", Some(&alice))
            .await
            .unwrap()
    );
    assert!(
        !registry
            .is_held(&a, "documents", Some(&subject("bob")))
            .await
            .unwrap()
    );
    assert!(registry.is_held(&a, "audit'--", None).await.unwrap());
    assert!(!registry.is_held(&a, "audit", None).await.unwrap());
    // Another tenant's hold on the same id and kind covers nothing here.
    assert!(
        !registry
            .is_held(&b, "documents", Some(&alice))
            .await
            .unwrap()
    );

    // Releasing from another tenant does nothing.
    assert!(!registry.release(&b, &h1.id, t0).await.expect("released"));
    assert_eq!(registry.active(&a).await.expect("listed").len(), 2);
    // Release keeps the first release time; the hold stays listed.
    let t1 = t0 + Duration::minutes(5);
    assert!(registry.release(&a, &h1.id, t1).await.expect("released"));
    assert!(
        registry
            .release(&a, &h1.id, t1 + Duration::days(1))
            .await
            .expect("released")
    );
    let all = registry.all(&a).await.expect("listed");
    assert_eq!(all.len(), 2);
    assert_eq!(all[0].id, h1.id);
    assert_eq!(all[0].released_at, Some(t1));
    assert_eq!(all[0].reason, h1.reason);
    assert_eq!(
        registry.active(&a).await.expect("listed"),
        std::slice::from_ref(&h2)
    );
    assert!(
        !registry
            .is_held(&a, "documents", Some(&alice))
            .await
            .unwrap()
    );
    assert_eq!(registry.active(&b).await.expect("listed"), [h3]);
    assert!(
        !registry
            .release(&a, &uuid::Uuid::now_v7(), t1)
            .await
            .expect("released")
    );

    // A hold recorded as already released is listed, never active.
    let mut past = LegalHold::new(a.clone(), "closed matter", counsel, t0);
    past.released_at = Some(t1);
    registry.place(past.clone()).await.expect("placed");
    assert_eq!(registry.all(&a).await.expect("listed").len(), 3);
    assert_eq!(registry.all(&a).await.expect("listed")[2], past);
    assert_eq!(registry.active(&a).await.expect("listed"), [h2]);
}

/// Stores bounded to 2 requests and 2 holds per tenant: the third is
/// refused as `Unavailable`, another tenant is unaffected.
pub async fn bounded_at_two(
    requests: &dyn PrivacyRequestStore,
    holds: &dyn LegalHoldRegistry,
    run: &str,
) {
    let (a, b) = tenants(&format!("{run}-bound"));
    let t0 = now();
    let request = |t: &TenantId| {
        PrivacyRequest::new(
            t.clone(),
            subject("alice"),
            RequestKind::Export,
            Regulation::Gdpr,
            subject("dpo"),
            t0,
        )
    };
    let first = request(&a);
    requests.insert(&first).await.expect("first");
    requests.insert(&request(&a)).await.expect("second");
    let full = requests.insert(&request(&a)).await.expect_err("full");
    assert_eq!(full.code(), ErrorCode::Unavailable);
    requests.insert(&request(&b)).await.expect("other tenant");
    assert_eq!(requests.list(&a).await.expect("listed").len(), 2);
    // A deleted request frees its place.
    assert!(requests.delete(&a, &first.id).await.expect("deleted"));
    requests.insert(&request(&a)).await.expect("room again");
    assert_eq!(requests.list(&a).await.expect("listed").len(), 2);

    let hold = |t: &TenantId| LegalHold::new(t.clone(), "bound", subject("counsel"), t0);
    holds.place(hold(&a)).await.expect("first");
    holds.place(hold(&a)).await.expect("second");
    let full = holds.place(hold(&a)).await.expect_err("full");
    assert_eq!(full.code(), ErrorCode::Unavailable);
    holds.place(hold(&b)).await.expect("other tenant");
    assert_eq!(holds.all(&a).await.expect("listed").len(), 2);
}

/// Every operation of a store whose database is gone is `Unavailable`.
pub async fn unavailable(requests: &dyn PrivacyRequestStore, holds: &dyn LegalHoldRegistry) {
    let (a, _) = tenants("down");
    let t0 = now();
    let request = PrivacyRequest::new(
        a.clone(),
        subject("alice"),
        RequestKind::Export,
        Regulation::Gdpr,
        subject("dpo"),
        t0,
    );
    let hold = LegalHold::new(a.clone(), "down", subject("counsel"), t0);
    let codes = [
        requests.insert(&request).await.map(|_| ()),
        requests.get(&a, &request.id).await.map(|_| ()),
        requests.update(&request).await.map(|_| ()),
        requests.list(&a).await.map(|_| ()),
        requests.delete(&a, &request.id).await.map(|_| ()),
        holds.place(hold.clone()).await,
        holds.release(&a, &hold.id, t0).await.map(|_| ()),
        holds.all(&a).await.map(|_| ()),
        holds.active(&a).await.map(|_| ()),
    ]
    .map(|r| r.expect_err("database gone").code());
    assert!(
        codes.iter().all(|c| *c == ErrorCode::Unavailable),
        "{codes:?}"
    );
}
