//! The key listings' filters through the router, on a manual clock.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use docaiche_core::ManualClock;
use serde_json::Value;

use crate::config::Config;
use crate::routes::router;
use crate::routes::tests::send;
use crate::state::AppState;
use crate::state::tests::state_with_clock;
use crate::test_support::TestDir;

/// `method uri` with `key` and a JSON `body`: the status and the answer.
async fn call(
    state: &AppState,
    method: &str,
    uri: &str,
    key: &str,
    body: &str,
) -> (StatusCode, Value) {
    let request = Request::builder()
        .method(method)
        .uri(uri)
        .header("x-api-key", key)
        .header("content-type", "application/json")
        .body(Body::from(body.to_owned()))
        .expect("request");
    let (status, _, bytes) = send(router(state.clone()), request).await;
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

/// A key named `name` expiring in `secs` (none: never): its id and secret.
async fn create(state: &AppState, admin: &str, name: &str, secs: Option<u64>) -> (String, String) {
    let body = match secs {
        Some(secs) => {
            format!(r#"{{"name":"{name}","scopes":["documents:read"],"expires_in_secs":{secs}}}"#)
        }
        None => format!(r#"{{"name":"{name}","scopes":["documents:read"]}}"#),
    };
    let (status, key) = call(state, "POST", "/v1/keys", admin, &body).await;
    assert_eq!(status, StatusCode::CREATED, "{key}");
    (
        key["id"].as_str().expect("id").to_owned(),
        key["key"].as_str().expect("key").to_owned(),
    )
}

/// The names of every key `uri` lists, walking `next`.
async fn names(state: &AppState, uri: &str, admin: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut page_uri = uri.to_owned();
    for _ in 0..100 {
        let (status, page) = call(state, "GET", &page_uri, admin, "").await;
        assert_eq!(status, StatusCode::OK, "{page_uri}: {page}");
        crate::openapi::tests::conforms(&page_uri, "KeyPage", page.to_string().as_bytes());
        names.extend(
            page["items"]
                .as_array()
                .expect("items")
                .iter()
                .map(|k| k["name"].as_str().expect("name").to_owned()),
        );
        match page["next"].as_str() {
            Some(next) => page_uri = format!("{uri}&after={next}"),
            None => return names,
        }
    }
    panic!("{uri}: the pages never end");
}

#[tokio::test]
async fn keys_are_filtered_by_status_expiry_and_use() {
    let dir = TestDir::new("keys-list-filters");
    let mut config = Config::default();
    config.storage.data_dir = dir.path().to_path_buf();
    let clock = ManualClock::new();
    let state = state_with_clock(&config, Arc::new(clock.clone()));
    let admin = state
        .auth
        .bootstrap_key("acme", "admin", "admin")
        .await
        .expect("key");
    let admin = admin.key.expose_secret().to_owned();
    const DAY: u64 = 24 * 3600;
    create(&state, &admin, "day", Some(DAY)).await;
    create(&state, &admin, "month", Some(30 * DAY)).await;
    let (_, forever) = create(&state, &admin, "forever", None).await;
    let (revoked, _) = create(&state, &admin, "revoked", Some(DAY)).await;
    create(&state, &admin, "hour", Some(3600)).await;
    let (status, _) = call(&state, "DELETE", &format!("/v1/keys/{revoked}"), &admin, "").await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    // Two hours on: `hour` has expired. `forever` is used now.
    clock.advance(Duration::from_secs(7200));
    let (status, _) = call(&state, "GET", "/v1/whoami", &forever, "").await;
    assert_eq!(status, StatusCode::OK);
    state
        .auth
        .api_keys
        .flush_usage()
        .await
        .expect("usage written");

    let everything = names(&state, "/v1/keys?limit=2", &admin).await;
    assert_eq!(everything.len(), 6, "{everything:?}");
    assert_eq!(
        names(&state, "/v1/keys?status=active&limit=2", &admin).await,
        ["admin", "day", "month", "forever"]
    );
    assert_eq!(
        names(&state, "/v1/keys?status=expired", &admin).await,
        ["hour"]
    );
    assert_eq!(
        names(&state, "/v1/keys?status=revoked", &admin).await,
        ["revoked"]
    );
    // Unrevoked, expiring in the window: `day` (22 h left), not the
    // revoked one, nor the expired one.
    assert_eq!(
        names(&state, "/v1/keys?expiring_within_days=1", &admin).await,
        ["day"]
    );
    assert_eq!(
        names(&state, "/v1/keys?expiring_within_days=31&limit=1", &admin).await,
        ["day", "month"]
    );
    // Unused for a day: nobody yet but the never-used ones; a day on, the
    // used key too, unless it is used again.
    let unused = names(&state, "/v1/keys?unused_for_days=1", &admin).await;
    assert!(!unused.contains(&"forever".to_owned()), "{unused:?}");
    clock.advance(Duration::from_secs(DAY + 1));
    let unused = names(&state, "/v1/keys?unused_for_days=1", &admin).await;
    assert!(unused.contains(&"forever".to_owned()), "{unused:?}");
    // Filters combine.
    assert_eq!(
        names(
            &state,
            "/v1/keys?status=active&unused_for_days=0&expiring_within_days=30",
            &admin
        )
        .await,
        ["month"]
    );

    for bad in [
        "/v1/keys?status=stale",
        "/v1/keys?expiring_within_days=-1",
        "/v1/keys?unused_for_days=3651",
        "/v1/keys?unused_for_days=soon",
    ] {
        let (status, body) = call(&state, "GET", bad, &admin, "").await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {body}");
    }
}
