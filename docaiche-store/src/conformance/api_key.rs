//! The [`ApiKeyStore`] suite.

use std::sync::Arc;

use docaiche_core::api_key::{ApiKeyLookup, ApiKeyRecord, ApiKeyStore, ApiKeyUsage};
use docaiche_core::{ApiKeyId, ErrorCode, Grant, Permission, PrincipalId, TenantId};
use time::Duration;

use super::{BOGUS_CURSOR, Case, Harness, concurrently, walk};

const SUITE: &str = "ApiKeyStore";

fn record(h: &Harness, tenant: &TenantId, name: &str) -> ApiKeyRecord {
    let case = Case::new(SUITE, "building a record");
    let lookup = case.ok(
        ApiKeyLookup::new(format!("cf{}", uuid::Uuid::new_v4().simple())),
        "lookup",
    );
    let principal = case.ok(PrincipalId::new("svc.conformance"), "principal");
    let documents_any = case.ok(Grant::parse("documents:*"), "grant");
    let created = h.now_seconds();
    ApiKeyRecord::new(ApiKeyId::new(), tenant.clone(), principal, lookup, created)
        .with_name(name)
        // A keyed hash is arbitrary bytes, including 0x00 and 0xff.
        .with_hash(1, vec![0_u8, 255, 1, 39, 34, 92, 0, 128])
        .with_scopes(
            [Grant::from(Permission::DOCUMENTS_READ), documents_any]
                .into_iter()
                .collect(),
        )
        .with_expiry(created + Duration::days(30))
}

/// Run the whole [`ApiKeyStore`] contract against `store`.
///
/// # Panics
/// On the first broken promise, naming the case.
pub async fn run_api_key_store(store: Arc<dyn ApiKeyStore>, harness: &Harness) {
    insert_then_read_back(&*store, harness).await;
    hostile_strings_round_trip(&*store, harness).await;
    duplicates_conflict_and_change_nothing(&*store, harness).await;
    concurrent_duplicate_inserts(&store, harness).await;
    tenant_isolation(&*store, harness).await;
    list_order_and_pagination(&*store, harness).await;
    revoke_is_idempotent(&*store, harness).await;
    delete_removes_the_record(&*store, harness).await;
    mark_rotated_keeps_the_earliest_expiry(&*store, harness).await;
    record_usage_only_moves_forward(&*store, harness).await;
    oversized_scopes_read_back_bounded(&*store, harness).await;
}

async fn insert_then_read_back(store: &dyn ApiKeyStore, h: &Harness) {
    let case = Case::new(SUITE, "insert_then_read_back");
    let tenant = h.tenant();
    let rec = record(h, &tenant, "ci deploy key");
    case.ok(store.insert(&rec).await, "insert");
    let got = case.ok(store.get(&tenant, &rec.id).await, "get");
    case.eq(&got, &Some(rec.clone()), "get");
    let found = case.ok(store.find_by_lookup(&rec.lookup).await, "find_by_lookup");
    case.eq(&found, &Some(rec.clone()), "find_by_lookup");
    let page = case.ok(
        store
            .list(&tenant, &docaiche_core::page::PageRequest::default())
            .await,
        "list",
    );
    case.eq(&page.items, &vec![rec.clone()], "list");
    case.check(
        rec.is_usable_at(h.now()),
        "a fresh record with a future expiry is usable",
    );
    let missing = case.ok(
        ApiKeyLookup::new(format!("cf{}", uuid::Uuid::new_v4().simple())),
        "lookup",
    );
    case.eq(
        &case.ok(store.find_by_lookup(&missing).await, "find_by_lookup"),
        &None,
        "unknown lookup",
    );
    case.eq(
        &case.ok(store.get(&tenant, &ApiKeyId::new()).await, "get"),
        &None,
        "unknown id",
    );
}

async fn hostile_strings_round_trip(store: &dyn ApiKeyStore, h: &Harness) {
    let case = Case::new(SUITE, "hostile_strings_round_trip");
    let tenant = h.tenant();
    for name in h.hostile_strings() {
        let rec = record(h, &tenant, &name);
        case.ok(store.insert(&rec).await, "insert");
        case.eq(
            &case.ok(store.get(&tenant, &rec.id).await, "get"),
            &Some(rec.clone()),
            "get",
        );
        case.eq(
            &case.ok(store.find_by_lookup(&rec.lookup).await, "find_by_lookup"),
            &Some(rec.clone()),
            "find_by_lookup",
        );
    }
    let listed = walk(case, 100, |p| {
        let tenant = tenant.clone();
        async move { store.list(&tenant, &p).await }
    })
    .await;
    let names: Vec<String> = listed.into_iter().map(|r| r.name).collect();
    case.eq(
        &names,
        &h.hostile_strings(),
        "names listed in insertion (id) order",
    );
}

async fn duplicates_conflict_and_change_nothing(store: &dyn ApiKeyStore, h: &Harness) {
    let case = Case::new(SUITE, "duplicates_conflict_and_change_nothing");
    let tenant = h.tenant();
    let original = record(h, &tenant, "original");
    case.ok(store.insert(&original).await, "insert");

    let mut same_id = record(h, &tenant, "same id");
    same_id.id = original.id;
    case.err(
        store.insert(&same_id).await,
        ErrorCode::Conflict,
        "insert with an existing id",
    );
    case.eq(
        &case.ok(
            store.find_by_lookup(&same_id.lookup).await,
            "find_by_lookup",
        ),
        &None,
        "the refused record's lookup",
    );

    let mut same_lookup = record(h, &tenant, "same lookup");
    same_lookup.lookup = original.lookup.clone();
    case.err(
        store.insert(&same_lookup).await,
        ErrorCode::Conflict,
        "insert with an existing lookup",
    );
    case.eq(
        &case.ok(store.get(&tenant, &same_lookup.id).await, "get"),
        &None,
        "the refused record",
    );

    let other_tenant = h.tenant();
    let mut elsewhere = record(h, &other_tenant, "same lookup, other tenant");
    elsewhere.lookup = original.lookup.clone();
    case.err(
        store.insert(&elsewhere).await,
        ErrorCode::Conflict,
        "lookups are unique across tenants",
    );
    case.eq(
        &case.ok(store.get(&tenant, &original.id).await, "get"),
        &Some(original.clone()),
        "the original after refused duplicates",
    );
}

async fn concurrent_duplicate_inserts(store: &Arc<dyn ApiKeyStore>, h: &Harness) {
    let case = Case::new(SUITE, "concurrent_duplicate_inserts");
    let tenant = h.tenant();
    let first = record(h, &tenant, "racer");
    let results = concurrently(case, 16, |i| {
        let store = store.clone();
        let mut rec = record(h, &tenant, &format!("racer {i}"));
        rec.lookup = first.lookup.clone();
        async move { store.insert(&rec).await }
    })
    .await;
    count_one_winner(case, &results, "same lookup");

    let results = concurrently(case, 16, |i| {
        let store = store.clone();
        let mut rec = record(h, &tenant, &format!("racer {i}"));
        rec.id = first.id;
        async move { store.insert(&rec).await }
    })
    .await;
    count_one_winner(case, &results, "same id");
}

fn count_one_winner(case: Case, results: &[docaiche_core::Result<()>], what: &str) {
    let ok = results.iter().filter(|r| r.is_ok()).count();
    let conflicts = results
        .iter()
        .filter(|r| r.as_ref().is_err_and(|e| e.code() == ErrorCode::Conflict))
        .count();
    case.check(
        ok == 1 && conflicts == results.len() - 1,
        format_args!("{what}: expected exactly one Ok and the rest Conflict, got {ok} Ok and {conflicts} Conflict of {}", results.len()),
    );
}

async fn tenant_isolation(store: &dyn ApiKeyStore, h: &Harness) {
    let case = Case::new(SUITE, "tenant_isolation");
    let (owner, intruder) = (h.tenant(), h.tenant());
    let rec = record(h, &owner, "owned");
    case.ok(store.insert(&rec).await, "insert");
    case.ok(
        store.insert(&record(h, &intruder, "intruder's own")).await,
        "insert",
    );

    case.eq(
        &case.ok(store.get(&intruder, &rec.id).await, "get"),
        &None,
        "get from another tenant",
    );
    let listed = walk(case, 10, |p| {
        let intruder = intruder.clone();
        async move { store.list(&intruder, &p).await }
    })
    .await;
    case.check(
        listed
            .iter()
            .all(|r| r.id != rec.id && r.tenant == intruder),
        "list of another tenant must not show the record",
    );
    let now = h.now_seconds();
    case.eq(
        &case.ok(store.revoke(&intruder, &rec.id, now).await, "revoke"),
        &false,
        "revoke from another tenant",
    );
    case.eq(
        &case.ok(
            store
                .mark_rotated(&intruder, &rec.id, &ApiKeyId::new(), now)
                .await,
            "mark_rotated",
        ),
        &false,
        "mark_rotated from another tenant",
    );
    case.eq(
        &case.ok(store.delete(&intruder, &rec.id).await, "delete"),
        &false,
        "delete from another tenant",
    );
    case.ok(
        store
            .record_usage(&[ApiKeyUsage::new(intruder.clone(), rec.id, now)])
            .await,
        "record_usage",
    );
    case.eq(
        &case.ok(store.get(&owner, &rec.id).await, "get"),
        &Some(rec.clone()),
        "the record after another tenant's revoke, mark_rotated, record_usage and delete",
    );
    case.eq(
        &case.ok(store.find_by_lookup(&rec.lookup).await, "find_by_lookup"),
        &Some(rec.clone()),
        "find_by_lookup after another tenant's delete",
    );
}

async fn list_order_and_pagination(store: &dyn ApiKeyStore, h: &Harness) {
    let case = Case::new(SUITE, "list_order_and_pagination");
    let tenant = h.tenant();
    let mut records: Vec<ApiKeyRecord> = (0..7)
        .map(|i| record(h, &tenant, &format!("key {i}")))
        .collect();
    // Insert out of id order: the list must still come back by id.
    for rec in records.iter().rev() {
        case.ok(store.insert(rec).await, "insert");
    }
    records.sort_by_key(|r| r.id);
    for limit in [1, 3, 7, 100] {
        let listed = walk(case, limit, |p| {
            let tenant = tenant.clone();
            async move { store.list(&tenant, &p).await }
        })
        .await;
        let ids: Vec<ApiKeyId> = listed.iter().map(|r| r.id).collect();
        let expected: Vec<ApiKeyId> = records.iter().map(|r| r.id).collect();
        case.eq(
            &ids,
            &expected,
            &format!("ids walked with limit {limit}, each exactly once in id order"),
        );
    }
    let bad = case.ok(
        docaiche_core::page::PageRequest::new(Some(BOGUS_CURSOR.to_owned()), 10),
        "page request",
    );
    case.err(
        store.list(&tenant, &bad).await,
        ErrorCode::InvalidInput,
        "list with a malformed cursor",
    );
}

async fn revoke_is_idempotent(store: &dyn ApiKeyStore, h: &Harness) {
    let case = Case::new(SUITE, "revoke_is_idempotent");
    let tenant = h.tenant();
    let rec = record(h, &tenant, "to revoke");
    case.ok(store.insert(&rec).await, "insert");
    let first = h.now_seconds();
    case.eq(
        &case.ok(store.revoke(&tenant, &rec.id, first).await, "revoke"),
        &true,
        "revoke",
    );
    let later = first + Duration::hours(1);
    case.eq(
        &case.ok(store.revoke(&tenant, &rec.id, later).await, "revoke"),
        &true,
        "revoke again",
    );
    let got = case.ok(store.get(&tenant, &rec.id).await, "get");
    let got = got.unwrap_or_else(|| case.fail("revoked record vanished"));
    case.eq(
        &got.revoked_at,
        &Some(first),
        "revoked_at keeps the first revocation",
    );
    case.check(!got.is_usable_at(first), "a revoked key is not usable");
    let via_lookup = case.ok(store.find_by_lookup(&rec.lookup).await, "find_by_lookup");
    case.eq(
        &via_lookup.and_then(|r| r.revoked_at),
        &Some(first),
        "find_by_lookup sees the revocation",
    );
    case.eq(
        &case.ok(
            store.revoke(&tenant, &ApiKeyId::new(), first).await,
            "revoke",
        ),
        &false,
        "revoke of an unknown id",
    );
}

async fn delete_removes_the_record(store: &dyn ApiKeyStore, h: &Harness) {
    let case = Case::new(SUITE, "delete_removes_the_record");
    let tenant = h.tenant();
    let doomed = record(h, &tenant, "to delete");
    let kept = record(h, &tenant, "to keep");
    case.ok(store.insert(&doomed).await, "insert");
    case.ok(store.insert(&kept).await, "insert");
    // A revoked record is deleted like any other (the erasure path).
    case.ok(
        store.revoke(&tenant, &doomed.id, h.now_seconds()).await,
        "revoke",
    );

    case.eq(
        &case.ok(store.delete(&tenant, &doomed.id).await, "delete"),
        &true,
        "delete of an existing record",
    );
    case.eq(
        &case.ok(store.get(&tenant, &doomed.id).await, "get"),
        &None,
        "get after delete",
    );
    case.eq(
        &case.ok(store.find_by_lookup(&doomed.lookup).await, "find_by_lookup"),
        &None,
        "find_by_lookup after delete",
    );
    let listed = walk(case, 10, |p| {
        let tenant = tenant.clone();
        async move { store.list(&tenant, &p).await }
    })
    .await;
    case.eq(
        &listed,
        &vec![kept.clone()],
        "list after delete holds only the other record",
    );
    case.eq(
        &case.ok(store.delete(&tenant, &doomed.id).await, "delete"),
        &false,
        "delete again",
    );
    case.eq(
        &case.ok(store.delete(&tenant, &ApiKeyId::new()).await, "delete"),
        &false,
        "delete of an unknown id",
    );
    let now = h.now_seconds();
    case.eq(
        &case.ok(store.revoke(&tenant, &doomed.id, now).await, "revoke"),
        &false,
        "revoke after delete",
    );
    case.ok(
        store
            .record_usage(&[ApiKeyUsage::new(tenant.clone(), doomed.id, now)])
            .await,
        "record_usage of a deleted id",
    );
    case.eq(
        &case.ok(store.get(&tenant, &doomed.id).await, "get"),
        &None,
        "record_usage does not resurrect a deleted record",
    );
    case.eq(
        &case.ok(store.get(&tenant, &kept.id).await, "get"),
        &Some(kept.clone()),
        "the other record of the tenant is untouched",
    );
}

async fn mark_rotated_keeps_the_earliest_expiry(store: &dyn ApiKeyStore, h: &Harness) {
    let case = Case::new(SUITE, "mark_rotated_keeps_the_earliest_expiry");
    let tenant = h.tenant();
    let now = h.now_seconds();

    let mut open_ended = record(h, &tenant, "no expiry");
    open_ended.expires_at = None;
    case.ok(store.insert(&open_ended).await, "insert");
    let successor = ApiKeyId::new();
    let until = now + Duration::hours(24);
    case.eq(
        &case.ok(
            store
                .mark_rotated(&tenant, &open_ended.id, &successor, until)
                .await,
            "mark_rotated",
        ),
        &true,
        "mark_rotated",
    );
    case.eq(
        &case.ok(
            store
                .mark_rotated(
                    &tenant,
                    &open_ended.id,
                    &successor,
                    until + Duration::days(7),
                )
                .await,
            "mark_rotated",
        ),
        &true,
        "mark_rotated again",
    );
    let got = case.ok(store.get(&tenant, &open_ended.id).await, "get");
    case.eq(
        &got.as_ref().and_then(|r| r.replaced_by),
        &Some(successor),
        "replaced_by",
    );
    case.eq(
        &got.as_ref().and_then(|r| r.expires_at),
        &Some(until),
        "a later overlap never extends the window",
    );
    case.check(
        got.as_ref()
            .is_some_and(|r| r.is_usable_at(now) && !r.is_usable_at(until)),
        "usable during the overlap window only",
    );

    let short = record(h, &tenant, "expires soon");
    case.ok(store.insert(&short).await, "insert");
    case.ok(
        store
            .mark_rotated(&tenant, &short.id, &successor, now + Duration::days(365))
            .await,
        "mark_rotated",
    );
    let got = case.ok(store.get(&tenant, &short.id).await, "get");
    case.eq(
        &got.and_then(|r| r.expires_at),
        &short.expires_at,
        "an earlier existing expiry wins",
    );
    case.eq(
        &case.ok(
            store
                .mark_rotated(&tenant, &ApiKeyId::new(), &successor, until)
                .await,
            "mark_rotated",
        ),
        &false,
        "mark_rotated of an unknown id",
    );
}

async fn record_usage_only_moves_forward(store: &dyn ApiKeyStore, h: &Harness) {
    let case = Case::new(SUITE, "record_usage_only_moves_forward");
    let tenant = h.tenant();
    let rec = record(h, &tenant, "used");
    case.ok(store.insert(&rec).await, "insert");
    let t1 = h.now_seconds();
    let t2 = t1 + Duration::minutes(5);
    let usage = |at| ApiKeyUsage::new(tenant.clone(), rec.id, at);
    case.ok(
        store
            .record_usage(&[
                usage(t2),
                usage(t1),
                ApiKeyUsage::new(tenant.clone(), ApiKeyId::new(), t2),
            ])
            .await,
        "record_usage with an unknown id in the batch",
    );
    let last = |r: Option<ApiKeyRecord>| r.and_then(|r| r.last_used_at);
    case.eq(
        &last(case.ok(store.get(&tenant, &rec.id).await, "get")),
        &Some(t2),
        "last_used_at",
    );
    case.ok(store.record_usage(&[usage(t1)]).await, "record_usage");
    case.eq(
        &last(case.ok(store.get(&tenant, &rec.id).await, "get")),
        &Some(t2),
        "an older usage does not move last_used_at back",
    );
    case.ok(
        store.record_usage(&[]).await,
        "record_usage of an empty batch",
    );
}

/// A record written with far more scopes than
/// [`MAX_SCOPES`](docaiche_core::MAX_SCOPES) (by a version before the bound)
/// reads back with at most that many, the first in order, from `get`,
/// `find_by_lookup` and `list`: what a read costs stays bounded.
async fn oversized_scopes_read_back_bounded(store: &dyn ApiKeyStore, h: &Harness) {
    let case = Case::new(SUITE, "oversized_scopes_read_back_bounded");
    let tenant = h.tenant();
    let scopes: docaiche_core::PermissionSet = (0..5_000)
        .map(|i| {
            case.ok(
                Permission::parse(&format!("documents:x{i:05}")),
                "permission",
            )
        })
        .collect();
    let rec = record(h, &tenant, "legacy").with_scopes(scopes.clone());
    case.ok(store.insert(&rec).await, "insert");
    let mut expected = scopes;
    expected.truncate(docaiche_core::MAX_SCOPES);
    let got = case.ok(store.get(&tenant, &rec.id).await, "get");
    case.eq(&got.map(|r| r.scopes), &Some(expected.clone()), "get");
    let found = case.ok(store.find_by_lookup(&rec.lookup).await, "find_by_lookup");
    case.eq(
        &found.map(|r| r.scopes),
        &Some(expected.clone()),
        "find_by_lookup",
    );
    let page = case.ok(
        store
            .list(&tenant, &docaiche_core::page::PageRequest::default())
            .await,
        "list",
    );
    let listed: Vec<_> = page.items.into_iter().map(|r| r.scopes).collect();
    case.eq(&listed, &vec![expected], "list");
}
