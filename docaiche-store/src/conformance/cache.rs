//! The [`CacheStore`] suite.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use docaiche_core::cache::{CacheKey, CacheStore};

use super::{Case, Harness, concurrently};

const SUITE: &str = "CacheStore";
const NS: &str = "conformance";
const HOUR: Duration = Duration::from_secs(3600);

fn key(h: &Harness, label: &str) -> CacheKey {
    CacheKey::new(NS, h.unique(label))
        .unwrap_or_else(|e| panic!("conformance {SUITE}: cache key: {e}"))
}

/// Run the whole [`CacheStore`] contract against `store`.
///
/// Give a bounded cache room for a few hundred entries: the contract lets a
/// cache forget early, but this suite reads back what it just wrote.
///
/// # Panics
/// On the first broken promise, naming the case.
pub async fn run_cache_store(store: Arc<dyn CacheStore>, harness: &Harness) {
    set_then_get(&*store, harness).await;
    overwrite_and_delete(&*store, harness).await;
    zero_ttl_deletes(&*store, harness).await;
    keys_are_distinct(&*store, harness).await;
    concurrent_sets(&store, harness).await;
    never_returned_after_ttl(&*store, harness).await;
}

async fn set_then_get(store: &dyn CacheStore, h: &Harness) {
    let case = Case::new(SUITE, "set_then_get");
    let k = key(h, "value");
    case.eq(
        &case.ok(store.get(&k).await, "get").map(|e| e.value),
        &None,
        "a key never set",
    );
    let value: Bytes = (0..=255_u8).collect::<Vec<u8>>().into();
    case.ok(store.set(&k, value.clone(), HOUR).await, "set");
    let entry = case.ok(store.get(&k).await, "get");
    let entry = entry.unwrap_or_else(|| case.fail("get after set returned None"));
    case.eq(&entry.value, &value, "value, byte for byte");
    case.check(
        !entry.ttl_remaining.is_zero() && entry.ttl_remaining <= HOUR,
        format_args!(
            "ttl_remaining must be in (0, ttl], got {:?}",
            entry.ttl_remaining
        ),
    );
    let empty = key(h, "empty");
    case.ok(
        store.set(&empty, Bytes::new(), HOUR).await,
        "set of an empty value",
    );
    case.eq(
        &case.ok(store.get(&empty).await, "get").map(|e| e.value),
        &Some(Bytes::new()),
        "an empty value is a hit",
    );
}

async fn overwrite_and_delete(store: &dyn CacheStore, h: &Harness) {
    let case = Case::new(SUITE, "overwrite_and_delete");
    let k = key(h, "overwrite");
    case.ok(
        store.set(&k, Bytes::from_static(b"first"), HOUR).await,
        "set",
    );
    case.ok(
        store.set(&k, Bytes::from_static(b"second"), HOUR).await,
        "set again",
    );
    case.eq(
        &case.ok(store.get(&k).await, "get").map(|e| e.value),
        &Some(Bytes::from_static(b"second")),
        "set overwrites",
    );
    case.eq(
        &case.ok(store.delete(&k).await, "delete"),
        &true,
        "delete of a present key",
    );
    case.eq(
        &case.ok(store.delete(&k).await, "delete"),
        &false,
        "delete twice",
    );
    case.eq(
        &case.ok(store.get(&k).await, "get").map(|e| e.value),
        &None,
        "get after delete",
    );
    case.eq(
        &case.ok(store.delete(&key(h, "never")).await, "delete"),
        &false,
        "delete of a key never set",
    );
}

async fn zero_ttl_deletes(store: &dyn CacheStore, h: &Harness) {
    let case = Case::new(SUITE, "zero_ttl_deletes");
    let k = key(h, "zero");
    case.ok(store.set(&k, Bytes::from_static(b"v"), HOUR).await, "set");
    case.ok(
        store
            .set(&k, Bytes::from_static(b"w"), Duration::ZERO)
            .await,
        "set with a zero ttl",
    );
    case.eq(
        &case.ok(store.get(&k).await, "get").map(|e| e.value),
        &None,
        "a zero ttl deletes",
    );
}

async fn keys_are_distinct(store: &dyn CacheStore, h: &Harness) {
    let case = Case::new(SUITE, "keys_are_distinct");
    let id = h.unique("k");
    let mk = |ns: &'static str, k: String| {
        CacheKey::new(ns, k).unwrap_or_else(|e| case.fail(format_args!("cache key: {e}")))
    };
    // Same `namespace:key` text, different (namespace, key): must not collide.
    let a = mk(NS, format!("x:{id}"));
    let b = mk("conformance:x", id.clone());
    // Hostile but valid key characters.
    let hostile = [
        mk(NS, format!("';--/*{id}*/\"")),
        mk(NS, format!("{{{id}}}:*?[]%")),
        mk(NS, format!("ünïcödé🔐{id}")),
        mk(NS, format!("..\\../{id}")),
    ];
    case.ok(store.set(&a, Bytes::from_static(b"a"), HOUR).await, "set");
    case.ok(store.set(&b, Bytes::from_static(b"b"), HOUR).await, "set");
    case.eq(
        &case.ok(store.get(&a).await, "get").map(|e| e.value),
        &Some(Bytes::from_static(b"a")),
        "(ns, \"x:id\")",
    );
    case.eq(
        &case.ok(store.get(&b).await, "get").map(|e| e.value),
        &Some(Bytes::from_static(b"b")),
        "(\"ns:x\", \"id\")",
    );
    for (i, k) in hostile.iter().enumerate() {
        case.ok(
            store
                .set(k, Bytes::from(vec![u8::try_from(i).unwrap_or(0)]), HOUR)
                .await,
            "set",
        );
    }
    for (i, k) in hostile.iter().enumerate() {
        let expected = Bytes::from(vec![u8::try_from(i).unwrap_or(0)]);
        case.eq(
            &case.ok(store.get(k).await, "get").map(|e| e.value),
            &Some(expected),
            &format!("{k:?}"),
        );
    }
    let glob = mk(NS, format!("*{id}*"));
    case.eq(
        &case.ok(store.get(&glob).await, "get").map(|e| e.value),
        &None,
        "a glob is not a wildcard",
    );
}

async fn concurrent_sets(store: &Arc<dyn CacheStore>, h: &Harness) {
    let case = Case::new(SUITE, "concurrent_sets");
    let keys: Vec<CacheKey> = (0..32).map(|i| key(h, &format!("c{i}"))).collect();
    let results = concurrently(case, keys.len(), |i| {
        let (store, k) = (store.clone(), keys[i].clone());
        async move { store.set(&k, Bytes::from(k.key().to_owned()), HOUR).await }
    })
    .await;
    for r in results {
        case.ok(r, "concurrent set");
    }
    for k in &keys {
        let got = case.ok(store.get(k).await, "get").map(|e| e.value);
        case.eq(
            &got,
            &Some(Bytes::from(k.key().to_owned())),
            "value after concurrent sets",
        );
    }
}

async fn never_returned_after_ttl(store: &dyn CacheStore, h: &Harness) {
    let case = Case::new(SUITE, "never_returned_after_ttl");
    if !h.can_pass_time() {
        return;
    }
    let ttl = Duration::from_secs(1);
    let k = key(h, "ttl");
    let refreshed = key(h, "refreshed");
    case.ok(store.set(&k, Bytes::from_static(b"v"), ttl).await, "set");
    case.ok(
        store.set(&refreshed, Bytes::from_static(b"v"), ttl).await,
        "set",
    );
    if h.is_manual() {
        h.pass(Duration::from_millis(500)).await;
        case.ok(
            store.set(&refreshed, Bytes::from_static(b"w"), ttl).await,
            "set again",
        );
        h.pass(Duration::from_millis(499)).await;
        case.check(
            case.ok(store.get(&k).await, "get").is_some(),
            "an entry is a hit until its ttl elapses",
        );
        h.pass(Duration::from_millis(1)).await;
        case.eq(
            &case.ok(store.get(&k).await, "get").map(|e| e.value),
            &None,
            "the entry once exactly its ttl has elapsed",
        );
        case.eq(
            &case.ok(store.delete(&k).await, "delete"),
            &false,
            "delete of an expired entry",
        );
        case.eq(
            &case.ok(store.get(&refreshed).await, "get").map(|e| e.value),
            &Some(Bytes::from_static(b"w")),
            "set restarts the ttl",
        );
    } else {
        h.pass(Duration::from_millis(1100)).await;
        case.eq(
            &case.ok(store.get(&k).await, "get").map(|e| e.value),
            &None,
            "the entry after its ttl",
        );
    }
}
