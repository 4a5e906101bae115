//! `[rate_limit]`: built-in policies, overrides, backend keys and their checks.

use super::*;

#[test]
fn the_builtin_rate_limit_policies_cover_every_route_class() {
    let config = RateLimitSection::default().effective();
    let policies = config.build().expect("built-in policies are valid");
    for class in RateLimitSection::CLASSES {
        assert!(policies.has_class(class), "{class}");
    }
    let documents = policies.policy("documents").expect("documents");
    let reads = policies.policy("default").expect("default");
    assert!(
        documents.limits()[0].quota().limit < reads.limits()[0].quota().limit,
        "document processing is stricter than reads"
    );
    assert!(documents.concurrency().is_some());
    assert_eq!(
        policies.policy("probes").expect("probes").limits()[0].key_selector(),
        docaiche_ratelimit::policy::KeySelector::ClientAddr
    );
}

#[test]
fn a_rate_limit_policy_in_the_file_replaces_the_builtin_one() {
    let config = Config::from_toml_str(
        r#"
        [rate_limit]
        trusted_proxies = ["10.0.0.0/8"]
        [rate_limit.policies.documents]
        limits = [{ key = "tenant", limit = 5, period_secs = 60 }]
        [rate_limit.policies.documents-pro]
        limits = [{ key = "tenant", limit = 50, period_secs = 60 }]
        [rate_limit.tiers.pro]
        documents = "documents-pro"
        [rate_limit.tenants]
        acme = "pro"
        "#,
    )
    .expect("parses");
    config.validate().expect("valid");
    let policies = config.rate_limit.effective().build().expect("valid");
    let documents = policies.policy("documents").expect("documents");
    assert_eq!(documents.limits()[0].quota().limit.get(), 5);
    assert!(documents.concurrency().is_none(), "replaced, not merged");
    assert!(policies.has_class("default") && policies.has_class("probes"));
}

#[test]
fn invalid_rate_limit_settings_are_refused_by_name() {
    let config = Config::from_toml_str(
        r#"
        [rate_limit.policies.default]
        limits = [{ key = "tenant", limit = 0, period_secs = 60 }]
        "#,
    )
    .expect("parses");
    assert_eq!(
        settings(&config),
        ["rate_limit.policies.default.limits[0].limit"]
    );

    let config = Config::from_toml_str(
        "[rate_limit.policies.\"evil\\\"name\"]\nlimits = [{ key = \"global\", limit = 1, period_secs = 1 }]\n",
    )
    .expect("parses");
    let refused = settings(&config);
    assert_eq!(refused.len(), 1, "{refused:?}");
    assert!(
        refused[0].starts_with("rate_limit.policies.evil"),
        "{refused:?}"
    );

    let err = Config::from_toml_str("[rate_limit]\ntrusted = []\n").expect_err("unknown key");
    assert!(err.to_string().contains("unknown field"), "{err}");
}

#[test]
fn trusting_every_address_as_a_proxy_is_refused_in_production() {
    let mut config = production("");
    config.rate_limit.limits.trusted_proxies = vec!["0.0.0.0/0".into()];
    assert_eq!(settings(&config), ["rate_limit.trusted_proxies"]);
    config.environment = Environment::Development;
    let warnings = config.validate().expect("development warns");
    assert!(
        warnings
            .iter()
            .any(|w| w.setting == "rate_limit.trusted_proxies")
    );
}

#[test]
fn trusted_proxies_come_from_the_environment() {
    let env = env_of(&[("DOCAICHE_TRUSTED_PROXIES", "10.0.0.0/8, 192.168.1.1,")]);
    let config = Config::load(None, &env).expect("loads");
    assert_eq!(
        config.rate_limit.limits.trusted_proxies,
        ["10.0.0.0/8", "192.168.1.1"]
    );
    config.validate().expect("valid");
}

#[test]
fn the_rate_limit_backend_keys_parse_beside_the_policies() {
    let section = RateLimitSection::default();
    assert_eq!(section.backend, RateLimitBackend::Local);
    assert_eq!(section.on_redis_failure, OnRedisFailure::Fallback);
    assert!((section.instance_share - 1.0).abs() < f64::EPSILON);
    assert!(section.redis_url.is_none() && !section.redis_cluster);

    let config = Config::from_toml_str(
        r#"
        [rate_limit]
        backend = "redis"
        redis_url = "env:DOCAICHE_REDIS_URL"
        redis_cluster = true
        on_redis_failure = "fail_closed"
        instance_share = 0.25
        trusted_proxies = ["10.0.0.0/8"]
        [rate_limit.policies.default]
        limits = [{ key = "tenant", limit = 5, period_secs = 1.5 }]
        "#,
    )
    .expect("parses");
    let section = &config.rate_limit;
    assert_eq!(section.backend, RateLimitBackend::Redis);
    assert_eq!(section.redis_url.as_deref(), Some("env:DOCAICHE_REDIS_URL"));
    assert!(section.redis_cluster);
    assert_eq!(section.on_redis_failure, OnRedisFailure::FailClosed);
    assert!((section.instance_share - 0.25).abs() < f64::EPSILON);
    assert_eq!(section.limits.trusted_proxies, ["10.0.0.0/8"]);
    assert_eq!(
        section
            .effective()
            .build()
            .expect("valid")
            .policy("default")
            .expect("default")
            .limits()[0]
            .quota()
            .limit
            .get(),
        5
    );

    for bad in [
        "[rate_limit]\nbackend = \"memcached\"\n",
        "[rate_limit]\non_redis_failure = \"retry\"\n",
        "[rate_limit]\nredis_urls = \"env:X\"\n",
        "[rate_limit]\nredis_cluster = \"yes\"\n",
    ] {
        assert!(Config::from_toml_str(bad).is_err(), "{bad}");
    }
    let err =
        Config::from_toml_str("[rate_limit]\nredis_urls = \"env:X\"\n").expect_err("unknown key");
    assert!(err.to_string().contains("unknown field"), "{err}");
}

#[test]
fn the_rate_limit_backend_comes_from_the_environment() {
    let env = env_of(&[
        ("DOCAICHE_RATE_LIMIT_BACKEND", "Redis"),
        ("DOCAICHE_REDIS_URL_SOURCE", "file:/run/secrets/redis-url"),
    ]);
    let config = Config::load(None, &env).expect("loads");
    assert_eq!(config.rate_limit.backend, RateLimitBackend::Redis);
    assert_eq!(
        config.rate_limit.redis_url.as_deref(),
        Some("file:/run/secrets/redis-url")
    );

    let env = env_of(&[("DOCAICHE_RATE_LIMIT_BACKEND", "memcached")]);
    let text = Config::load(None, &env).expect_err("refused").to_string();
    assert!(text.contains("DOCAICHE_RATE_LIMIT_BACKEND"), "{text}");
}

/// `config`'s refusals other than the backend itself (refused by a
/// build without Redis).
fn refusal_besides_backend(config: &Config) -> Vec<(String, String)> {
    if config.validate().is_ok() {
        return Vec::new();
    }
    let mut refused = refusal(config);
    refused.retain(|(setting, _)| setting != "rate_limit.backend");
    refused
}

#[test]
fn production_refuses_a_literal_redis_url_without_echoing_it() {
    let mut config = production(
        "[rate_limit]\nbackend = \"redis\"\nredis_url = \"redis://:hunter2@redis:6379\"\n",
    );
    let refused = refusal_besides_backend(&config);
    assert_eq!(refused.len(), 1, "{refused:?}");
    assert_eq!(refused[0].0, "rate_limit.redis_url");
    assert!(refused[0].1.contains("literal"), "{}", refused[0].1);
    let text = config.validate().expect_err("refused").to_string();
    assert!(!text.contains("hunter2"), "{text}");
    assert!(!format!("{config:?}").contains("hunter2"));

    // Development warns (and, with Redis support, starts).
    config.environment = Environment::Development;
    #[cfg(feature = "redis")]
    {
        let warnings = config.validate().expect("development warns");
        let warning = warnings
            .iter()
            .find(|w| w.setting == "rate_limit.redis_url")
            .expect("warned");
        assert!(!warning.message.contains("hunter2"));
    }

    // A reference is fine; a malformed one or vault: is refused everywhere.
    config.environment = Environment::Production;
    config.rate_limit.redis_url = Some("env:DOCAICHE_REDIS_URL".into());
    assert!(refusal_besides_backend(&config).is_empty());
    for bad in ["env:", "file:relative", "vault:redis/url", ""] {
        config.rate_limit.redis_url = Some(bad.into());
        let refused = refusal_besides_backend(&config);
        assert_eq!(refused.len(), 1, "{bad}: {refused:?}");
        assert_eq!(refused[0].0, "rate_limit.redis_url", "{bad}");
    }
    config.rate_limit.redis_url = None;
    let refused = refusal_besides_backend(&config);
    assert_eq!(refused.len(), 1, "{refused:?}");
    assert_eq!(refused[0].0, "rate_limit.redis_url");
    assert!(refused[0].1.contains("required"));
}

#[test]
fn an_instance_share_out_of_range_is_refused() {
    for share in [0.0, -0.5, 1.01, f64::NAN, f64::INFINITY] {
        let mut config = Config::default();
        config.rate_limit.instance_share = share;
        assert_eq!(settings(&config), ["rate_limit.instance_share"], "{share}");
    }
    let err = Config::from_toml_str("[rate_limit]\ninstance_share = 2.0\n")
        .expect("parses")
        .validate()
        .expect_err("refused")
        .to_string();
    assert!(err.contains("rate_limit.instance_share"), "{err}");
    for share in [0.01, 0.5, 1.0] {
        let mut config = Config::default();
        config.rate_limit.instance_share = share;
        config.validate().expect("in range");
    }
}

#[cfg(not(feature = "redis"))]
#[test]
fn the_redis_backend_is_refused_by_a_build_without_redis() {
    let env = env_of(&[
        ("DOCAICHE_RATE_LIMIT_BACKEND", "redis"),
        ("DOCAICHE_REDIS_URL_SOURCE", "env:DOCAICHE_REDIS_URL"),
    ]);
    let config = Config::load(None, &env).expect("loads");
    let problems = config.validate().expect_err("refused");
    assert_eq!(problems.0.len(), 1, "{problems}");
    match &problems.0[0] {
        Error::Misconfigured { setting, reason } => {
            assert_eq!(setting, "rate_limit.backend");
            assert_eq!(
                reason,
                "this build has no Redis support; build with --features redis"
            );
        }
        other => panic!("unexpected {other:?}"),
    }
}

#[cfg(feature = "redis")]
#[test]
fn the_redis_backend_is_accepted_by_a_build_with_redis() {
    let mut config =
        production("[rate_limit]\nbackend = \"redis\"\nredis_url = \"env:DOCAICHE_REDIS_URL\"\n");
    assert!(config.validate().expect("valid").is_empty());
    config.rate_limit.on_redis_failure = OnRedisFailure::FailOpen;
    let warnings = config.validate().expect("allowed, noted");
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert_eq!(warnings[0].setting, "rate_limit.on_redis_failure");
}

#[test]
fn the_sample_shows_the_builtin_rate_limit_policies() {
    let sample =
        Config::from_toml_str(include_str!("../../../server.example.toml")).expect("parses");
    assert_eq!(
        sample.rate_limit.limits.policies,
        RateLimitSection::builtin_policies().policies
    );
}
