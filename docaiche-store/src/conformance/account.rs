//! The [`AccountStore`] suite.

use std::sync::Arc;

use docaiche_core::account::{Account, AccountEmail, AccountStore};
use docaiche_core::page::PageRequest;
use docaiche_core::{ErrorCode, PrincipalId, TenantId};
use time::Duration;

use super::{BOGUS_CURSOR, Case, Harness, concurrently, walk};

const SUITE: &str = "AccountStore";

/// A PHC string shaped like the auth crate's (the store treats it as text).
const HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaA";

/// Emails full of SQL metacharacters: each must be stored and matched
/// exactly, never as a pattern.
const METACHARACTER_EMAILS: &[&str] = &[
    "o'brien@example.com",
    "';drop/**/table/**/accounts;--@example.com",
    "\"quoted\"@example.com",
    "100%off@example.com",
    "under_score@example.com",
    "back\\slash@example.com",
    "$1?:name@p0.example",
    "ünïcödé@例え.jp",
];

fn id(case: Case, label: &str) -> PrincipalId {
    case.ok(
        PrincipalId::new(format!("{label}-{}", uuid::Uuid::new_v4().simple())),
        "principal id",
    )
}

fn email(case: Case, address: &str) -> AccountEmail {
    case.ok(AccountEmail::new(address), "email")
}

fn account(h: &Harness, case: Case, tenant: &TenantId, address: &str) -> Account {
    Account::new(
        tenant.clone(),
        id(case, "acct"),
        email(case, address),
        HASH,
        h.now_seconds(),
    )
    .with_roles(vec!["tenant-admin".into(), "reader".into()])
}

/// Run the whole [`AccountStore`] contract against `store`.
///
/// # Panics
/// On the first broken promise, naming the case.
pub async fn run_account_store(store: Arc<dyn AccountStore>, harness: &Harness) {
    create_then_read_back(&*store, harness).await;
    emails_with_sql_metacharacters_match_exactly(&*store, harness).await;
    hostile_strings_round_trip(&*store, harness).await;
    duplicates_conflict_and_change_nothing(&*store, harness).await;
    concurrent_duplicate_creates(&store, harness).await;
    tenant_isolation(&*store, harness).await;
    updates_change_one_field_and_the_update_time(&*store, harness).await;
    password_swaps_happen_once(&store, harness).await;
    list_order_and_pagination(&*store, harness).await;
    delete_frees_the_email(&*store, harness).await;
}

async fn create_then_read_back(store: &dyn AccountStore, h: &Harness) {
    let case = Case::new(SUITE, "create_then_read_back");
    let tenant = h.tenant();
    let alice = account(h, case, &tenant, "alice@example.com");
    case.ok(store.create(&alice).await, "create");
    case.eq(
        &case.ok(store.get(&tenant, &alice.id).await, "get"),
        &Some(alice.clone()),
        "get",
    );
    case.eq(
        &case.ok(
            store.find_by_email(&tenant, &alice.email).await,
            "find_by_email",
        ),
        &Some(alice.clone()),
        "find_by_email",
    );
    // Normalisation happens in AccountEmail, so any casing finds it.
    case.eq(
        &case.ok(
            store
                .find_by_email(&tenant, &email(case, " ALICE@Example.com "))
                .await,
            "find_by_email",
        ),
        &Some(alice.clone()),
        "find_by_email with other casing",
    );
    let page = case.ok(store.list(&tenant, &PageRequest::default()).await, "list");
    case.eq(&page.items, &vec![alice.clone()], "list");
    case.eq(&page.next, &None, "a single page");
    case.eq(
        &case.ok(
            store
                .find_by_email(&tenant, &email(case, "bob@example.com"))
                .await,
            "find_by_email",
        ),
        &None,
        "unknown email",
    );
    case.eq(
        &case.ok(store.get(&tenant, &id(case, "nobody")).await, "get"),
        &None,
        "unknown id",
    );
}

async fn emails_with_sql_metacharacters_match_exactly(store: &dyn AccountStore, h: &Harness) {
    let case = Case::new(SUITE, "emails_with_sql_metacharacters_match_exactly");
    let tenant = h.tenant();
    let mut created = Vec::new();
    for address in METACHARACTER_EMAILS {
        let acct = account(h, case, &tenant, address);
        case.ok(store.create(&acct).await, "create");
        created.push(acct);
    }
    for acct in &created {
        case.eq(
            &case.ok(
                store.find_by_email(&tenant, &acct.email).await,
                "find_by_email",
            ),
            &Some(acct.clone()),
            "each metacharacter email finds its own account",
        );
    }
    // Patterns that would match as LIKE or regex patterns, or as injected
    // SQL, match nothing.
    for probe in [
        "%@example.com",
        "_'brien@example.com",
        "100%@example.com",
        "under%@example.com",
        "x'or'1'='1@example.com",
        "o'brien@example.co_",
    ] {
        case.eq(
            &case.ok(
                store.find_by_email(&tenant, &email(case, probe)).await,
                "find_by_email",
            ),
            &None,
            &format!("the probe {probe:?}"),
        );
    }
    let listed = walk(case, 3, |p| {
        let tenant = tenant.clone();
        async move { store.list(&tenant, &p).await }
    })
    .await;
    case.eq(
        &listed.len(),
        &METACHARACTER_EMAILS.len(),
        "every account listed",
    );
}

async fn hostile_strings_round_trip(store: &dyn AccountStore, h: &Harness) {
    let case = Case::new(SUITE, "hostile_strings_round_trip");
    let tenant = h.tenant();
    // Roles and the hash are stored as given, whatever they hold (NUL
    // included where the backend can store it).
    let mut acct = account(h, case, &tenant, "hostile@example.com").with_roles(h.hostile_strings());
    acct.password_hash = h
        .hostile_strings()
        .into_iter()
        .filter(|s| !s.contains('\0'))
        .collect::<Vec<_>>()
        .join("|");
    case.ok(store.create(&acct).await, "create");
    case.eq(
        &case.ok(store.get(&tenant, &acct.id).await, "get"),
        &Some(acct.clone()),
        "get",
    );
    let at = h.now_seconds() + Duration::seconds(1);
    let roles = h.hostile_strings().into_iter().rev().collect::<Vec<_>>();
    case.check(
        case.ok(
            store.set_roles(&tenant, &acct.id, &roles, at).await,
            "set_roles",
        ),
        "set_roles on an existing account",
    );
    let got = case.ok(store.get(&tenant, &acct.id).await, "get");
    case.eq(
        &got.map(|a| a.roles),
        &Some(roles),
        "hostile roles after set_roles",
    );
}

async fn duplicates_conflict_and_change_nothing(store: &dyn AccountStore, h: &Harness) {
    let case = Case::new(SUITE, "duplicates_conflict_and_change_nothing");
    let tenant = h.tenant();
    let original = account(h, case, &tenant, "dup@example.com");
    case.ok(store.create(&original).await, "create");

    let mut same_id = account(h, case, &tenant, "other@example.com");
    same_id.id = original.id.clone();
    case.err(
        store.create(&same_id).await,
        ErrorCode::Conflict,
        "create with an existing id",
    );
    case.eq(
        &case.ok(
            store.find_by_email(&tenant, &same_id.email).await,
            "find_by_email",
        ),
        &None,
        "the refused account's email",
    );

    let same_email = account(h, case, &tenant, "DUP@example.com");
    case.err(
        store.create(&same_email).await,
        ErrorCode::Conflict,
        "create with an existing email (after normalisation)",
    );
    case.eq(
        &case.ok(store.get(&tenant, &same_email.id).await, "get"),
        &None,
        "the refused account",
    );
    case.eq(
        &case.ok(store.get(&tenant, &original.id).await, "get"),
        &Some(original.clone()),
        "the original after refused duplicates",
    );

    // Another tenant may use the same email, and even the same id.
    let other = h.tenant();
    let mut elsewhere = account(h, case, &other, "dup@example.com");
    elsewhere.id = original.id.clone();
    case.ok(
        store.create(&elsewhere).await,
        "the same email and id in another tenant",
    );
    case.eq(
        &case.ok(
            store.find_by_email(&other, &original.email).await,
            "find_by_email",
        ),
        &Some(elsewhere),
        "the other tenant's account",
    );
    case.eq(
        &case.ok(
            store.find_by_email(&tenant, &original.email).await,
            "find_by_email",
        ),
        &Some(original),
        "the first tenant's account",
    );
}

async fn concurrent_duplicate_creates(store: &Arc<dyn AccountStore>, h: &Harness) {
    let case = Case::new(SUITE, "concurrent_duplicate_creates");
    let tenant = h.tenant();
    let results = concurrently(case, 16, |_| {
        let store = store.clone();
        let acct = account(h, case, &tenant, "racer@example.com");
        async move { store.create(&acct).await }
    })
    .await;
    let ok = results.iter().filter(|r| r.is_ok()).count();
    let conflicts = results
        .iter()
        .filter(|r| r.as_ref().is_err_and(|e| e.code() == ErrorCode::Conflict))
        .count();
    case.check(
        ok == 1 && conflicts == results.len() - 1,
        format_args!(
            "same email: expected exactly one Ok and the rest Conflict, got {ok} Ok and \
             {conflicts} Conflict of {}",
            results.len()
        ),
    );
    let page = case.ok(store.list(&tenant, &PageRequest::default()).await, "list");
    case.eq(&page.items.len(), &1, "one account after the race");
}

async fn tenant_isolation(store: &dyn AccountStore, h: &Harness) {
    let case = Case::new(SUITE, "tenant_isolation");
    let (tenant, other) = (h.tenant(), h.tenant());
    let alice = account(h, case, &tenant, "alice@example.com");
    case.ok(store.create(&alice).await, "create");
    let at = h.now_seconds() + Duration::seconds(10);

    case.eq(
        &case.ok(store.get(&other, &alice.id).await, "get"),
        &None,
        "get from another tenant must be None",
    );
    case.eq(
        &case.ok(store.find_by_email(&other, &alice.email).await, "find"),
        &None,
        "find_by_email from another tenant must be None",
    );
    case.check(
        !case.ok(
            store
                .update_password_hash(&other, &alice.id, "$stolen$", at)
                .await,
            "update_password_hash",
        ),
        "update_password_hash from another tenant must be false",
    );
    case.check(
        !case.ok(
            store
                .set_roles(&other, &alice.id, &["superuser".into()], at)
                .await,
            "set_roles",
        ),
        "set_roles from another tenant must be false",
    );
    case.check(
        !case.ok(
            store.set_disabled(&other, &alice.id, true, at).await,
            "set_disabled",
        ),
        "set_disabled from another tenant must be false",
    );
    case.check(
        !case.ok(store.delete(&other, &alice.id).await, "delete"),
        "delete from another tenant must be false",
    );
    let page = case.ok(store.list(&other, &PageRequest::default()).await, "list");
    case.check(
        page.items.is_empty(),
        "list of another tenant must not show the account",
    );
    case.eq(
        &case.ok(store.get(&tenant, &alice.id).await, "get"),
        &Some(alice),
        "the account after another tenant's attempts",
    );
}

async fn password_swaps_happen_once(store: &Arc<dyn AccountStore>, h: &Harness) {
    let case = Case::new(SUITE, "password_swaps_happen_once");
    let (tenant, other) = (h.tenant(), h.tenant());
    let mut expected = account(h, case, &tenant, "dave@example.com");
    case.ok(store.create(&expected).await, "create");
    let at = h.now_seconds() + Duration::seconds(1);
    let first = "$argon2id$v=19$m=19456,t=2,p=1$Zmlyc3Q$Zmlyc3Q";
    case.check(
        !case.ok(
            store
                .swap_password_hash(&other, &expected.id, HASH, first, at)
                .await,
            "swap_password_hash",
        ),
        "swap_password_hash from another tenant must be false",
    );
    case.check(
        !case.ok(
            store
                .swap_password_hash(&tenant, &expected.id, "$not-the-hash$", first, at)
                .await,
            "swap_password_hash",
        ),
        "swap_password_hash with another expected hash must be false",
    );
    case.eq(
        &case.ok(store.get(&tenant, &expected.id).await, "get"),
        &Some(expected.clone()),
        "unchanged after refused swaps",
    );

    // Racing swaps from the same expected hash: exactly one wins.
    let results = concurrently(case, 8, |n| {
        let store = Arc::clone(store);
        let (tenant, id) = (tenant.clone(), expected.id.clone());
        async move {
            let hash = format!("$argon2id$v=19$m=19456,t=2,p=1$cmFjZQ$racer{n}");
            let won = store
                .swap_password_hash(&tenant, &id, HASH, &hash, at)
                .await;
            (won, hash)
        }
    })
    .await;
    let mut winners = Vec::new();
    for (won, hash) in results {
        if case.ok(won, "swap_password_hash") {
            winners.push(hash);
        }
    }
    case.eq(&winners.len(), &1, "exactly one of 8 racing swaps wins");
    if let Some(winner) = winners.pop() {
        expected.password_hash = winner;
        expected.updated_at = at;
    }
    case.eq(
        &case.ok(store.get(&tenant, &expected.id).await, "get"),
        &Some(expected),
        "the winner's hash and time are stored",
    );
    let nobody = id(case, "nobody");
    case.check(
        !case.ok(
            store
                .swap_password_hash(&tenant, &nobody, HASH, first, at)
                .await,
            "swap_password_hash",
        ),
        "swap_password_hash of an unknown account is false",
    );
}

async fn updates_change_one_field_and_the_update_time(store: &dyn AccountStore, h: &Harness) {
    let case = Case::new(SUITE, "updates_change_one_field_and_the_update_time");
    let tenant = h.tenant();
    let mut expected = account(h, case, &tenant, "carol@example.com");
    case.ok(store.create(&expected).await, "create");

    let at = h.now_seconds() + Duration::seconds(1);
    let rehashed = "$argon2id$v=19$m=65536,t=3,p=4$bmV3c2FsdA$bmV3aGFzaA";
    case.check(
        case.ok(
            store
                .update_password_hash(&tenant, &expected.id, rehashed, at)
                .await,
            "update_password_hash",
        ),
        "update_password_hash of an existing account is true",
    );
    rehashed.clone_into(&mut expected.password_hash);
    expected.updated_at = at;
    case.eq(
        &case.ok(store.get(&tenant, &expected.id).await, "get"),
        &Some(expected.clone()),
        "after update_password_hash",
    );

    let at = at + Duration::seconds(1);
    let roles = vec!["reader".to_owned()];
    case.check(
        case.ok(
            store.set_roles(&tenant, &expected.id, &roles, at).await,
            "set_roles",
        ),
        "set_roles of an existing account is true",
    );
    expected.roles = roles;
    expected.updated_at = at;
    case.eq(
        &case.ok(store.get(&tenant, &expected.id).await, "get"),
        &Some(expected.clone()),
        "after set_roles",
    );

    let at = at + Duration::seconds(1);
    for _ in 0..2 {
        case.check(
            case.ok(
                store.set_disabled(&tenant, &expected.id, true, at).await,
                "set_disabled",
            ),
            "set_disabled of an existing account is true (twice)",
        );
    }
    expected.disabled = true;
    expected.updated_at = at;
    case.eq(
        &case.ok(
            store.find_by_email(&tenant, &expected.email).await,
            "find_by_email",
        ),
        &Some(expected.clone()),
        "after set_disabled",
    );
    case.check(
        case.ok(
            store.set_disabled(&tenant, &expected.id, false, at).await,
            "set_disabled",
        ),
        "enable again",
    );
    case.eq(
        &case
            .ok(store.get(&tenant, &expected.id).await, "get")
            .map(|a| a.disabled),
        &Some(false),
        "enabled again",
    );

    let nobody = id(case, "nobody");
    case.check(
        !case.ok(
            store.update_password_hash(&tenant, &nobody, HASH, at).await,
            "update_password_hash",
        ),
        "update_password_hash of an unknown account is false",
    );
    case.check(
        !case.ok(
            store.set_roles(&tenant, &nobody, &[], at).await,
            "set_roles",
        ),
        "set_roles of an unknown account is false",
    );
    case.check(
        !case.ok(
            store.set_disabled(&tenant, &nobody, true, at).await,
            "set_disabled",
        ),
        "set_disabled of an unknown account is false",
    );
}

async fn list_order_and_pagination(store: &dyn AccountStore, h: &Harness) {
    let case = Case::new(SUITE, "list_order_and_pagination");
    let tenant = h.tenant();
    let mut ids = Vec::new();
    // Created out of id order, with ids that differ in case and punctuation.
    for (n, label) in ["m", "B", "a", "z.9", "a-1", "Z", "0"].iter().enumerate() {
        let mut acct = account(h, case, &tenant, &format!("user{n}@example.com"));
        acct.id = case.ok(PrincipalId::new(format!("{label}x")), "id");
        case.ok(store.create(&acct).await, "create");
        ids.push(acct.id);
    }
    ids.sort();
    let listed = walk(case, 3, |p| {
        let tenant = tenant.clone();
        async move { store.list(&tenant, &p).await }
    })
    .await;
    let got: Vec<PrincipalId> = listed.into_iter().map(|a| a.id).collect();
    case.eq(&got, &ids, "ids in byte order over pages of 3");
    let bogus = case.ok(
        PageRequest::new(Some(BOGUS_CURSOR.to_owned()), 10),
        "page request",
    );
    case.err(
        store.list(&tenant, &bogus).await,
        ErrorCode::InvalidInput,
        "a cursor no store issues",
    );
    let empty = case.ok(
        store.list(&h.tenant(), &PageRequest::default()).await,
        "list",
    );
    case.check(
        empty.items.is_empty() && empty.next.is_none(),
        "an unknown tenant lists nothing",
    );
}

async fn delete_frees_the_email(store: &dyn AccountStore, h: &Harness) {
    let case = Case::new(SUITE, "delete_frees_the_email");
    let tenant = h.tenant();
    let dave = account(h, case, &tenant, "dave@example.com");
    case.ok(store.create(&dave).await, "create");
    case.check(
        case.ok(store.delete(&tenant, &dave.id).await, "delete"),
        "delete of an existing account is true",
    );
    case.check(
        !case.ok(store.delete(&tenant, &dave.id).await, "delete"),
        "deleting twice is false",
    );
    case.eq(
        &case.ok(store.find_by_email(&tenant, &dave.email).await, "find"),
        &None,
        "a deleted account is not found by email",
    );
    let again = account(h, case, &tenant, "dave@example.com");
    case.ok(
        store.create(&again).await,
        "the email of a deleted account can be used again",
    );
}
