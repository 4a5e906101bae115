//! The [`DocumentStore`] suite.

use std::sync::Arc;

use bytes::Bytes;
use docaiche_core::document::{DocumentMeta, DocumentStore, DocumentText, NewDocument};
use docaiche_core::extract::RiskFlag;
use docaiche_core::page::PageRequest;
use docaiche_core::{DocumentId, ErrorCode, PrincipalId, TenantId};

use super::{BOGUS_CURSOR, Case, Harness, concurrently, walk};

const SUITE: &str = "DocumentStore";
/// Not the real hash of anything: stores keep what the caller computed.
const SHA: &str = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";

fn owner(name: &str) -> PrincipalId {
    PrincipalId::new(name)
        .unwrap_or_else(|e| panic!("conformance DocumentStore: principal id: {e}"))
}

fn every_byte() -> Bytes {
    (0..=255_u8)
        .chain((0..=255_u8).rev())
        .collect::<Vec<u8>>()
        .into()
}

fn new_doc(owner_name: &str) -> NewDocument {
    NewDocument::new(owner(owner_name), "application/pdf", SHA, every_byte())
        .with_filename("report.pdf")
}

/// Run the whole [`DocumentStore`] contract against `store`.
///
/// # Panics
/// On the first broken promise, naming the case.
pub async fn run_document_store(store: Arc<dyn DocumentStore>, harness: &Harness) {
    put_then_read_back(&*store, harness).await;
    hostile_strings_round_trip(&*store, harness).await;
    duplicate_ids_conflict(&*store, harness).await;
    concurrent_duplicate_puts(&store, harness).await;
    tenant_isolation(&*store, harness).await;
    list_order_and_pagination(&*store, harness).await;
    text_lifecycle(&*store, harness).await;
    risk_flags_are_stored_with_the_text(&*store, harness).await;
    delete_is_idempotent(&*store, harness).await;
    usage_counts_one_tenants_documents_and_bytes(&*store, harness).await;
}

async fn put_then_read_back(store: &dyn DocumentStore, h: &Harness) {
    let case = Case::new(SUITE, "put_then_read_back");
    let tenant = h.tenant();
    let doc = new_doc("alice");
    let meta = case.ok(store.put(&tenant, doc.clone()).await, "put");
    case.eq(&meta.id, &doc.id, "meta.id");
    case.eq(&meta.tenant, &tenant, "meta.tenant");
    case.eq(&meta.owner, &doc.owner, "meta.owner");
    case.eq(&meta.filename, &doc.filename, "meta.filename");
    case.eq(&meta.content_type, &doc.content_type, "meta.content_type");
    case.eq(&meta.size, &512, "meta.size");
    case.eq(&meta.sha256, &doc.sha256, "meta.sha256");
    case.eq(&meta.has_text, &false, "meta.has_text");
    let got = case.ok(store.get(&tenant, &doc.id).await, "get");
    let got = got.unwrap_or_else(|| case.fail("get after put returned None"));
    case.eq(&got.content, &doc.content, "content, byte for byte");
    case.eq(&got.meta, &meta, "get().meta");
    case.eq(
        &case.ok(store.head(&tenant, &doc.id).await, "head"),
        &Some(meta),
        "head",
    );

    let empty = NewDocument::new(owner("alice"), "text/plain", SHA, Bytes::new());
    let meta = case.ok(
        store.put(&tenant, empty.clone()).await,
        "put of empty content",
    );
    case.eq(&meta.size, &0, "size of empty content");
    case.eq(&meta.filename, &None, "no filename");
    let got = case.ok(store.get(&tenant, &empty.id).await, "get");
    case.eq(
        &got.map(|d| d.content),
        &Some(Bytes::new()),
        "empty content",
    );
    case.eq(
        &case.ok(store.get(&tenant, &DocumentId::new()).await, "get"),
        &None,
        "an unknown id",
    );
}

async fn hostile_strings_round_trip(store: &dyn DocumentStore, h: &Harness) {
    let case = Case::new(SUITE, "hostile_strings_round_trip");
    let tenant = h.tenant();
    let hostile = h.hostile_strings();
    for s in &hostile {
        let doc = NewDocument::new(
            owner("bob"),
            s.clone(),
            SHA,
            Bytes::from(s.clone().into_bytes()),
        )
        .with_filename(s.clone());
        let meta = case.ok(store.put(&tenant, doc.clone()).await, "put");
        case.eq(
            &meta.filename.as_deref(),
            &Some(s.as_str()),
            "filename from put",
        );
        let got = case.ok(store.get(&tenant, &doc.id).await, "get");
        let got = got.unwrap_or_else(|| case.fail("get after put returned None"));
        case.eq(&got.meta.filename.as_deref(), &Some(s.as_str()), "filename");
        case.eq(&got.meta.content_type, s, "content_type");
        case.eq(&got.content, &doc.content, "content");
    }
    let doc = new_doc("bob");
    case.ok(store.put(&tenant, doc.clone()).await, "put");
    let text = DocumentText::new(hostile.clone());
    case.ok(store.put_text(&tenant, &doc.id, &text).await, "put_text");
    case.eq(
        &case.ok(store.get_text(&tenant, &doc.id).await, "get_text"),
        &Some(text),
        "text pages",
    );
}

async fn duplicate_ids_conflict(store: &dyn DocumentStore, h: &Harness) {
    let case = Case::new(SUITE, "duplicate_ids_conflict");
    let tenant = h.tenant();
    let doc = new_doc("carol");
    let meta = case.ok(store.put(&tenant, doc.clone()).await, "put");
    let mut again = NewDocument::new(
        owner("mallory"),
        "text/plain",
        SHA,
        Bytes::from_static(b"other"),
    );
    again.id = doc.id;
    case.err(
        store.put(&tenant, again).await,
        ErrorCode::Conflict,
        "put with an existing id",
    );
    let got = case.ok(store.get(&tenant, &doc.id).await, "get");
    let got = got.unwrap_or_else(|| case.fail("original vanished"));
    case.eq(
        &got.meta,
        &meta,
        "the original's metadata after a refused duplicate",
    );
    case.eq(
        &got.content,
        &doc.content,
        "the original's content after a refused duplicate",
    );
}

async fn concurrent_duplicate_puts(store: &Arc<dyn DocumentStore>, h: &Harness) {
    let case = Case::new(SUITE, "concurrent_duplicate_puts");
    let tenant = h.tenant();
    let id = DocumentId::new();
    let results = concurrently(case, 16, |i| {
        let (store, tenant) = (store.clone(), tenant.clone());
        let mut doc = NewDocument::new(
            owner("dave"),
            "text/plain",
            SHA,
            Bytes::from(format!("racer {i}")),
        );
        doc.id = id;
        async move { store.put(&tenant, doc).await.map(|_| ()) }
    })
    .await;
    let ok = results.iter().filter(|r| r.is_ok()).count();
    let conflicts = results
        .iter()
        .filter(|r| r.as_ref().is_err_and(|e| e.code() == ErrorCode::Conflict))
        .count();
    case.check(
        ok == 1 && conflicts == 15,
        format_args!(
            "expected exactly one Ok and 15 Conflict, got {ok} Ok and {conflicts} Conflict"
        ),
    );
}

async fn tenant_isolation(store: &dyn DocumentStore, h: &Harness) {
    let case = Case::new(SUITE, "tenant_isolation");
    let (tenant, intruder) = (h.tenant(), h.tenant());
    let doc = new_doc("erin");
    let meta = case.ok(store.put(&tenant, doc.clone()).await, "put");
    let text = DocumentText::new(vec!["secret page".to_owned()]);
    case.ok(store.put_text(&tenant, &doc.id, &text).await, "put_text");
    case.ok(
        store.put(&intruder, new_doc("erin")).await,
        "put in the other tenant",
    );

    case.eq(
        &case
            .ok(store.get(&intruder, &doc.id).await, "get")
            .map(|d| d.meta),
        &None,
        "get from another tenant",
    );
    case.eq(
        &case.ok(store.head(&intruder, &doc.id).await, "head"),
        &None,
        "head from another tenant",
    );
    case.eq(
        &case.ok(store.get_text(&intruder, &doc.id).await, "get_text"),
        &None,
        "get_text from another tenant",
    );
    let absent =
        |items: &[DocumentMeta]| items.iter().all(|m| m.id != doc.id && m.tenant == intruder);
    let listed = walk(case, 10, |p| {
        let intruder = intruder.clone();
        async move { store.list(&intruder, &p).await }
    })
    .await;
    case.check(
        absent(&listed),
        "list of another tenant must not show the document",
    );
    let listed = walk(case, 10, |p| {
        let intruder = intruder.clone();
        async move { store.list_by_owner(&intruder, &owner("erin"), &p).await }
    })
    .await;
    case.check(
        absent(&listed),
        "list_by_owner of another tenant must not show the document",
    );
    case.err(
        store
            .put_text(
                &intruder,
                &doc.id,
                &DocumentText::new(vec!["overwritten".to_owned()]),
            )
            .await,
        ErrorCode::NotFound,
        "put_text from another tenant",
    );
    case.eq(
        &case.ok(store.delete(&intruder, &doc.id).await, "delete"),
        &false,
        "delete from another tenant",
    );
    let mut expected = meta;
    expected.has_text = true;
    case.eq(
        &case.ok(store.head(&tenant, &doc.id).await, "head"),
        &Some(expected),
        "the document after another tenant's attempts",
    );
    case.eq(
        &case.ok(store.get_text(&tenant, &doc.id).await, "get_text"),
        &Some(text),
        "the text after another tenant's attempts",
    );
}

async fn list_order_and_pagination(store: &dyn DocumentStore, h: &Harness) {
    let case = Case::new(SUITE, "list_order_and_pagination");
    let tenant = h.tenant();
    let docs: Vec<NewDocument> = (0..8)
        .map(|i| new_doc(if i % 2 == 0 { "frank" } else { "grace" }))
        .collect();
    for doc in docs.iter().rev() {
        case.ok(store.put(&tenant, doc.clone()).await, "put");
    }
    let all: Vec<DocumentId> = docs.iter().map(|d| d.id).collect();
    let franks: Vec<DocumentId> = docs
        .iter()
        .filter(|d| d.owner.as_str() == "frank")
        .map(|d| d.id)
        .collect();
    for limit in [1, 3, 8, 100] {
        let listed = walk(case, limit, |p| {
            let tenant = tenant.clone();
            async move { store.list(&tenant, &p).await }
        })
        .await;
        let ids: Vec<DocumentId> = listed.iter().map(|m| m.id).collect();
        case.eq(
            &ids,
            &all,
            &format!("list walked with limit {limit}, each exactly once in id order"),
        );
        let listed = walk(case, limit, |p| {
            let tenant = tenant.clone();
            async move { store.list_by_owner(&tenant, &owner("frank"), &p).await }
        })
        .await;
        let ids: Vec<DocumentId> = listed.iter().map(|m| m.id).collect();
        case.eq(
            &ids,
            &franks,
            &format!("list_by_owner walked with limit {limit}"),
        );
    }
    let bad = case.ok(
        PageRequest::new(Some(BOGUS_CURSOR.to_owned()), 10),
        "page request",
    );
    case.err(
        store.list(&tenant, &bad).await,
        ErrorCode::InvalidInput,
        "list with a malformed cursor",
    );
    case.err(
        store.list_by_owner(&tenant, &owner("frank"), &bad).await,
        ErrorCode::InvalidInput,
        "list_by_owner with a malformed cursor",
    );
}

async fn text_lifecycle(store: &dyn DocumentStore, h: &Harness) {
    let case = Case::new(SUITE, "text_lifecycle");
    let tenant = h.tenant();
    let doc = new_doc("heidi");
    case.ok(store.put(&tenant, doc.clone()).await, "put");
    case.eq(
        &case.ok(store.get_text(&tenant, &doc.id).await, "get_text"),
        &None,
        "text before put_text",
    );
    let first = DocumentText::new(vec![
        "page one".to_owned(),
        String::new(),
        "page three".to_owned(),
    ]);
    case.ok(store.put_text(&tenant, &doc.id, &first).await, "put_text");
    case.eq(
        &case.ok(store.get_text(&tenant, &doc.id).await, "get_text"),
        &Some(first),
        "text",
    );
    let head = case.ok(store.head(&tenant, &doc.id).await, "head");
    case.eq(
        &head.map(|m| m.has_text),
        &Some(true),
        "has_text after put_text",
    );
    let second = DocumentText::new(vec!["replaced".to_owned()]);
    case.ok(
        store.put_text(&tenant, &doc.id, &second).await,
        "put_text again",
    );
    case.eq(
        &case.ok(store.get_text(&tenant, &doc.id).await, "get_text"),
        &Some(second),
        "replaced text",
    );
    case.err(
        store
            .put_text(&tenant, &DocumentId::new(), &DocumentText::default())
            .await,
        ErrorCode::NotFound,
        "put_text of an unknown document",
    );
}

/// `put_text` stores the text's risk flags; every read of the metadata and
/// `get_text` return them canonical; a document without text has none.
async fn risk_flags_are_stored_with_the_text(store: &dyn DocumentStore, h: &Harness) {
    let case = Case::new(SUITE, "risk_flags_are_stored_with_the_text");
    let tenant = h.tenant();
    let (risky, clean, untouched) = (new_doc("judy"), new_doc("judy"), new_doc("judy"));
    for doc in [&risky, &clean, &untouched] {
        let meta = case.ok(store.put(&tenant, doc.clone()).await, "put");
        case.eq(&meta.risks, &Vec::new(), "risks from put");
    }
    // Given out of order and repeated: stored canonical.
    let mut text = DocumentText::new(vec!["page".to_owned()]);
    text.risks = vec![RiskFlag::Xfa, RiskFlag::JavaScript, RiskFlag::Xfa];
    case.ok(store.put_text(&tenant, &risky.id, &text).await, "put_text");
    let expected = vec![RiskFlag::JavaScript, RiskFlag::Xfa];
    case.ok(
        store
            .put_text(
                &tenant,
                &clean.id,
                &DocumentText::new(vec!["page".to_owned()]),
            )
            .await,
        "put_text without risks",
    );
    let risks_of = |metas: &[DocumentMeta], id: &DocumentId| {
        metas
            .iter()
            .find(|m| m.id == *id)
            .map(|m| (m.has_text, m.risks.clone()))
            .unwrap_or_else(|| case.fail("a document is missing from a listing"))
    };
    let head = case.ok(store.head(&tenant, &risky.id).await, "head");
    case.eq(
        &head.map(|m| m.risks),
        &Some(expected.clone()),
        "head after put_text",
    );
    let got = case.ok(store.get(&tenant, &risky.id).await, "get");
    case.eq(
        &got.map(|d| d.meta.risks),
        &Some(expected.clone()),
        "get after put_text",
    );
    case.eq(
        &case
            .ok(store.get_text(&tenant, &risky.id).await, "get_text")
            .map(|t| t.risks),
        &Some(expected.clone()),
        "get_text after put_text",
    );
    let listed = walk(case, 2, |p| {
        let tenant = tenant.clone();
        async move { store.list(&tenant, &p).await }
    })
    .await;
    let by_owner = walk(case, 2, |p| {
        let tenant = tenant.clone();
        async move { store.list_by_owner(&tenant, &owner("judy"), &p).await }
    })
    .await;
    for (name, metas) in [("list", &listed), ("list_by_owner", &by_owner)] {
        case.eq(
            &risks_of(metas, &risky.id),
            &(true, expected.clone()),
            &format!("{name}: the risky document"),
        );
        case.eq(
            &risks_of(metas, &clean.id),
            &(true, Vec::new()),
            &format!("{name}: a clean document"),
        );
        case.eq(
            &risks_of(metas, &untouched.id),
            &(false, Vec::new()),
            &format!("{name}: a document without text"),
        );
    }
    // Replaced with the text; every flag round-trips.
    let every = DocumentText::new(vec!["again".to_owned()]).with_risks(RiskFlag::ALL);
    case.ok(
        store.put_text(&tenant, &risky.id, &every).await,
        "put_text again",
    );
    let head = case.ok(store.head(&tenant, &risky.id).await, "head");
    case.eq(
        &head.map(|m| m.risks),
        &Some(RiskFlag::ALL.to_vec()),
        "every flag, replacing the first ones",
    );
    case.eq(
        &case.ok(store.get_text(&tenant, &risky.id).await, "get_text"),
        &Some(every),
        "text and every flag",
    );
    let cleaned = DocumentText::new(vec!["sanitised".to_owned()]);
    case.ok(
        store.put_text(&tenant, &risky.id, &cleaned).await,
        "put_text without risks",
    );
    let head = case.ok(store.head(&tenant, &risky.id).await, "head");
    case.eq(
        &head.map(|m| m.risks),
        &Some(Vec::new()),
        "text stored without flags clears them",
    );
}

async fn delete_is_idempotent(store: &dyn DocumentStore, h: &Harness) {
    let case = Case::new(SUITE, "delete_is_idempotent");
    let tenant: TenantId = h.tenant();
    let doc = new_doc("ivan");
    let keep = new_doc("ivan");
    case.ok(store.put(&tenant, doc.clone()).await, "put");
    case.ok(store.put(&tenant, keep.clone()).await, "put");
    case.ok(
        store
            .put_text(&tenant, &doc.id, &DocumentText::new(vec!["x".to_owned()]))
            .await,
        "put_text",
    );
    case.eq(
        &case.ok(store.delete(&tenant, &doc.id).await, "delete"),
        &true,
        "delete",
    );
    case.eq(
        &case.ok(store.delete(&tenant, &doc.id).await, "delete"),
        &false,
        "delete twice",
    );
    case.eq(
        &case
            .ok(store.get(&tenant, &doc.id).await, "get")
            .map(|d| d.meta),
        &None,
        "get after delete",
    );
    case.eq(
        &case.ok(store.head(&tenant, &doc.id).await, "head"),
        &None,
        "head after delete",
    );
    case.eq(
        &case.ok(store.get_text(&tenant, &doc.id).await, "get_text"),
        &None,
        "text after delete",
    );
    let listed = walk(case, 10, |p| {
        let tenant = tenant.clone();
        async move { store.list(&tenant, &p).await }
    })
    .await;
    let ids: Vec<DocumentId> = listed.iter().map(|m| m.id).collect();
    case.eq(&ids, &vec![keep.id], "list after delete");
}

/// `usage` is optional (`None`: the store cannot count); when a store
/// counts, the counts must be exact and per tenant.
async fn usage_counts_one_tenants_documents_and_bytes(store: &dyn DocumentStore, h: &Harness) {
    let case = Case::new(SUITE, "usage_counts_one_tenants_documents_and_bytes");
    let tenant = h.tenant();
    let other = h.tenant();
    let Some(empty) = case.ok(store.usage(&tenant).await, "usage") else {
        return;
    };
    case.eq(&(empty.documents, empty.bytes), &(0, 0), "an empty tenant");
    let sizes = [every_byte().len(), 0, 3];
    let mut ids = Vec::new();
    for (i, size) in sizes.iter().enumerate() {
        let content = Bytes::from(vec![b'x'; *size]);
        let doc = NewDocument::new(owner(&format!("owner{i}")), "application/pdf", SHA, content);
        ids.push(case.ok(store.put(&tenant, doc).await, "put").id);
    }
    case.ok(
        store.put(&other, new_doc("bob")).await,
        "put in another tenant",
    );
    let total = u64::try_from(sizes.iter().sum::<usize>()).unwrap_or(u64::MAX);
    let usage = case.ok(store.usage(&tenant).await, "usage");
    case.eq(
        &usage.map(|u| (u.documents, u.bytes)),
        &Some((3, total)),
        "three documents, their bytes, none of the other tenant's",
    );
    case.ok(store.delete(&tenant, &ids[0]).await, "delete");
    let usage = case.ok(store.usage(&tenant).await, "usage");
    case.eq(
        &usage.map(|u| (u.documents, u.bytes)),
        &Some((2, 3)),
        "a deleted document no longer counts",
    );
}
