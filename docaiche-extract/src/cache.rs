//! [`CachedExtractor`]: results cached by content hash, extractor version
//! and options, so an unchanged document is never processed twice.

use std::sync::Arc;
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use docaiche_core::cache::{CacheKey, CacheStore};
use docaiche_core::extract::{ExtractInput, ExtractOptions, Extraction, Extractor};

use crate::validate::{declared_is_pdf, sha256_hex};

/// The cache namespace.
pub const NAMESPACE: &str = "extract";

/// Wraps an [`Extractor`] with a [`CacheStore`].
///
/// The key is `sha256(content) : sha256(version) : options`; the value the
/// JSON extraction followed by the sanitised copy, if any. Only successes
/// are cached. A cache outage is a miss (the document is extracted), never
/// an error. The declared media type is checked before the lookup, so a
/// cached PDF cannot be fetched under a non-PDF type.
///
/// ```
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// use std::sync::Arc;
/// use docaiche_extract::{CachedExtractor, Limits, PdfExtractor};
/// use docaiche_extract::contracts::Extractor;
///
/// let cache = Arc::new(docaiche_store::memory::MemoryCacheStore::new());
/// let cached = CachedExtractor::new(Arc::new(PdfExtractor::new(Limits::default())), cache);
/// assert!(cached.version().starts_with("cached("));
/// # });
/// ```
#[derive(Debug, Clone)]
pub struct CachedExtractor {
    inner: Arc<dyn Extractor>,
    cache: Arc<dyn CacheStore>,
    ttl: Duration,
    version: String,
}

impl CachedExtractor {
    /// Caches `inner`'s results in `cache` for a day.
    #[must_use]
    pub fn new(inner: Arc<dyn Extractor>, cache: Arc<dyn CacheStore>) -> Self {
        let version = format!("cached({})", inner.version());
        Self {
            inner,
            cache,
            ttl: Duration::from_secs(24 * 3600),
            version,
        }
    }

    /// Sets how long results stay cached.
    #[must_use]
    pub const fn with_ttl(mut self, ttl: Duration) -> Self {
        self.ttl = ttl;
        self
    }

    /// The cache key for `content` under `options`.
    ///
    /// # Errors
    /// Never in practice (the key is hex and short); `InvalidInput` if the
    /// core key rules ever tighten.
    pub fn key(&self, content: &[u8], options: &ExtractOptions) -> docaiche_core::Result<CacheKey> {
        let pages = options
            .max_pages
            .map_or_else(|| "all".to_owned(), |p| p.to_string());
        CacheKey::new(
            NAMESPACE,
            format!(
                "{}:{}:p{pages}:s{}",
                sha256_hex(content),
                &sha256_hex(self.inner.version().as_bytes())[..16],
                u8::from(options.sanitize)
            ),
        )
    }
}

fn encode(extraction: &Extraction) -> Option<Bytes> {
    let json = serde_json::to_vec(extraction).ok()?;
    let sanitized = extraction.sanitized.as_ref().map_or(&[][..], |b| &b[..]);
    let mut out = BytesMut::with_capacity(9 + json.len() + sanitized.len());
    out.put_u64(u64::try_from(json.len()).ok()?);
    out.put_u8(u8::from(extraction.sanitized.is_some()));
    out.put_slice(&json);
    out.put_slice(sanitized);
    Some(out.freeze())
}

fn decode(value: &Bytes) -> Option<Extraction> {
    let len = usize::try_from(u64::from_be_bytes(value.get(..8)?.try_into().ok()?)).ok()?;
    let has_sanitized = *value.get(8)? == 1;
    let json = value.get(9..9usize.checked_add(len)?)?;
    let mut extraction: Extraction = serde_json::from_slice(json).ok()?;
    if has_sanitized {
        extraction.sanitized = Some(value.slice(9 + len..));
    }
    Some(extraction)
}

#[async_trait::async_trait]
impl Extractor for CachedExtractor {
    fn version(&self) -> &str {
        &self.version
    }

    async fn extract(
        &self,
        input: ExtractInput,
        options: &ExtractOptions,
    ) -> docaiche_core::Result<Extraction> {
        crate::trace::extract(&self.version, async move {
            if let Some(declared) = &input.declared_content_type
                && !declared_is_pdf(declared)
            {
                return Err(docaiche_core::Error::UnsupportedMediaType {
                    expected: "application/pdf".into(),
                });
            }
            let key = self.key(&input.content, options)?;
            if let Ok(Some(entry)) = self.cache.get(&key).await
                && let Some(hit) = decode(&entry.value)
            {
                return Ok(hit);
            }
            let extraction = self.inner.extract(input, options).await?;
            if let Some(value) = encode(&extraction) {
                // A failed write is a future miss, not an error.
                let _ = self.cache.set(&key, value, self.ttl).await;
            }
            Ok(extraction)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_round_trip() {
        let mut e = Extraction::default();
        e.pages = vec!["a".into(), "b c".into()];
        e.sha256 = "00".into();
        e.sanitized = Some(Bytes::from_static(b"%PDF-1.4 clean"));
        let back = encode(&e).and_then(|v| decode(&v));
        assert_eq!(back, Some(e.clone()));
        e.sanitized = None;
        assert_eq!(encode(&e).and_then(|v| decode(&v)), Some(e));
        assert_eq!(
            decode(&Bytes::from_static(b"\xff\xff\xff\xff\xff\xff\xff\xff\x00")),
            None
        );
    }
}
