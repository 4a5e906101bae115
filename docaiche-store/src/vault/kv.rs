//! [`VaultSecretProvider`]: secrets from a KV v2 mount, cached.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use docaiche_core::resilience::SingleFlight;
use docaiche_core::secret::{SecretBytes, SecretString};
use docaiche_core::secret_provider::{SecretProvider, SecretValue, validate_secret_name};
use docaiche_core::{Error, Result};
use reqwest::Method;
use serde::Deserialize;
use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

use super::client::{VaultClient, VaultStatus, parse, status_error};
use crate::trace::traced;

/// A cache key: the secret's name and the version asked for (`None`: latest).
type Key = (String, Option<u64>);

/// A [`SecretProvider`] over a KV v2 mount.
///
/// The secret `jwt/signing-key` is read from
/// `<kv_mount>/data/<kv_prefix>/jwt/signing-key`, field `kv_field`
/// (`value` by default), whose string is returned as UTF-8 bytes with the KV
/// version. A name that is absent (or whose version was deleted or
/// destroyed) is `Ok(None)`, so the provider chains. Two mistakes are errors
/// rather than `None`, so that a chain does not fall through to another
/// provider on a typo: a secret present but without a string `kv_field`
/// (`Internal`), and a `kv_mount` where nothing is mounted (`Misconfigured`).
///
/// ## Cache
///
/// Reads are kept for `cache_ttl_ms` (by the client's [`Clock`](docaiche_core::Clock)).
/// Past the TTL, the first caller refreshes the secret from Vault while
/// callers arriving meanwhile are served the cached value (for at most
/// `cache_max_stale_ms` past the TTL), so a refresh never makes a burst of
/// requests wait. Concurrent misses for the same name share one request
/// (single-flight). A failed refresh returns its error to the caller that
/// ran it and leaves the entry stale; absent secrets are not cached, so a
/// secret created in Vault is seen at once. The cache is bounded
/// (`cache_capacity`): when full, expired entries go first, then the oldest.
/// A specific version ([`VaultSecretProvider::get_version`]) is cached under
/// its own key.
#[derive(Clone)]
pub struct VaultSecretProvider {
    inner: Arc<Inner>,
}

struct Inner {
    client: VaultClient,
    mount: String,
    /// `<kv_mount>/data/` plus `<kv_prefix>/` if any.
    data_path: String,
    field: String,
    ttl: Duration,
    max_stale: Duration,
    capacity: usize,
    cache: Mutex<HashMap<Key, Entry>>,
    flights: SingleFlight<Key, Option<SecretValue>>,
}

struct Entry {
    value: SecretValue,
    fetched_at: Duration,
    refreshing: bool,
}

impl fmt::Debug for VaultSecretProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VaultSecretProvider")
            .field("client", &self.inner.client)
            .field("path", &self.inner.data_path)
            .field("field", &self.inner.field)
            .field("cache_ttl", &self.inner.ttl)
            .finish_non_exhaustive()
    }
}

/// Clears an entry's `refreshing` flag however the refresh ends (success,
/// error, or the caller's future being dropped).
struct RefreshGuard<'a> {
    inner: &'a Inner,
    key: &'a Key,
}

impl Drop for RefreshGuard<'_> {
    fn drop(&mut self) {
        if let Some(entry) = self.inner.lock().get_mut(self.key) {
            entry.refreshing = false;
        }
    }
}

impl VaultSecretProvider {
    /// A provider reading the KV mount, prefix and field of `client`'s
    /// configuration.
    #[must_use]
    pub fn new(client: VaultClient) -> Self {
        let config = client.config();
        let mut data_path = format!("{}/data/", config.kv_mount);
        if !config.kv_prefix.is_empty() {
            data_path.push_str(&config.kv_prefix);
            data_path.push('/');
        }
        Self {
            inner: Arc::new(Inner {
                data_path,
                mount: config.kv_mount.clone(),
                field: config.kv_field.clone(),
                ttl: config.cache_ttl(),
                max_stale: config.cache_max_stale(),
                capacity: config.cache_capacity,
                cache: Mutex::new(HashMap::new()),
                flights: SingleFlight::new(),
                client,
            }),
        }
    }

    /// The client (for its stats and health check).
    #[must_use]
    pub fn client(&self) -> &VaultClient {
        &self.inner.client
    }

    /// A specific KV version of `name` (`Ok(None)` if it does not exist, or
    /// was deleted or destroyed).
    ///
    /// # Errors
    /// `InvalidInput` for an invalid name or version 0; otherwise as
    /// [`SecretProvider::get`].
    pub async fn get_version(&self, name: &str, version: u64) -> Result<Option<SecretValue>> {
        if version == 0 {
            return Err(Error::invalid_input("secret versions start at 1"));
        }
        self.read(name, Some(version)).await
    }

    /// Forget every cached secret.
    pub fn clear_cache(&self) {
        self.inner.lock().clear();
    }

    async fn read(&self, name: &str, version: Option<u64>) -> Result<Option<SecretValue>> {
        validate_secret_name(name)?;
        let inner = &*self.inner;
        let key: Key = (name.to_owned(), version);
        let refreshing = {
            let now = inner.now();
            let mut cache = inner.lock();
            match cache.get_mut(&key) {
                Some(entry) if inner.is_fresh(entry, now) => return Ok(Some(entry.value.clone())),
                Some(entry)
                    if entry.refreshing
                        && now.saturating_sub(entry.fetched_at) < inner.ttl + inner.max_stale =>
                {
                    return Ok(Some(entry.value.clone()));
                }
                Some(entry) => {
                    entry.refreshing = true;
                    true
                }
                None => false,
            }
        };
        let _guard = refreshing.then_some(RefreshGuard { inner, key: &key });
        inner
            .flights
            .run(key.clone(), || async {
                // A caller that missed the cache just before another's fetch
                // landed finds the fresh entry here instead of fetching again.
                if !refreshing
                    && let Some(entry) = inner.lock().get(&key)
                    && inner.is_fresh(entry, inner.now())
                {
                    return Ok(Some(entry.value.clone()));
                }
                let fetched = inner.fetch(name, version).await?;
                inner.remember(&key, fetched.as_ref());
                Ok(fetched)
            })
            .await
    }
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, HashMap<Key, Entry>> {
        // The map holds plain values, consistent after any panic.
        self.cache.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn now(&self) -> Duration {
        self.client.clock().monotonic()
    }

    fn is_fresh(&self, entry: &Entry, now: Duration) -> bool {
        now.saturating_sub(entry.fetched_at) < self.ttl
    }

    /// Cache (or forget) the outcome of a fetch.
    fn remember(&self, key: &Key, value: Option<&SecretValue>) {
        let mut cache = self.lock();
        let Some(value) = value else {
            cache.remove(key);
            return;
        };
        if self.ttl.is_zero() {
            return;
        }
        let now = self.now();
        if !cache.contains_key(key) && cache.len() >= self.capacity {
            let limit = self.ttl + self.max_stale;
            cache.retain(|_, entry| now.saturating_sub(entry.fetched_at) < limit);
            if cache.len() >= self.capacity
                && let Some(oldest) = cache
                    .iter()
                    .min_by_key(|(_, entry)| entry.fetched_at)
                    .map(|(key, _)| key.clone())
            {
                cache.remove(&oldest);
            }
        }
        cache.insert(
            key.clone(),
            Entry {
                value: value.clone(),
                fetched_at: now,
                refreshing: false,
            },
        );
    }

    async fn fetch(&self, name: &str, version: Option<u64>) -> Result<Option<SecretValue>> {
        traced!("vault", "kv", "get", async move {
            let mut path = format!("{}{name}", self.data_path);
            if let Some(version) = version {
                path.push_str(&format!("?version={version}"));
            }
            let reply = self
                .client
                .call("kv read", Method::GET, &path, None)
                .await?;
            match reply.status {
                200 => {}
                404 if VaultStatus::new("kv read", &reply).says("no handler for route") => {
                    // Not an absent secret: nothing is mounted there. Saying
                    // `None` would let a chain fall through on a typo.
                    return Err(Error::misconfigured(
                        "vault.kv_mount",
                        format!("no secrets engine is mounted at `{}`", self.mount),
                    ));
                }
                404 => return Ok(None),
                _ => return Err(status_error("kv read", &reply)),
            }
            let read: KvRead = parse("kv read", &reply.body)?;
            let Some(mut fields) = read.data.data else {
                // A deleted or destroyed version.
                return Ok(None);
            };
            let mut value = match fields.remove(&self.field) {
                Some(KvField::Text(text)) => text,
                _ => {
                    return Err(Error::internal(format!(
                        "vault kv secret `{name}` has no string field `{}`",
                        self.field
                    )));
                }
            };
            // Move the buffer over rather than copy it.
            let bytes = SecretBytes::new(std::mem::take(value.expose_secret_mut()).into_bytes());
            let mut secret = SecretValue::new(bytes);
            if let Some(version) = read.data.metadata.and_then(|m| m.version) {
                secret = secret.with_version(version);
            }
            Ok(Some(secret))
        })
        .await
    }
}

#[async_trait::async_trait]
impl SecretProvider for VaultSecretProvider {
    fn describe(&self) -> String {
        format!("vault:kv:{}", self.inner.data_path.trim_end_matches('/'))
    }

    async fn get(&self, name: &str) -> Result<Option<SecretValue>> {
        self.read(name, None).await
    }
}

#[derive(Deserialize)]
struct KvRead {
    data: KvData,
}

#[derive(Deserialize)]
struct KvData {
    data: Option<HashMap<String, KvField>>,
    metadata: Option<KvMetadata>,
}

#[derive(Deserialize)]
struct KvMetadata {
    version: Option<u64>,
}

/// One field of a KV secret: a string goes straight into a zeroizing
/// [`SecretString`]; anything else is skipped unread, so no field's value
/// lingers in an ordinary `String`.
enum KvField {
    Text(SecretString),
    Other,
}

impl<'de> Deserialize<'de> for KvField {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct FieldVisitor;

        impl<'de> Visitor<'de> for FieldVisitor {
            type Value = KvField;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a KV field")
            }

            fn visit_str<E: de::Error>(self, v: &str) -> Result<KvField, E> {
                Ok(KvField::Text(SecretString::new(v.to_owned())))
            }

            fn visit_string<E: de::Error>(self, v: String) -> Result<KvField, E> {
                Ok(KvField::Text(SecretString::new(v)))
            }

            fn visit_bool<E: de::Error>(self, _: bool) -> Result<KvField, E> {
                Ok(KvField::Other)
            }

            fn visit_i64<E: de::Error>(self, _: i64) -> Result<KvField, E> {
                Ok(KvField::Other)
            }

            fn visit_u64<E: de::Error>(self, _: u64) -> Result<KvField, E> {
                Ok(KvField::Other)
            }

            fn visit_f64<E: de::Error>(self, _: f64) -> Result<KvField, E> {
                Ok(KvField::Other)
            }

            fn visit_unit<E: de::Error>(self) -> Result<KvField, E> {
                Ok(KvField::Other)
            }

            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<KvField, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(KvField::Other)
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<KvField, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(KvField::Other)
            }
        }

        deserializer.deserialize_any(FieldVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kv_fields_keep_strings_and_skip_the_rest() {
        let body = br#"{"data":{"data":{"value":"s3cret-value","n":1,"o":{"a":[1,2]},"z":null},
            "metadata":{"version":7}}}"#;
        let read: KvRead = serde_json::from_slice(body).expect("parses");
        let mut fields = read.data.data.expect("has data");
        assert!(
            matches!(fields.remove("value"), Some(KvField::Text(t)) if t.expose_secret() == "s3cret-value")
        );
        assert!(matches!(fields.remove("o"), Some(KvField::Other)));
        assert_eq!(read.data.metadata.and_then(|m| m.version), Some(7));
    }
}
