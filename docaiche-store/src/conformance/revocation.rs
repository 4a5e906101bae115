//! The [`TokenRevocationStore`] suite.

use std::sync::Arc;
use std::time::Duration;

use docaiche_core::revocation::{IssuedToken, MAX_TOKEN_ID_LEN, TokenRevocationStore};
use docaiche_core::{ErrorCode, PrincipalId};

use super::{Case, Harness, concurrently};

const SUITE: &str = "TokenRevocationStore";

/// Run the whole [`TokenRevocationStore`] contract against `store`.
///
/// # Panics
/// On the first broken promise, naming the case.
pub async fn run_revocation_store(store: Arc<dyn TokenRevocationStore>, harness: &Harness) {
    revoke_then_is_revoked(&*store, harness).await;
    hostile_token_ids_are_opaque(&*store, harness).await;
    invalid_token_ids_are_refused(&*store).await;
    concurrent_revocations(&store, harness).await;
    revoked_until_expiry(&*store, harness).await;
    subject_revocation(&*store, harness).await;
    subject_revocation_is_monotonic(&*store, harness).await;
    subject_revocation_expires(&*store, harness).await;
}

fn subject(h: &Harness) -> PrincipalId {
    PrincipalId::new(h.unique("u")).expect("a unique principal id is valid")
}

async fn subject_revocation(store: &dyn TokenRevocationStore, h: &Harness) {
    let case = Case::new(SUITE, "subject_revocation");
    let (tenant, other_tenant) = (h.tenant(), h.tenant());
    let (alice, bob) = (subject(h), subject(h));
    let now = h.now_seconds();
    let minute = Duration::from_secs(60);
    let hour = Duration::from_secs(3600);
    case.eq(
        &case.ok(
            store.subject_revoked_through(&tenant, &alice).await,
            "subject_revoked_through",
        ),
        &None,
        "a subject never revoked",
    );
    case.ok(
        store.revoke_subject(&tenant, &alice, now, now + hour).await,
        "revoke_subject",
    );
    case.ok(
        store.revoke_subject(&tenant, &alice, now, now + hour).await,
        "revoke_subject twice",
    );
    case.eq(
        &case.ok(
            store.subject_revoked_through(&tenant, &alice).await,
            "subject_revoked_through",
        ),
        &Some(now),
        "a revoked subject, through the instant given",
    );
    for (who, t, label) in [
        (&bob, &tenant, "another subject of the tenant"),
        (
            &alice,
            &other_tenant,
            "the same principal id in another tenant",
        ),
    ] {
        case.eq(
            &case.ok(
                store.subject_revoked_through(t, who).await,
                "subject_revoked_through",
            ),
            &None,
            label,
        );
    }
    let jti = token(h);
    for (issued, revoked, label) in [
        (now - minute, true, "a token issued before the revocation"),
        (now, true, "a token issued in the revocation's second"),
        (now + minute, false, "a token issued after the revocation"),
    ] {
        let issued_token = IssuedToken::new(&jti, &tenant, &alice, issued);
        case.eq(
            &case.ok(
                store.is_token_revoked(&issued_token).await,
                "is_token_revoked",
            ),
            &revoked,
            label,
        );
    }
    let bobs = IssuedToken::new(&jti, &tenant, &bob, now - minute);
    case.eq(
        &case.ok(store.is_token_revoked(&bobs).await, "is_token_revoked"),
        &false,
        "another subject's token",
    );
    case.ok(store.revoke(&jti, now + hour).await, "revoke");
    case.eq(
        &case.ok(store.is_token_revoked(&bobs).await, "is_token_revoked"),
        &true,
        "a token revoked by id, whatever its subject",
    );
}

async fn subject_revocation_is_monotonic(store: &dyn TokenRevocationStore, h: &Harness) {
    let case = Case::new(SUITE, "subject_revocation_is_monotonic");
    let tenant = h.tenant();
    let alice = subject(h);
    let now = h.now_seconds();
    let (minute, hour) = (Duration::from_secs(60), Duration::from_secs(3600));
    case.ok(
        store.revoke_subject(&tenant, &alice, now, now + hour).await,
        "revoke_subject",
    );
    case.ok(
        store
            .revoke_subject(&tenant, &alice, now - minute, now + hour)
            .await,
        "revoke_subject through an earlier instant",
    );
    case.eq(
        &case.ok(
            store.subject_revoked_through(&tenant, &alice).await,
            "subject_revoked_through",
        ),
        &Some(now),
        "an earlier instant never narrows a subject revocation",
    );
    case.ok(
        store
            .revoke_subject(&tenant, &alice, now + minute, now + hour)
            .await,
        "revoke_subject through a later instant",
    );
    case.eq(
        &case.ok(
            store.subject_revoked_through(&tenant, &alice).await,
            "subject_revoked_through",
        ),
        &Some(now + minute),
        "a later instant widens a subject revocation",
    );
}

async fn subject_revocation_expires(store: &dyn TokenRevocationStore, h: &Harness) {
    let case = Case::new(SUITE, "subject_revocation_expires");
    if !h.can_pass_time() {
        return;
    }
    let tenant = h.tenant();
    let (short, extended) = (subject(h), subject(h));
    let now = h.now_seconds();
    let (second, hour) = (Duration::from_secs(1), Duration::from_secs(3600));
    let through = h.now();
    case.ok(
        store
            .revoke_subject(&tenant, &short, now, through + second)
            .await,
        "revoke_subject",
    );
    case.ok(
        store
            .revoke_subject(&tenant, &extended, now, through + second)
            .await,
        "revoke_subject",
    );
    case.ok(
        store
            .revoke_subject(&tenant, &extended, now, through + hour)
            .await,
        "revoke_subject remembered longer",
    );
    case.ok(
        store
            .revoke_subject(&tenant, &extended, now, through + second)
            .await,
        "revoke_subject remembered shorter",
    );
    h.pass(Duration::from_millis(1100)).await;
    case.eq(
        &case.ok(
            store.subject_revoked_through(&tenant, &short).await,
            "subject_revoked_through",
        ),
        &None,
        "forgotten after remember_until",
    );
    case.eq(
        &case.ok(
            store.subject_revoked_through(&tenant, &extended).await,
            "subject_revoked_through",
        ),
        &Some(now),
        "a later remember_until extends, an earlier one never shortens",
    );
}

fn token(h: &Harness) -> String {
    h.unique("jti")
}

async fn revoke_then_is_revoked(store: &dyn TokenRevocationStore, h: &Harness) {
    let case = Case::new(SUITE, "revoke_then_is_revoked");
    let id = token(h);
    case.eq(
        &case.ok(store.is_revoked(&id).await, "is_revoked"),
        &false,
        "an unknown token",
    );
    let until = h.now() + Duration::from_secs(3600);
    case.ok(store.revoke(&id, until).await, "revoke");
    case.eq(
        &case.ok(store.is_revoked(&id).await, "is_revoked"),
        &true,
        "a revoked token",
    );
    case.ok(store.revoke(&id, until).await, "revoke twice");
    case.eq(
        &case.ok(store.is_revoked(&id).await, "is_revoked"),
        &true,
        "a token revoked twice",
    );
    case.eq(
        &case.ok(store.is_revoked(&token(h)).await, "is_revoked"),
        &false,
        "another token",
    );
}

async fn hostile_token_ids_are_opaque(store: &dyn TokenRevocationStore, h: &Harness) {
    let case = Case::new(SUITE, "hostile_token_ids_are_opaque");
    let suffix = uuid::Uuid::new_v4().simple().to_string();
    let until = h.now() + Duration::from_secs(3600);
    let long = format!("{suffix}{}", "x".repeat(MAX_TOKEN_ID_LEN - suffix.len()));
    let ids = [
        format!("';DROP/**/TABLE/**/revoked;--{suffix}"),
        format!("\"or\"1\"=\"1\"{suffix}"),
        format!("*{suffix}?[a-z]"),
        format!("{{tag}}:{suffix}:%s%n$(id)`id`"),
        format!("..\\..//{suffix}"),
        long,
    ];
    for id in &ids {
        case.ok(store.revoke(id, until).await, "revoke");
    }
    for id in &ids {
        case.eq(
            &case.ok(store.is_revoked(id).await, "is_revoked"),
            &true,
            id,
        );
        // Prefix and wildcard lookalikes must not match.
        let near = &id[..id.len() - 1];
        case.eq(
            &case.ok(store.is_revoked(near).await, "is_revoked"),
            &false,
            near,
        );
    }
    case.eq(
        &case.ok(store.is_revoked(&format!("*{suffix}*")).await, "is_revoked"),
        &false,
        "a glob is not a wildcard",
    );
}

async fn invalid_token_ids_are_refused(store: &dyn TokenRevocationStore) {
    let case = Case::new(SUITE, "invalid_token_ids_are_refused");
    let too_long = "x".repeat(MAX_TOKEN_ID_LEN + 1);
    let until = time::OffsetDateTime::now_utc() + Duration::from_secs(60);
    for bad in [
        "",
        too_long.as_str(),
        "with space",
        "tab\there",
        "nul\0",
        "ünï",
        "line\nbreak",
    ] {
        case.err(
            store.revoke(bad, until).await,
            ErrorCode::InvalidInput,
            &format!("revoke {bad:?}"),
        );
        case.err(
            store.is_revoked(bad).await,
            ErrorCode::InvalidInput,
            &format!("is_revoked {bad:?}"),
        );
    }
}

async fn concurrent_revocations(store: &Arc<dyn TokenRevocationStore>, h: &Harness) {
    let case = Case::new(SUITE, "concurrent_revocations");
    let shared = token(h);
    let until = h.now() + Duration::from_secs(3600);
    let ids: Vec<String> = (0..32).map(|_| token(h)).collect();
    let results = concurrently(case, ids.len(), |i| {
        let store = store.clone();
        let (id, shared) = (ids[i].clone(), shared.clone());
        async move {
            store.revoke(&id, until).await?;
            store.revoke(&shared, until).await
        }
    })
    .await;
    for r in results {
        case.ok(r, "concurrent revoke");
    }
    for id in ids.iter().chain([&shared]) {
        case.eq(
            &case.ok(store.is_revoked(id).await, "is_revoked"),
            &true,
            id,
        );
    }
}

async fn revoked_until_expiry(store: &dyn TokenRevocationStore, h: &Harness) {
    let case = Case::new(SUITE, "revoked_until_expiry");
    if !h.can_pass_time() {
        return;
    }
    let now = h.now();
    let (short, extended, not_shortened) = (token(h), token(h), token(h));
    let second = Duration::from_secs(1);
    let hour = Duration::from_secs(3600);
    case.ok(store.revoke(&short, now + second).await, "revoke");
    case.ok(store.revoke(&extended, now + second).await, "revoke");
    case.ok(
        store.revoke(&extended, now + hour).await,
        "revoke with a later expiry",
    );
    case.ok(store.revoke(&not_shortened, now + hour).await, "revoke");
    case.ok(
        store.revoke(&not_shortened, now + second).await,
        "revoke with an earlier expiry",
    );
    if h.is_manual() {
        h.pass(Duration::from_millis(999)).await;
        case.eq(
            &case.ok(store.is_revoked(&short).await, "is_revoked"),
            &true,
            "revoked until its expires_at",
        );
        h.pass(Duration::from_millis(101)).await;
    } else {
        h.pass(Duration::from_millis(1100)).await;
    }
    case.eq(
        &case.ok(store.is_revoked(&extended).await, "is_revoked"),
        &true,
        "a later expiry extends the revocation",
    );
    case.eq(
        &case.ok(store.is_revoked(&not_shortened).await, "is_revoked"),
        &true,
        "an earlier expiry never shortens a revocation",
    );
}
