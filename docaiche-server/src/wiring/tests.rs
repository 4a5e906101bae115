//! Tests of the wiring: secret chains and references, the stores of
//! SQLite and PostgreSQL, key wrappers, and the PostgreSQL schema helpers
//! other tests share.

use std::collections::HashMap;

use axum::body::Bytes;
#[cfg(any(feature = "redis", feature = "vault"))]
use docaiche_core::SecretString;
#[cfg(feature = "redis")]
use docaiche_core::TokenRevocationStore;
use docaiche_core::document::NewDocument;
use docaiche_core::{DocumentStore, Error};
use docaiche_core::{PrincipalId, TenantId};

use super::encryption::decode_key;
use super::*;
use crate::config::Config;
use crate::config::Environment;
#[cfg(feature = "vault")]
use crate::config::KeyWrapperKind;
#[cfg(feature = "postgres")]
use crate::config::StoreBackend;
use crate::test_support::TestDir;

fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> + use<> {
    let map: HashMap<String, String> = pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    move |name| map.get(name).cloned()
}

fn setting_of(err: &Error) -> String {
    match err {
        Error::Misconfigured { setting, .. } => setting.to_string(),
        other => panic!("expected Misconfigured, got {other:?}"),
    }
}

#[tokio::test]
async fn a_missing_required_secret_stops_production_start_up_by_name() {
    let dir = TestDir::new("backends-missing-secret");
    let mut config = Config::from_toml_str(
        r#"
        environment = "production"
        [storage]
        data_dir = "/var/lib/docaiche"
        [cors]
        allowed_origins = []
        [http]
        https = "refuse"
        trusted_proxies = ["10.0.0.0/24"]
        [keys]
        local_key_file = "/etc/docaiche/master.key"
        [secrets]
        sources = ["env"]
        [metrics]
        bind = "10.0.0.5:9100"
        "#,
    )
    .unwrap();
    config.validate().expect("a valid production configuration");
    config.storage.data_dir = dir.path().to_path_buf();
    // The pepper is there, the JWT signing key is not.
    let pepper = "p".repeat(40);
    let env = env_of(&[("DOCAICHE_SECRET_API_KEY_PEPPER_V1", &pepper)]);
    let err = crate::state::open_auth(&config, &env).await.unwrap_err();
    assert_eq!(setting_of(&err), "secrets.sources");
    let text = err.to_string();
    assert!(text.contains("`jwt/signing-key`"), "{text}");
    assert!(text.contains("DOCAICHE_SECRET_JWT_SIGNING_KEY"), "{text}");
    assert!(!text.contains(&pepper), "{text}");
    // Nothing was generated in its place.
    assert!(!dir.path().join("keys").exists());

    // Both present: start-up gets past the secrets.
    let pem = String::from_utf8(crate::keys::ed25519_pem().unwrap()).unwrap();
    let audit_key = "a".repeat(32);
    let env = env_of(&[
        ("DOCAICHE_SECRET_API_KEY_PEPPER_V1", &pepper),
        ("DOCAICHE_SECRET_JWT_SIGNING_KEY", &pem),
        ("DOCAICHE_SECRET_AUDIT_CHECKPOINT_KEY", &audit_key),
    ]);
    crate::state::open_auth(&config, &env)
        .await
        .expect("secrets found");
    assert_eq!(config.environment, Environment::Production);
}

#[tokio::test]
async fn file_and_env_sources_are_tried_in_order() {
    let dir = TestDir::new("backends-chain");
    let secrets_dir = dir.path().join("secrets");
    std::fs::create_dir_all(secrets_dir.join("api-key")).unwrap();
    std::fs::write(secrets_dir.join("api-key/pepper-v1"), "f".repeat(40)).unwrap();
    let mut config = Config::default();
    config.secrets.sources = vec!["env".into(), format!("file:{}", secrets_dir.display())];
    let env = env_of(&[("DOCAICHE_SECRET_API_KEY_PEPPER_V1", &"e".repeat(40))]);
    let secrets = Secrets::from_config(&config, &env).await.unwrap();
    let chain = secrets.chain().unwrap();
    let pepper = chain.get("api-key/pepper-v1").await.unwrap().unwrap();
    assert_eq!(pepper.value.expose_secret(), "e".repeat(40).as_bytes());
    let secrets = Secrets::from_config(&config, &|_| None).await.unwrap();
    let chain = secrets.chain().unwrap();
    let pepper = chain.get("api-key/pepper-v1").await.unwrap().unwrap();
    assert_eq!(pepper.value.expose_secret(), "f".repeat(40).as_bytes());
    // Only the required secrets' variables are read.
    let env = env_of(&[("DOCAICHE_SECRET_OTHER", "x")]);
    let secrets = Secrets::from_config(&config, &env).await.unwrap();
    assert!(
        secrets
            .chain()
            .unwrap()
            .get("other")
            .await
            .unwrap()
            .is_none()
    );
}

#[tokio::test]
async fn references_resolve_without_echoing_values() {
    let dir = TestDir::new("backends-resolve");
    let file = dir.path().join("url");
    std::fs::write(&file, "postgres://u:hunter2@db/x\n").unwrap();
    let secrets = Secrets::from_config(&Config::default(), &|_| None)
        .await
        .unwrap();
    let env = env_of(&[("DB_URL", "postgres://u:hunter2@db/y")]);
    let from_env = secrets
        .resolve("store.url_source", "env:DB_URL", &env)
        .await;
    assert_eq!(
        from_env.unwrap().expose_secret(),
        "postgres://u:hunter2@db/y"
    );
    let from_file = secrets
        .resolve(
            "store.url_source",
            &format!("file:{}", file.display()),
            &env,
        )
        .await;
    assert_eq!(
        from_file.unwrap().expose_secret(),
        "postgres://u:hunter2@db/x"
    );
    let err = secrets
        .resolve("store.url_source", "env:ABSENT", &env)
        .await
        .unwrap_err();
    assert_eq!(setting_of(&err), "store.url_source");
    assert!(err.to_string().contains("ABSENT"));
    // vault: without [secrets.vault] (or without the feature): refused.
    let err = secrets
        .resolve("store.url_source", "vault:db/url", &env)
        .await
        .unwrap_err();
    assert_eq!(setting_of(&err), "store.url_source");
}

#[test]
fn local_keys_are_32_raw_bytes_or_64_hex_digits() {
    let raw = decode_key("k", vec![7; 32]).unwrap();
    assert_eq!(raw.expose_secret(), &vec![7; 32]);
    let hex = decode_key("k", format!("{}\n", "0a".repeat(32)).into_bytes()).unwrap();
    assert_eq!(hex.expose_secret(), &vec![10; 32]);
    for bad in [
        vec![1; 31],
        vec![1; 33],
        "zz".repeat(32).into_bytes(),
        Vec::new(),
    ] {
        let err = decode_key("keys.local_key_file", bad).unwrap_err();
        assert_eq!(setting_of(&err), "keys.local_key_file");
    }
}

#[tokio::test]
async fn a_document_put_through_the_states_store_is_ciphertext_in_the_store() {
    let dir = TestDir::new("backends-encrypted");
    let mut config = Config::default();
    config.storage.data_dir = dir.path().to_path_buf();
    crate::storage::prepare_data_dir(dir.path()).unwrap();
    crate::keys::prepare(&config.key_source()).unwrap();
    let state = crate::state::AppState::from_config(&config, &|_| None)
        .await
        .unwrap();

    let tenant = TenantId::new("acme").unwrap();
    let owner = PrincipalId::new("alice").unwrap();
    let plaintext = Bytes::from_static(b"%PDF-1.7 the quarterly figures");
    let doc = NewDocument::new(owner, "application/pdf", "q3.pdf", plaintext.clone());
    let meta = state.documents.put(&tenant, doc).await.unwrap();
    let back = state
        .documents
        .get(&tenant, &meta.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(back.content, plaintext);

    // The SQLite database underneath holds only ciphertext.
    let db = dir.path().join("docaiche.db");
    let store = docaiche_store::sqlite::SqliteStore::connect(
        &docaiche_store::sqlite::SqliteConfig::file(db.to_string_lossy()),
    )
    .await
    .unwrap();
    let raw = store
        .documents()
        .get(&tenant, &meta.id)
        .await
        .unwrap()
        .unwrap();
    assert_ne!(raw.content, plaintext);
    assert!(
        !raw.content
            .windows(b"quarterly".len())
            .any(|w| w == b"quarterly"),
        "plaintext leaked into the store"
    );
    assert!(raw.content.starts_with(b"DCE1"));
}

#[tokio::test]
async fn a_missing_local_key_file_is_refused_by_name() {
    let dir = TestDir::new("backends-key-file");
    let mut config = Config::default();
    config.keys.local_key_file = Some(dir.path().join("absent.key"));
    let secrets = Secrets::from_config(&config, &|_| None).await.unwrap();
    let err = key_wrapper(&config, &secrets, &|_| None).await.unwrap_err();
    assert_eq!(setting_of(&err), "keys.local_key_file");
    std::fs::write(dir.path().join("absent.key"), [3; 32]).unwrap();
    key_wrapper(&config, &secrets, &|_| None)
        .await
        .expect("a key");
}

/// A name no other test run uses.
#[cfg(any(feature = "postgres", feature = "vault"))]
fn unique(label: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!("{label}_{}_{nanos}", std::process::id())
}

/// A request with `key` as its API key and `body` as JSON.
#[cfg(feature = "postgres")]
fn with_key(method: &str, uri: &str, key: &str, body: &str) -> http::Request<axum::body::Body> {
    http::Request::builder()
        .method(method)
        .uri(uri)
        .header("x-api-key", key)
        .header(http::header::CONTENT_TYPE, "application/json")
        .body(axum::body::Body::from(body.to_owned()))
        .unwrap()
}

/// A connection for the test's own SQL, through the store crate's
/// `sqlx` (no `psql` binary needed).
#[cfg(feature = "postgres")]
pub(crate) async fn admin(url: &str) -> docaiche_store::postgres::sqlx::PgPool {
    docaiche_store::postgres::sqlx::PgPool::connect(url)
        .await
        .expect("connect to the test database")
}

/// Drops the test schema, even when the test fails.
#[cfg(feature = "postgres")]
pub(crate) struct Schema {
    /// The connection that created it.
    pub(crate) admin: docaiche_store::postgres::sqlx::PgPool,
    /// Its name.
    pub(crate) name: String,
}

#[cfg(feature = "postgres")]
impl Drop for Schema {
    fn drop(&mut self) {
        // `Drop` cannot await: a thread of its own with a small runtime.
        let (admin, name) = (self.admin.clone(), self.name.clone());
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            runtime.block_on(async {
                // A fresh connection: the pool's may belong to the
                // test's (finished) runtime.
                let options = admin.connect_options();
                let pool = docaiche_store::postgres::sqlx::PgPool::connect_with((*options).clone())
                    .await
                    .map_err(std::io::Error::other)?;
                docaiche_store::postgres::sqlx::query(&format!(
                    "DROP SCHEMA IF EXISTS {name} CASCADE"
                ))
                .execute(&pool)
                .await
                .map_err(std::io::Error::other)?;
                pool.close().await;
                Ok::<(), std::io::Error>(())
            })
        })
        .join();
        if !matches!(dropped, Ok(Ok(()))) {
            eprintln!("could not drop the test schema {}", self.name);
        }
    }
}

/// A fresh schema `<label>_<pid>_<nanos>` on the test PostgreSQL at
/// `url` (dropped with the returned [`Schema`]), `config.store` pointed
/// at it through `env:TEST_DATABASE_URL` (three connections), and the
/// environment lookup that resolves that reference. The caller adds its
/// own settings and validates.
#[cfg(feature = "postgres")]
pub(crate) async fn on_test_schema(
    url: &str,
    label: &str,
    config: &mut Config,
) -> (
    Schema,
    impl Fn(&str) -> Option<String> + Send + Sync + 'static,
) {
    let schema = Schema {
        name: unique(label),
        admin: admin(url).await,
    };
    docaiche_store::postgres::sqlx::query(&format!("CREATE SCHEMA {}", schema.name))
        .execute(&schema.admin)
        .await
        .expect("create the test schema");
    config.store.backend = StoreBackend::Postgres;
    config.store.url_source = Some("env:TEST_DATABASE_URL".into());
    config.store.schema = Some(schema.name.clone());
    config.store.max_connections = 3;
    let url = url.to_owned();
    let env = move |name: &str| (name == "TEST_DATABASE_URL").then(|| url.clone());
    (schema, env)
}

#[cfg(feature = "postgres")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_app_state_runs_on_postgres_and_serves_api_keys_over_http() {
    const SUITE: &str = "server-postgres";
    let Some(url) = crate::report::require_backend(SUITE, "DOCAICHE_TEST_POSTGRES_URL") else {
        return;
    };
    let dir = TestDir::new("backends-postgres");
    let mut config = Config::default();
    config.storage.data_dir = dir.path().to_path_buf();
    let (schema, env) = on_test_schema(&url, "server_test", &mut config).await;
    config.validate().expect("valid");
    crate::storage::prepare_data_dir(dir.path()).unwrap();
    crate::keys::prepare(&config.key_source()).unwrap();
    let state = crate::state::AppState::from_config(&config, &env)
        .await
        .expect("state on PostgreSQL");

    let admin = state
        .auth
        .bootstrap_key("acme", "admin", "first")
        .await
        .unwrap();
    let key = admin.key.expose_secret().to_owned();
    let app = crate::routes::router(state.clone());
    let body = r#"{"name":"reader","scopes":["documents:read"]}"#;
    let (status, _, created) =
        crate::routes::tests::send(app.clone(), with_key("POST", "/v1/keys", &key, body)).await;
    assert_eq!(
        status,
        http::StatusCode::CREATED,
        "{}",
        String::from_utf8_lossy(&created)
    );
    let (status, _, listed) =
        crate::routes::tests::send(app.clone(), with_key("GET", "/v1/keys", &key, "")).await;
    assert_eq!(status, http::StatusCode::OK);
    let listed = crate::routes::tests::json(&listed);
    let names: Vec<&str> = listed["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|k| k["name"].as_str())
        .collect();
    assert!(
        names.contains(&"reader") && names.contains(&"first"),
        "{listed}"
    );

    // The rows are in the test schema on PostgreSQL, not in SQLite.
    let rows: i64 = docaiche_store::postgres::sqlx::query_scalar(&format!(
        "SELECT count(*) FROM {}.api_keys",
        schema.name
    ))
    .fetch_one(&schema.admin)
    .await
    .unwrap();
    assert_eq!(rows, 2);
    assert!(!dir.path().join("docaiche.db").exists());

    // Readiness reports the database with its pool figures.
    let (status, _, ready) =
        crate::routes::tests::send(app, crate::routes::tests::get_request("/health/ready")).await;
    assert_eq!(status, http::StatusCode::OK);
    let text = String::from_utf8_lossy(&ready);
    assert!(
        text.contains("postgres") && text.contains("pool size="),
        "{text}"
    );

    // Documents go through the encrypting store into PostgreSQL.
    let tenant = TenantId::new("acme").unwrap();
    let plaintext = Bytes::from_static(b"postgres plaintext marker");
    let doc = NewDocument::new(
        PrincipalId::new("alice").unwrap(),
        "text/plain",
        "a.txt",
        plaintext.clone(),
    );
    let meta = state.documents.put(&tenant, doc).await.unwrap();
    let back = state
        .documents
        .get(&tenant, &meta.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(back.content, plaintext);
    // Its data key is in PostgreSQL too, wrapped: another instance (or
    // this one after a restart) reads the document.
    let keys: i64 = docaiche_store::postgres::sqlx::query_scalar(&format!(
        "SELECT count(*) FROM {}.data_keys WHERE tenant_id = 'acme' AND subject_id = 'alice'",
        schema.name
    ))
    .fetch_one(&schema.admin)
    .await
    .unwrap();
    assert_eq!(keys, 1);
    // A second instance writes an audit trail of its own: a file
    // trail has one writer.
    let mut second = config.clone();
    second.audit.path = Some(dir.path().join("second").join("audit.jsonl"));
    let restarted = crate::state::AppState::from_config(&second, &env)
        .await
        .expect("a second instance on PostgreSQL");
    let again = restarted
        .documents
        .get(&tenant, &meta.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(again.content, plaintext);

    // Risk flags ride with the text into their column, in the clear (the
    // text itself is sealed), and the listing filters on them.
    let text = docaiche_core::document::DocumentText::new(vec!["page".to_owned()]).with_risks([
        docaiche_core::extract::RiskFlag::Uri,
        docaiche_core::extract::RiskFlag::JavaScript,
    ]);
    state
        .documents
        .put_text(&tenant, &meta.id, &text)
        .await
        .unwrap();
    let (risks, pages): (String, String) = docaiche_store::postgres::sqlx::query_as(&format!(
        "SELECT risks, text_pages FROM {}.documents WHERE tenant_id = 'acme'",
        schema.name
    ))
    .fetch_one(&schema.admin)
    .await
    .unwrap();
    assert_eq!(risks, "java_script,uri");
    assert!(!pages.contains("page"), "the text is encrypted: {pages}");
    let app = crate::routes::router(restarted.clone());
    for (risk, count) in [("uri", 1), ("any", 1), ("launch", 0)] {
        let uri = format!("/v1/documents?risk={risk}");
        let (status, _, page) =
            crate::routes::tests::send(app.clone(), with_key("GET", &uri, &key, "")).await;
        assert_eq!(status, http::StatusCode::OK);
        let page = crate::routes::tests::json(&page);
        assert_eq!(
            page["items"].as_array().map(Vec::len),
            Some(count),
            "{uri}: {page}"
        );
        if count == 1 {
            assert_eq!(
                page["items"][0]["risks"],
                serde_json::json!(["java_script", "uri"])
            );
        }
    }
    crate::report::mark_ran(SUITE, &format!("schema {}", schema.name));
}

#[cfg(feature = "redis")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jwt_revocations_live_on_redis() {
    use docaiche_core::{AuthMethod, Principal};

    const SUITE: &str = "server-redis";
    let Some(url) = crate::report::require_backend(SUITE, "DOCAICHE_TEST_REDIS_URL") else {
        return;
    };
    let dir = TestDir::new("backends-redis");
    let mut config = Config::default();
    config.storage.data_dir = dir.path().to_path_buf();
    config.revocation.backend = crate::config::RevocationBackend::Redis;
    config.revocation.url_source = Some("env:TEST_REDIS_URL".into());
    config.validate().expect("valid");
    let redis_url = url.clone();
    let env = move |name: &str| (name == "TEST_REDIS_URL").then(|| redis_url.clone());
    crate::storage::prepare_data_dir(dir.path()).unwrap();
    crate::keys::prepare(&config.key_source()).unwrap();
    let state = crate::state::AppState::from_config(&config, &env)
        .await
        .expect("state with Redis revocations");

    let alice = Principal::new(
        PrincipalId::new("alice").unwrap(),
        TenantId::new("acme").unwrap(),
        AuthMethod::Password,
    );
    let issued = state.auth.issuer.issue(&alice).unwrap();
    let bearer = |token: &str| {
        http::Request::get("/v1/whoami")
            .header(http::header::AUTHORIZATION, format!("Bearer {token}"))
            .body(axum::body::Body::empty())
            .unwrap()
    };
    let other = docaiche_store::redis::RedisStore::builder(url.as_str())
        .build()
        .unwrap();

    // The console's sessions follow the revocations to Redis: another
    // instance sees one start, and ends it here.
    let sessions = &state.console.sessions;
    let (cookie, started) = sessions
        .start(
            &alice.tenant,
            &alice.id,
            docaiche_auth::web_session::SecondFactor::NotRequired,
        )
        .await
        .unwrap();
    let shared = other.web_sessions(std::time::Duration::from_secs(3600));
    use docaiche_core::WebSessionStore as _;
    let seen = shared.get(&started.key).await.unwrap().expect("on Redis");
    assert_eq!((&seen.tenant, &seen.subject), (&alice.tenant, &alice.id));
    assert!(shared.remove(&started.key).await.unwrap());
    assert!(sessions.resolve(cookie.expose_secret()).await.is_err());

    let app = crate::routes::router(state);
    let token = issued.token.expose_secret().clone();
    let (status, _, _) = crate::routes::tests::send(app.clone(), bearer(&token)).await;
    assert_eq!(status, http::StatusCode::OK);

    // Revoked on Redis by another instance: refused here.
    other
        .revocations()
        .revoke(&issued.token_id, issued.expires_at)
        .await
        .unwrap();
    let (status, _, _) = crate::routes::tests::send(app.clone(), bearer(&token)).await;
    assert_eq!(status, http::StatusCode::UNAUTHORIZED);

    let (status, _, ready) =
        crate::routes::tests::send(app, crate::routes::tests::get_request("/health/ready")).await;
    assert_eq!(status, http::StatusCode::OK);
    let text = String::from_utf8_lossy(&ready);
    assert!(text.contains("redis_store"), "{text}");
    crate::report::mark_ran(SUITE, "JWT revocations and console sessions on Redis");
}

#[cfg(feature = "redis")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_api_key_is_refused_by_every_instance_at_once_over_redis() {
    use std::time::Duration;

    use crate::config::AnnounceBackend;

    const SUITE: &str = "server-redis";
    let Some(url) = crate::report::require_backend(SUITE, "DOCAICHE_TEST_REDIS_URL") else {
        return;
    };
    // Three instances on one database: two announce over Redis, the
    // third does not (the cache TTL, 30 s, bounds it).
    let dir = TestDir::new("backends-announce");
    let mut config = Config::default();
    config.storage.data_dir = dir.path().to_path_buf();
    config.revocation.announce_api_keys = AnnounceBackend::Redis;
    config.revocation.url_source = Some("env:TEST_REDIS_URL".into());
    config.validate().expect("valid");
    let mut deaf = config.clone();
    deaf.revocation = crate::config::RevocationSection::default();
    let redis_url = url.clone();
    let env = move |name: &str| (name == "TEST_REDIS_URL").then(|| redis_url.clone());
    crate::storage::prepare_data_dir(dir.path()).unwrap();
    crate::keys::prepare(&config.key_source()).unwrap();
    // One audit trail per instance: a file trail has one writer.
    let own_trail = |config: &Config, name: &str| {
        let mut config = config.clone();
        config.audit.path = Some(dir.path().join(name).join("audit.jsonl"));
        config
    };
    let a = crate::state::AppState::from_config(&config, &env)
        .await
        .expect("instance a");
    let b = crate::state::AppState::from_config(&own_trail(&config, "b"), &env)
        .await
        .expect("instance b");
    let c = crate::state::AppState::from_config(&own_trail(&deaf, "c"), &env)
        .await
        .expect("instance c");
    assert!(c.auth.invalidation_listener().is_none());
    let listening = b.auth.invalidation_listener().expect("b listens");
    tokio::time::timeout(Duration::from_secs(5), listening.subscribed())
        .await
        .expect("b subscribed to the announcements");

    let admin = a.auth.bootstrap_key("acme", "admin", "ops").await.unwrap();
    let victim = a.auth.bootstrap_key("acme", "bob", "ci").await.unwrap();
    let with_key = |method: http::Method, path: &str, key: &SecretString| {
        http::Request::builder()
            .method(method)
            .uri(path)
            .header("x-api-key", key.expose_secret().as_str())
            .body(axum::body::Body::empty())
            .unwrap()
    };
    let whoami = || with_key(http::Method::GET, "/v1/whoami", &victim.key);
    let (app_a, app_b, app_c) = (
        crate::routes::router(a),
        crate::routes::router(b),
        crate::routes::router(c),
    );
    for app in [&app_b, &app_c] {
        let (status, _, _) = crate::routes::tests::send(app.clone(), whoami()).await;
        assert_eq!(status, http::StatusCode::OK, "cached");
    }

    let revoke = with_key(
        http::Method::DELETE,
        &format!("/v1/keys/{}", victim.record.id),
        &admin.key,
    );
    let (status, _, _) = crate::routes::tests::send(app_a, revoke).await;
    assert_eq!(status, http::StatusCode::NO_CONTENT);
    let refused = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            let (status, _, _) = crate::routes::tests::send(app_b.clone(), whoami()).await;
            if status == http::StatusCode::UNAUTHORIZED {
                break;
            }
            assert_eq!(status, http::StatusCode::OK);
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    assert!(refused.is_ok(), "b still accepts the revoked key");
    let (status, _, _) = crate::routes::tests::send(app_c, whoami()).await;
    assert_eq!(
        status,
        http::StatusCode::OK,
        "without announcements, c keeps its cached copy until the TTL"
    );
    crate::report::mark_ran(SUITE, "API key revocations announced over Redis");
}

#[cfg(feature = "vault")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_come_from_vault_kv_and_documents_are_wrapped_by_transit() {
    use docaiche_store::vault::{TransitKeyWrapper, VaultAuth, VaultClient, VaultConfig};

    const SUITE: &str = "server-vault";
    let Some(addr) = crate::report::require_backend(SUITE, "DOCAICHE_TEST_VAULT_ADDR") else {
        return;
    };
    let Some(token) = crate::report::require_backend(SUITE, "DOCAICHE_TEST_VAULT_TOKEN") else {
        return;
    };
    let root = VaultClient::new(VaultConfig::new(
        addr.clone(),
        VaultAuth::token(SecretString::new(token.clone())),
    ))
    .unwrap();
    match root
        .write_json(
            "sys/mounts/transit",
            &serde_json::json!({"type": "transit"}),
        )
        .await
    {
        Ok(_) => {}
        Err(e) if e.log_chain().contains("already in use") => {}
        Err(e) => panic!("enabling transit: {}", e.log_chain()),
    }
    let prefix = unique("server-test").replace('_', "-");
    let pepper = "v".repeat(40);
    let pem = String::from_utf8(crate::keys::ed25519_pem().unwrap()).unwrap();
    for (path, value) in [
        ("api-key/pepper-v1", pepper.as_str()),
        ("jwt/signing-key", pem.as_str()),
        ("db/url", "postgres://app:from-vault@db/docaiche"),
    ] {
        root.write_json(
            &format!("secret/data/{prefix}/{path}"),
            &serde_json::json!({"data": {"value": value}}),
        )
        .await
        .unwrap();
    }
    let transit_key = unique("server-docs").replace('_', "-");
    TransitKeyWrapper::new(root.clone(), transit_key.clone())
        .unwrap()
        .ensure_key()
        .await
        .unwrap();

    let dir = TestDir::new("backends-vault");
    let mut config = Config::default();
    config.storage.data_dir = dir.path().to_path_buf();
    config.secrets.sources = vec!["env".into(), "vault".into()];
    config.secrets.vault.address = Some(addr.clone());
    config.secrets.vault.token_source = Some("env:TEST_VAULT_TOKEN".into());
    config.secrets.vault.kv_prefix = prefix.clone();
    config.encryption.key_wrapper = KeyWrapperKind::Vault;
    config.encryption.transit_key = transit_key.clone();
    config.validate().expect("valid");
    let vault_token = token.clone();
    let env = move |name: &str| (name == "TEST_VAULT_TOKEN").then(|| vault_token.clone());

    // Through the chain: env has nothing, Vault KV has the pepper.
    let secrets = Secrets::from_config(&config, &env).await.unwrap();
    let found = secrets
        .chain()
        .unwrap()
        .get("api-key/pepper-v1")
        .await
        .unwrap()
        .expect("from KV");
    assert_eq!(found.value.expose_secret(), pepper.as_bytes());
    let url = secrets
        .resolve("store.url_source", "vault:db/url", &env)
        .await
        .unwrap();
    assert_eq!(url.expose_secret(), "postgres://app:from-vault@db/docaiche");
    let err = secrets
        .resolve("store.url_source", "vault:db/absent", &env)
        .await
        .unwrap_err();
    assert_eq!(setting_of(&err), "store.url_source");

    // The Transit wrapper wraps under Vault.
    let wrapper = key_wrapper(&config, &secrets, &env).await.unwrap();
    let data_key = wrapper.generate_data_key(b"tenant=acme").await.unwrap();
    assert!(data_key.wrapped.ciphertext.starts_with(b"vault:v"));

    // The whole state: auth secrets from KV, documents under Transit.
    crate::storage::prepare_data_dir(dir.path()).unwrap();
    let state = crate::state::AppState::from_config(&config, &env)
        .await
        .expect("state on Vault");
    assert!(!dir.path().join("keys").exists(), "nothing generated");
    let tenant = TenantId::new("acme").unwrap();
    let plaintext = Bytes::from_static(b"vault plaintext marker");
    let doc = NewDocument::new(
        PrincipalId::new("alice").unwrap(),
        "text/plain",
        "a.txt",
        plaintext.clone(),
    );
    let meta = state.documents.put(&tenant, doc).await.unwrap();
    let back = state
        .documents
        .get(&tenant, &meta.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(back.content, plaintext);

    // A missing secret is named at start-up; a missing Transit key too.
    let mut missing = config.clone();
    missing.secrets.vault.kv_prefix = format!("{prefix}-empty");
    let err = crate::state::open_auth(&missing, &env).await.unwrap_err();
    assert_eq!(setting_of(&err), "secrets.sources");
    assert!(err.to_string().contains("api-key/pepper-v1"), "{err}");
    let mut no_key = config.clone();
    no_key.encryption.transit_key = unique("absent").replace('_', "-");
    let secrets = Secrets::from_config(&no_key, &env).await.unwrap();
    let err = key_wrapper(&no_key, &secrets, &env).await.unwrap_err();
    assert_eq!(setting_of(&err), "encryption.transit_key");
    crate::report::mark_ran(SUITE, &format!("OpenBao at {addr}"));
}
