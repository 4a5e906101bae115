//! `[store]`, `[revocation]`, `[secrets]` and `[encryption]`: parsing, the
//! environment, and what each build and environment refuses.

use super::*;

/// `GOOD_PRODUCTION` with `extra`, keeping only the refusals of the
/// named settings' sections (a build without a feature adds its own).
fn refusal_of(config: &Config, prefix: &str) -> Vec<(String, String)> {
    match config.validate() {
        Ok(_) => Vec::new(),
        Err(_) => refusal(config)
            .into_iter()
            .filter(|(setting, reason)| {
                setting.starts_with(prefix) && !reason.contains("build with --features")
            })
            .collect(),
    }
}

#[test]
fn the_backend_sections_parse_from_the_file_and_the_environment() {
    let text = r#"
        [store]
        backend = "postgres"
        url_source = "env:DOCAICHE_DATABASE_URL"
        replica_url_source = "file:/run/secrets/replica-url"
        schema = "docaiche"
        row_level_security = true
        application_name = "api-1"
        max_connections = 20
        min_connections = 2
        acquire_timeout_ms = 1500
        [revocation]
        backend = "redis"
        url_source = "env:DOCAICHE_REDIS_URL"
        [secrets]
        sources = ["env", "file:/run/secrets/docaiche", "vault"]
        [secrets.vault]
        address = "https://vault.internal:8200"
        kv_mount = "kv"
        kv_prefix = "apps/docaiche"
        role_id_source = "file:/run/secrets/role-id"
        secret_id_source = "env:VAULT_SECRET_ID"
        [encryption]
        key_wrapper = "vault"
        transit_key = "documents"
    "#;
    let config = Config::from_toml_str(text).expect("parses");
    assert!(
        config.literal_secrets.is_empty(),
        "{:?}",
        config.literal_secrets
    );
    assert_eq!(config.store.backend, StoreBackend::Postgres);
    assert_eq!(config.store.schema.as_deref(), Some("docaiche"));
    assert!(config.store.row_level_security);
    assert_eq!(config.store.max_connections, 20);
    assert_eq!(config.revocation.backend, RevocationBackend::Redis);
    assert_eq!(
        config.revocation.redis_url(&config.rate_limit),
        (Some("env:DOCAICHE_REDIS_URL"), "revocation.url_source")
    );
    assert_eq!(
        config.secrets.chain().expect("valid"),
        [
            SecretSource::Env,
            SecretSource::Dir(PathBuf::from("/run/secrets/docaiche")),
            SecretSource::Vault
        ]
    );
    assert_eq!(config.secrets.vault.kv_mount, "kv");
    assert_eq!(config.encryption.key_wrapper, KeyWrapperKind::Vault);
    assert!(config.needs_vault());

    let env = env_of(&[
        ("DOCAICHE_STORE_BACKEND", "postgres"),
        ("DOCAICHE_DATABASE_URL_SOURCE", "env:PG_URL"),
        (
            "DOCAICHE_DATABASE_REPLICA_URL_SOURCE",
            "vault:db/replica-url",
        ),
        ("DOCAICHE_DATABASE_ROW_LEVEL_SECURITY", "true"),
        ("DOCAICHE_DATABASE_MAX_CONNECTIONS", "7"),
        ("DOCAICHE_REVOCATION_BACKEND", "redis"),
        ("DOCAICHE_ANNOUNCE_API_KEYS", "redis"),
        ("DOCAICHE_REVOCATION_REDIS_URL_SOURCE", "env:REDIS"),
        ("DOCAICHE_SECRETS_SOURCES", "env, vault"),
        ("DOCAICHE_VAULT_ADDR", "https://vault:8200"),
        ("DOCAICHE_VAULT_TOKEN_SOURCE", "env:VAULT_TOKEN"),
        ("DOCAICHE_VAULT_KV_MOUNT", "kv2"),
        ("DOCAICHE_KEY_WRAPPER", "vault"),
        ("DOCAICHE_TRANSIT_KEY", "docs"),
    ]);
    let config = Config::load(None, &env).expect("loads");
    assert_eq!(config.store.backend, StoreBackend::Postgres);
    assert_eq!(config.store.url_source.as_deref(), Some("env:PG_URL"));
    assert_eq!(
        config.store.replica_url_source.as_deref(),
        Some("vault:db/replica-url")
    );
    assert!(config.store.row_level_security);
    assert_eq!(config.store.max_connections, 7);
    assert_eq!(config.revocation.url_source.as_deref(), Some("env:REDIS"));
    assert_eq!(config.revocation.announce_api_keys, AnnounceBackend::Redis);
    assert_eq!(config.secrets.sources, ["env", "vault"]);
    assert_eq!(
        config.secrets.vault.address.as_deref(),
        Some("https://vault:8200")
    );
    assert_eq!(config.secrets.vault.kv_mount, "kv2");
    assert_eq!(config.encryption.transit_key, "docs");

    let bad = env_of(&[
        ("DOCAICHE_STORE_BACKEND", "mysql"),
        ("DOCAICHE_REVOCATION_BACKEND", "memcached"),
        ("DOCAICHE_ANNOUNCE_API_KEYS", "kafka"),
        ("DOCAICHE_KEY_WRAPPER", "kms"),
    ]);
    let problems = Config::load(None, &bad).expect_err("refused");
    let names: Vec<String> = problems.0.iter().map(ToString::to_string).collect();
    assert_eq!(problems.0.len(), 4, "{names:?}");
}

#[test]
fn the_defaults_keep_sqlite_the_store_and_the_local_key() {
    let config = Config::default();
    assert_eq!(config.store.backend, StoreBackend::Sqlite);
    assert_eq!(config.revocation.backend, RevocationBackend::Store);
    assert_eq!(config.revocation.announce_api_keys, AnnounceBackend::None);
    assert!(config.secrets.sources.is_empty());
    assert_eq!(config.encryption.key_wrapper, KeyWrapperKind::Local);
    assert!(!config.needs_vault());
}

#[test]
fn production_refuses_a_literal_database_url_without_echoing_it() {
    let config = production(
        "[store]\nbackend = \"postgres\"\nurl_source = \"postgres://app:hunter2@db/docaiche\"\n",
    );
    let refused = refusal_of(&config, "store.");
    assert_eq!(refused.len(), 1, "{refused:?}");
    assert_eq!(refused[0].0, "store.url_source");
    assert!(refused[0].1.contains("literal"), "{}", refused[0].1);
    let text = config.validate().expect_err("refused").to_string();
    assert!(!text.contains("hunter2"), "{text}");

    // A replica URL too; a reference of any provider is fine.
    let config = production(
        "[store]\nbackend = \"postgres\"\nurl_source = \"vault:db/url\"\n\
         replica_url_source = \"postgres://app:hunter2@replica/docaiche\"\n",
    );
    let refused = refusal_of(&config, "store.");
    assert_eq!(refused.len(), 1, "{refused:?}");
    assert_eq!(refused[0].0, "store.replica_url_source");

    // Missing, malformed or empty: refused in every environment.
    for extra in [
        "[store]\nbackend = \"postgres\"\n",
        "[store]\nbackend = \"postgres\"\nurl_source = \"env:\"\n",
        "[store]\nbackend = \"postgres\"\nurl_source = \"\"\n",
    ] {
        let mut config = production(extra);
        config.environment = Environment::Development;
        let refused = refusal_of(&config, "store.url_source");
        assert_eq!(refused.len(), 1, "{extra}: {refused:?}");
    }
}

#[test]
fn production_refuses_literal_vault_credentials_and_a_vault_token_from_vault() {
    let config = production(
        "[secrets]\nsources = [\"vault\"]\n[secrets.vault]\naddress = \"https://vault:8200\"\n\
         token_source = \"hvs.literal-token\"\n",
    );
    assert!(
        config
            .literal_secrets
            .contains(&"secrets.vault.token_source".to_owned())
    );
    let text = config.validate().expect_err("refused").to_string();
    assert!(text.contains("secrets.vault.token_source"), "{text}");
    assert!(!text.contains("hvs.literal-token"), "{text}");

    let mut config = production(
        "[secrets]\nsources = [\"vault\"]\n[secrets.vault]\naddress = \"https://vault:8200\"\n\
         token_source = \"vault:vault/token\"\n",
    );
    config.environment = Environment::Development;
    let refused = refusal_of(&config, "secrets.vault.token_source");
    assert_eq!(refused.len(), 1, "{refused:?}");
    assert!(
        refused[0].1.contains("cannot be a vault:"),
        "{}",
        refused[0].1
    );

    // Vault used without an address or credentials.
    let mut config = production("[encryption]\nkey_wrapper = \"vault\"\n");
    config.environment = Environment::Development;
    let names: Vec<String> = refusal_of(&config, "secrets.vault.")
        .into_iter()
        .map(|(s, _)| s)
        .collect();
    assert_eq!(
        names,
        ["secrets.vault.address", "secrets.vault.token_source"],
        "{names:?}"
    );
}

#[test]
fn auth_provider_still_works_and_conflicts_with_secrets_sources() {
    // The older setting alone is a valid production chain (GOOD_PRODUCTION).
    production("").validate().expect("auth.provider = env");
    // secrets.sources alone too.
    let mut config = production("[secrets]\nsources = [\"env\", \"file:/run/secrets/docaiche\"]\n");
    config.auth.provider = None;
    config.validate().expect("secrets.sources");
    // Both: refused, saying how to migrate.
    config.auth.provider = Some("env".into());
    let refused = refusal(&config);
    assert_eq!(refused.len(), 1, "{refused:?}");
    assert_eq!(refused[0].0, "auth.provider");
    assert!(refused[0].1.contains("secrets.sources"), "{}", refused[0].1);
    // Bad entries.
    for bad in ["file:relative", "vaults", "ENV"] {
        let mut config = Config::default();
        config.secrets.sources = vec![bad.into()];
        assert_eq!(settings(&config), ["secrets.sources"], "{bad}");
    }
    // Production without any source names both settings.
    let mut config = production("");
    config.auth.provider = None;
    let refused = refusal(&config);
    assert_eq!(refused.len(), 1, "{refused:?}");
    assert!(refused[0].1.contains("secrets.sources"), "{}", refused[0].1);
}

#[cfg(not(feature = "postgres"))]
#[test]
fn postgres_is_refused_by_a_build_without_postgres() {
    let env = env_of(&[
        ("DOCAICHE_STORE_BACKEND", "postgres"),
        ("DOCAICHE_DATABASE_URL_SOURCE", "env:DOCAICHE_DATABASE_URL"),
    ]);
    let config = Config::load(None, &env).expect("loads");
    let problems = config.validate().expect_err("refused");
    assert_eq!(problems.0.len(), 1, "{problems}");
    match &problems.0[0] {
        Error::Misconfigured { setting, reason } => {
            assert_eq!(setting, "store.backend");
            assert_eq!(
                reason,
                "this build has no postgres support; build with --features postgres"
            );
        }
        other => panic!("unexpected {other:?}"),
    }
}

#[cfg(feature = "postgres")]
#[test]
fn postgres_is_accepted_by_a_build_with_postgres() {
    let config = production(
        "[store]\nbackend = \"postgres\"\nurl_source = \"env:DOCAICHE_DATABASE_URL\"\n\
         row_level_security = true\n",
    );
    assert!(config.validate().expect("valid").is_empty());
}

#[cfg(not(feature = "redis"))]
#[test]
fn redis_revocations_are_refused_by_a_build_without_redis() {
    let mut config = Config::default();
    config.revocation.backend = RevocationBackend::Redis;
    config.revocation.url_source = Some("env:DOCAICHE_REDIS_URL".into());
    assert_eq!(settings(&config), ["revocation.backend"]);
}

#[cfg(not(feature = "redis"))]
#[test]
fn announcing_api_keys_is_refused_by_a_build_without_redis() {
    let mut config = Config::default();
    config.revocation.announce_api_keys = AnnounceBackend::Redis;
    config.revocation.url_source = Some("env:DOCAICHE_REDIS_URL".into());
    assert_eq!(settings(&config), ["revocation.announce_api_keys"]);
}

#[test]
fn announcing_api_keys_needs_the_redis_url_of_revocations() {
    let toml = r#"
        [revocation]
        announce_api_keys = "redis"
    "#;
    let config: Config = toml::from_str(toml).expect("parses");
    assert_eq!(config.revocation.announce_api_keys, AnnounceBackend::Redis);
    assert_eq!(config.revocation.backend, RevocationBackend::Store);
    let refused = refusal_of(&config, "revocation.url_source");
    assert_eq!(refused.len(), 1, "{refused:?}");
    let mut config = config;
    config.rate_limit.redis_url = Some("env:DOCAICHE_REDIS_URL".into());
    assert!(refusal_of(&config, "revocation.url_source").is_empty());
    config.revocation.url_source = Some("vault:redis/url".into());
    assert!(config.needs_vault(), "its URL may come from Vault");
    let unknown: Result<Config, _> = toml::from_str("[revocation]\nannounce_api_keys = \"kafka\"");
    assert!(unknown.is_err());
}

#[test]
fn redis_revocations_need_a_url_and_reuse_the_limiters() {
    let mut config = Config::default();
    config.revocation.backend = RevocationBackend::Redis;
    let refused = refusal_of(&config, "revocation.url_source");
    assert_eq!(refused.len(), 1, "{refused:?}");
    config.rate_limit.redis_url = Some("env:DOCAICHE_REDIS_URL".into());
    assert_eq!(
        config.revocation.redis_url(&config.rate_limit),
        (Some("env:DOCAICHE_REDIS_URL"), "rate_limit.redis_url")
    );
    assert!(refusal_of(&config, "revocation.url_source").is_empty());
    assert!(refusal_of(&config, "rate_limit.redis_url").is_empty());
    // Its own reference wins; vault: is allowed there and asks for Vault.
    config.revocation.url_source = Some("vault:redis/url".into());
    assert!(refusal_of(&config, "revocation.url_source").is_empty());
    assert!(config.needs_vault());
    assert_eq!(
        refusal_of(&config, "secrets.vault.address").len(),
        1,
        "Vault must be configured"
    );
    // A literal is refused in production, without its password.
    config.revocation.url_source = Some("redis://:hunter2@redis:6379".into());
    config.environment = Environment::Production;
    let refused = refusal_of(&config, "revocation.url_source");
    assert_eq!(refused.len(), 1, "{refused:?}");
    assert!(!refused[0].1.contains("hunter2"));
}

#[cfg(not(feature = "vault"))]
#[test]
fn vault_is_refused_by_a_build_without_vault() {
    let mut config = Config::default();
    config.encryption.key_wrapper = KeyWrapperKind::Vault;
    config.secrets.vault.address = Some("https://vault:8200".into());
    config.secrets.vault.token_source = Some("env:VAULT_TOKEN".into());
    let refused = refusal(&config);
    assert_eq!(refused.len(), 1, "{refused:?}");
    assert_eq!(refused[0].0, "secrets.vault");
    assert!(
        refused[0].1.contains("--features vault"),
        "{}",
        refused[0].1
    );
}

#[test]
fn a_vault_key_wrapper_needs_no_local_key_in_production() {
    let mut config = production(
        "[encryption]\nkey_wrapper = \"vault\"\n[secrets.vault]\n\
         address = \"https://vault:8200\"\ntoken_source = \"file:/run/secrets/vault-token\"\n",
    );
    config.keys.source = None;
    let refused = refusal_of(&config, "keys");
    assert!(refused.is_empty(), "{refused:?}");
}

#[test]
fn the_sample_shows_the_backend_defaults() {
    let sample =
        Config::from_toml_str(include_str!("../../../server.example.toml")).expect("parses");
    assert_eq!(sample.store, StoreSection::default());
    assert_eq!(sample.revocation, RevocationSection::default());
    assert_eq!(sample.secrets, SecretsSection::default());
    assert_eq!(sample.encryption, EncryptionSection::default());
}
