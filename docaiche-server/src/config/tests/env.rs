//! The `DOCAICHE_*` table and the layers: what each variable accepts, that
//! the documented table is the one in the code, and how mistakes are named.

use super::*;
use crate::config::env::VARIABLES;
use crate::http::HttpsMode;

/// The `(variable, setting)` rows of the table in the module docs.
fn documented_variables() -> Vec<(String, String)> {
    include_str!("../mod.rs")
        .lines()
        .filter_map(|line| line.strip_prefix("//! | `DOCAICHE_"))
        .filter_map(|row| {
            let mut cells = row.split('|').map(str::trim);
            let name = format!("DOCAICHE_{}", cells.next()?.strip_suffix('`')?);
            let key = cells.next()?.strip_prefix('`')?.strip_suffix('`')?;
            Some((name, key.to_owned()))
        })
        .collect()
}

#[test]
fn the_documented_variables_are_the_table() {
    let table: Vec<(String, String)> = VARIABLES
        .iter()
        .map(|v| (v.name.to_owned(), v.key.to_owned()))
        .collect();
    assert_eq!(documented_variables(), table);
}

#[test]
fn every_variable_sets_its_key() {
    // A value of the right type for each key, read back through the whole
    // loader: a wrong key in the table fails here, not in production.
    for variable in VARIABLES {
        let value = match variable.key {
            "environment" => "production",
            "server.bind" | "metrics.bind" => "10.0.0.5:9100",
            "server.behind_proxy" | "store.row_level_security" => "true",
            "http.https" => "refuse",
            "log.format" => "pretty",
            "store.backend" => "postgres",
            "rate_limit.backend" | "revocation.backend" | "revocation.announce_api_keys" => "redis",
            "encryption.key_wrapper" => "vault",
            "usage.enabled" => "false",
            "usage.flush_interval_secs" => "30",
            key if key.ends_with("_secs")
                || key.ends_with("_bytes")
                || key.ends_with("connections")
                || key.ends_with("per_address") =>
            {
                "7"
            }
            _ => "https://one.example",
        };
        let env = env_of(&[(variable.name, value)]);
        let config =
            Config::load(None, &env).unwrap_or_else(|e| panic!("{} = {value}: {e}", variable.name));
        assert_ne!(
            config,
            Config::default(),
            "{} changed nothing",
            variable.name
        );
    }
}

#[test]
fn http_settings_come_from_the_environment() {
    let env = env_of(&[
        ("DOCAICHE_HTTPS", "Redirect"),
        ("DOCAICHE_TLS_CERT_FILE", "/tls/cert.pem"),
        ("DOCAICHE_TLS_KEY_FILE", "/tls/key.pem"),
        ("DOCAICHE_HTTPS_TRUSTED_PROXIES", "10.0.0.0/8, 192.0.2.1"),
        ("DOCAICHE_IDLE_TIMEOUT_SECS", "90"),
        ("DOCAICHE_PUBLIC_ORIGIN", " https://api.example "),
        ("DOCAICHE_HEADER_READ_TIMEOUT_SECS", "5"),
        ("DOCAICHE_MAX_CONNECTIONS", "500"),
        ("DOCAICHE_MAX_CONNECTIONS_PER_ADDRESS", "8"),
    ]);
    let http = Config::load(None, &env).expect("loads").http;
    assert_eq!(http.https, HttpsMode::Redirect);
    assert!(http.has_tls());
    assert_eq!(http.trusted_proxies, ["10.0.0.0/8", "192.0.2.1"]);
    assert_eq!(http.idle_timeout(), Duration::from_secs(90));
    assert_eq!(http.public_origin.as_deref(), Some("https://api.example"));
    assert_eq!(http.header_read_timeout(), Duration::from_secs(5));
    assert_eq!(http.max_connections, 500);
    assert_eq!(http.max_connections_per_address, 8);

    let bad = env_of(&[
        ("DOCAICHE_HTTPS", "soon"),
        ("DOCAICHE_IDLE_TIMEOUT_SECS", "soon"),
        ("DOCAICHE_HEADER_READ_TIMEOUT_SECS", "soon"),
        ("DOCAICHE_MAX_CONNECTIONS", "soon"),
        ("DOCAICHE_MAX_CONNECTIONS_PER_ADDRESS", "soon"),
    ]);
    let problems = Config::load(None, &bad).expect_err("refused");
    assert_eq!(problems.0.len(), 5, "{problems}");
}

#[test]
fn an_empty_public_origin_unsets_the_one_in_the_file() {
    let dir = crate::test_support::TestDir::new("config-env");
    let path = dir.path().join("server.toml");
    std::fs::write(&path, "[http]\npublic_origin = \"https://api.example\"\n").expect("write");
    let config = Config::load(Some(&path), &no_env).expect("loads");
    assert_eq!(
        config.http.public_origin.as_deref(),
        Some("https://api.example")
    );
    let env = env_of(&[("DOCAICHE_PUBLIC_ORIGIN", " ")]);
    let config = Config::load(Some(&path), &env).expect("loads");
    assert_eq!(config.http.public_origin, None);
}

#[test]
fn keywords_take_any_case_and_booleans_only_true_or_false() {
    let env = env_of(&[
        ("DOCAICHE_ENV", " Production "),
        ("DOCAICHE_STORE_BACKEND", "PostgreSQL"),
        ("DOCAICHE_BEHIND_PROXY", " true"),
    ]);
    let config = Config::load(None, &env).expect("loads");
    assert_eq!(config.environment, Environment::Production);
    assert_eq!(config.store.backend, StoreBackend::Postgres);
    assert!(config.server.behind_proxy);
    for bad in ["yes", "1", "TRUE", ""] {
        let env = env_of(&[("DOCAICHE_BEHIND_PROXY", bad)]);
        assert!(Config::load(None, &env).is_err(), "{bad:?}");
    }
}

#[test]
fn variables_outside_the_table_are_not_configuration() {
    // Secrets for `auth.provider = "env"` and anything else DOCAICHE_*.
    let env = |name: &str| (name != "DOCAICHE_CONFIG").then(|| "hunter2".to_owned());
    let known = |name: &str| VARIABLES.iter().any(|v| v.name == name);
    let unknown_only = move |name: &str| if known(name) { None } else { env(name) };
    assert_eq!(
        Config::load(None, &unknown_only).expect("loads"),
        Config::default()
    );
}

#[test]
fn a_bad_variable_is_named_without_its_value() {
    let env = env_of(&[
        ("DOCAICHE_ENV", "hunter2"),
        ("DOCAICHE_REQUEST_TIMEOUT_SECS", "hunter2"),
        ("DOCAICHE_BIND", "hunter2"),
        ("DOCAICHE_DATABASE_ROW_LEVEL_SECURITY", "hunter2"),
    ]);
    let text = Config::load(None, &env).expect_err("refused").to_string();
    assert!(
        text.starts_with("configuration refused (4 problems)"),
        "{text}"
    );
    for name in [
        "`DOCAICHE_ENV`: unknown value, expected `development` or `production`",
        "`DOCAICHE_REQUEST_TIMEOUT_SECS`: expected a number",
        "`DOCAICHE_BIND`: invalid socket address syntax",
        "`DOCAICHE_DATABASE_ROW_LEVEL_SECURITY`: expected `true` or `false`",
    ] {
        assert!(text.contains(name), "{name} missing from {text}");
    }
    assert!(!text.contains("hunter2"), "{text}");
}

#[test]
fn a_mistake_in_the_file_is_named_by_key_file_and_line() {
    let dir = crate::test_support::TestDir::new("config-file");
    let path = dir.path().join("server.toml");
    std::fs::write(
        &path,
        "[server]\nbind = \"127.0.0.1:9000\"\n\nrequest_timeout_secs = \"hunter2\"\n",
    )
    .expect("write");
    let problems = Config::load(Some(&path), &no_env).expect_err("refused");
    let text = problems.to_string();
    let expected = format!(
        "`server.request_timeout_secs`: {}: line 4: invalid type: found a string, expected u64",
        path.display()
    );
    assert!(text.contains(&expected), "{text}");
    assert!(!text.contains("hunter2"), "{text}");

    std::fs::write(
        &path,
        "[server]\n\n[[auth.bindings]]\ntenant = \"acme\"\nrole = 1\n",
    )
    .expect("write");
    let text = Config::load(Some(&path), &no_env)
        .expect_err("refused")
        .to_string();
    assert!(text.contains("`auth.bindings[0].role`"), "{text}");
    assert!(text.contains("line 5:"), "{text}");
}

#[test]
fn the_environment_is_checked_after_the_file() {
    // As before figment: a bad file is reported alone.
    let dir = crate::test_support::TestDir::new("config-order");
    let path = dir.path().join("server.toml");
    std::fs::write(&path, "bogus = 1\n").expect("write");
    let env = env_of(&[("DOCAICHE_BIND", "localhost")]);
    let problems = Config::load(Some(&path), &env).expect_err("refused");
    assert_eq!(problems.0.len(), 1, "{problems}");
    assert!(problems.to_string().contains("`bogus`"), "{problems}");
}
