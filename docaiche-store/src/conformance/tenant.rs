//! The [`TenantStore`] suite.
//!
//! The registry is one platform-wide table, so this suite cannot assume it
//! is empty: every case works on ids with a fresh unique prefix, and the
//! listing cases page from that prefix on and stop past it.

use std::num::NonZeroU32;
use std::sync::Arc;

use docaiche_core::page::PageRequest;
use docaiche_core::tenant::{
    RateLimitOverride, StatusChange, Tenant, TenantQuotas, TenantSettings, TenantStatus,
    TenantStore,
};
use docaiche_core::{ApiKeyId, ErrorCode, TenantId};
use time::Duration;

use super::{BOGUS_CURSOR, Case, Harness, concurrently};

const SUITE: &str = "TenantStore";

fn limit(requests: u32, period_secs: u32) -> RateLimitOverride {
    RateLimitOverride::new(
        NonZeroU32::new(requests).unwrap_or(NonZeroU32::MIN),
        NonZeroU32::new(period_secs).unwrap_or(NonZeroU32::MIN),
    )
}

fn settings() -> TenantSettings {
    let mut settings = TenantSettings::default()
        .with_rate_limit(Some(limit(100, 60)))
        .with_retention_days(Some(30))
        .with_quotas(
            TenantQuotas::default()
                .with_max_storage_bytes(Some(u64::MAX))
                .with_max_documents(Some(0)),
        );
    settings
        .key_rate_limits
        .insert(ApiKeyId::new(), limit(5, 1));
    settings
        .key_rate_limits
        .insert(ApiKeyId::new(), limit(u32::MAX, u32::MAX));
    settings
}

fn tenant(h: &Harness, id: &TenantId) -> Tenant {
    Tenant::new(id.clone(), "Acme Corp", h.now_seconds())
}

/// Run the whole [`TenantStore`] contract against `store`.
///
/// # Panics
/// On the first broken promise, naming the case.
pub async fn run_tenant_store(store: Arc<dyn TenantStore>, harness: &Harness) {
    create_then_read_back(&*store, harness).await;
    duplicates_conflict_and_change_nothing(&*store, harness).await;
    concurrent_duplicate_creates(&store, harness).await;
    hostile_strings_round_trip(&*store, harness).await;
    suspend_and_resume(&*store, harness).await;
    settings_are_replaced_whole(&*store, harness).await;
    list_order_filter_and_pagination(&*store, harness).await;
}

async fn create_then_read_back(store: &dyn TenantStore, h: &Harness) {
    let case = Case::new(SUITE, "create_then_read_back");
    let id = h.tenant();
    let acme = tenant(h, &id).with_settings(settings());
    case.ok(store.create(&acme).await, "create");
    case.eq(
        &case.ok(store.get(&id).await, "get"),
        &Some(acme.clone()),
        "get",
    );
    // A tenant created suspended keeps its suspension.
    let other = h.tenant();
    let suspended = tenant(h, &other).suspended("unpaid", h.now_seconds());
    case.ok(store.create(&suspended).await, "create suspended");
    case.eq(
        &case.ok(store.get(&other).await, "get"),
        &Some(suspended),
        "get suspended",
    );
    case.eq(
        &case.ok(store.get(&h.tenant()).await, "get unknown"),
        &None,
        "an unknown tenant is None",
    );
}

async fn duplicates_conflict_and_change_nothing(store: &dyn TenantStore, h: &Harness) {
    let case = Case::new(SUITE, "duplicates_conflict_and_change_nothing");
    let id = h.tenant();
    let first = tenant(h, &id);
    case.ok(store.create(&first).await, "create");
    let mut second = tenant(h, &id).with_settings(settings());
    second.display_name = "Impostor".into();
    case.err(
        store.create(&second).await,
        ErrorCode::Conflict,
        "duplicate id",
    );
    case.eq(
        &case.ok(store.get(&id).await, "get"),
        &Some(first),
        "the first tenant is unchanged",
    );
}

async fn concurrent_duplicate_creates(store: &Arc<dyn TenantStore>, h: &Harness) {
    let case = Case::new(SUITE, "concurrent_duplicate_creates");
    let id = h.tenant();
    let results = concurrently(case, 8, |i| {
        let store = Arc::clone(store);
        let mut t = tenant(h, &id);
        t.display_name = format!("racer {i}");
        async move { store.create(&t).await.map_err(|e| e.code()) }
    })
    .await;
    let won = results.iter().filter(|r| r.is_ok()).count();
    case.eq(&won, &1, "exactly one concurrent create succeeds");
    case.check(
        results
            .iter()
            .all(|r| r.is_ok() || *r == Err(ErrorCode::Conflict)),
        format_args!("the others conflict: {results:?}"),
    );
}

async fn hostile_strings_round_trip(store: &dyn TenantStore, h: &Harness) {
    let case = Case::new(SUITE, "hostile_strings_round_trip");
    for (i, text) in h.hostile_strings().into_iter().enumerate() {
        let id = h.tenant();
        let mut t = tenant(h, &id);
        t.display_name.clone_from(&text);
        case.ok(store.create(&t).await, "create");
        let at = h.now_seconds() + Duration::seconds(i64::try_from(i).unwrap_or(0) + 1);
        case.check(
            case.ok(
                store
                    .set_status(&id, StatusChange::Suspend { reason: &text }, at)
                    .await,
                "suspend",
            ),
            "suspend an existing tenant",
        );
        let got = case.ok(store.get(&id).await, "get").unwrap_or_else(|| {
            case.fail("the tenant vanished");
        });
        case.eq(&got.display_name, &text, "display name");
        case.eq(&got.suspension_reason, &Some(text), "suspension reason");
    }
}

async fn suspend_and_resume(store: &dyn TenantStore, h: &Harness) {
    let case = Case::new(SUITE, "suspend_and_resume");
    let id = h.tenant();
    let original = tenant(h, &id).with_settings(settings());
    case.ok(store.create(&original).await, "create");
    let bystander = h.tenant();
    case.ok(store.create(&tenant(h, &bystander)).await, "create");

    let suspended_at = h.now_seconds() + Duration::seconds(10);
    let suspend = StatusChange::Suspend {
        reason: "unpaid invoice",
    };
    case.check(
        case.ok(
            store.set_status(&id, suspend, suspended_at).await,
            "suspend",
        ),
        "suspend returns true for an existing tenant",
    );
    let mut expected = original.clone().suspended("unpaid invoice", suspended_at);
    expected.updated_at = suspended_at;
    case.eq(
        &case.ok(store.get(&id).await, "get"),
        &Some(expected),
        "suspended: status, time, reason and update time, settings kept",
    );
    case.eq(
        &case
            .ok(store.get(&bystander).await, "get")
            .map(|t| t.status),
        &Some(TenantStatus::Active),
        "another tenant is untouched",
    );

    // Suspending again replaces the time and reason.
    let again = suspended_at + Duration::seconds(5);
    case.ok(
        store
            .set_status(&id, StatusChange::Suspend { reason: "fraud" }, again)
            .await,
        "suspend again",
    );
    let got = case.ok(store.get(&id).await, "get");
    case.eq(
        &got.as_ref().and_then(|t| t.suspension_reason.clone()),
        &Some("fraud".to_owned()),
        "the new reason",
    );
    case.eq(
        &got.and_then(|t| t.suspended_at),
        &Some(again),
        "the new suspension time",
    );

    let resumed_at = again + Duration::seconds(5);
    case.check(
        case.ok(
            store
                .set_status(&id, StatusChange::Resume, resumed_at)
                .await,
            "resume",
        ),
        "resume returns true",
    );
    let mut expected = original;
    expected.updated_at = resumed_at;
    case.eq(
        &case.ok(store.get(&id).await, "get"),
        &Some(expected.clone()),
        "resumed: active, suspension cleared",
    );
    // Resuming an active tenant is harmless.
    case.check(
        case.ok(
            store
                .set_status(&id, StatusChange::Resume, resumed_at)
                .await,
            "resume again",
        ),
        "resume again returns true",
    );
    case.eq(
        &case.ok(store.get(&id).await, "get"),
        &Some(expected),
        "resume is idempotent",
    );

    let unknown = h.tenant();
    case.check(
        !case.ok(
            store.set_status(&unknown, suspend, resumed_at).await,
            "suspend",
        ),
        "suspending an unknown tenant returns false",
    );
    case.eq(
        &case.ok(store.get(&unknown).await, "get"),
        &None,
        "and creates nothing",
    );
}

async fn settings_are_replaced_whole(store: &dyn TenantStore, h: &Harness) {
    let case = Case::new(SUITE, "settings_are_replaced_whole");
    let id = h.tenant();
    let original = tenant(h, &id).with_settings(settings());
    case.ok(store.create(&original).await, "create");
    let at = h.now_seconds() + Duration::seconds(3);
    let replacement = TenantSettings::default()
        .with_quotas(TenantQuotas::default().with_max_storage_bytes(Some(1024)));
    case.check(
        case.ok(store.update_settings(&id, &replacement, at).await, "update"),
        "update_settings returns true",
    );
    let mut expected = original.with_settings(replacement.clone());
    expected.updated_at = at;
    case.eq(
        &case.ok(store.get(&id).await, "get"),
        &Some(expected),
        "settings replaced, nothing else changed",
    );
    case.check(
        !case.ok(
            store.update_settings(&h.tenant(), &replacement, at).await,
            "update unknown",
        ),
        "updating an unknown tenant returns false",
    );
}

async fn list_order_filter_and_pagination(store: &dyn TenantStore, h: &Harness) {
    let case = Case::new(SUITE, "list_order_filter_and_pagination");
    let prefix = h.unique("conformance-list");
    let mut ids: Vec<TenantId> = ["e", "a", "d", "b", "c", "a.b", "A"]
        .iter()
        .map(|s| case.ok(TenantId::new(format!("{prefix}-{s}")), "tenant id"))
        .collect();
    for (i, id) in ids.iter().enumerate() {
        case.ok(store.create(&tenant(h, id)).await, "create");
        if i % 2 == 0 {
            case.ok(
                store
                    .set_status(id, StatusChange::Suspend { reason: "x" }, h.now_seconds())
                    .await,
                "suspend",
            );
        }
    }
    let suspended: Vec<TenantId> = ids.iter().step_by(2).cloned().collect();
    ids.sort_by(|a, b| a.as_str().as_bytes().cmp(b.as_str().as_bytes()));
    let mut suspended_sorted = suspended;
    suspended_sorted.sort_by(|a, b| a.as_str().as_bytes().cmp(b.as_str().as_bytes()));
    let active: Vec<TenantId> = ids
        .iter()
        .filter(|id| !suspended_sorted.contains(id))
        .cloned()
        .collect();

    for (filter, expected) in [
        (None, &ids),
        (Some(TenantStatus::Suspended), &suspended_sorted),
        (Some(TenantStatus::Active), &active),
    ] {
        // Page from just before the prefix (its own id sorts before every
        // `{prefix}-…`), 2 at a time, until past the prefix.
        let mut seen = Vec::new();
        let mut after = Some(prefix.clone());
        'pages: for _ in 0..1000 {
            let page = case.ok(
                store
                    .list(filter, &case.ok(PageRequest::new(after, 2), "page"))
                    .await,
                "list",
            );
            case.check(page.items.len() <= 2, "a page holds at most `limit` items");
            for t in page.items {
                if !t.id.as_str().starts_with(&format!("{prefix}-")) {
                    break 'pages;
                }
                if let Some(status) = filter {
                    case.eq(&t.status, &status, "the filter applies");
                }
                seen.push(t.id);
            }
            match page.next {
                Some(next) => after = Some(next),
                None => break,
            }
        }
        case.eq(
            &seen,
            expected,
            &format!("listed in byte order ({filter:?})"),
        );
    }
    case.err(
        store
            .list(
                None,
                &case.ok(PageRequest::new(Some(BOGUS_CURSOR.into()), 2), "page"),
            )
            .await,
        ErrorCode::InvalidInput,
        "a malformed cursor",
    );
}
