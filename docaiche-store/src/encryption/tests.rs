use std::sync::Arc;

use bytes::Bytes;
use docaiche_core::document::{DocumentStore, DocumentText, NewDocument};
use docaiche_core::error::Error;
use docaiche_core::id::{PrincipalId, TenantId};
use docaiche_core::key_wrapper::KeyWrapper;

use super::*;
use crate::key_wrapper::LocalKeyWrapper;
use crate::memory::MemoryDocumentStore;

struct Fixture {
    plain: Arc<MemoryDocumentStore>,
    keys: Arc<MemoryDataKeyStore>,
    wrapper: Arc<LocalKeyWrapper>,
    store: EncryptedDocumentStore,
}

fn fixture() -> Fixture {
    let plain = Arc::new(MemoryDocumentStore::new());
    let keys = Arc::new(MemoryDataKeyStore::new());
    let wrapper = Arc::new(LocalKeyWrapper::generate());
    let store = EncryptedDocumentStore::new(plain.clone(), keys.clone(), wrapper.clone());
    Fixture {
        plain,
        keys,
        wrapper,
        store,
    }
}

fn tenant(name: &str) -> TenantId {
    TenantId::new(name).expect("valid tenant")
}

fn subject(name: &str) -> PrincipalId {
    PrincipalId::new(name).expect("valid principal")
}

fn doc(owner: &str, content: &'static [u8]) -> NewDocument {
    NewDocument::new(
        subject(owner),
        "application/pdf",
        "00",
        Bytes::from_static(content),
    )
}

#[tokio::test]
async fn content_and_text_are_ciphertext_underneath_and_plaintext_through() {
    let f = fixture();
    let acme = tenant("acme");
    let meta = f
        .store
        .put(&acme, doc("alice", b"%PDF-1.7 secret"))
        .await
        .expect("put");
    assert_eq!(meta.size, 15, "the plaintext size");

    let raw = f
        .plain
        .get(&acme, &meta.id)
        .await
        .expect("get")
        .expect("stored");
    assert!(raw.content.starts_with(b"DCE1"));
    assert_eq!(raw.content.len(), 15 + OVERHEAD_FOR_TESTS);
    assert!(!raw.content.windows(6).any(|w| w == b"secret"));

    let text = DocumentText::new(vec!["page one".into(), "page \0 two".into()]);
    f.store
        .put_text(&acme, &meta.id, &text)
        .await
        .expect("put text");
    let raw_text = f
        .plain
        .get_text(&acme, &meta.id)
        .await
        .expect("get")
        .expect("stored");
    assert_eq!(raw_text.pages.len(), 1, "page count is hidden too");
    assert!(!raw_text.pages[0].contains("page one"));

    let back = f
        .store
        .get(&acme, &meta.id)
        .await
        .expect("get")
        .expect("stored");
    assert_eq!(back.content, Bytes::from_static(b"%PDF-1.7 secret"));
    assert_eq!(back.meta.size, 15);
    assert_eq!(
        f.store.get_text(&acme, &meta.id).await.expect("get"),
        Some(text)
    );
    let listed = f
        .store
        .list(&acme, &Default::default())
        .await
        .expect("list");
    assert_eq!(listed.items[0].size, 15);
}

#[tokio::test]
async fn a_ciphertext_moved_to_another_document_or_part_fails_authentication() {
    let f = fixture();
    let acme = tenant("acme");
    let a = f
        .store
        .put(&acme, doc("alice", b"document A"))
        .await
        .expect("put");
    let stolen = f
        .plain
        .get(&acme, &a.id)
        .await
        .expect("get")
        .expect("stored")
        .content;

    // The same subject, so the same key: only the associated data differs.
    let mut forged = NewDocument::new(subject("alice"), "application/pdf", "00", stolen.clone());
    let forged_id = forged.id;
    forged.content = stolen.clone();
    f.plain.put(&acme, forged).await.expect("raw put");
    let read = f.store.get(&acme, &forged_id).await;
    assert!(matches!(read, Err(Error::Internal { .. })), "{read:?}");

    // Content placed where text belongs.
    let page = format!(
        "dce1:{}",
        base64::Engine::encode(&base64::engine::general_purpose::STANDARD_NO_PAD, &stolen)
    );
    f.plain
        .put_text(&acme, &a.id, &DocumentText::new(vec![page]))
        .await
        .expect("raw put text");
    let read = f.store.get_text(&acme, &a.id).await;
    assert!(matches!(read, Err(Error::Internal { .. })), "{read:?}");

    // A flipped bit.
    let mut tampered = stolen.to_vec();
    let last = tampered.len() - 1;
    tampered[last] ^= 1;
    let mut copy = NewDocument::new(
        subject("alice"),
        "application/pdf",
        "00",
        Bytes::from(tampered),
    );
    copy.id = docaiche_core::id::DocumentId::new();
    let copy_id = copy.id;
    f.plain.put(&acme, copy).await.expect("raw put");
    assert!(matches!(
        f.store.get(&acme, &copy_id).await,
        Err(Error::Internal { .. })
    ));
}

#[tokio::test]
async fn a_ciphertext_moved_to_another_tenant_fails() {
    let f = fixture();
    let (acme, evil) = (tenant("acme"), tenant("evil"));
    let a = f
        .store
        .put(&acme, doc("alice", b"acme only"))
        .await
        .expect("put");
    // The other tenant has a key for the same subject name: still refused.
    f.store
        .put(&evil, doc("alice", b"evil"))
        .await
        .expect("put");
    let stolen = f
        .plain
        .get(&acme, &a.id)
        .await
        .expect("get")
        .expect("stored");
    let mut copy = NewDocument::new(subject("alice"), "application/pdf", "00", stolen.content);
    copy.id = docaiche_core::id::DocumentId::new();
    let copy_id = copy.id;
    f.plain.put(&evil, copy).await.expect("raw put");
    assert!(matches!(
        f.store.get(&evil, &copy_id).await,
        Err(Error::Internal { .. })
    ));
}

#[tokio::test]
async fn destroying_a_subjects_key_shreds_their_documents_only() {
    let f = fixture();
    let acme = tenant("acme");
    let alice = f
        .store
        .put(&acme, doc("alice", b"alice's"))
        .await
        .expect("put");
    let bob = f.store.put(&acme, doc("bob", b"bob's")).await.expect("put");
    assert!(
        f.store
            .destroy_subject_key(&acme, &subject("alice"))
            .await
            .expect("destroy")
    );
    assert!(
        !f.store
            .destroy_subject_key(&acme, &subject("alice"))
            .await
            .expect("again")
    );
    let read = f.store.get(&acme, &alice.id).await;
    assert!(matches!(read, Err(Error::Internal { .. })), "{read:?}");
    // The ciphertext is still in the store (and in backups), but useless.
    assert!(f.plain.get(&acme, &alice.id).await.expect("get").is_some());
    let other = f
        .store
        .get(&acme, &bob.id)
        .await
        .expect("get")
        .expect("stored");
    assert_eq!(other.content, Bytes::from_static(b"bob's"));
}

#[tokio::test]
async fn after_a_kek_rotation_rewrap_moves_every_key_and_old_versions_can_be_retired() {
    let f = fixture();
    let acme = tenant("acme");
    let mut ids = Vec::new();
    for owner in ["alice", "bob", "carol"] {
        ids.push(
            f.store
                .put(&acme, doc(owner, b"data"))
                .await
                .expect("put")
                .id,
        );
    }
    let first = f.wrapper.latest_version();
    let second = f.wrapper.rotate().expect("rotate");
    let report = f.store.rewrap_all().await.expect("rewrap");
    assert_eq!(report.rewrapped, 3);
    let keys = f.keys.list(None, 10).await.expect("list");
    assert!(
        keys.iter().all(|k| k.wrapped.kek_version == second),
        "{keys:?}"
    );
    assert_ne!(first, second);

    f.wrapper
        .set_min_decryption_version(second)
        .expect("retire v1");
    for id in &ids {
        let back = f.store.get(&acme, id).await.expect("get").expect("stored");
        assert_eq!(back.content, Bytes::from_static(b"data"));
    }
    // Nothing left to do.
    assert_eq!(f.store.rewrap_all().await.expect("rewrap").rewrapped, 0);
}

#[tokio::test]
async fn concurrent_first_writes_of_a_subject_share_one_key() {
    let f = fixture();
    let acme = tenant("acme");
    let writes = (0..16).map(|_| f.store.put(&acme, doc("dave", b"x")));
    let metas = futures_util::future::join_all(writes).await;
    assert_eq!(f.keys.list(None, 10).await.expect("list").len(), 1);
    for meta in metas {
        let id = meta.expect("put").id;
        assert!(f.store.get(&acme, &id).await.expect("get").is_some());
    }
}

#[tokio::test]
async fn wrapped_keys_are_bound_to_their_subject() {
    let f = fixture();
    let acme = tenant("acme");
    f.store.put(&acme, doc("alice", b"a")).await.expect("put");
    let bob_doc = f.store.put(&acme, doc("bob", b"b")).await.expect("put");
    let alice_key = f
        .keys
        .get(&acme, &subject("alice"))
        .await
        .expect("get")
        .expect("key");
    let bob_key = f
        .keys
        .get(&acme, &subject("bob"))
        .await
        .expect("get")
        .expect("key");
    // Swap Alice's wrapped key into Bob's row: it does not unwrap there.
    assert!(
        f.keys
            .replace(&acme, &subject("bob"), &bob_key, alice_key)
            .await
            .expect("swap")
    );
    assert!(matches!(
        f.store.get(&acme, &bob_doc.id).await,
        Err(Error::Internal { .. })
    ));
    let _ = f
        .wrapper
        .generate_data_key(b"unused")
        .await
        .expect("still works");
}

#[cfg(feature = "conformance")]
#[tokio::test]
async fn passes_the_document_store_conformance_suite() {
    let f = fixture();
    crate::conformance::run_document_store(
        Arc::new(f.store),
        &crate::conformance::Harness::without_time(),
    )
    .await;
}

/// A wrapper counting its unwraps, to see the key cache work.
#[derive(Debug)]
struct CountingWrapper {
    inner: LocalKeyWrapper,
    unwraps: std::sync::atomic::AtomicUsize,
}

impl CountingWrapper {
    fn unwraps(&self) -> usize {
        self.unwraps.load(std::sync::atomic::Ordering::SeqCst)
    }
}

#[async_trait::async_trait]
impl KeyWrapper for CountingWrapper {
    async fn generate_data_key(
        &self,
        context: &[u8],
    ) -> docaiche_core::Result<docaiche_core::key_wrapper::DataKey> {
        self.inner.generate_data_key(context).await
    }

    async fn unwrap_key(
        &self,
        wrapped: &docaiche_core::key_wrapper::WrappedKey,
        context: &[u8],
    ) -> docaiche_core::Result<docaiche_core::SecretBytes> {
        self.unwraps
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        self.inner.unwrap_key(wrapped, context).await
    }

    async fn rewrap(
        &self,
        wrapped: &docaiche_core::key_wrapper::WrappedKey,
        context: &[u8],
    ) -> docaiche_core::Result<docaiche_core::key_wrapper::WrappedKey> {
        self.inner.rewrap(wrapped, context).await
    }
}

fn counting() -> (Arc<MemoryDataKeyStore>, Arc<CountingWrapper>) {
    let wrapper = Arc::new(CountingWrapper {
        inner: LocalKeyWrapper::generate(),
        unwraps: std::sync::atomic::AtomicUsize::new(0),
    });
    (Arc::new(MemoryDataKeyStore::new()), wrapper)
}

#[tokio::test]
async fn the_key_cache_unwraps_a_subjects_key_once() {
    let (keys, wrapper) = counting();
    let store = EncryptedDocumentStore::new(
        Arc::new(MemoryDocumentStore::new()),
        keys.clone(),
        wrapper.clone(),
    );
    let acme = tenant("acme");
    let mut ids = Vec::new();
    for _ in 0..5 {
        ids.push(store.put(&acme, doc("alice", b"a")).await.expect("put").id);
    }
    for id in &ids {
        assert!(store.get(&acme, id).await.expect("get").is_some());
    }
    assert_eq!(
        wrapper.unwraps(),
        0,
        "the key generated on first write is cached"
    );
    assert_eq!(store.cached_keys(), 1);

    // Without the cache, every call unwraps.
    let uncached =
        EncryptedDocumentStore::new(Arc::new(MemoryDocumentStore::new()), keys, wrapper.clone())
            .with_key_cache(0, std::time::Duration::from_secs(60));
    let id = uncached
        .put(&acme, doc("alice", b"a"))
        .await
        .expect("put")
        .id;
    uncached.get(&acme, &id).await.expect("get");
    assert_eq!(wrapper.unwraps(), 2);
    assert_eq!(uncached.cached_keys(), 0);
}

#[tokio::test]
async fn a_key_destroyed_by_another_instance_is_not_served_from_the_cache() {
    let (keys, wrapper) = counting();
    let documents = Arc::new(MemoryDocumentStore::new());
    let first = EncryptedDocumentStore::new(documents.clone(), keys.clone(), wrapper.clone());
    let second = EncryptedDocumentStore::new(documents, keys, wrapper);
    let acme = tenant("acme");
    let id = first.put(&acme, doc("alice", b"a")).await.expect("put").id;
    assert!(second.get(&acme, &id).await.expect("get").is_some());
    assert_eq!(second.cached_keys(), 1);

    assert!(
        first
            .destroy_subject_key(&acme, &subject("alice"))
            .await
            .expect("destroy")
    );
    assert_eq!(first.cached_keys(), 0, "destroy drops the local entry");
    assert!(
        matches!(second.get(&acme, &id).await, Err(Error::Internal { .. })),
        "the other instance must not read a shredded document from its cache"
    );
    assert_eq!(second.cached_keys(), 0, "and drops its entry");
    // A new key for the subject (e.g. the account comes back): new
    // documents are written and read under it, the old stay unreadable.
    let new = second.put(&acme, doc("alice", b"b")).await.expect("put").id;
    assert!(first.get(&acme, &new).await.expect("get").is_some());
    assert!(first.get(&acme, &id).await.is_err());
}

#[tokio::test]
async fn the_key_cache_is_bounded_and_follows_rewraps() {
    let (keys, wrapper) = counting();
    let store =
        EncryptedDocumentStore::new(Arc::new(MemoryDocumentStore::new()), keys, wrapper.clone())
            .with_key_cache(2, std::time::Duration::from_secs(60));
    let acme = tenant("acme");
    let mut ids = Vec::new();
    for owner in ["a1", "a2", "a3", "a4"] {
        ids.push(store.put(&acme, doc(owner, b"x")).await.expect("put").id);
        assert!(store.cached_keys() <= 2);
    }
    assert_eq!(store.cached_keys(), 2);
    for id in &ids {
        assert!(store.get(&acme, id).await.expect("get").is_some());
    }
    assert!(store.cached_keys() <= 2);
    let before = wrapper.unwraps();
    wrapper.inner.rotate().expect("rotate");
    store.rewrap_all().await.expect("rewrap");
    // A rewrapped key is new wrapped bytes: unwrapped afresh once.
    assert!(store.get(&acme, &ids[3]).await.expect("get").is_some());
    assert!(store.get(&acme, &ids[3]).await.expect("get").is_some());
    assert_eq!(wrapper.unwraps(), before + 1);
}

/// The stored format does not depend on the AES-GCM implementation:
/// values written by the RustCrypto `aes-gcm` code of earlier versions open
/// with ring, and ring's values open with `aes-gcm`.
#[tokio::test]
async fn the_stored_format_is_the_same_with_either_aes_gcm_implementation() {
    use aes_gcm::aead::{Aead, KeyInit, Payload};
    use aes_gcm::{Aes256Gcm, Nonce};

    let f = fixture();
    let acme = tenant("acme");
    let meta = f
        .store
        .put(&acme, doc("alice", b"portable"))
        .await
        .expect("put");
    let wrapped = f
        .keys
        .get(&acme, &subject("alice"))
        .await
        .expect("get")
        .expect("key");
    let context = b"docaiche/subject-key/v1\0acme\0alice";
    let key = f
        .wrapper
        .unwrap_key(&wrapped, context)
        .await
        .expect("unwrap");
    let cipher = Aes256Gcm::new_from_slice(key.expose_secret()).expect("256 bits");
    let aad = format!("docaiche/document/v1\0content\0acme\0{}", meta.id);

    // ring → aes-gcm.
    let raw = f
        .plain
        .get(&acme, &meta.id)
        .await
        .expect("get")
        .expect("stored");
    let (nonce, sealed) = raw.content[4..].split_at(12);
    let plain = cipher
        .decrypt(
            Nonce::from_slice(nonce),
            Payload {
                msg: sealed,
                aad: aad.as_bytes(),
            },
        )
        .expect("aes-gcm opens ring's value");
    assert_eq!(plain, b"portable");

    // aes-gcm → ring, through the store.
    let nonce = [7_u8; 12];
    let sealed = cipher
        .encrypt(
            Nonce::from_slice(&nonce),
            Payload {
                msg: b"written by aes-gcm",
                aad: aad.as_bytes(),
            },
        )
        .expect("seal");
    let mut stored = b"DCE1".to_vec();
    stored.extend_from_slice(&nonce);
    stored.extend_from_slice(&sealed);
    assert!(f.plain.delete(&acme, &meta.id).await.expect("delete"));
    let mut replacement = doc("alice", b"");
    replacement.id = meta.id;
    replacement.content = Bytes::from(stored);
    f.plain.put(&acme, replacement).await.expect("put raw");
    let back = f
        .store
        .get(&acme, &meta.id)
        .await
        .expect("get")
        .expect("stored");
    assert_eq!(back.content, Bytes::from_static(b"written by aes-gcm"));
}
