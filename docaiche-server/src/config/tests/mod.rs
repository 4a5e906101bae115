//! Configuration tests: loading, the environment, validation in development
//! and production, and the helpers the sibling test modules share.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

use docaiche_core::{PrincipalId, TenantId};

use super::validate::find_literal_secrets;
use super::*;

fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> + use<> {
    let map: HashMap<String, String> = pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    move |name| map.get(name).cloned()
}

fn no_env(_: &str) -> Option<String> {
    None
}

/// A production configuration that passes validation.
const GOOD_PRODUCTION: &str = r#"
    environment = "production"
    [server]
    bind = "10.0.0.5:8080"
    [storage]
    data_dir = "/var/lib/docaiche"
    [cors]
    allowed_origins = ["https://app.example.com"]
    [http]
    https = "refuse"
    trusted_proxies = ["10.0.0.0/24"]
    [keys]
    source = "vault:transit/docaiche"
    [auth]
    provider = "env"
    [metrics]
    bind = "10.0.0.5:9100"
"#;

fn refusal(config: &Config) -> Vec<(String, String)> {
    let problems = config.validate().expect_err("production must refuse");
    problems
        .0
        .iter()
        .map(|e| match e {
            Error::Misconfigured { setting, reason } => (setting.to_string(), reason.to_string()),
            other => panic!("unexpected {other:?}"),
        })
        .collect()
}

fn settings(config: &Config) -> Vec<String> {
    refusal(config).into_iter().map(|(s, _)| s).collect()
}

fn production(extra: &str) -> Config {
    Config::from_toml_str(&format!("{GOOD_PRODUCTION}\n{extra}")).expect("parses")
}

#[test]
fn defaults_are_a_development_setup_on_loopback() {
    let config = Config::load(None, &no_env).expect("defaults load");
    assert_eq!(config, Config::default());
    assert_eq!(config.environment, Environment::Development);
    assert_eq!(config.server.bind, "127.0.0.1:8080".parse().expect("addr"));
    assert_eq!(config.storage.data_dir, PathBuf::from("./data"));
    assert_eq!(config.server.request_timeout(), Duration::from_secs(30));
    assert_eq!(config.server.shutdown_grace(), Duration::from_secs(30));
    assert_eq!(config.server.body_limit_bytes, 16 * 1024 * 1024);
    assert_eq!(config.log.format, LogFormat::Json);
    assert_eq!(
        config.key_source(),
        KeySource::Generated(PathBuf::from("./data/keys/development.key"))
    );
}

#[test]
fn development_defaults_start_with_a_warning_each() {
    let warnings = Config::default()
        .validate()
        .expect("development accepts defaults");
    let names: Vec<_> = warnings.iter().map(|w| w.setting.as_ref()).collect();
    assert!(names.contains(&"keys.source"), "{names:?}");
    assert!(names.contains(&"cors.allowed_origins"), "{names:?}");
    assert!(names.contains(&"auth.provider"), "{names:?}");
}

#[test]
fn auth_settings_come_from_the_file_and_the_environment() {
    let config = Config::from_toml_str(
        r#"
        [auth]
        provider = "file:/run/secrets/docaiche"
        pepper_versions = [1, 2]
        current_pepper = 2
        bootstrap_role = "reader"
        [auth.jwt]
        algorithm = "ES256"
        kid = "2026-11"
        [auth.lockout]
        max_failures_per_hour = 20
        [auth.rbac.roles]
        reader = ["documents:read"]
        root = { grants = ["*:*"], cross_tenant = true }
        [[auth.bindings]]
        tenant = "ops"
        principal = "alice"
        role = "root"
        cross_tenant = true
        "#,
    )
    .expect("parses");
    assert!(
        config.literal_secrets.is_empty(),
        "{:?}",
        config.literal_secrets
    );
    config.validate().expect("valid");
    assert_eq!(
        config.auth.provider(),
        Ok(AuthProvider::Dir(PathBuf::from("/run/secrets/docaiche")))
    );
    assert_eq!(config.auth.lockout.max_failures_per_hour, 20);
    let policy = config.auth.role_policy().expect("roles");
    let bindings = config.auth.role_bindings(&policy).expect("bindings");
    let resolved = policy.resolve(
        &bindings,
        &TenantId::new("ops").expect("tenant"),
        &PrincipalId::new("alice").expect("principal"),
    );
    assert!(
        resolved
            .permissions
            .allows(&docaiche_core::Permission::TENANTS_CROSS)
    );

    let config = Config::load(
        None,
        &env_of(&[
            ("DOCAICHE_AUTH_PROVIDER", "env"),
            ("DOCAICHE_JWT_ISSUER", "https://api.example.com"),
        ]),
    )
    .expect("loads");
    assert_eq!(config.auth.provider(), Ok(AuthProvider::Env));
    assert_eq!(config.auth.jwt.issuer, "https://api.example.com");
}

#[test]
fn invalid_auth_settings_are_refused_by_name() {
    for (toml, setting) in [
        ("[auth]\nprovider = \"vault\"", "auth.provider"),
        ("[auth]\nprovider = \"file:relative\"", "auth.provider"),
        ("[auth]\ncurrent_pepper = 2", "auth.current_pepper"),
        ("[auth]\npepper_versions = [0]", "auth.pepper_versions"),
        ("[auth.jwt]\nalgorithm = \"HS256\"", "auth.jwt.algorithm"),
        ("[auth.jwt]\nalgorithm = \"none\"", "auth.jwt.algorithm"),
        ("[auth.jwt]\nkid = \"../x\"", "auth.jwt.kid"),
        ("[auth.jwt]\nissuer = \"\"", "auth.jwt.issuer"),
        (
            "[auth.lockout]\nmax_failures_per_hour = 1000",
            "auth.lockout.max_failures_per_hour",
        ),
        ("[auth]\nbootstrap_role = \"nope\"", "auth.bootstrap_role"),
        (
            "[auth]\nbootstrap_role = \"platform-admin\"",
            "auth.bootstrap_role",
        ),
        (
            "[auth]\nrotation_overlap_secs = 99999999",
            "auth.rotation_overlap_secs",
        ),
        (
            "[auth.rbac.roles]\nroot = [\"*:*\"]",
            "auth.rbac.roles.root",
        ),
        (
            "[[auth.bindings]]\ntenant = \"acme\"\nprincipal = \"bob\"\nrole = \"platform-admin\"",
            "auth.bindings[0]",
        ),
        (
            "[[auth.bindings]]\ntenant = \"acme\"\nprincipal = \"bob\"\nrole = \"ghost\"",
            "auth.bindings[0]",
        ),
    ] {
        let config = Config::from_toml_str(toml).expect("parses");
        let names = settings(&config);
        assert!(names.iter().any(|n| n == setting), "{toml}: {names:?}");
    }
    // A literal pepper in the file is a leaked secret.
    let problems =
        Config::from_toml_str("[auth]\npepper = \"hunter2hunter2\"").expect_err("unknown key");
    assert!(problems.to_string().contains("auth.pepper"), "{problems}");
    assert!(!problems.to_string().contains("hunter2"), "{problems}");
}

#[test]
fn environment_overrides_the_file_which_overrides_defaults() {
    let dir = crate::test_support::TestDir::new("config");
    let path = dir.path().join("server.toml");
    std::fs::write(
        &path,
        r#"
        [server]
        bind = "127.0.0.1:9000"
        request_timeout_secs = 5
        body_limit_bytes = 1000
        [log]
        filter = "debug"
        "#,
    )
    .expect("write config");
    let env = env_of(&[
        ("DOCAICHE_CONFIG", path.to_str().expect("utf-8 path")),
        ("DOCAICHE_BIND", "127.0.0.1:9100"),
        ("DOCAICHE_DATA_DIR", "/tmp/elsewhere"),
        ("DOCAICHE_LOG_FORMAT", "pretty"),
        (
            "DOCAICHE_CORS_ALLOWED_ORIGINS",
            "https://a.example, https://b.example,",
        ),
        ("DOCAICHE_SHUTDOWN_GRACE_SECS", "7"),
    ]);
    let config = Config::load(None, &env).expect("loads");
    // From the environment.
    assert_eq!(config.server.bind, "127.0.0.1:9100".parse().expect("addr"));
    assert_eq!(config.storage.data_dir, PathBuf::from("/tmp/elsewhere"));
    assert_eq!(config.log.format, LogFormat::Pretty);
    assert_eq!(
        config.cors.allowed_origins,
        ["https://a.example", "https://b.example"]
    );
    assert_eq!(config.server.shutdown_grace_secs, 7);
    // From the file.
    assert_eq!(config.server.request_timeout_secs, 5);
    assert_eq!(config.server.body_limit_bytes, 1000);
    assert_eq!(config.log.filter, "debug");
    // Untouched default.
    assert_eq!(config.environment, Environment::Development);

    // --config wins over DOCAICHE_CONFIG.
    let other = dir.path().join("other.toml");
    std::fs::write(&other, "[server]\nrequest_timeout_secs = 9\n").expect("write");
    let config = Config::load(Some(&other), &env).expect("loads");
    assert_eq!(config.server.request_timeout_secs, 9);
}

#[test]
fn every_unparsable_environment_variable_is_reported() {
    let env = env_of(&[
        ("DOCAICHE_ENV", "staging"),
        ("DOCAICHE_BIND", "localhost"),
        ("DOCAICHE_BODY_LIMIT_BYTES", "-1"),
    ]);
    let problems = Config::load(None, &env).expect_err("refused");
    let text = problems.to_string();
    for name in ["DOCAICHE_ENV", "DOCAICHE_BIND", "DOCAICHE_BODY_LIMIT_BYTES"] {
        assert!(text.contains(name), "{name} missing from {text}");
    }
}

#[test]
fn unknown_keys_are_rejected() {
    for text in [
        "bogus = 1",
        "[server]\nbind = \"127.0.0.1:1\"\nport = 80",
        "[nope]\n",
    ] {
        let err = Config::from_toml_str(text).expect_err("unknown key must fail");
        assert!(err.to_string().contains("unknown field"), "{err}");
    }
}

#[test]
fn a_literal_secret_is_reported_by_name_without_its_value() {
    let err =
        Config::from_toml_str("[database]\npassword = \"hunter2\"\nurl_ref = \"env:DB_URL\"\n")
            .expect_err("unknown section");
    let text = err.to_string();
    assert!(text.contains("`database.password`"), "{text}");
    assert!(!text.contains("hunter2"), "{text}");

    let mut found = Vec::new();
    let table: toml::Table = r#"
        api_token = "env:TOKEN"
        [jwt]
        private-key = "-----BEGIN"
        [client_secrets]
        pepper_list = ["abc"]
        name = "plain"
        [secrets]
        sources = ["env", "vault"]
        [secrets.vault]
        address = "https://vault:8200"
        token_source = "hvs.literal"
        role_id_source = "env:ROLE_ID"
    "#
    .parse()
    .expect("toml");
    find_literal_secrets(&table, "", false, &mut found);
    found.sort();
    // `[secrets]` configures the chain: only its secret-named keys count.
    assert_eq!(
        found,
        [
            "client_secrets.name",
            "client_secrets.pepper_list",
            "jwt.private-key",
            "secrets.vault.token_source"
        ]
    );
}

#[test]
fn a_valid_production_config_is_accepted() {
    let warnings = production("").validate().expect("valid production config");
    assert!(warnings.is_empty(), "{warnings:?}");
    let mut config = production("");
    config.keys.source = None;
    config.keys.local_key_file = Some(PathBuf::from("/run/secrets/docaiche.key"));
    config.cors.allowed_origins.clear();
    config
        .validate()
        .expect("an operator-managed key file and no CORS are fine");
}

#[test]
fn production_refuses_generated_keys() {
    let mut config = production("");
    config.keys.source = None;
    let refused = refusal(&config);
    assert_eq!(refused.len(), 1, "{refused:?}");
    assert_eq!(refused[0].0, "keys.source");
    assert!(
        refused[0].1.contains("keys.local_key_file"),
        "says how to fix it"
    );
}

#[test]
fn production_refuses_open_cors() {
    let mut config = production("");
    config.cors.allowed_origins = vec!["*".into()];
    assert_eq!(settings(&config), ["cors.allowed_origins"]);
}

#[test]
fn production_refuses_plaintext_http_origins() {
    let mut config = production("");
    config.cors.allowed_origins = vec!["https://ok.example".into(), "http://app.example".into()];
    let refused = refusal(&config);
    assert_eq!(refused.len(), 1, "{refused:?}");
    assert_eq!(refused[0].0, "cors.allowed_origins");
    assert!(refused[0].1.contains("http://app.example"));
}

#[test]
fn production_refuses_a_literal_key_without_echoing_it() {
    let mut config = production("");
    config.keys.source = Some("c2VjcmV0LWtleS1tYXRlcmlhbA==".into());
    let refused = refusal(&config);
    assert_eq!(refused.len(), 1, "{refused:?}");
    assert_eq!(refused[0].0, "keys.source");
    assert!(refused[0].1.contains("literal"));
    assert!(!refused[0].1.contains("c2VjcmV0"));
}

#[test]
fn production_refuses_a_literal_secret_found_in_the_file() {
    let mut config = production("");
    config.literal_secrets = vec!["database.password".into()];
    assert_eq!(settings(&config), ["database.password"]);
    // Development only warns.
    config.environment = Environment::Development;
    let warnings = config.validate().expect("development warns");
    assert!(warnings.iter().any(|w| w.setting == "database.password"));
}

#[test]
fn production_reports_every_problem_at_once() {
    let config = Config::from_toml_str(
        r#"
        environment = "production"
        [cors]
        allowed_origins = ["*"]
        "#,
    )
    .expect("parses");
    let mut config = config;
    config.literal_secrets = vec!["database.password".into()];
    let mut names = settings(&config);
    names.sort();
    assert_eq!(
        names,
        [
            "auth.provider",
            "cors.allowed_origins",
            "database.password",
            "http.https",
            "keys.source",
            "metrics.bind"
        ]
    );
    let text = config.validate().expect_err("refused").to_string();
    assert!(
        text.starts_with("configuration refused (6 problems)"),
        "{text}"
    );
}

#[test]
fn production_with_only_defaults_names_keys_and_cors() {
    let config = Config::load(None, &env_of(&[("DOCAICHE_ENV", "production")])).expect("loads");
    let mut names = settings(&config);
    names.sort();
    assert_eq!(
        names,
        [
            "auth.provider",
            "cors.allowed_origins",
            "http.https",
            "keys.source",
            "metrics.bind"
        ]
    );
}

#[test]
fn invalid_settings_are_refused_in_development_too() {
    let mut config = Config::default();
    config.server.request_timeout_secs = 0;
    config.server.body_limit_bytes = 0;
    config.server.json_body_limit_bytes = 0;
    config.cors.allowed_origins = vec!["https://app.example/path".into()];
    config.keys.source = Some("env:".into());
    config.log.filter = "=[".into();
    let mut names = settings(&config);
    names.sort();
    assert_eq!(
        names,
        [
            "cors.allowed_origins",
            "keys.source",
            "log.filter",
            "server.body_limit_bytes",
            "server.json_body_limit_bytes",
            "server.request_timeout_secs",
        ]
    );
    let config =
        Config::load(None, &env_of(&[("DOCAICHE_JSON_BODY_LIMIT_BYTES", "2048")])).expect("loads");
    assert_eq!(config.server.json_body_limit_bytes, 2048);
    assert_eq!(
        Config::default().server.json_body_limit_bytes,
        crate::json::DEFAULT_JSON_BODY_LIMIT
    );
}

#[test]
fn a_wildcard_bind_without_a_proxy_is_allowed_but_noted() {
    let mut config = production("");
    config.server.bind = "0.0.0.0:8080".parse().expect("addr");
    let warnings = config.validate().expect("allowed");
    assert_eq!(warnings.len(), 1);
    assert_eq!(warnings[0].setting, "server.bind");
    config.server.behind_proxy = true;
    assert!(config.validate().expect("allowed").is_empty());
}

#[test]
fn secret_references_parse() {
    assert_eq!(
        SecretRef::parse("env:DOCAICHE_KEY"),
        Ok(SecretRef::Env("DOCAICHE_KEY".into()))
    );
    assert_eq!(
        SecretRef::parse("file:/run/secrets/key"),
        Ok(SecretRef::File("/run/secrets/key".into()))
    );
    assert_eq!(
        SecretRef::parse("vault:transit/docaiche"),
        Ok(SecretRef::Vault("transit/docaiche".into()))
    );
    for bad in [
        "env:",
        "env:A-B",
        "file:relative",
        "vault:../x",
        "vault:",
        "hunter2",
    ] {
        assert!(SecretRef::parse(bad).is_err(), "{bad}");
    }
}

#[test]
fn the_sample_configuration_parses_and_validates() {
    let text = include_str!("../../../server.example.toml");
    let config = Config::from_toml_str(text).expect("sample parses");
    assert!(config.literal_secrets.is_empty());
    config
        .validate()
        .expect("sample is a valid development config");
}

#[test]
fn the_sample_shows_the_builtin_documents_settings() {
    let text = include_str!("../../../server.example.toml");
    let sample = Config::from_toml_str(text).expect("sample parses");
    assert_eq!(sample.documents, crate::config::DocumentsSection::default());
}

#[test]
fn the_sample_shows_the_builtin_auth_settings() {
    let text = include_str!("../../../server.example.toml");
    let sample = Config::from_toml_str(text).expect("sample parses");
    assert_eq!(sample.auth, AuthSection::default());
}

mod backends;
mod env;
mod rate_limit;
