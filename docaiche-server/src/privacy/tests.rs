//! Tests of the data-subject requests: export and erasure end to end
//! (documents, accounts, keys, tokens, the audit trail), the request
//! records, the pseudonym key and refusals.

use crate::openapi::tests::conforms;
use crate::routes::privacy::{PrivacyRequestDoc, SubjectExport};
use axum::Router;
use axum::body::Body;
use axum::http::Request;
use axum::http::{StatusCode, header};
use docaiche_compliance::audit::Verifier;
use docaiche_compliance::retention::LegalHold;
use docaiche_core::account::AccountEmail;
use docaiche_core::{DocumentStore as _, SecretString};
use docaiche_core::{PrincipalId, SecretBytes, TenantId};
use serde_json::Value;

use super::*;
use crate::config::{Config, Environment};
use crate::routes::tests::{assert_problem, json, send};
use crate::state::AppState;
use crate::test_support::TestDir;
use crate::wiring::Secrets;

const PASSWORD: &str = "correct horse battery staple";
/// A phrase of the extracted text of `groff__letter.pdf`.
const PHRASE: &str = "Minidoux Corporation";

fn config(dir: &TestDir) -> Config {
    let mut config = Config::default();
    config.storage.data_dir = dir.path().to_path_buf();
    config.audit.fsync = crate::audit::FsyncSetting::Never;
    config.audit.checkpoint_every = 2;
    config.documents.inline_max_bytes = 1024 * 1024;
    config
}

/// The state of `config` on its store (the data directory prepared).
async fn state_for(config: &Config, env: crate::config::EnvLookup<'_>) -> AppState {
    crate::storage::prepare_data_dir(&config.storage.data_dir).expect("data dir");
    crate::keys::prepare(&config.key_source()).expect("keys");
    AppState::from_config(config, env).await.expect("state")
}

async fn key_as(
    state: &AppState,
    tenant: &str,
    principal: &str,
    name: &str,
    grants: &[&str],
) -> String {
    crate::test_support::api_key(state, tenant, Some(principal), name, grants).await
}

fn post(uri: &str, key: &str, body: &str) -> Request<Body> {
    Request::post(uri)
        .header("x-api-key", key)
        .header(header::CONTENT_TYPE, "application/json")
        .header("user-agent", "privacy-test/1")
        .header("x-request-id", "req-privacy-1")
        .body(Body::from(body.to_owned()))
        .expect("request")
}

fn get(uri: &str, key: &str) -> Request<Body> {
    Request::get(uri)
        .header("x-api-key", key)
        .body(Body::empty())
        .expect("request")
}

fn text(body: &[u8]) -> String {
    String::from_utf8_lossy(body).into_owned()
}

/// A data subject with a password account, an API key acting as them
/// and two uploaded documents with their extracted text.
struct Subject {
    id: String,
    email: String,
    key: String,
    key_name: String,
    filename: String,
    documents: Vec<String>,
}

async fn subject_with_data(state: &AppState, app: &Router, tenant: &str) -> Subject {
    let email = format!("alice.{tenant}@example.com");
    let account = state
        .login
        .service()
        .await
        .expect("login")
        .create_account(
            &TenantId::new(tenant).expect("tenant"),
            AccountEmail::new(email.as_str()).expect("email"),
            &SecretString::from(PASSWORD),
            vec!["editor".to_owned()],
        )
        .await
        .expect("account");
    let id = account.id.as_str().to_owned();
    let key_name = format!("alice-laptop-{tenant}");
    let key = key_as(state, tenant, &id, &key_name, &["documents:*"]).await;
    let filename = format!("alice-letter-{tenant}.pdf");
    let pdf = crate::test_support::corpus_pdf("groff__letter.pdf");
    let mut documents = Vec::new();
    for n in 0..2 {
        let (status, _, body) = send(
            app.clone(),
            Request::post(format!("/v1/documents?filename={n}-{filename}"))
                .header("x-api-key", &key)
                .header(header::CONTENT_TYPE, "application/pdf")
                .body(Body::from(pdf.clone()))
                .expect("request"),
        )
        .await;
        assert_eq!(status, StatusCode::CREATED, "{}", text(&body));
        let doc = json(&body)["id"].as_str().expect("id").to_owned();
        // Extracted in the request (under `inline_max_bytes`).
        let (status, _, body) =
            send(app.clone(), get(&format!("/v1/documents/{doc}/text"), &key)).await;
        assert_eq!(status, StatusCode::OK, "{}", text(&body));
        assert!(text(&body).contains(PHRASE), "{}", text(&body));
        documents.push(doc);
    }
    Subject {
        id,
        email,
        key,
        key_name,
        filename,
        documents,
    }
}

/// Whether `needle` occurs in `haystack`, as text or hex-encoded (a
/// PostgreSQL `bytea` printed as text).
fn occurs(haystack: &[u8], needle: &str) -> bool {
    let hex = hex::encode(needle.as_bytes());
    [needle.as_bytes(), hex.as_bytes()]
        .iter()
        .any(|n| haystack.windows(n.len()).any(|w| w == *n))
}

/// Every value of every row of every table of the SQLite database
/// file of `config`, read through a connection of its own.
async fn sqlite_dump(config: &Config) -> Vec<u8> {
    use sqlx::Row as _;
    let options = sqlx::sqlite::SqliteConnectOptions::new()
        .filename(config.storage.data_dir.join("docaiche.db"))
        .read_only(true);
    let connection = sqlx::SqlitePool::connect_with(options)
        .await
        .expect("open the database file");
    let pool = &connection;
    let tables: Vec<String> =
        sqlx::query_scalar("SELECT name FROM sqlite_master WHERE type = 'table'")
            .fetch_all(pool)
            .await
            .expect("tables");
    assert!(tables.iter().any(|t| t == "accounts"), "{tables:?}");
    let mut dump = Vec::new();
    for table in tables {
        let columns: Vec<String> = sqlx::query(&format!("PRAGMA table_info(\"{table}\")"))
            .fetch_all(pool)
            .await
            .expect("columns")
            .iter()
            .map(|row| row.get::<String, _>(1))
            .collect();
        for column in columns {
            let values: Vec<Option<Vec<u8>>> = sqlx::query_scalar(&format!(
                "SELECT CAST(\"{column}\" AS BLOB) FROM \"{table}\""
            ))
            .fetch_all(pool)
            .await
            .expect("values");
            for value in values.into_iter().flatten() {
                dump.extend_from_slice(&value);
                dump.push(b'\n');
            }
        }
    }
    connection.close().await;
    dump
}

fn assert_nothing_left(dump: &[u8], subject: &Subject) {
    for needle in [
        subject.email.as_str(),
        subject.filename.as_str(),
        PHRASE,
        subject.key_name.as_str(),
    ] {
        assert!(!occurs(dump, needle), "`{needle}` is still in the database");
    }
}

/// Export `subject`'s data as `dpo`, checking the answer's headers.
async fn export(app: &Router, dpo: &str, body: &str) -> Value {
    let (status, headers, bytes) = send(app.clone(), post("/v1/privacy/export", dpo, body)).await;
    assert_eq!(status, StatusCode::OK, "{}", text(&bytes));
    let bundle = json(&bytes);
    let id = bundle["request_id"].as_str().expect("request id");
    assert_eq!(
        headers[header::LOCATION],
        format!("/v1/privacy/requests/{id}")
    );
    assert_eq!(
        headers[header::CONTENT_DISPOSITION],
        format!("attachment; filename=\"subject-export-{id}.json\"")
    );
    assert_eq!(headers[header::CACHE_CONTROL], "no-store");
    let _: SubjectExport = serde_json::from_slice(&bytes).expect("matches its schema");
    bundle
}

/// Erase `subject` and check nothing of them is readable through the
/// API; the pseudonym.
async fn erase_and_check_api(
    app: &Router,
    tenant: &str,
    dpo: &str,
    admin: &str,
    subject: &Subject,
) -> String {
    let body = serde_json::json!({ "email": subject.email }).to_string();
    let (status, _, bytes) = send(app.clone(), post("/v1/privacy/erase", dpo, &body)).await;
    assert_eq!(status, StatusCode::OK, "{}", text(&bytes));
    conforms("erasure", "Erasure", &bytes);
    let answer = json(&bytes);
    let report = &answer["report"];
    let pseudonym = report["pseudonym"].as_str().expect("pseudonym").to_owned();
    assert!(pseudonym.starts_with("erased-"), "{pseudonym}");
    assert_ne!(pseudonym, subject.id);
    assert_eq!(report["documents_deleted"], 2, "{answer}");
    assert_eq!(report["api_keys_revoked"], 1, "{answer}");
    assert_eq!(report["data_key_destroyed"], true, "{answer}");
    assert_eq!(report["account_deleted"], true, "{answer}");
    assert_eq!(report["credentials_revoked"], true, "{answer}");
    assert_eq!(report["api_keys_deleted"], 1, "{answer}");
    assert_eq!(answer["api_key_records_deleted"], 1, "{answer}");
    assert_eq!(answer["request"]["status"], "completed");
    assert_eq!(answer["request"]["subject"], pseudonym.as_str());
    assert!(!text(&bytes).contains(&subject.email));

    // Nothing of the subject through the API.
    for doc in &subject.documents {
        for uri in [
            format!("/v1/documents/{doc}"),
            format!("/v1/documents/{doc}/text"),
        ] {
            let (status, _, _) = send(app.clone(), get(&uri, admin)).await;
            assert_eq!(status, StatusCode::NOT_FOUND, "{uri}");
        }
    }
    let (status, _, _) = send(app.clone(), get("/v1/whoami", &subject.key)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "their API key");
    let login = serde_json::json!({
        "tenant": tenant, "email": subject.email, "password": PASSWORD,
    });
    let (status, _, _) = send(
        app.clone(),
        Request::post("/v1/auth/token")
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(login.to_string()))
            .expect("request"),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "their password login");
    let again = export(
        app,
        dpo,
        &serde_json::json!({ "subject": subject.id }).to_string(),
    )
    .await;
    assert_eq!(again["documents"], serde_json::json!([]));
    assert_eq!(again["api_keys"], serde_json::json!([]));
    assert!(again["account"].is_null(), "{again}");
    // The e-mail is unknown now.
    let (status, _, _) = send(app.clone(), post("/v1/privacy/export", dpo, &body)).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // The tombstone names the pseudonym only.
    let (status, _, bytes) = send(
        app.clone(),
        get(
            &format!("/v1/admin/audit?tenant={tenant}&action=privacy.erase"),
            admin,
        ),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{}", text(&bytes));
    let items = json(&bytes)["items"].clone();
    let tombstone = &items[0]["event"];
    assert_eq!(tombstone["outcome"], "success", "{items}");
    assert_eq!(tombstone["resource"]["kind"], "data_subject");
    assert_eq!(tombstone["resource"]["id"], pseudonym.as_str());
    assert_eq!(tombstone["details"]["documents_deleted"], 2);
    assert_eq!(tombstone["details"]["api_keys_deleted"], 1);
    // With the request's facts.
    assert_eq!(tombstone["user_agent"], "privacy-test/1");
    assert_eq!(tombstone["request_id"], "req-privacy-1");
    let event = tombstone.to_string();
    assert!(!event.contains(&subject.id) && !event.contains(&subject.email));
    pseudonym
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_export_bundles_the_account_documents_keys_and_audit_entries() {
    let dir = TestDir::new("privacy-export");
    let config = config(&dir);
    let state = state_for(&config, &|_| None).await;
    let app = crate::routes::router(state.clone());
    let subject = subject_with_data(&state, &app, "acme").await;
    let dpo = key_as(&state, "acme", "dpo", "dpo", &["privacy:export"]).await;

    let body = serde_json::json!({ "email": subject.email }).to_string();
    let bundle = export(&app, &dpo, &body).await;
    let raw = bundle.to_string();
    assert_eq!(bundle["format"], "docaiche.subject-export.v1");
    assert_eq!(bundle["subject"], subject.id.as_str());
    assert_eq!(bundle["tenant"], "acme");
    assert_eq!(
        bundle["account"]["email"],
        subject.email.as_str(),
        "{bundle}"
    );
    assert!(!raw.contains("password_hash") && !raw.contains("$argon2"));
    let documents = bundle["documents"].as_array().expect("documents");
    assert_eq!(documents.len(), 2);
    for document in documents {
        assert!(document["text"].to_string().contains(PHRASE), "{document}");
        let name = document["meta"]["filename"].as_str().expect("filename");
        assert!(name.ends_with(&subject.filename), "{name}");
    }
    let keys = bundle["api_keys"].as_array().expect("keys");
    assert_eq!(keys.len(), 1);
    assert_eq!(keys[0]["name"], subject.key_name.as_str());
    assert!(keys[0].get("hash").is_none());
    assert!(!raw.contains(&subject.key), "the key itself");
    let events = bundle["audit_events"].as_array().expect("events");
    let uploads = events
        .iter()
        .filter(|e| e["action"] == "document.create" && e["actor"] == subject.id.as_str())
        .count();
    assert_eq!(uploads, 2, "{events:?}");
    assert_eq!(bundle["privacy_requests"].as_array().map(Vec::len), Some(1));

    // The request record: completed, with its deadline.
    let id = bundle["request_id"].as_str().expect("id");
    let uri = format!("/v1/privacy/requests/{id}");
    let (status, headers, bytes) = send(app.clone(), get(&uri, &dpo)).await;
    assert_eq!(status, StatusCode::OK, "{}", text(&bytes));
    assert_eq!(headers[header::CACHE_CONTROL], "no-store");
    let _: PrivacyRequestDoc = serde_json::from_slice(&bytes).expect("schema");
    let request = json(&bytes);
    assert_eq!(request["status"], "completed");
    assert_eq!(request["kind"], "export");
    assert_eq!(request["regulation"], "gdpr");
    assert_eq!(request["requested_by"], "dpo");
    assert!(request["deadline"].is_string());
    let (status, _, bytes) = send(app.clone(), get("/v1/privacy/requests", &dpo)).await;
    assert_eq!(status, StatusCode::OK);
    conforms("privacy requests", "PrivacyRequestList", &bytes);
    assert_eq!(json(&bytes)["items"][0]["id"], id);
    // Another tenant's DPO, an unknown id and a malformed one: 404.
    let globex = key_as(&state, "globex", "dpo", "dpo", &["privacy:export"]).await;
    for (uri, key) in [
        (uri.clone(), &globex),
        (
            format!("/v1/privacy/requests/{}", uuid::Uuid::now_v7()),
            &dpo,
        ),
        ("/v1/privacy/requests/not-a-uuid".to_owned(), &dpo),
    ] {
        let (status, headers, bytes) = send(app.clone(), get(&uri, key)).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{uri}");
        assert_problem(&headers, &bytes, "not-found");
    }

    // Without `privacy:export`: 403, at the guard or in the service.
    let reader = key_as(&state, "acme", "reader", "r", &["documents:read"]).await;
    let (status, headers, bytes) =
        send(app.clone(), post("/v1/privacy/export", &reader, &body)).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_problem(&headers, &bytes, "forbidden");
    let (status, _, _) = send(app.clone(), get(&uri, &reader)).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    // Another tenant without `tenants:cross`: 403, and no e-mail lookup.
    for cross in [
        serde_json::json!({ "subject": subject.id, "tenant": "globex" }),
        serde_json::json!({ "email": subject.email, "tenant": "globex" }),
    ] {
        let (status, headers, bytes) = send(
            app.clone(),
            post("/v1/privacy/export", &dpo, &cross.to_string()),
        )
        .await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{cross}");
        assert_problem(&headers, &bytes, "forbidden");
    }
    // Bad bodies: field-level problems.
    for (bad, pointer) in [
        (r#"{"subject": 5}"#, "/subject"),
        (r#"{"subject": "a", "colour": "red"}"#, "/colour"),
        (r#"{}"#, "/subject"),
        (r#"{"subject": "a", "email": "a@example.com"}"#, "/email"),
        (r#"{"email": "not an e-mail"}"#, "/email"),
        (r#"{"subject": "a", "tenant": "Not A Tenant!"}"#, "/tenant"),
        (r#"{"subject": "a", "regulation": "hipaa"}"#, "/regulation"),
        (r#"{"subject": "a""#, ""),
    ] {
        let (status, headers, bytes) =
            send(app.clone(), post("/v1/privacy/export", &dpo, bad)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {}", text(&bytes));
        let problem = assert_problem(&headers, &bytes, "invalid-input");
        let pointers: Vec<&str> = problem["errors"]
            .as_array()
            .expect("errors")
            .iter()
            .filter_map(|e| e["pointer"].as_str())
            .collect();
        assert!(pointers.contains(&pointer), "{bad}: {problem}");
    }
    let (status, _, _) = send(
        app.clone(),
        post(
            "/v1/privacy/export",
            &dpo,
            r#"{"email": "nobody@example.com"}"#,
        ),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "an unknown e-mail");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_erased_subject_is_gone_from_the_api_and_the_sqlite_database() {
    let dir = TestDir::new("privacy-erase");
    let config = config(&dir);
    let state = state_for(&config, &|_| None).await;
    let app = crate::routes::router(state.clone());
    let subject = subject_with_data(&state, &app, "acme").await;
    let dpo = key_as(
        &state,
        "acme",
        "dpo",
        "dpo",
        &["privacy:export", "privacy:erase"],
    )
    .await;
    let admin = key_as(
        &state,
        "acme",
        "admin",
        "admin",
        &["documents:read", "audit:read", "tenants:cross"],
    )
    .await;
    // An export first: its request record must not keep the subject.
    export(
        &app,
        &dpo,
        &serde_json::json!({ "subject": subject.id }).to_string(),
    )
    .await;
    let before = sqlite_dump(&config).await;
    assert!(
        occurs(&before, &subject.email),
        "the dump sees the accounts"
    );
    assert!(occurs(&before, &subject.key_name), "the dump sees the keys");

    let pseudonym = erase_and_check_api(&app, "acme", &dpo, &admin, &subject).await;
    assert_nothing_left(&sqlite_dump(&config).await, &subject);
    // The earlier export's record names the pseudonym now.
    let (_, _, bytes) = send(app.clone(), get("/v1/privacy/requests", &dpo)).await;
    let items = json(&bytes)["items"].clone();
    assert_eq!(items[0]["kind"], "export");
    assert_eq!(items[0]["subject"], pseudonym.as_str());
    assert_eq!(items[1]["kind"], "erase");

    // The trail verifies.
    let trail = state.audit.as_ref().expect("trail");
    docaiche_core::AuditSink::flush(&trail.buffer)
        .await
        .expect("flushed");
    let report = Verifier::new()
        .verify_path(&config.audit.file_path(&config))
        .expect("verify");
    assert!(report.is_ok(), "{:?}", report.tamper);
}

#[tokio::test]
async fn the_pseudonym_key_comes_from_its_secret_or_the_checkpoint_key() {
    let dir = TestDir::new("privacy-key");
    let mut config = config(&dir);
    config.secrets.sources = vec!["env".into()];
    let own = "p".repeat(32);
    let checkpoint = "c".repeat(32);
    let env = |pairs: Vec<(&'static str, String)>| {
        move |name: &str| {
            pairs
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| v.clone())
        }
    };
    let key_for = async |config: &Config, lookup: &dyn Fn(&str) -> Option<String>| {
        let secrets = Secrets::from_config(config, lookup).await.expect("secrets");
        pseudonym_key(config, &secrets).await
    };
    let both = env(vec![
        ("DOCAICHE_SECRET_PRIVACY_PSEUDONYM_KEY", own.clone()),
        ("DOCAICHE_SECRET_AUDIT_CHECKPOINT_KEY", checkpoint.clone()),
    ]);
    let key = key_for(&config, &both).await.expect("key");
    assert_eq!(key.expose_secret(), own.as_bytes());
    let only_checkpoint = env(vec![(
        "DOCAICHE_SECRET_AUDIT_CHECKPOINT_KEY",
        checkpoint.clone(),
    )]);
    let key = key_for(&config, &only_checkpoint).await.expect("derived");
    let expected = crate::audit::derived_key(
        &SecretBytes::from(checkpoint.into_bytes()),
        DERIVATION_LABEL,
    );
    assert_eq!(key.expose_secret(), expected.expose_secret());
    let short = env(vec![(
        "DOCAICHE_SECRET_PRIVACY_PSEUDONYM_KEY",
        "short".to_owned(),
    )]);
    assert!(key_for(&config, &short).await.is_err(), "a short key");
    config.environment = Environment::Production;
    let error = key_for(&config, &|_| None).await.expect_err("refused");
    let text = error.to_string();
    assert!(text.contains(PSEUDONYM_SECRET), "{text}");
    assert!(
        text.contains("DOCAICHE_SECRET_PRIVACY_PSEUDONYM_KEY"),
        "{text}"
    );
    assert!(!dir.path().join("keys").exists(), "nothing generated");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_legal_hold_refuses_the_erasure() {
    let dir = TestDir::new("privacy-hold");
    let config = config(&dir);
    let state = state_for(&config, &|_| None).await;
    let app = crate::routes::router(state.clone());
    let acme = TenantId::new("acme").expect("tenant");
    let bob = PrincipalId::new("bob").expect("id");
    let meta = state
        .documents
        .put(
            &acme,
            docaiche_core::document::NewDocument::new(
                bob.clone(),
                "application/pdf",
                "bob.pdf",
                axum::body::Bytes::from_static(b"%PDF-1.7 held"),
            ),
        )
        .await
        .expect("document");
    state
        .compliance
        .holds
        .place(
            LegalHold::new(
                acme.clone(),
                "litigation",
                PrincipalId::new("counsel").expect("id"),
                time::OffsetDateTime::now_utc(),
            )
            .on_subject(bob.clone()),
        )
        .await
        .expect("hold");
    let dpo = key_as(&state, "acme", "dpo", "dpo", &["privacy:erase"]).await;
    let (status, headers, bytes) = send(
        app.clone(),
        post("/v1/privacy/erase", &dpo, r#"{"subject": "bob"}"#),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT, "{}", text(&bytes));
    assert_problem(&headers, &bytes, "conflict");
    let (_, _, bytes) = send(app.clone(), get("/v1/privacy/requests", &dpo)).await;
    let request = &json(&bytes)["items"][0];
    assert_eq!(request["status"], "rejected", "{request}");
    assert_eq!(request["failure"], "legal_hold");
    assert!(
        state
            .documents
            .get(&acme, &meta.id)
            .await
            .expect("store")
            .is_some(),
        "the held document is kept"
    );
}

#[cfg(feature = "postgres")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_erased_subject_is_gone_from_the_api_and_the_postgres_database() {
    use docaiche_store::postgres::sqlx as pg;
    const SUITE: &str = "server-postgres";
    let Some(url) = crate::report::require_backend(SUITE, "DOCAICHE_TEST_POSTGRES_URL") else {
        return;
    };
    let dir = TestDir::new("privacy-postgres");
    let mut config = config(&dir);
    let (schema, env) =
        crate::wiring::tests::on_test_schema(&url, "privacy_test", &mut config).await;
    config.validate().expect("valid");
    let run = schema.name.trim_start_matches("privacy_test_").to_owned();
    let state = state_for(&config, &env).await;
    let app = crate::routes::router(state.clone());
    let tenant = format!("t{}", run.replace('_', "-"));
    let subject = subject_with_data(&state, &app, &tenant).await;
    let dpo = key_as(
        &state,
        &tenant,
        "dpo",
        "dpo",
        &["privacy:export", "privacy:erase"],
    )
    .await;
    let admin_key = key_as(
        &state,
        &tenant,
        "admin",
        "admin",
        &["documents:read", "audit:read", "tenants:cross"],
    )
    .await;
    // Every row of every table of the test schema, as text.
    let dump = || async {
        let tables: Vec<String> = pg::query_scalar(
            "SELECT table_name::text FROM information_schema.tables \
             WHERE table_schema = $1 AND table_type = 'BASE TABLE'",
        )
        .bind(&schema.name)
        .fetch_all(&schema.admin)
        .await
        .expect("tables");
        assert!(tables.iter().any(|t| t == "accounts"), "{tables:?}");
        let mut dump = Vec::new();
        for table in tables {
            let rows: Vec<String> = pg::query_scalar(&format!(
                "SELECT t::text FROM \"{}\".\"{table}\" t",
                schema.name
            ))
            .fetch_all(&schema.admin)
            .await
            .expect("rows");
            for row in rows {
                dump.extend_from_slice(row.as_bytes());
                dump.push(b'\n');
            }
        }
        dump
    };
    let before = dump().await;
    assert!(
        occurs(&before, &subject.email),
        "the dump sees the accounts"
    );
    assert!(occurs(&before, &subject.key_name), "the dump sees the keys");
    erase_and_check_api(&app, &tenant, &dpo, &admin_key, &subject).await;
    assert_nothing_left(&dump().await, &subject);
    let trail = state.audit.as_ref().expect("trail");
    docaiche_core::AuditSink::flush(&trail.buffer)
        .await
        .expect("flushed");
    let report = Verifier::new()
        .verify_path(&config.audit.file_path(&config))
        .expect("verify");
    assert!(report.is_ok(), "{:?}", report.tamper);
    crate::report::mark_ran(SUITE, &format!("privacy schema {}", schema.name));
}
