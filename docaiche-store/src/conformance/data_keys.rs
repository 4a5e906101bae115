//! The [`DataKeyStore`] suite.

use std::collections::BTreeSet;
use std::sync::Arc;

use bytes::Bytes;
use docaiche_core::document::{DocumentStore, NewDocument};
use docaiche_core::key_wrapper::WrappedKey;
use docaiche_core::{ErrorCode, PrincipalId, TenantId};

use super::{Case, Harness, concurrently};
use crate::LocalKeyWrapper;
use crate::encryption::{DataKeyStore, EncryptedDocumentStore};
use crate::memory::MemoryDocumentStore;

const SUITE: &str = "DataKeyStore";

/// Run the whole [`DataKeyStore`] contract against `store`: get-or-insert
/// under a race keeps one key, compare-and-swap replace, idempotent
/// destroy (and that it crypto-shreds the subject's documents), tenant
/// isolation, opaque key bytes, and `list` paging in byte order.
///
/// `list` walks every tenant, so on a store shared with other data the
/// listing case only looks at the keys it wrote (it starts from its own
/// fresh tenant).
///
/// # Panics
/// On the first broken promise, naming the case.
pub async fn run_data_key_store(store: Arc<dyn DataKeyStore>, harness: &Harness) {
    insert_then_get(&*store, harness).await;
    insert_if_absent_keeps_the_first_key(&*store, harness).await;
    concurrent_inserts_keep_one_key(&store, harness).await;
    replace_is_a_compare_and_swap(&*store, harness).await;
    concurrent_replaces_have_one_winner(&store, harness).await;
    destroy_is_final_and_idempotent(&*store, harness).await;
    tenants_are_isolated(&*store, harness).await;
    key_bytes_are_opaque(&*store, harness).await;
    list_pages_in_byte_order(&*store, harness).await;
    destroying_the_key_makes_documents_unreadable(&store, harness).await;
}

fn subject(h: &Harness, label: &str) -> PrincipalId {
    PrincipalId::new(h.unique(label))
        .unwrap_or_else(|e| panic!("conformance harness: principal id: {e}"))
}

fn key(h: &Harness, label: &str) -> WrappedKey {
    WrappedKey::new("conformance", 1, h.unique(label).into_bytes())
}

async fn insert_then_get(store: &dyn DataKeyStore, h: &Harness) {
    let case = Case::new(SUITE, "insert_then_get");
    let (tenant, alice) = (h.tenant(), subject(h, "alice"));
    case.eq(
        &case.ok(store.get(&tenant, &alice).await, "get"),
        &None,
        "a subject without a key",
    );
    let wrapped = key(h, "k");
    let stored = case.ok(
        store
            .insert_if_absent(&tenant, &alice, wrapped.clone())
            .await,
        "insert_if_absent",
    );
    case.eq(&stored, &wrapped, "insert_if_absent into an empty slot");
    case.eq(
        &case.ok(store.get(&tenant, &alice).await, "get"),
        &Some(wrapped),
        "get after insert",
    );
    case.eq(
        &case.ok(store.get(&tenant, &subject(h, "bob")).await, "get"),
        &None,
        "another subject of the tenant",
    );
}

async fn insert_if_absent_keeps_the_first_key(store: &dyn DataKeyStore, h: &Harness) {
    let case = Case::new(SUITE, "insert_if_absent_keeps_the_first_key");
    let (tenant, alice) = (h.tenant(), subject(h, "alice"));
    let first = key(h, "first");
    case.ok(
        store.insert_if_absent(&tenant, &alice, first.clone()).await,
        "insert_if_absent",
    );
    let second = case.ok(
        store
            .insert_if_absent(&tenant, &alice, key(h, "second"))
            .await,
        "insert_if_absent again",
    );
    case.eq(&second, &first, "a second insert returns the stored key");
    case.eq(
        &case.ok(store.get(&tenant, &alice).await, "get"),
        &Some(first),
        "a second insert must not overwrite",
    );
}

async fn concurrent_inserts_keep_one_key(store: &Arc<dyn DataKeyStore>, h: &Harness) {
    let case = Case::new(SUITE, "concurrent_inserts_keep_one_key");
    let (tenant, alice) = (h.tenant(), subject(h, "alice"));
    let candidates: Vec<WrappedKey> = (0..16).map(|i| key(h, &format!("race{i}"))).collect();
    let results = concurrently(case, candidates.len(), |i| {
        let (store, tenant, alice) = (store.clone(), tenant.clone(), alice.clone());
        let candidate = candidates[i].clone();
        async move { store.insert_if_absent(&tenant, &alice, candidate).await }
    })
    .await;
    let winners: BTreeSet<Vec<u8>> = results
        .into_iter()
        .map(|r| case.ok(r, "concurrent insert_if_absent").ciphertext)
        .collect();
    case.eq(
        &winners.len(),
        &1,
        "every racing caller must get the same (winning) key back",
    );
    let stored = case
        .ok(store.get(&tenant, &alice).await, "get")
        .unwrap_or_else(|| case.fail("no key after the race"));
    case.check(
        winners.contains(&stored.ciphertext),
        "the stored key must be the one the racers got",
    );
    case.check(
        candidates.contains(&stored),
        "the stored key must be one of the candidates",
    );
}

async fn replace_is_a_compare_and_swap(store: &dyn DataKeyStore, h: &Harness) {
    let case = Case::new(SUITE, "replace_is_a_compare_and_swap");
    let (tenant, alice) = (h.tenant(), subject(h, "alice"));
    let (old, new) = (
        key(h, "old"),
        WrappedKey::new("conformance", 2, b"new".to_vec()),
    );
    case.eq(
        &case.ok(
            store.replace(&tenant, &alice, &old, new.clone()).await,
            "replace",
        ),
        &false,
        "replace of a subject without a key (must not create one)",
    );
    case.eq(
        &case.ok(store.get(&tenant, &alice).await, "get"),
        &None,
        "replace must not create a key",
    );
    case.ok(
        store.insert_if_absent(&tenant, &alice, old.clone()).await,
        "insert_if_absent",
    );
    // Each part of the expected key counts: id, version, bytes.
    let mut wrong_version = old.clone();
    wrong_version.kek_version += 1;
    let mut wrong_id = old.clone();
    wrong_id.kek_id.push('x');
    let mut wrong_bytes = old.clone();
    wrong_bytes.ciphertext.push(0);
    for wrong in [&wrong_version, &wrong_id, &wrong_bytes, &new] {
        case.eq(
            &case.ok(
                store.replace(&tenant, &alice, wrong, new.clone()).await,
                "replace",
            ),
            &false,
            "replace with a stale expected key",
        );
    }
    case.eq(
        &case.ok(store.get(&tenant, &alice).await, "get"),
        &Some(old.clone()),
        "a failed replace leaves the key",
    );
    case.eq(
        &case.ok(
            store.replace(&tenant, &alice, &old, new.clone()).await,
            "replace",
        ),
        &true,
        "replace with the current key",
    );
    case.eq(
        &case.ok(store.get(&tenant, &alice).await, "get"),
        &Some(new),
        "get after replace",
    );
    case.eq(
        &case.ok(
            store.replace(&tenant, &alice, &old, old.clone()).await,
            "replace",
        ),
        &false,
        "replace with the key it already replaced",
    );
}

async fn concurrent_replaces_have_one_winner(store: &Arc<dyn DataKeyStore>, h: &Harness) {
    let case = Case::new(SUITE, "concurrent_replaces_have_one_winner");
    let (tenant, alice) = (h.tenant(), subject(h, "alice"));
    let old = key(h, "old");
    case.ok(
        store.insert_if_absent(&tenant, &alice, old.clone()).await,
        "insert_if_absent",
    );
    let candidates: Vec<WrappedKey> = (0..8).map(|i| key(h, &format!("new{i}"))).collect();
    let results = concurrently(case, candidates.len(), |i| {
        let (store, tenant, alice, old) =
            (store.clone(), tenant.clone(), alice.clone(), old.clone());
        let candidate = candidates[i].clone();
        async move { store.replace(&tenant, &alice, &old, candidate).await }
    })
    .await;
    let won: Vec<usize> = results
        .into_iter()
        .enumerate()
        .filter_map(|(i, r)| case.ok(r, "concurrent replace").then_some(i))
        .collect();
    let [winner] = won.as_slice() else {
        case.fail(format_args!(
            "exactly one racing replace must win, {} did",
            won.len()
        ))
    };
    case.eq(
        &case.ok(store.get(&tenant, &alice).await, "get"),
        &Some(candidates[*winner].clone()),
        "the stored key is the winner's",
    );
}

async fn destroy_is_final_and_idempotent(store: &dyn DataKeyStore, h: &Harness) {
    let case = Case::new(SUITE, "destroy_is_final_and_idempotent");
    let (tenant, alice, bob) = (h.tenant(), subject(h, "alice"), subject(h, "bob"));
    let first = key(h, "first");
    let bobs = key(h, "bob");
    case.ok(
        store.insert_if_absent(&tenant, &alice, first.clone()).await,
        "insert_if_absent",
    );
    case.ok(
        store.insert_if_absent(&tenant, &bob, bobs.clone()).await,
        "insert_if_absent",
    );
    case.eq(
        &case.ok(store.destroy(&tenant, &alice).await, "destroy"),
        &true,
        "destroy of an existing key",
    );
    case.eq(
        &case.ok(store.get(&tenant, &alice).await, "get"),
        &None,
        "get after destroy",
    );
    case.eq(
        &case.ok(store.destroy(&tenant, &alice).await, "destroy again"),
        &false,
        "destroy is idempotent",
    );
    case.eq(
        &case.ok(
            store.destroy(&tenant, &subject(h, "nobody")).await,
            "destroy",
        ),
        &false,
        "destroy of a subject that never had a key",
    );
    case.eq(
        &case.ok(
            store.replace(&tenant, &alice, &first, key(h, "x")).await,
            "replace",
        ),
        &false,
        "a destroyed key cannot be brought back by replace",
    );
    case.eq(
        &case.ok(store.get(&tenant, &bob).await, "get"),
        &Some(bobs),
        "destroy touches one subject only",
    );
    // A later write creates a new key; the old one stays gone.
    let fresh = key(h, "fresh");
    case.eq(
        &case.ok(
            store.insert_if_absent(&tenant, &alice, fresh.clone()).await,
            "insert_if_absent after destroy",
        ),
        &fresh,
        "a new key after destroy",
    );
}

async fn tenants_are_isolated(store: &dyn DataKeyStore, h: &Harness) {
    let case = Case::new(SUITE, "tenants_are_isolated");
    let (a, b) = (h.tenant(), h.tenant());
    let alice = subject(h, "alice");
    let (key_a, key_b) = (key(h, "a"), key(h, "b"));
    case.ok(
        store.insert_if_absent(&a, &alice, key_a.clone()).await,
        "insert_if_absent",
    );
    case.eq(
        &case.ok(store.get(&b, &alice).await, "get"),
        &None,
        "the same subject in another tenant has no key",
    );
    case.eq(
        &case.ok(
            store.insert_if_absent(&b, &alice, key_b.clone()).await,
            "insert",
        ),
        &key_b,
        "the same subject in another tenant gets its own key",
    );
    case.eq(
        &case.ok(
            store.replace(&b, &alice, &key_a, key(h, "x")).await,
            "replace",
        ),
        &false,
        "replace in another tenant with this tenant's key",
    );
    case.eq(
        &case.ok(store.destroy(&b, &alice).await, "destroy"),
        &true,
        "destroy in the other tenant",
    );
    case.eq(
        &case.ok(store.get(&a, &alice).await, "get"),
        &Some(key_a),
        "destroying in another tenant must not touch this one",
    );
}

async fn key_bytes_are_opaque(store: &dyn DataKeyStore, h: &Harness) {
    let case = Case::new(SUITE, "key_bytes_are_opaque");
    let tenant = h.tenant();
    let every_byte: Vec<u8> = (0..=255).collect();
    let mut keys = vec![
        WrappedKey::new("kek", u32::MAX, every_byte),
        WrappedKey::new("kek", 0, Vec::new()),
        WrappedKey::new("kek", 1, vec![0; 4096]),
    ];
    for (i, kek_id) in h.hostile_strings().into_iter().enumerate() {
        keys.push(WrappedKey::new(
            kek_id,
            u32::try_from(i).unwrap_or(0),
            vec![0, 1, 2],
        ));
    }
    for wrapped in keys {
        let owner = subject(h, "s");
        case.ok(
            store
                .insert_if_absent(&tenant, &owner, wrapped.clone())
                .await,
            "insert_if_absent",
        );
        case.eq(
            &case.ok(store.get(&tenant, &owner).await, "get"),
            &Some(wrapped.clone()),
            "a wrapped key must round-trip byte for byte",
        );
        let mut next = wrapped.clone();
        next.kek_version = next.kek_version.wrapping_add(1);
        case.eq(
            &case.ok(
                store.replace(&tenant, &owner, &wrapped, next).await,
                "replace",
            ),
            &true,
            "replace matches the stored key exactly",
        );
    }
}

async fn list_pages_in_byte_order(store: &dyn DataKeyStore, h: &Harness) {
    let case = Case::new(SUITE, "list_pages_in_byte_order");
    let tenant = h.tenant();
    // Byte order, not a locale's: upper case before lower, digits first.
    let suffix = h.unique("");
    let names = ["Zed", "alice", "Bob", "9lives", "a.b", "a-b", "a_b", "zoe"];
    let mut expected: Vec<(PrincipalId, WrappedKey)> = Vec::new();
    for name in names {
        let owner = PrincipalId::new(format!("{name}{suffix}"))
            .unwrap_or_else(|e| case.fail(format_args!("principal id: {e}")));
        let wrapped = key(h, name);
        case.ok(
            store
                .insert_if_absent(&tenant, &owner, wrapped.clone())
                .await,
            "insert_if_absent",
        );
        expected.push((owner, wrapped));
    }
    expected.sort_by(|a, b| a.0.as_str().as_bytes().cmp(b.0.as_str().as_bytes()));
    // A tenant sorting just after ours, to see paging cross tenants.
    let next_tenant = TenantId::new(format!("{tenant}0"))
        .unwrap_or_else(|e| case.fail(format_args!("tenant id: {e}")));
    let next_owner = subject(h, "next");
    case.ok(
        store
            .insert_if_absent(&next_tenant, &next_owner, key(h, "next"))
            .await,
        "insert_if_absent",
    );

    // Start just before the tenant's first subject ("0" sorts before
    // every subject above: digits after "0", then letters).
    let start = PrincipalId::new("0").unwrap_or_else(|e| case.fail(e));
    case.eq(
        &case
            .ok(store.list(Some((&tenant, &start)), 0).await, "list")
            .len(),
        &0,
        "list with limit 0",
    );
    let mut seen = Vec::new();
    let mut after = (tenant.clone(), start);
    let mut reached_next_tenant = false;
    for _ in 0..100 {
        let page = case.ok(store.list(Some((&after.0, &after.1)), 3).await, "list");
        case.check(page.len() <= 3, "a page holds at most `limit` keys");
        let Some(last) = page.last() else { break };
        let next_after = (last.tenant.clone(), last.subject.clone());
        for key in page {
            case.check(
                (
                    key.tenant.as_str().as_bytes(),
                    key.subject.as_str().as_bytes(),
                ) > (after.0.as_str().as_bytes(), after.1.as_str().as_bytes()),
                "list must return keys strictly after the cursor",
            );
            if key.tenant == tenant {
                seen.push((key.subject, key.wrapped));
            } else {
                reached_next_tenant = true;
            }
        }
        after = next_after;
        if reached_next_tenant {
            break;
        }
    }
    case.eq(
        &seen,
        &expected,
        "the tenant's keys, in byte order of the subject",
    );
    case.check(reached_next_tenant, "paging continues into the next tenant");
    let page = case.ok(
        store
            .list(Some((&tenant, &expected[expected.len() - 1].0)), 1)
            .await,
        "list",
    );
    case.eq(
        &page.first().map(|k| (k.tenant.clone(), k.subject.clone())),
        &Some((next_tenant, next_owner)),
        "after a tenant's last key comes the next tenant's first",
    );
    let from_start = case.ok(store.list(None, 1).await, "list from the start");
    case.eq(&from_start.len(), &1, "list from the start finds a key");
}

async fn destroying_the_key_makes_documents_unreadable(store: &Arc<dyn DataKeyStore>, h: &Harness) {
    let case = Case::new(SUITE, "destroying_the_key_makes_documents_unreadable");
    let documents = Arc::new(MemoryDocumentStore::new());
    let encrypted = EncryptedDocumentStore::new(
        documents.clone(),
        store.clone(),
        Arc::new(LocalKeyWrapper::generate()),
    );
    let (tenant, alice, bob) = (h.tenant(), subject(h, "alice"), subject(h, "bob"));
    let plaintext = Bytes::from_static(b"the subject's personal data");
    let mut ids = Vec::new();
    for owner in [&alice, &alice, &bob] {
        let doc = NewDocument::new(owner.clone(), "text/plain", "00", plaintext.clone());
        ids.push(case.ok(encrypted.put(&tenant, doc).await, "put").id);
    }
    for id in &ids {
        let back = case.ok(encrypted.get(&tenant, id).await, "get");
        case.eq(
            &back.map(|d| d.content),
            &Some(plaintext.clone()),
            "a document reads back before erasure",
        );
    }
    case.check(
        case.ok(store.get(&tenant, &alice).await, "get").is_some(),
        "writing a document stored the subject's key",
    );
    case.eq(
        &case.ok(
            encrypted.destroy_subject_key(&tenant, &alice).await,
            "destroy",
        ),
        &true,
        "destroy_subject_key",
    );
    case.eq(
        &case.ok(store.get(&tenant, &alice).await, "get"),
        &None,
        "the key store has no key after crypto-shredding",
    );
    for id in &ids[..2] {
        case.err(
            encrypted.get(&tenant, id).await,
            ErrorCode::Internal,
            "reading a crypto-shredded document",
        );
        // The ciphertext is still there: only the key is gone.
        case.check(
            case.ok(documents.get(&tenant, id).await, "raw get")
                .is_some(),
            "the ciphertext stays stored",
        );
    }
    let bobs = case.ok(encrypted.get(&tenant, &ids[2]).await, "get");
    case.eq(
        &bobs.map(|d| d.content),
        &Some(plaintext),
        "another subject's documents stay readable",
    );
}
