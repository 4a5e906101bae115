use std::collections::BTreeSet;

use axum::http::Request;
use docaiche_core::problem::PROBLEM_JSON;
use serde_json::Value;

use super::*;
use crate::config::Config;
use crate::openapi::operation::{operation_id, path_params, tag};
use crate::routes::tests::{concrete, get_request, json, send};
use crate::routes::{Access, router};
use crate::state::tests::local_state;
use crate::test_support::TestDir;

/// The document as JSON.
fn spec() -> Value {
    document(&Limits::of(&Config::default()))
}

/// The operation of `method path` in `spec`.
fn op<'a>(spec: &'a Value, method: &Method, path: &str) -> &'a Value {
    &spec["paths"][path][method.as_str().to_ascii_lowercase()]
}

/// The statuses every route's facts imply, computed here independently of
/// `derived_errors`: what the document must list at least.
fn expected_errors(access: Access, route: &RouteSpec, body: RequestBody) -> BTreeSet<u16> {
    let mut statuses = BTreeSet::from([429, 500, 503, 504]);
    if access == Access::Protected {
        statuses.insert(401);
    }
    if !route.required.is_empty() {
        statuses.insert(403);
    }
    if route.path.contains('{') {
        // 400: a segment that is not UTF-8.
        statuses.extend([400, 404]);
    }
    match body {
        RequestBody::None => {}
        RequestBody::Json { .. } => statuses.extend([400, 413, 415]),
        RequestBody::Raw(_) => statuses.extend([413, 415]),
    }
    statuses
}

#[test]
fn every_route_is_documented_with_every_error_it_can_answer() {
    let spec = spec();
    let mut routes = BTreeSet::new();
    for group in route_groups() {
        for route in documented(&group) {
            let (method, path) = (&route.method, route.path);
            routes.insert((method.as_str().to_ascii_lowercase(), path.to_owned()));
            let doc = &route.doc;
            let operation = op(&spec, method, path);
            assert!(operation.is_object(), "{method} {path} is missing");
            let responses = operation["responses"]
                .as_object()
                .unwrap_or_else(|| panic!("{method} {path}: no responses"));
            let listed: BTreeSet<u16> = responses
                .keys()
                .map(|s| s.parse().expect("a status"))
                .collect();
            let mut expected = expected_errors(group.access, route, doc.body);
            expected.extend(doc.errors.iter().map(|(s, _)| *s));
            expected.insert(doc.status);
            expected.extend(doc.also.map(|(status, _)| status));
            assert_eq!(listed, expected, "{method} {path}");
            for status in expected.iter().filter(|s| **s >= 400) {
                let response = &responses[&status.to_string()];
                assert_eq!(
                    response["content"][PROBLEM_JSON]["schema"]["$ref"],
                    "#/components/schemas/Problem",
                    "{method} {path} {status}"
                );
            }
            if !route.required.is_empty() {
                let text = responses["403"]["description"].as_str().expect("text");
                for permission in &route.required {
                    assert!(
                        text.contains(&format!("`{permission}`")),
                        "{method} {path}: 403 does not name {permission}: {text}"
                    );
                }
            }
            let security = &operation["security"];
            match group.access {
                Access::Protected => {
                    let schemes: Vec<&str> = security
                        .as_array()
                        .expect("security")
                        .iter()
                        .flat_map(|s| s.as_object().expect("object").keys())
                        .map(String::as_str)
                        .collect();
                    assert_eq!(schemes, [BEARER, API_KEY], "{method} {path}");
                }
                Access::Public => assert!(security.is_null(), "{method} {path}"),
            }
            let params: Vec<&str> = operation["parameters"]
                .as_array()
                .map(|p| {
                    p.iter()
                        .filter(|p| p["in"] == "path")
                        .filter_map(|p| p["name"].as_str())
                        .collect()
                })
                .unwrap_or_default();
            let expected: Vec<&str> = path_params(path).collect();
            assert_eq!(params, expected, "{method} {path}");
        }
    }
    // And nothing documented that the router does not serve.
    let mut documented_ops = BTreeSet::new();
    for (path, item) in spec["paths"].as_object().expect("paths") {
        for method in item.as_object().expect("path item").keys() {
            documented_ops.insert((method.clone(), path.clone()));
        }
    }
    assert_eq!(documented_ops, routes);
    // The well-known routes are there (the walk above is not vacuous).
    for path in ["/health/live", "/openapi.json", "/v1/keys"] {
        assert!(spec["paths"][path].is_object(), "{path}");
    }
}

/// The reverse walk, over the document's own paths and methods rather than
/// the route table: every operation it lists reaches a handler of the
/// router the server serves, never the unknown-route 404 or a 405; and a
/// path it does not list does reach the fallback, so the check can fail.
#[tokio::test]
async fn every_documented_operation_is_served_by_the_router() {
    let dir = TestDir::new("openapi-served");
    let mut config = Config::default();
    config.storage.data_dir = dir.path().to_path_buf();
    let state = local_state(&config);
    let key = state
        .auth
        .bootstrap_key("acme", "admin", "test")
        .await
        .expect("key");
    let app = router(state);
    let request = |method: &str, uri: &str| {
        Request::builder()
            .method(method)
            .uri(uri)
            .header("x-api-key", key.key.expose_secret())
            .body(axum::body::Body::from("{}"))
            .expect("request")
    };
    let reached_fallback = |status: StatusCode, body: &[u8]| {
        status == StatusCode::NOT_FOUND
            && serde_json::from_slice::<Value>(body)
                .is_ok_and(|problem| problem["detail"] == "route not found")
    };
    let spec = spec();
    let mut probed = 0;
    for (path, item) in spec["paths"].as_object().expect("paths") {
        for method in item.as_object().expect("path item").keys() {
            let method = method.to_ascii_uppercase();
            let uri = concrete(path);
            let (status, _, body) = send(app.clone(), request(&method, &uri)).await;
            assert!(
                !reached_fallback(status, &body),
                "{method} {path}: documented but not routed"
            );
            assert_ne!(status, StatusCode::METHOD_NOT_ALLOWED, "{method} {path}");
            // A rate-limited answer could hide the fallback.
            assert_ne!(status, StatusCode::TOO_MANY_REQUESTS, "{method} {path}");
            probed += 1;
        }
    }
    assert!(probed >= 30, "only {probed} operations");
    let (status, _, body) = send(app, request("GET", "/v1/undocumented")).await;
    assert!(reached_fallback(status, &body), "{status}");
}

#[test]
fn every_operation_has_a_summary_an_id_and_a_success_response() {
    let spec = spec();
    let mut ids = BTreeSet::new();
    for (path, item) in spec["paths"].as_object().expect("paths") {
        for (method, operation) in item.as_object().expect("path item") {
            let summary = operation["summary"].as_str().unwrap_or_default();
            assert!(!summary.is_empty(), "{method} {path}: no summary");
            let id = operation["operationId"].as_str().expect("operation id");
            assert!(ids.insert(id.to_owned()), "{id} twice");
            let success = operation["responses"]
                .as_object()
                .expect("responses")
                .keys()
                .filter(|s| s.starts_with('1') || s.starts_with('2'))
                .count();
            // One, or two for a create-or-replace (201 or 200).
            let expected = if path == "/v1/roles" && method == "post" {
                2
            } else {
                1
            };
            assert_eq!(success, expected, "{method} {path}: its success responses");
        }
    }
}

/// Every `$ref` under `value`.
fn refs<'a>(value: &'a Value, out: &mut Vec<&'a str>) {
    match value {
        Value::Object(map) => {
            for (key, value) in map {
                match (key.as_str(), value) {
                    ("$ref", Value::String(target)) => out.push(target),
                    _ => refs(value, out),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| refs(v, out)),
        _ => {}
    }
}

/// Every `allOf` whose members name a `type` names one type: utoipa wraps
/// a documented, inlined field in `allOf` with `type: object`, which no
/// array satisfies (schemathesis: "cannot generate test data").
fn all_of_types_conflict(value: &Value, at: &str, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            if let Some(Value::Array(members)) = map.get("allOf") {
                let types: BTreeSet<String> = members
                    .iter()
                    .filter_map(|m| m.get("type"))
                    .map(Value::to_string)
                    .collect();
                if types.len() > 1 {
                    out.push(format!("{at}: {types:?}"));
                }
            }
            for (key, child) in map {
                all_of_types_conflict(child, &format!("{at}/{key}"), out);
            }
        }
        Value::Array(items) => {
            for (i, child) in items.iter().enumerate() {
                all_of_types_conflict(child, &format!("{at}/{i}"), out);
            }
        }
        _ => {}
    }
}

#[test]
fn no_schema_combines_conflicting_types() {
    let mut conflicts = Vec::new();
    all_of_types_conflict(&spec(), "", &mut conflicts);
    assert!(conflicts.is_empty(), "{conflicts:#?}");
}

#[test]
fn every_ref_resolves_to_a_component_and_every_component_is_used() {
    let spec = spec();
    let mut found = Vec::new();
    refs(&spec, &mut found);
    assert!(found.len() > 20, "{found:?}");
    let schemas = spec["components"]["schemas"].as_object().expect("schemas");
    let mut used = BTreeSet::new();
    for target in found {
        let name = target
            .strip_prefix("#/components/schemas/")
            .unwrap_or_else(|| panic!("unexpected $ref {target}"));
        assert!(schemas.contains_key(name), "{target} does not resolve");
        used.insert(name);
    }
    let unused: Vec<&String> = schemas
        .keys()
        .filter(|k| !used.contains(k.as_str()))
        .collect();
    assert!(unused.is_empty(), "unused components: {unused:?}");
    let schemes = spec["components"]["securitySchemes"]
        .as_object()
        .expect("schemes");
    assert_eq!(schemes[BEARER]["scheme"], "bearer");
    assert_eq!(schemes[API_KEY]["in"], "header");
    assert_eq!(schemes[API_KEY]["name"], "x-api-key");
}

#[test]
fn the_problem_schema_carries_field_errors() {
    let spec = spec();
    let problem = &spec["components"]["schemas"]["Problem"];
    let required: BTreeSet<&str> = problem["required"]
        .as_array()
        .expect("required")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(
        required,
        BTreeSet::from(["type", "title", "status", "code"])
    );
    let errors = problem["properties"]["errors"].to_string();
    assert!(
        errors.contains("#/components/schemas/FieldError"),
        "{errors}"
    );
}

#[tokio::test]
async fn the_document_is_openapi_3_1_served_at_openapi_json() {
    let dir = TestDir::new("openapi-served");
    let mut config = Config::default();
    config.storage.data_dir = dir.path().to_path_buf();
    let app = router(local_state(&config));
    let (status, headers, body) = send(app, get_request("/openapi.json")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers[header::CONTENT_TYPE], "application/json");
    assert_eq!(headers[header::CACHE_CONTROL], "public, max-age=300");
    assert!(headers.contains_key("ratelimit-policy"), "rate limited");
    let served = json(&body);
    let version = served["openapi"].as_str().expect("version");
    assert!(version.starts_with("3.1."), "{version}");
    assert_eq!(served, spec());
    assert!(served["info"]["title"].is_string());
}

/// Check the answer `body` against the document's component schema
/// `name`, naming `what` on failure: the answers are checked against the
/// document itself, not against Rust types.
pub(crate) fn conforms(what: &str, name: &str, body: &[u8]) {
    let spec = spec();
    let value: Value = serde_json::from_slice(body)
        .unwrap_or_else(|e| panic!("{what}: not JSON: {e}: {}", String::from_utf8_lossy(body)));
    let schema = serde_json::json!({ "$ref": format!("#/components/schemas/{name}") });
    if let Err(e) = check(&spec, &schema, &value, "") {
        panic!("{what} does not match `{name}`: {e}: {value}");
    }
}

/// `value` at `at` against `schema` of `spec`: `$ref`, `allOf` (each
/// member on its own, as JSON Schema has it), `oneOf` (any one), `type`
/// (one of a list), `enum`, object members (every required one present;
/// none the schema does not list, unless it allows
/// `additionalProperties`: stricter than JSON Schema, so that every member
/// the server sends is documented), array `items`. The subset of JSON Schema
/// the document uses; schemathesis checks the rest against the running
/// server.
fn check(spec: &Value, schema: &Value, value: &Value, at: &str) -> Result<(), String> {
    if let Some(target) = schema["$ref"].as_str() {
        let name = target.trim_start_matches("#/components/schemas/");
        return check(spec, &spec["components"]["schemas"][name], value, at);
    }
    if let Some(members) = schema["oneOf"].as_array()
        && !members.iter().any(|m| check(spec, m, value, at).is_ok())
    {
        return Err(format!("{at}: matches no `oneOf` member"));
    }
    // `allOf`: every member judges the whole value on its own (JSON
    // Schema's rule: a closed member refuses the others' properties).
    for member in schema["allOf"].as_array().into_iter().flatten() {
        check(spec, member, value, at)?;
    }
    check_type(schema, value, at)?;
    if let Some(object) = value.as_object() {
        let listed = schema["properties"].as_object();
        let closed = schema["additionalProperties"] == false;
        for required in schema["required"].as_array().into_iter().flatten() {
            let name = required.as_str().unwrap_or_default();
            if !object.contains_key(name) {
                return Err(format!("{at}/{name}: required, missing"));
            }
        }
        for (name, member) in object {
            match listed.and_then(|l| l.get(name)) {
                Some(schema) => check(spec, schema, member, &format!("{at}/{name}"))?,
                None if closed
                    || (listed.is_some() && schema.get("additionalProperties").is_none()) =>
                {
                    return Err(format!("{at}/{name}: not in the schema"));
                }
                None => {}
            }
        }
    }
    if let (Some(items), true) = (value.as_array(), schema["items"].is_object()) {
        for (i, item) in items.iter().enumerate() {
            check(spec, &schema["items"], item, &format!("{at}/{i}"))?;
        }
    }
    Ok(())
}

/// `value`'s JSON type and value against `schema`'s `type` and `enum`.
fn check_type(schema: &Value, value: &Value, at: &str) -> Result<(), String> {
    let types: Vec<&str> = match &schema["type"] {
        Value::String(t) => vec![t.as_str()],
        Value::Array(ts) => ts.iter().filter_map(Value::as_str).collect(),
        _ => return check_enum(schema, value, at),
    };
    let fits = |t: &str| match t {
        "null" => value.is_null(),
        "boolean" => value.is_boolean(),
        "integer" => value.as_f64().is_some_and(|n| n.fract() == 0.0),
        "number" => value.is_number(),
        "string" => value.is_string(),
        "array" => value.is_array(),
        "object" => value.is_object(),
        _ => true,
    };
    if !types.iter().any(|t| fits(t)) {
        return Err(format!("{at}: {value} is not of type {types:?}"));
    }
    check_enum(schema, value, at)
}

/// `value` against `schema`'s `enum`, if any.
fn check_enum(schema: &Value, value: &Value, at: &str) -> Result<(), String> {
    match schema["enum"].as_array() {
        Some(values) if !values.contains(value) => Err(format!("{at}: {value} is not in the enum")),
        _ => Ok(()),
    }
}

/// A flattened answer (`CreatedKey`: an `ApiKey` plus `key`) is one
/// closed object, not an `allOf` whose closed member would refuse `key`
/// (schemathesis found that form refusing every created key).
#[test]
fn flattened_answers_are_single_closed_objects() {
    let spec = spec();
    let schemas = spec["components"]["schemas"].as_object().expect("schemas");
    for (name, own) in [("CreatedKey", "key"), ("AcceptedDocument", "job")] {
        let schema = &schemas[name];
        assert!(schema.get("allOf").is_none(), "{name} is an allOf");
        assert_eq!(schema["additionalProperties"], false, "{name}");
        assert!(
            schema["properties"]["id"].is_object(),
            "{name}: the flattened part"
        );
        assert!(
            schema["properties"][own].is_object(),
            "{name}: its own part"
        );
    }
    let key = serde_json::json!({
        "id": "k", "tenant": "t", "principal": "p", "name": "n", "scopes": [],
        "created_at": "2026-12-07T00:00:00Z", "expires_at": null, "last_used_at": null,
        "revoked_at": null, "replaced_by": null, "key": "dcx_secret"
    });
    let created = serde_json::json!({ "$ref": "#/components/schemas/CreatedKey" });
    assert_eq!(check(&spec, &created, &key, ""), Ok(()));
}

#[test]
fn the_schema_check_refuses_unknown_missing_and_mistyped_members() {
    let spec = spec();
    let text = serde_json::json!({ "$ref": "#/components/schemas/DocumentText" });
    let good = serde_json::json!({ "id": "d1", "pages": ["one", "two"] });
    assert_eq!(check(&spec, &text, &good, ""), Ok(()));
    for bad in [
        serde_json::json!({ "id": "d1", "pages": [], "extra": 1 }),
        serde_json::json!({ "id": "d1" }),
        serde_json::json!({ "id": "d1", "pages": [1] }),
        serde_json::json!({ "id": 7, "pages": [] }),
    ] {
        assert!(check(&spec, &text, &bad, "").is_err(), "{bad}");
    }
}

/// `body` against the `Problem` schema (open to extensions).
fn problem_conforms(what: &str, body: &[u8]) {
    conforms(what, "Problem", body);
}

/// A request with `key` as its API key and `body` as JSON.
fn keyed(method: Method, uri: &str, key: &str, body: &str) -> Request<axum::body::Body> {
    Request::builder()
        .method(method)
        .uri(uri)
        .header("x-api-key", key)
        .header(header::CONTENT_TYPE, "application/json")
        .body(axum::body::Body::from(body.to_owned()))
        .expect("request")
}

#[tokio::test]
async fn real_answers_match_their_schemas() {
    let dir = TestDir::new("openapi-conformance");
    let mut config = Config::default();
    config.storage.data_dir = dir.path().to_path_buf();
    let state = local_state(&config);
    let admin = state
        .auth
        .bootstrap_key("acme", "admin", "test")
        .await
        .expect("key");
    let admin = admin.key.expose_secret().to_owned();
    let app = router(state);

    for path in ["/health/live", "/health/ready"] {
        let (status, _, body) = send(app.clone(), get_request(path)).await;
        assert_eq!(status, StatusCode::OK, "{path}");
        conforms(path, "Health", &body);
    }
    let (_, _, body) = send(app.clone(), get_request("/.well-known/jwks.json")).await;
    conforms("jwks", "Jwks", &body);

    let (status, _, body) = send(app.clone(), keyed(Method::GET, "/v1/whoami", &admin, "")).await;
    assert_eq!(status, StatusCode::OK);
    conforms("whoami", "Whoami", &body);

    let create = r#"{"name":"ci","scopes":["keys:manage"],"expires_in_secs":3600}"#;
    let (status, _, body) =
        send(app.clone(), keyed(Method::POST, "/v1/keys", &admin, create)).await;
    assert_eq!(
        status,
        StatusCode::CREATED,
        "{}",
        String::from_utf8_lossy(&body)
    );
    conforms("created key", "CreatedKey", &body);
    let id = json(&body)["id"].as_str().expect("id").to_owned();

    let rotate = format!("/v1/keys/{id}/rotate");
    let (status, _, body) = send(app.clone(), keyed(Method::POST, &rotate, &admin, "")).await;
    assert_eq!(
        status,
        StatusCode::CREATED,
        "{}",
        String::from_utf8_lossy(&body)
    );
    conforms("rotated key", "CreatedKey", &body);

    let (status, _, body) = send(
        app.clone(),
        keyed(Method::GET, "/v1/keys?limit=1", &admin, ""),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    conforms("key page", "KeyPage", &body);
    assert!(json(&body)["next"].is_string(), "a second page exists");

    // Problems: a field-level 400 and a 401.
    let (status, _, body) = send(
        app.clone(),
        keyed(
            Method::POST,
            "/v1/keys",
            &admin,
            r#"{"name":" ","scopes":[]}"#,
        ),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    problem_conforms("400 problem", &body);
    assert!(json(&body)["errors"].is_array());
    let (status, _, body) = send(app, keyed(Method::GET, "/v1/whoami", "nope", "")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    problem_conforms("401 problem", &body);
}

#[test]
fn a_server_problem_matches_the_schema() {
    let problem = docaiche_core::problem::Problem::from_error(&docaiche_core::Error::internal("x"));
    let body = serde_json::to_vec(&problem).expect("json");
    problem_conforms("500 problem", &body);
}

#[test]
fn operation_ids_and_tags_read_well() {
    assert_eq!(
        operation_id(&Method::GET, "/v1/keys/{id}"),
        "get_v1_keys_id"
    );
    assert_eq!(
        operation_id(&Method::GET, "/.well-known/jwks.json"),
        "get_well_known_jwks_json"
    );
    assert_eq!(tag("/v1/documents/{id}/text"), "documents");
    assert_eq!(tag("/.well-known/jwks.json"), "well-known");
    assert_eq!(tag("/health/live"), "health");
    assert_eq!(tag("/openapi.json"), "openapi");
}

#[tokio::test]
async fn a_rate_limited_problem_matches_the_schema() {
    let dir = TestDir::new("openapi-429");
    let mut config = Config::default();
    config.storage.data_dir = dir.path().to_path_buf();
    config.rate_limit.limits.policies.insert(
        "probes".into(),
        serde_json::from_value(serde_json::json!({
            "limits": [{ "key": "client_addr", "limit": 1, "period_secs": 60 }]
        }))
        .expect("policy"),
    );
    let app = router(local_state(&config));
    let request = || {
        let mut request = get_request("/openapi.json");
        let peer: std::net::SocketAddr = "192.0.2.10:5000".parse().expect("addr");
        request
            .extensions_mut()
            .insert(axum::extract::ConnectInfo(peer));
        request
    };
    let (status, _, _) = send(app.clone(), request()).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _, body) = send(app, request()).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    problem_conforms("429 problem", &body);
    assert!(json(&body)["violated-policies"].is_array());
}

/// A small PDF with text, from the shared corpus.
fn corpus_pdf() -> Vec<u8> {
    crate::test_support::corpus_pdf("latex-recommended__test.pdf")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn document_answers_match_their_schemas() {
    let dir = TestDir::new("openapi-documents");
    let mut config = Config::default();
    config.storage.data_dir = dir.path().to_path_buf();
    // Inline extraction for the first upload, a job for the second.
    config.documents.inline_max_bytes = 1024 * 1024;
    let state = local_state(&config);
    let key = state
        .auth
        .bootstrap_key("acme", "admin", "test")
        .await
        .expect("key");
    let key = key.key.expose_secret().to_owned();
    let app = router(state);
    let pdf = corpus_pdf();
    let upload = |content: Vec<u8>| {
        Request::post("/v1/documents?filename=a.pdf")
            .header("x-api-key", &key)
            .header(header::CONTENT_TYPE, "application/pdf")
            .body(axum::body::Body::from(content))
            .expect("request")
    };
    let (status, _, body) = send(app.clone(), upload(pdf.clone())).await;
    assert_eq!(
        status,
        StatusCode::CREATED,
        "{}",
        String::from_utf8_lossy(&body)
    );
    conforms("inline upload", "AcceptedDocument", &body);
    let id = json(&body)["id"].as_str().expect("id").to_owned();
    let (status, _, body) = send(
        app.clone(),
        keyed(Method::GET, &format!("/v1/documents/{id}"), &key, ""),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    conforms("document", "Document", &body);
    let (status, _, body) = send(
        app.clone(),
        keyed(Method::GET, &format!("/v1/documents/{id}/text"), &key, ""),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    conforms("document text", "DocumentText", &body);

    // A refused upload: a problem with a `reason`.
    let (status, _, body) = send(app.clone(), upload(b"%PDF-1.7\n".to_vec())).await;
    assert!(status.is_client_error(), "{status}");
    problem_conforms("refused upload", &body);

    // A batch: one good document, one bad.
    let good = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, &pdf);
    let batch = serde_json::json!({ "documents": [
        { "filename": "b.pdf", "content_base64": good },
        { "content_base64": "not base64!" },
    ]})
    .to_string();
    let (status, _, body) = send(
        app.clone(),
        keyed(Method::POST, "/v1/documents/batch", &key, &batch),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
    conforms("batch", "BatchResponse", &body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_background_job_matches_its_schema() {
    let dir = TestDir::new("openapi-jobs");
    let mut config = Config::default();
    config.storage.data_dir = dir.path().to_path_buf();
    config.documents.inline_max_bytes = 16;
    let state = local_state(&config);
    let key = state
        .auth
        .bootstrap_key("acme", "admin", "test")
        .await
        .expect("key");
    let key = key.key.expose_secret().to_owned();
    let app = router(state);
    let request = Request::post("/v1/documents")
        .header("x-api-key", &key)
        .header(header::CONTENT_TYPE, "application/pdf")
        .body(axum::body::Body::from(corpus_pdf()))
        .expect("request");
    let (status, _, body) = send(app.clone(), request).await;
    assert_eq!(
        status,
        StatusCode::CREATED,
        "{}",
        String::from_utf8_lossy(&body)
    );
    conforms("upload with a job", "AcceptedDocument", &body);
    let job = json(&body)["job"]["id"].as_str().expect("job").to_owned();
    let (status, _, body) = send(
        app,
        keyed(Method::GET, &format!("/v1/jobs/{job}"), &key, ""),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    conforms("job", "Job", &body);
}

/// Whether `value` matches `pattern` as the document states it.
fn pattern_matches(pattern: &str, value: &str) -> bool {
    regex::Regex::new(pattern)
        .unwrap_or_else(|e| panic!("{pattern}: {e}"))
        .is_match(value)
}

#[test]
fn the_grammar_patterns_state_exactly_what_the_server_checks() {
    use docaiche_core::{PrincipalId, TenantId};

    let long = "a".repeat(64);
    let too_long = "a".repeat(65);
    for id in [
        "",
        "acme",
        "a",
        "0",
        "-acme",
        ".acme",
        "ac me",
        "acme!",
        "é",
        "a.b_c-d@e+f",
        &long,
        &too_long,
        "acme\n",
    ] {
        let documented = pattern_matches(grammar::NAME_ID, id);
        assert_eq!(documented, TenantId::new(id).is_ok(), "tenant {id:?}");
        assert_eq!(documented, PrincipalId::new(id).is_ok(), "principal {id:?}");
    }

    // The legal-hold reason: its schema against `PlaceHold::validate`.
    let spec = spec();
    let reason = &spec["components"]["schemas"]["PlaceHold"]["properties"]["reason"];
    let max = reason["maxLength"].as_u64().expect("maxLength");
    let pattern = reason["pattern"].as_str().expect("pattern");
    let at_most = "é".repeat(500);
    let over = "é".repeat(501);
    for text in [
        "",
        " ",
        "\u{3000}",
        "case 42",
        " padded ",
        "tab\tinside",
        "bell\u{7}",
        "c1\u{85}",
        "\u{a0}nbsp",
        &at_most,
        &over,
    ] {
        let documented =
            pattern_matches(pattern, text) && (1..=max).contains(&(text.chars().count() as u64));
        let body = serde_json::json!({ "tenant": "acme", "reason": text });
        let hold: crate::routes::admin::PlaceHold =
            serde_json::from_value(body).expect("a well-typed body");
        let accepted = crate::json::Validate::validate(&hold).is_empty();
        assert_eq!(documented, accepted, "reason {text:?}");
    }

    // The e-mail of the privacy routes: its schema against the handler's.
    for email in [
        "a@b",
        "ops@acme.example",
        "a@b@c",
        "@b",
        "a@",
        "a b@c",
        " a@b",
        "é@b",
        "ab",
        "a@@",
    ] {
        let documented = pattern_matches(grammar::EMAIL, email)
            && (3..=docaiche_core::account::MAX_EMAIL_LEN).contains(&email.chars().count());
        let request: crate::routes::privacy::SubjectRequest =
            serde_json::from_value(serde_json::json!({ "email": email })).expect("well-typed");
        let accepted = crate::json::Validate::validate(&request).is_empty();
        assert_eq!(documented, accepted, "email {email:?}");
    }
}
