//! Tests of the document routes and the extraction worker.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::http::{Method, Request, StatusCode, header};
use base64::Engine as _;
use docaiche_core::job::JobState;
#[cfg(feature = "postgres")]
use docaiche_core::job::{JobQueue, NewJob};
#[cfg(feature = "postgres")]
use docaiche_core::{DocumentId, JobId};
use docaiche_core::{Permission, Principal, TenantId};
#[cfg(feature = "postgres")]
use docaiche_extract::worker::{JobWorker, WorkerConfig};
use futures_util::StreamExt as _;

use super::*;
use crate::config::{Config, DocumentsSection};
use crate::routes::router;
use crate::routes::tests::{assert_problem, get_request, json, send};
use crate::state::AppState;
use crate::state::tests::local_state;
use crate::test_support::TestDir;

/// A PDF of the shared corpus.
fn corpus_pdf(name: &str) -> Vec<u8> {
    crate::test_support::corpus_pdf(name)
}

/// A small corpus PDF (2 KiB) with text.
fn small_pdf() -> Vec<u8> {
    corpus_pdf("latex-recommended__test.pdf")
}

struct Fixture {
    _dir: TestDir,
    state: AppState,
    app: Router,
    key: String,
}

/// A memory-backed app with `settings`, and an admin key of tenant `acme`.
async fn fixture(settings: DocumentsSection) -> Fixture {
    let dir = TestDir::new("documents");
    let mut config = Config::default();
    config.storage.data_dir = dir.path().to_path_buf();
    config.documents = settings;
    let state = local_state(&config);
    let key = key_of(&state, "acme").await;
    let app = router(state.clone());
    Fixture {
        _dir: dir,
        state,
        app,
        key,
    }
}

async fn key_of(state: &AppState, tenant: &str) -> String {
    state
        .auth
        .bootstrap_key(tenant, "admin", "test")
        .await
        .expect("key")
        .key
        .expose_secret()
        .to_owned()
}

fn request(method: Method, uri: &str, key: &str, body: Body) -> Request<Body> {
    Request::builder()
        .method(method)
        .uri(uri)
        .header("x-api-key", key)
        .body(body)
        .expect("request")
}

fn upload_request(
    key: &str,
    filename: &str,
    content_type: &str,
    content: Vec<u8>,
) -> Request<Body> {
    Request::post(format!("/v1/documents?filename={filename}"))
        .header("x-api-key", key)
        .header(header::CONTENT_TYPE, content_type)
        .body(Body::from(content))
        .expect("request")
}

async fn get_json(app: &Router, uri: &str, key: &str) -> (StatusCode, serde_json::Value) {
    let (status, _, body) = send(app.clone(), request(Method::GET, uri, key, Body::empty())).await;
    (status, json(&body))
}

/// Poll `GET /v1/jobs/{id}` until `done` holds.
async fn wait_for_job(
    app: &Router,
    key: &str,
    id: &str,
    done: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (status, job) = get_json(app, &format!("/v1/jobs/{id}"), key).await;
        assert_eq!(status, StatusCode::OK, "{job}");
        if done(&job) {
            return job;
        }
        assert!(Instant::now() < deadline, "job stuck: {job}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corpus_pdf_round_trips_upload_get_text_and_delete() {
    let f = fixture(DocumentsSection::default()).await;
    let mut events = f.state.intake.events.subscribe();
    let (status, headers, body) = send(
        f.app.clone(),
        upload_request(
            &f.key,
            "..%2Fetc%2Freport%0A.pdf",
            "application/pdf",
            small_pdf(),
        ),
    )
    .await;
    let created = json(&body);
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let id = created["id"].as_str().expect("id").to_owned();
    assert_eq!(headers[header::LOCATION], format!("/v1/documents/{id}"));
    // The sanitised filename is what is stored: no path, no control char.
    assert_eq!(created["filename"], "report.pdf");
    assert_eq!(created["content_type"], "application/pdf");
    assert_eq!(created["has_text"], true);
    assert!(created["extraction"]["pages"].as_u64().expect("pages") >= 1);
    assert!(created.get("job").is_none(), "small documents are inline");

    let (status, meta) = get_json(&f.app, &format!("/v1/documents/{id}"), &f.key).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(meta["filename"], "report.pdf");
    assert_eq!(meta["sha256"], created["sha256"]);
    assert_eq!(meta["size"], small_pdf().len());
    assert_eq!(meta["has_text"], true);

    let (status, text) = get_json(&f.app, &format!("/v1/documents/{id}/text"), &f.key).await;
    assert_eq!(status, StatusCode::OK);
    let all: String = text["pages"]
        .as_array()
        .expect("pages")
        .iter()
        .filter_map(|p| p.as_str())
        .collect();
    assert!(!all.trim().is_empty(), "{text}");

    let (status, _, _) = send(
        f.app.clone(),
        request(
            Method::DELETE,
            &format!("/v1/documents/{id}"),
            &f.key,
            Body::empty(),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    for uri in [
        format!("/v1/documents/{id}"),
        format!("/v1/documents/{id}/text"),
    ] {
        let (status, headers, body) = send(
            f.app.clone(),
            request(Method::GET, &uri, &f.key, Body::empty()),
        )
        .await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert_problem(&headers, &body, "not-found");
    }
    let (status, _, _) = send(
        f.app.clone(),
        request(
            Method::DELETE,
            &format!("/v1/documents/{id}"),
            &f.key,
            Body::empty(),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let mut kinds = Vec::new();
    while let Ok(event) = events.try_recv() {
        assert_eq!(event.tenant.as_str(), "acme");
        kinds.push(event.kind);
    }
    assert_eq!(
        kinds,
        [
            DocumentEventKind::Stored,
            DocumentEventKind::Extracted,
            DocumentEventKind::Deleted
        ]
    );
}

#[tokio::test]
async fn an_oversize_upload_is_a_413_before_the_body_is_read() {
    let f = fixture(DocumentsSection {
        max_upload_bytes: 4096,
        ..DocumentsSection::default()
    })
    .await;
    // Declared too large: refused on the header.
    let declared = Request::post("/v1/documents")
        .header("x-api-key", &f.key)
        .header(header::CONTENT_LENGTH, 10_000)
        .body(Body::from(vec![b'x'; 10_000]))
        .expect("request");
    let (status, headers, body) = send(f.app.clone(), declared).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_problem(&headers, &body, "payload-too-large");

    // Streamed with no length, 1 GiB if read to the end: refused after the
    // first frames over the limit.
    let pulled = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = Arc::clone(&pulled);
    let chunks = futures_util::stream::iter(0..16_384).map(move |_| {
        counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Ok::<_, std::io::Error>(Bytes::from(vec![b'%'; 64 * 1024]))
    });
    let streamed = Request::post("/v1/documents")
        .header("x-api-key", &f.key)
        .body(Body::from_stream(chunks))
        .expect("request");
    let (status, headers, body) = send(f.app.clone(), streamed).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    let problem = assert_problem(&headers, &body, "payload-too-large");
    assert!(
        problem["detail"].as_str().expect("detail").contains("4096"),
        "{problem}"
    );
    let pulled = pulled.load(std::sync::atomic::Ordering::SeqCst);
    assert!(
        pulled < 8,
        "read {pulled} chunks of 64 KiB past a 4 KiB limit"
    );
}

#[tokio::test]
async fn a_non_pdf_is_415_and_a_broken_pdf_422_with_a_reason() {
    let f = fixture(DocumentsSection::default()).await;
    // A ZIP renamed .pdf.
    let (status, headers, body) = send(
        f.app.clone(),
        upload_request(
            &f.key,
            "a.pdf",
            "application/pdf",
            b"PK\x03\x04 zip".to_vec(),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let problem = assert_problem(&headers, &body, "unsupported-media-type");
    assert_eq!(problem["reason"], "type_mismatch");
    // A PDF declared as something else.
    let (status, headers, body) = send(
        f.app.clone(),
        upload_request(&f.key, "a.pdf", "text/plain", small_pdf()),
    )
    .await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(
        assert_problem(&headers, &body, "unsupported-media-type")["reason"],
        "declared_type_mismatch"
    );
    // A truncated PDF.
    let mut truncated = small_pdf();
    truncated.truncate(truncated.len() / 2);
    let (status, headers, body) = send(
        f.app.clone(),
        upload_request(&f.key, "a.pdf", "application/pdf", truncated),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let problem = assert_problem(&headers, &body, "document-rejected");
    assert_eq!(problem["reason"], "truncated");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_tenants_document_and_job_are_404() {
    let f = fixture(DocumentsSection {
        inline_max_bytes: 0,
        ..DocumentsSection::default()
    })
    .await;
    let (status, _, body) = send(
        f.app.clone(),
        upload_request(&f.key, "a.pdf", "application/pdf", small_pdf()),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    let created = json(&body);
    let id = created["id"].as_str().expect("id");
    let job = created["job"]["id"].as_str().expect("job id");
    let other = key_of(&f.state, "globex").await;
    for uri in [
        format!("/v1/documents/{id}"),
        format!("/v1/documents/{id}/text"),
        format!("/v1/jobs/{job}"),
        "/v1/documents/not-a-uuid".to_owned(),
    ] {
        let (status, headers, body) = send(
            f.app.clone(),
            request(Method::GET, &uri, &other, Body::empty()),
        )
        .await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{uri}");
        assert_problem(&headers, &body, "not-found");
    }
    let (status, _, _) = send(
        f.app.clone(),
        request(
            Method::DELETE,
            &format!("/v1/documents/{id}"),
            &other,
            Body::empty(),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // Still there for its owner.
    let (status, _) = get_json(&f.app, &format!("/v1/documents/{id}"), &f.key).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_document_is_extracted_by_a_background_job() {
    let f = fixture(DocumentsSection {
        inline_max_bytes: 1024,
        ..DocumentsSection::default()
    })
    .await;
    let worker = start_worker(&f.state).expect("worker");
    let mut events = f.state.intake.events.subscribe();
    let (status, _, body) = send(
        f.app.clone(),
        upload_request(&f.key, "big.pdf", "application/pdf", small_pdf()),
    )
    .await;
    let created = json(&body);
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(created["has_text"], false);
    assert!(created.get("extraction").is_none());
    let id = created["id"].as_str().expect("id").to_owned();
    let job_id = created["job"]["id"].as_str().expect("job").to_owned();
    assert_eq!(created["job"]["kind"], "extract");
    assert_eq!(created["job"]["document"], id.as_str());

    let job = wait_for_job(&f.app, &f.key, &job_id, |j| j["state"] == "succeeded").await;
    assert_eq!(job["progress"], 100);
    assert_eq!(job["attempts"], 1);
    assert_eq!(job["result"]["document"], id.as_str());
    let (status, text) = get_json(&f.app, &format!("/v1/documents/{id}/text"), &f.key).await;
    assert_eq!(status, StatusCode::OK, "{text}");
    let (_, meta) = get_json(&f.app, &format!("/v1/documents/{id}"), &f.key).await;
    assert_eq!(meta["has_text"], true);

    let stats = worker.shutdown(Duration::from_secs(5)).await;
    assert_eq!(stats.succeeded, 1);
    // The job's life reached the event channel.
    let mut seen = Vec::new();
    while let Ok(event) = events.try_recv() {
        seen.push((event.kind, event.state));
    }
    assert!(
        seen.contains(&(DocumentEventKind::Stored, None)),
        "{seen:?}"
    );
    assert!(
        seen.contains(&(DocumentEventKind::Extracted, None)),
        "{seen:?}"
    );
    assert!(
        seen.contains(&(DocumentEventKind::Job, Some("succeeded"))),
        "{seen:?}"
    );
}

/// The fuzz seed with `/JavaScript` in an `/OpenAction` and an embedded file.
fn active_pdf() -> Vec<u8> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../fuzz/corpus/extract/active.pdf"
    );
    std::fs::read(path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The risk flags of an active PDF, as the document shows them.
fn active_flags() -> serde_json::Value {
    serde_json::json!(["java_script", "open_action", "embedded_files"])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_background_extraction_stores_the_risk_flags_it_finds() {
    let f = fixture(DocumentsSection {
        inline_max_bytes: 0,
        ..DocumentsSection::default()
    })
    .await;
    let worker = start_worker(&f.state).expect("worker");
    let (status, _, body) = send(
        f.app.clone(),
        upload_request(&f.key, "active.pdf", "application/pdf", active_pdf()),
    )
    .await;
    let created = json(&body);
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(created["risks"], serde_json::json!([]), "not extracted yet");
    let id = created["id"].as_str().expect("id").to_owned();
    let job = created["job"]["id"].as_str().expect("job").to_owned();
    let done = wait_for_job(&f.app, &f.key, &job, |j| j["state"] == "succeeded").await;
    assert_eq!(done["result"]["risks"], active_flags());
    let (_, meta) = get_json(&f.app, &format!("/v1/documents/{id}"), &f.key).await;
    assert_eq!(meta["risks"], active_flags(), "{meta}");
    let (_, page) = get_json(&f.app, "/v1/documents?risk=java_script", &f.key).await;
    assert_eq!(page["items"][0]["id"], id.as_str(), "{page}");
    worker.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_whose_document_is_gone_is_dead_lettered_with_its_reason() {
    let f = fixture(DocumentsSection {
        inline_max_bytes: 0,
        ..DocumentsSection::default()
    })
    .await;
    let (_, _, body) = send(
        f.app.clone(),
        upload_request(&f.key, "a.pdf", "application/pdf", small_pdf()),
    )
    .await;
    let created = json(&body);
    let id = created["id"].as_str().expect("id").to_owned();
    let job_id = created["job"]["id"].as_str().expect("job").to_owned();
    // Deleted before any worker ran.
    let (status, _, _) = send(
        f.app.clone(),
        request(
            Method::DELETE,
            &format!("/v1/documents/{id}"),
            &f.key,
            Body::empty(),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let worker = start_worker(&f.state).expect("worker");
    f.state.intake.waker.wake();
    let job = wait_for_job(&f.app, &f.key, &job_id, |j| j["state"] == "dead").await;
    assert_eq!(job["attempts"], 1, "a permanent failure is not retried");
    assert_eq!(job["last_error"], "the document was deleted");
    worker.shutdown(Duration::from_secs(5)).await;
}

/// The configured server: SQLite store, its job queue and its encrypted
/// documents, the worker started as `run` starts it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sqlite_server_extracts_large_documents_through_its_job_queue() {
    let dir = TestDir::new("documents-sqlite");
    let mut config = Config::default();
    config.storage.data_dir = dir.path().to_path_buf();
    config.documents.inline_max_bytes = 1024;
    config.validate().expect("valid");
    crate::storage::prepare_data_dir(dir.path()).expect("data dir");
    crate::keys::prepare(&config.key_source()).expect("keys");
    let state = AppState::from_config(&config, &|_| None)
        .await
        .expect("state");
    let worker = start_worker(&state).expect("worker");
    let key = key_of(&state, "acme").await;
    let app = router(state.clone());
    let (status, _, body) = send(
        app.clone(),
        upload_request(&key, "big.pdf", "application/pdf", small_pdf()),
    )
    .await;
    let created = json(&body);
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let id = created["id"].as_str().expect("id").to_owned();
    let job = created["job"]["id"].as_str().expect("job").to_owned();
    let done = wait_for_job(&app, &key, &job, |j| j["state"] == "succeeded").await;
    assert_eq!(done["result"]["document"], id.as_str());
    let (status, _) = get_json(&app, &format!("/v1/documents/{id}/text"), &key).await;
    assert_eq!(status, StatusCode::OK);
    // Inline (under 1 KiB), through the encrypted SQLite store: the flags
    // are a column of the row, listed and filtered on.
    let (status, _, body) = send(
        app.clone(),
        upload_request(&key, "active.pdf", "application/pdf", active_pdf()),
    )
    .await;
    let active = json(&body);
    assert_eq!(status, StatusCode::CREATED, "{active}");
    let active = active["id"].as_str().expect("id").to_owned();
    let (_, meta) = get_json(&app, &format!("/v1/documents/{active}"), &key).await;
    assert_eq!(meta["risks"], active_flags(), "{meta}");
    let (_, page) = get_json(&app, "/v1/documents?risk=any", &key).await;
    let ids: Vec<&str> = page["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|d| d["id"].as_str())
        .collect();
    assert_eq!(ids, [active.as_str()], "{page}");
    worker.shutdown(Duration::from_secs(5)).await;
    // The job is a row of the SQLite database, not a memory entry.
    assert!(dir.path().join("docaiche.db").exists());
    let stored = state
        .intake
        .jobs
        .get(
            &TenantId::new("acme").expect("tenant"),
            &job.parse().expect("id"),
        )
        .await
        .expect("get")
        .expect("job");
    assert_eq!(stored.state, JobState::Succeeded);
}

#[tokio::test]
async fn a_queued_job_can_be_cancelled_once_by_its_tenant_only() {
    let f = fixture(DocumentsSection {
        inline_max_bytes: 0,
        ..DocumentsSection::default()
    })
    .await;
    let (_, _, body) = send(
        f.app.clone(),
        upload_request(&f.key, "a.pdf", "application/pdf", small_pdf()),
    )
    .await;
    let job = json(&body)["job"]["id"].as_str().expect("job").to_owned();
    let uri = format!("/v1/jobs/{job}");
    let other = key_of(&f.state, "globex").await;
    let (status, _, _) = send(
        f.app.clone(),
        request(Method::DELETE, &uri, &other, Body::empty()),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _, _) = send(
        f.app.clone(),
        request(Method::DELETE, &uri, &f.key, Body::empty()),
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (_, now) = get_json(&f.app, &uri, &f.key).await;
    assert_eq!(now["state"], "cancelled");
    let (status, headers, body) = send(
        f.app.clone(),
        request(Method::DELETE, &uri, &f.key, Body::empty()),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_problem(&headers, &body, "conflict");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_answers_each_document_and_one_bad_file_fails_only_itself() {
    let f = fixture(DocumentsSection::default()).await;
    let b64 = |bytes: &[u8]| base64::engine::general_purpose::STANDARD.encode(bytes);
    let body = serde_json::json!({
        "documents": [
            { "filename": "one.pdf", "content_type": "application/pdf", "content_base64": b64(&small_pdf()) },
            { "filename": "evil.pdf", "content_base64": b64(b"MZ\x90\x00 an exe") },
            { "filename": "x.pdf", "content_base64": "%%% not base64" },
            { "filename": "C:\\Users\\me\\two.pdf", "content_base64": b64(&corpus_pdf("latex-recommended__TeXoutline.pdf")) },
        ]
    });
    let (status, _, response) = send(
        f.app.clone(),
        Request::post("/v1/documents/batch")
            .header("x-api-key", &f.key)
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(body.to_string()))
            .expect("request"),
    )
    .await;
    let response = json(&response);
    assert_eq!(status, StatusCode::OK, "{response}");
    let results = response["results"].as_array().expect("results");
    assert_eq!(results.len(), 4);
    assert_eq!(results[0]["status"], 201);
    assert_eq!(results[0]["document"]["filename"], "one.pdf");
    assert_eq!(results[1]["status"], 415);
    assert_eq!(results[1]["problem"]["code"], "unsupported-media-type");
    assert!(results[1]["problem"]["reason"].is_string());
    assert_eq!(results[2]["status"], 400);
    assert_eq!(results[3]["status"], 201, "{}", results[3]);
    assert_eq!(results[3]["document"]["filename"], "two.pdf");
    for index in [0, 3] {
        let id = results[index]["document"]["id"].as_str().expect("id");
        let (status, _) = get_json(&f.app, &format!("/v1/documents/{id}/text"), &f.key).await;
        assert_eq!(status, StatusCode::OK);
    }
    // An empty or oversized batch is refused as a whole.
    for documents in [
        serde_json::json!([]),
        serde_json::json!(vec![serde_json::json!({"content_base64": ""}); 17]),
    ] {
        let (status, _, _) = send(
            f.app.clone(),
            Request::post("/v1/documents/batch")
                .header("x-api-key", &f.key)
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from(
                    serde_json::json!({ "documents": documents }).to_string(),
                ))
                .expect("request"),
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
    }
    // JSON like every JSON route: another media type is a 415.
    for media in [None, Some("text/plain")] {
        let mut request = Request::post("/v1/documents/batch").header("x-api-key", &f.key);
        if let Some(media) = media {
            request = request.header(header::CONTENT_TYPE, media);
        }
        let (status, headers, body) = send(
            f.app.clone(),
            request.body(Body::from(body.to_string())).expect("request"),
        )
        .await;
        assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{media:?}");
        assert_problem(&headers, &body, "unsupported-media-type");
    }
}

#[tokio::test]
async fn a_reader_cannot_upload_or_delete() {
    let f = fixture(DocumentsSection::default()).await;
    let tenant = TenantId::new("acme").expect("tenant");
    let maker = Principal::new(
        docaiche_core::PrincipalId::new("maker").expect("id"),
        tenant.clone(),
        docaiche_core::AuthMethod::Internal,
    )
    .with_permissions(
        [docaiche_core::Grant::parse("*:*").expect("grant")]
            .into_iter()
            .collect(),
    );
    let reader = f
        .state
        .auth
        .api_keys
        .create(
            &maker,
            docaiche_auth::api_key::NewApiKey::new(tenant, "reader").with_scopes(
                [Permission::DOCUMENTS_READ, Permission::JOBS_READ]
                    .into_iter()
                    .collect(),
            ),
        )
        .await
        .expect("key");
    let reader = reader.key.expose_secret();
    let (status, _, _) = send(
        f.app.clone(),
        upload_request(reader, "a.pdf", "application/pdf", small_pdf()),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (_, _, body) = send(
        f.app.clone(),
        upload_request(&f.key, "a.pdf", "application/pdf", small_pdf()),
    )
    .await;
    let id = json(&body)["id"].as_str().expect("id").to_owned();
    let uri = format!("/v1/documents/{id}");
    let (status, _, _) = send(
        f.app.clone(),
        request(Method::DELETE, &uri, reader, Body::empty()),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    // Reading is what it may do.
    let (status, _) = get_json(&f.app, &uri, reader).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _, _) = send(f.app.clone(), get_request("/v1/documents/batch")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[test]
fn bad_documents_settings_are_named() {
    let settings = DocumentsSection {
        max_upload_bytes: 0,
        max_batch: 0,
        workers: 0,
        job_attempts: 0,
        ..DocumentsSection::default()
    };
    let named: Vec<&str> = settings.problems().iter().map(|(s, _)| *s).collect();
    assert_eq!(
        named,
        [
            "documents.max_upload_bytes",
            "documents.max_batch",
            "documents.workers",
            "documents.job_attempts"
        ]
    );
    assert!(DocumentsSection::default().problems().is_empty());
}

/// Two server instances (two pools on one schema) share the PostgreSQL
/// queue: every job runs exactly once.
#[cfg(feature = "postgres")]
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_workers_share_one_postgres_queue_and_run_each_job_once() {
    use std::collections::HashMap;
    use std::sync::Mutex;

    use docaiche_extract::worker::BlockingJobHandler;
    use docaiche_store::postgres::{PgConfig, PgStore};

    const SUITE: &str = "server-postgres";
    let Some(url) = crate::report::require_backend(SUITE, "DOCAICHE_TEST_POSTGRES_URL") else {
        return;
    };
    let schema = format!("docaiche_jobs_{}", &uuid_simple()[..16]);
    let admin = crate::wiring::tests::admin(&url).await;
    docaiche_store::postgres::sqlx::query(&format!("CREATE SCHEMA {schema}"))
        .execute(&admin)
        .await
        .expect("create the test schema");
    let _drop = crate::wiring::tests::Schema {
        admin,
        name: schema.clone(),
    };
    let connect = || {
        let mut config = PgConfig::new(url.clone());
        config.schema = Some(schema.clone());
        async move { PgStore::connect(&config).await.expect("connect") }
    };
    let (one, two) = (connect().await, connect().await);
    let runs: Arc<Mutex<HashMap<JobId, usize>>> = Arc::default();
    let fast = || {
        WorkerConfig::new([EXTRACT_JOB])
            .with_concurrency(4)
            .with_poll_interval(Duration::from_millis(20))
            .with_progress_every(Duration::from_millis(20))
    };
    let handler = |runs: Arc<Mutex<HashMap<JobId, usize>>>| {
        Arc::new(BlockingJobHandler::new(move |job, ctx| {
            *runs.lock().expect("lock").entry(job.id).or_default() += 1;
            ctx.set_progress(50);
            // Stands for CPU work on the blocking pool.
            #[allow(clippy::disallowed_methods)]
            std::thread::sleep(Duration::from_millis(2));
            Ok(serde_json::json!({ "by": "test" }))
        }))
    };
    let a = JobWorker::new(Arc::new(one.jobs()), handler(Arc::clone(&runs)), fast())
        .expect("worker")
        .spawn();
    let b = JobWorker::new(Arc::new(two.jobs()), handler(Arc::clone(&runs)), fast())
        .expect("worker")
        .spawn();
    let queue = one.jobs();
    let tenant = TenantId::new("acme").expect("tenant");
    let mut ids = Vec::new();
    for n in 0..40 {
        let job = queue
            .enqueue(
                &tenant,
                NewJob::new(EXTRACT_JOB, serde_json::json!({ "n": n })),
            )
            .await
            .expect("enqueue");
        ids.push(job.id);
    }
    a.wake();
    b.wake();
    let deadline = Instant::now() + Duration::from_secs(60);
    for id in &ids {
        loop {
            let job = queue.get(&tenant, id).await.expect("get").expect("job");
            if job.state == JobState::Succeeded {
                assert_eq!(job.progress, 100);
                break;
            }
            assert!(Instant::now() < deadline, "stuck: {job:?}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    let (a, b) = (
        a.shutdown(Duration::from_secs(5)).await,
        b.shutdown(Duration::from_secs(5)).await,
    );
    assert_eq!(a.succeeded + b.succeeded, 40, "{a:?} {b:?}");
    {
        let runs = runs.lock().expect("lock");
        assert_eq!(runs.len(), 40);
        assert!(runs.values().all(|&n| n == 1), "a job ran twice: {runs:?}");
    }
    one.pool().close().await;
    two.pool().close().await;
    crate::report::mark_ran(
        SUITE,
        &format!(
            "two job workers on one PostgreSQL queue: 40 jobs, {} + {} each once",
            a.succeeded, b.succeeded
        ),
    );
}

#[cfg(feature = "postgres")]
fn uuid_simple() -> String {
    DocumentId::new().to_string().replace('-', "")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uploads_past_a_tenant_quota_are_403_naming_the_quota() {
    use docaiche_core::tenant::{Tenant, TenantQuotas, TenantSettings};
    let f = fixture(DocumentsSection::default()).await;
    let pdf = small_pdf();
    let size = u64::try_from(pdf.len()).expect("size");
    let acme = TenantId::new("acme").expect("tenant");
    let store = f.state.auth.tenants.store();
    let quotas = TenantQuotas::default().with_max_documents(Some(2));
    let at = f.state.auth.clock.now();
    store
        .create(
            &Tenant::new(acme.clone(), "Acme", at)
                .with_settings(TenantSettings::default().with_quotas(quotas)),
        )
        .await
        .expect("registered");
    f.state.auth.tenants.invalidate(&acme);
    let upload = || upload_request(&f.key, "a.pdf", "application/pdf", pdf.clone());
    for _ in 0..2 {
        let (status, _, body) = send(f.app.clone(), upload()).await;
        assert_eq!(
            status,
            StatusCode::CREATED,
            "{}",
            String::from_utf8_lossy(&body)
        );
    }
    let (status, headers, body) = send(f.app.clone(), upload()).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let problem = assert_problem(&headers, &body, "tenant-quota-exceeded");
    assert_eq!(problem["quota"], "documents");
    crate::openapi::tests::conforms("quota problem", "Problem", &body);

    // Room for two more documents, but not for the bytes of the next one.
    let quotas = TenantQuotas::default()
        .with_max_documents(Some(4))
        .with_max_storage_bytes(Some(3 * size - 1));
    store
        .update_settings(&acme, &TenantSettings::default().with_quotas(quotas), at)
        .await
        .expect("updated");
    f.state.auth.tenants.invalidate(&acme);
    let (status, headers, body) = send(f.app.clone(), upload()).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let problem = assert_problem(&headers, &body, "tenant-quota-exceeded");
    assert_eq!(problem["quota"], "storage_bytes");

    // Another tenant is not limited by acme's quotas.
    let globex = key_of(&f.state, "globex").await;
    let (status, _, _) = send(
        f.app.clone(),
        upload_request(&globex, "a.pdf", "application/pdf", pdf.clone()),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);

    // A batch refuses the document past the quota, in its own result.
    let quotas = TenantQuotas::default().with_max_documents(Some(3));
    store
        .update_settings(&acme, &TenantSettings::default().with_quotas(quotas), at)
        .await
        .expect("updated");
    f.state.auth.tenants.invalidate(&acme);
    let b64 = base64::engine::general_purpose::STANDARD.encode(&pdf);
    let body = serde_json::json!({ "documents": [
        { "content_base64": b64 }, { "content_base64": b64 },
    ] });
    let (status, _, response) = send(
        f.app.clone(),
        Request::post("/v1/documents/batch")
            .header("x-api-key", &f.key)
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(body.to_string()))
            .expect("request"),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let response = json(&response);
    assert_eq!(response["results"][0]["status"], 201, "{response}");
    assert_eq!(response["results"][1]["status"], 403, "{response}");
    assert_eq!(response["results"][1]["problem"]["quota"], "documents");
}
