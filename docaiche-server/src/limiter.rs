//! The rate limiter behind every route: in process, or (with the `redis`
//! feature and `rate_limit.backend = "redis"`) on Redis behind a
//! [`ResilientRateLimiter`](docaiche_ratelimit::fallback::ResilientRateLimiter)
//! applying `rate_limit.on_redis_failure`.

use std::sync::Arc;

use docaiche_core::clock::SystemClock;
use docaiche_core::health::HealthCheck;
use docaiche_core::{Error, RateLimiter};
use docaiche_ratelimit::local::LocalRateLimiter;

use crate::config::{Config, EnvLookup, RateLimitBackend};

/// The limiter the router uses, and the readiness check of its backend.
#[derive(Debug, Clone)]
pub(crate) struct Limiter {
    /// Every route's limiter.
    pub(crate) limiter: Arc<dyn RateLimiter>,
    /// The backend's readiness check (optional: a down Redis degrades the
    /// service), if it has one.
    pub(crate) health_check: Option<Arc<dyn HealthCheck>>,
    /// Where the limiter keeps its state.
    pub(crate) backend: RateLimitBackend,
    /// The circuit breaker guarding the shared backend, if any (for
    /// `/metrics`).
    pub(crate) breaker: Option<docaiche_core::CircuitBreaker>,
}

impl Limiter {
    /// The in-process limiter: each instance counts on its own.
    pub(crate) fn local() -> Self {
        Self {
            limiter: Arc::new(LocalRateLimiter::new(Arc::new(SystemClock::new()))),
            health_check: None,
            backend: RateLimitBackend::Local,
            breaker: None,
        }
    }

    /// The limiter `config.rate_limit` asks for; `env` resolves an `env:`
    /// reference in `rate_limit.redis_url`. Nothing is sent to Redis here:
    /// connections are made on first use, so a Redis that is down at
    /// start-up is an outage for `on_redis_failure`, not a start-up error.
    ///
    /// # Errors
    /// [`Error::Misconfigured`] naming the setting when the Redis URL cannot
    /// be resolved or does not parse, or Redis is asked for by a build
    /// without the `redis` feature.
    pub(crate) async fn from_config(config: &Config, env: EnvLookup<'_>) -> Result<Self, Error> {
        match config.rate_limit.backend {
            RateLimitBackend::Local => {
                let _ = env;
                Ok(Self::local())
            }
            #[cfg(feature = "redis")]
            RateLimitBackend::Redis => redis::build(config, env).await,
            #[cfg(not(feature = "redis"))]
            RateLimitBackend::Redis => Err(Error::misconfigured(
                "rate_limit.backend",
                crate::config::NO_REDIS_SUPPORT,
            )),
        }
    }
}

#[cfg(feature = "redis")]
mod redis {
    use std::sync::Arc;

    use docaiche_core::clock::SystemClock;
    use docaiche_core::{Error, RateLimiter};
    use docaiche_ratelimit::fallback::{FailurePolicy, ResilientRateLimiter};
    use docaiche_ratelimit::local::LocalRateLimiter;
    use docaiche_ratelimit::redis::RedisRateLimiter;

    use super::Limiter;
    use crate::config::{
        Config, EnvLookup, OnRedisFailure, RateLimitBackend, RedisUrlSource, SecretRef,
    };

    /// The setting every error here names.
    const SETTING: &str = "rate_limit.redis_url";

    /// A Redis limiter behind the configured failure policy.
    pub(super) async fn build(config: &Config, env: EnvLookup<'_>) -> Result<Limiter, Error> {
        let section = &config.rate_limit;
        let urls = resolve_urls(section.redis_url.as_deref(), section.redis_cluster, env)?;
        let builder = if section.redis_cluster {
            RedisRateLimiter::cluster_builder(urls)
        } else {
            let [url] = <[String; 1]>::try_from(urls).map_err(|_| {
                Error::misconfigured(
                    SETTING,
                    "names several URLs; set rate_limit.redis_cluster = true for a Redis \
                     Cluster, or give one URL",
                )
            })?;
            RedisRateLimiter::builder(url)
        };
        // The library names its own settings `rate_limit.redis.*`; the
        // server's are `rate_limit.redis_url`. Its messages never hold the URL.
        let redis = builder.build().await.map_err(|e| match e {
            Error::Misconfigured { reason, .. } => Error::Misconfigured {
                setting: SETTING.into(),
                reason,
            },
            other => other,
        })?;
        let health_check = Arc::new(redis.health_check());
        let policy = match section.on_redis_failure {
            OnRedisFailure::FailClosed => FailurePolicy::FailClosed,
            OnRedisFailure::FailOpen => FailurePolicy::FailOpen,
            OnRedisFailure::Fallback => FailurePolicy::Fallback {
                local: Arc::new(LocalRateLimiter::new(Arc::new(SystemClock::new()))),
                share: section.instance_share,
            },
        };
        let limiter = ResilientRateLimiter::builder(Arc::new(redis))
            .policy(policy)
            .build()
            .map_err(|e| match e {
                Error::Misconfigured { reason, .. } => Error::Misconfigured {
                    setting: "rate_limit.instance_share".into(),
                    reason,
                },
                other => other,
            })?;
        let breaker = Some(limiter.circuit_breaker().clone());
        let limiter: Arc<dyn RateLimiter> = Arc::new(limiter);
        Ok(Limiter {
            limiter,
            health_check: Some(health_check),
            backend: RateLimitBackend::Redis,
            breaker,
        })
    }

    /// The Redis URL(s) `redis_url` refers to: one, or with `cluster` a
    /// comma-separated list. Errors name the reference, never the URL.
    pub(super) fn resolve_urls(
        redis_url: Option<&str>,
        cluster: bool,
        env: EnvLookup<'_>,
    ) -> Result<Vec<String>, Error> {
        let bad = |reason: String| Error::misconfigured(SETTING, reason);
        let source = redis_url
            .ok_or_else(|| bad("is required with rate_limit.backend = \"redis\"".to_owned()))?;
        let text = match RedisUrlSource::parse(source).map_err(|r| bad(r.to_owned()))? {
            RedisUrlSource::Literal(url) => url,
            RedisUrlSource::Reference(SecretRef::Env(name)) => env(&name)
                .filter(|v| !v.trim().is_empty())
                .ok_or_else(|| bad(format!("environment variable {name} is not set")))?,
            RedisUrlSource::Reference(SecretRef::File(path)) => std::fs::read_to_string(&path)
                .map_err(|e| bad(format!("cannot read {}: {e}", path.display())))?,
            RedisUrlSource::Reference(SecretRef::Vault(_)) => {
                return Err(bad(
                    "`vault:` is not supported for the Redis URL; use env:NAME or file:/path"
                        .to_owned(),
                ));
            }
        };
        let urls: Vec<String> = if cluster {
            text.split(',')
                .map(str::trim)
                .filter(|u| !u.is_empty())
                .map(str::to_owned)
                .collect()
        } else {
            vec![text.trim().to_owned()]
        };
        if urls.iter().all(String::is_empty) {
            return Err(bad("refers to an empty value".to_owned()));
        }
        Ok(urls)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_env(_: &str) -> Option<String> {
        None
    }

    #[tokio::test]
    async fn the_default_backend_is_local_without_a_health_check() {
        let limiter = Limiter::from_config(&Config::default(), &no_env)
            .await
            .expect("local");
        assert_eq!(limiter.backend, RateLimitBackend::Local);
        assert!(limiter.health_check.is_none());
    }

    #[cfg(not(feature = "redis"))]
    #[tokio::test]
    async fn redis_is_refused_without_the_feature() {
        let mut config = Config::default();
        config.rate_limit.backend = RateLimitBackend::Redis;
        let err = Limiter::from_config(&config, &no_env)
            .await
            .expect_err("no redis support");
        match err {
            Error::Misconfigured { setting, reason } => {
                assert_eq!(setting, "rate_limit.backend");
                assert!(reason.contains("--features redis"), "{reason}");
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[cfg(feature = "redis")]
    #[test]
    fn redis_urls_resolve_from_references_without_echoing_them() {
        use super::redis::resolve_urls;

        let env = |name: &str| {
            (name == "REDIS_URL").then(|| "redis://:hunter2@a:6379, redis://b:6379,".to_owned())
        };
        assert_eq!(
            resolve_urls(Some("env:REDIS_URL"), true, &env).expect("cluster"),
            ["redis://:hunter2@a:6379", "redis://b:6379"]
        );
        assert_eq!(
            resolve_urls(Some("env:REDIS_URL"), false, &env).expect("one"),
            ["redis://:hunter2@a:6379, redis://b:6379,"]
        );
        let dir = crate::test_support::TestDir::new("limiter-url-file");
        let file = dir.path().join("redis-url");
        std::fs::write(&file, "redis://:hunter2@c:6379\n").expect("write");
        let reference = format!("file:{}", file.display());
        assert_eq!(
            resolve_urls(Some(&reference), false, &env).expect("file"),
            ["redis://:hunter2@c:6379"]
        );
        for (source, expected) in [
            ("env:MISSING", "MISSING is not set"),
            ("file:/nonexistent/redis-url", "cannot read"),
            ("vault:redis/url", "not supported"),
        ] {
            match resolve_urls(Some(source), false, &env).expect_err(source) {
                Error::Misconfigured { setting, reason } => {
                    assert_eq!(setting, "rate_limit.redis_url");
                    assert!(reason.contains(expected), "{reason}");
                }
                other => panic!("unexpected {other:?}"),
            }
        }
    }

    #[cfg(feature = "redis")]
    #[tokio::test]
    async fn a_malformed_redis_url_is_refused_without_echoing_it() {
        let mut config = Config::default();
        config.rate_limit.backend = RateLimitBackend::Redis;
        config.rate_limit.redis_url = Some("env:REDIS_URL".into());
        let env = |_: &str| Some("nope://user:hunter2@".to_owned());
        let err = Limiter::from_config(&config, &env)
            .await
            .expect_err("not a Redis URL");
        let text = format!("{err} {err:?}");
        assert!(text.contains("rate_limit.redis_url"), "{text}");
        assert!(!text.contains("hunter2"), "{text}");
    }
}
