//! `GET /v1/documents` through the router: pages, filters, tenants.

use axum::body::{Body, Bytes};
use axum::http::{Request, StatusCode};
use docaiche_core::document::NewDocument;
use docaiche_core::{DocumentStore as _, PrincipalId, TenantId};
use serde_json::Value;

use crate::config::Config;
use crate::routes::router;
use crate::routes::tests::{assert_problem, send};
use crate::state::AppState;
use crate::state::tests::local_state;
use crate::test_support::{TestDir, key_with};

/// Store a document of `owner` in `tenant` directly.
async fn put(state: &AppState, tenant: &str, owner: &str, content_type: &str) -> String {
    let tenant = TenantId::new(tenant).expect("tenant");
    let owner = PrincipalId::new(owner).expect("owner");
    let document = NewDocument::new(owner, content_type, "00", Bytes::from_static(b"%PDF-"));
    let meta = state.documents.put(&tenant, document).await.expect("put");
    meta.id.to_string()
}

/// `POST /v1/documents` of `pdf` with `key`: the created document.
async fn upload(state: &AppState, key: &str, pdf: Vec<u8>) -> Value {
    let request = Request::post("/v1/documents")
        .header("x-api-key", key)
        .header("content-type", "application/pdf")
        .body(Body::from(pdf))
        .expect("request");
    let (status, _, body) = send(router(state.clone()), request).await;
    let created: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    assert_eq!(status, StatusCode::CREATED, "{created}");
    created
}

/// The fuzz seed with `/JavaScript` in an `/OpenAction` and an embedded
/// file (`docaiche-extract`'s `active_content_seed_is_flagged`).
fn active_pdf() -> Vec<u8> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../fuzz/corpus/extract/active.pdf"
    );
    std::fs::read(path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// `GET uri` with `key`: the status and the body as JSON (if any).
async fn get(state: &AppState, uri: &str, key: &str) -> (StatusCode, Value) {
    let request = Request::get(uri)
        .header("x-api-key", key)
        .body(Body::empty())
        .expect("request");
    let (status, _, body) = send(router(state.clone()), request).await;
    (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
}

/// Every id of every page of `uri` (which has no `after`), walking `next`.
async fn walk(state: &AppState, uri: &str, key: &str) -> Vec<String> {
    let mut ids = Vec::new();
    let mut next: Option<String> = None;
    for _ in 0..100 {
        let page_uri = match &next {
            Some(cursor) => format!("{uri}&after={cursor}"),
            None => uri.to_owned(),
        };
        let (status, page) = get(state, &page_uri, key).await;
        assert_eq!(status, StatusCode::OK, "{page_uri}: {page}");
        crate::openapi::tests::conforms(&page_uri, "DocumentPage", page.to_string().as_bytes());
        ids.extend(
            page["items"]
                .as_array()
                .expect("items")
                .iter()
                .map(|d| d["id"].as_str().expect("id").to_owned()),
        );
        match page["next"].as_str() {
            Some(cursor) => next = Some(cursor.to_owned()),
            None => return ids,
        }
    }
    panic!("{uri}: the pages never end");
}

#[tokio::test]
async fn documents_are_listed_by_page_and_filter_within_the_callers_tenant() {
    let dir = TestDir::new("documents-list");
    let mut config = Config::default();
    config.storage.data_dir = dir.path().to_path_buf();
    let state = local_state(&config);
    let mut alice = Vec::new();
    let mut bob = Vec::new();
    for i in 0..5 {
        alice.push(put(&state, "acme", "alice", "application/pdf").await);
        let kind = if i % 2 == 0 {
            "application/pdf"
        } else {
            "text/plain"
        };
        bob.push((put(&state, "acme", "bob", kind).await, kind));
    }
    put(&state, "globex", "alice", "application/pdf").await;
    let key = key_with(&state, "acme", &["documents:read"]).await;

    // Every document of the tenant, oldest first, two at a time; none of
    // another tenant's.
    let all = walk(&state, "/v1/documents?limit=2", &key).await;
    assert_eq!(all.len(), 10, "{all:?}");
    let mut sorted = all.clone();
    sorted.sort();
    assert_eq!(all, sorted, "UUIDv7 ids: oldest first");
    assert!(
        alice
            .iter()
            .chain(bob.iter().map(|(id, _)| id))
            .all(|id| all.contains(id))
    );

    // By owner (the store's filter) and by content type (applied here).
    assert_eq!(
        walk(&state, "/v1/documents?owner=alice&limit=2", &key).await,
        alice
    );
    let text: Vec<String> = bob
        .iter()
        .filter(|(_, kind)| *kind == "text/plain")
        .map(|(id, _)| id.clone())
        .collect();
    let uri = "/v1/documents?owner=bob&content_type=text%2Fplain&limit=1";
    assert_eq!(walk(&state, uri, &key).await, text);
    assert!(
        walk(&state, "/v1/documents?owner=carol&limit=5", &key)
            .await
            .is_empty()
    );

    // By creation time, checked against the metadata itself.
    let (_, page) = get(&state, "/v1/documents?limit=10", &key).await;
    let items = page["items"].as_array().expect("items");
    let third = items[2]["created_at"].as_str().expect("created_at");
    let expected: Vec<String> = items
        .iter()
        .filter(|d| d["created_at"].as_str().expect("time") >= third)
        .map(|d| d["id"].as_str().expect("id").to_owned())
        .collect();
    let uri = format!("/v1/documents?created_after={third}&limit=3");
    assert_eq!(walk(&state, &uri, &key).await, expected);
    let uri = "/v1/documents?created_before=2000-01-01T00:00:00Z&limit=3";
    assert!(walk(&state, uri, &key).await.is_empty());

    // A narrow filter over more documents than one request scans: short
    // pages with a cursor, and still every match once.
    for _ in 0..20 {
        put(&state, "acme", "carol", "application/pdf").await;
    }
    let last = put(&state, "acme", "carol", "image/png").await;
    let uri = "/v1/documents?content_type=image%2Fpng&limit=1";
    let (status, first) = get(&state, uri, &key).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        first["items"],
        serde_json::json!([]),
        "8 pages of 1 scanned"
    );
    assert!(first["next"].is_string());
    assert_eq!(walk(&state, uri, &key).await, [last]);

    for bad in [
        "/v1/documents?owner=not%20an%20id",
        "/v1/documents?limit=0",
        "/v1/documents?limit=1001",
        "/v1/documents?after=not-a-cursor",
        "/v1/documents?created_after=yesterday",
        "/v1/documents?colour=blue",
    ] {
        let (status, body) = get(&state, bad, &key).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {body}");
    }
    // Another tenant's reader sees only its own document.
    let globex = key_with(&state, "globex", &["documents:read"]).await;
    assert_eq!(
        walk(&state, "/v1/documents?limit=50", &globex).await.len(),
        1
    );
    let (status, _) = get(
        &state,
        "/v1/documents",
        &key_with(&state, "acme", &["jobs:read"]).await,
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn documents_are_filtered_by_the_risk_flags_their_extraction_found() {
    let dir = TestDir::new("documents-list-risk");
    let mut config = Config::default();
    config.storage.data_dir = dir.path().to_path_buf();
    let state = local_state(&config);
    let key = key_with(&state, "acme", &["documents:read", "documents:write"]).await;

    // Extracted inline at upload: the flags come back with the document.
    let active = upload(&state, &key, active_pdf()).await;
    let flags = serde_json::json!(["java_script", "open_action", "embedded_files"]);
    assert_eq!(active["risks"], flags, "{active}");
    assert_eq!(active["extraction"]["risks"], flags, "{active}");
    let active = active["id"].as_str().expect("id").to_owned();
    let clean = upload(
        &state,
        &key,
        crate::test_support::corpus_pdf("latex-recommended__test.pdf"),
    )
    .await;
    assert_eq!(clean["risks"], serde_json::json!([]), "{clean}");
    let clean = clean["id"].as_str().expect("id").to_owned();
    // Stored, never extracted: no flags, whatever its bytes.
    let pending = put(&state, "acme", "alice", "application/pdf").await;

    let (status, meta) = get(&state, &format!("/v1/documents/{active}"), &key).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(meta["risks"], flags, "{meta}");
    crate::openapi::tests::conforms(
        "/v1/documents/{id}",
        "Document",
        meta.to_string().as_bytes(),
    );
    let (_, meta) = get(&state, &format!("/v1/documents/{pending}"), &key).await;
    assert_eq!(
        (&meta["has_text"], &meta["risks"]),
        (&Value::Bool(false), &serde_json::json!([]))
    );

    for (risk, expected) in [
        ("java_script", vec![active.clone()]),
        ("open_action", vec![active.clone()]),
        ("embedded_files", vec![active.clone()]),
        ("any", vec![active.clone()]),
        ("launch", vec![]),
        ("xfa", vec![]),
    ] {
        let uri = format!("/v1/documents?risk={risk}&limit=1");
        assert_eq!(walk(&state, &uri, &key).await, expected, "{uri}");
    }
    let all = walk(&state, "/v1/documents?limit=10", &key).await;
    assert_eq!(all, [active.clone(), clean, pending]);
    // With the other filters.
    let uri = "/v1/documents?risk=java_script&content_type=text%2Fplain";
    assert!(walk(&state, uri, &key).await.is_empty());
    let uri = "/v1/documents?risk=any&owner=alice";
    assert!(walk(&state, uri, &key).await.is_empty());

    for bad in [
        "risk=JavaScript",
        "risk=javascript",
        "risk=",
        "risk=teleport",
        "risk=java_script&risk=uri",
    ] {
        let request = Request::get(format!("/v1/documents?{bad}"))
            .header("x-api-key", key.as_str())
            .body(Body::empty())
            .expect("request");
        let (status, headers, body) = send(router(state.clone()), request).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}");
        let problem = assert_problem(&headers, &body, "invalid-input");
        if !bad.contains('&') {
            let detail = problem["detail"].as_str().expect("detail");
            assert!(
                detail.contains("java_script") && detail.contains("xfa") && detail.contains("any"),
                "{bad}: {detail}"
            );
        }
    }
}
