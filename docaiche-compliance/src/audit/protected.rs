//! [`ProtectedSink`]: keyed hashes of sensitive details, applied to every
//! event on its way to a sink.

use std::fmt;
use std::sync::Arc;

use docaiche_core::Result;
use docaiche_core::audit::{AuditEvent, AuditReceipt, AuditSink};

use super::keyed_hash::DetailHasher;

/// The `details` paths DocAIche's own crates fill with personal data in
/// clear, for [`ProtectedSink::new`] (see
/// [`DetailHasher::protect_path`] for the path syntax).
///
/// | path | written by | holds |
/// |---|---|---|
/// | `subjects.account` | `auth.failure` (docaiche-auth's login lockout tracker) | the login name as presented: an e-mail address |
/// | `subject` | `auth.lockout` (the same tracker) | the locked-out subject: the e-mail when `subject_kind` is `account`, else a client address, network or public key prefix |
/// | `email` | reserved for events that name an account by its address | an e-mail address |
///
/// `subject` is hashed whatever its kind: a path cannot depend on a
/// sibling's value, and the other kinds lose nothing an auditor needs (the
/// client address is in the event's own `client_addr`; a key prefix
/// matches with [`DetailHasher::hash_str`]). Left in clear on purpose:
/// account ids (`account.create`'s `account`, actors: pseudonymous
/// principal ids the erasure workflow needs to find), session ids, counts
/// and reason codes; privacy events carry only pseudonyms already.
pub const DEFAULT_PROTECTED_PATHS: &[&str] = &["subjects.account", "subject", "email"];

/// An [`AuditSink`] that replaces the configured `details` paths of every
/// event with their keyed hashes ([`DetailHasher`]), then hands the event
/// to the inner sink.
///
/// Put it where every event passes: directly in front of the sinks that
/// store events (behind a [`BufferedSink`](super::BufferedSink), so the
/// hashing runs on the buffer's worker and covers `record`, `submit`, the
/// [`Auditor`](super::Auditor) and the buffer's own alerts alike).
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> docaiche_core::Result<()> {
/// use std::sync::Arc;
/// use docaiche_compliance::audit::{
///     DEFAULT_PROTECTED_PATHS, DetailHasher, FileSinkConfig, JsonlFileSink, ProtectedSink,
/// };
/// use docaiche_core::audit::{AuditEvent, AuditOutcome, AuditSink};
/// use docaiche_core::{RequestContext, SecretBytes, TenantId};
///
/// let dir = std::env::temp_dir().join(format!("protected-doc-{}", uuid::Uuid::new_v4()));
/// let path = dir.join("audit.jsonl");
/// let hasher = DetailHasher::from_bytes(&SecretBytes::from(vec![42u8; 32]))?; // from your secrets
/// let trail = ProtectedSink::new(
///     Arc::new(JsonlFileSink::open(FileSinkConfig::new(&path))?),
///     hasher.clone(),
///     DEFAULT_PROTECTED_PATHS.iter().copied(),
/// );
/// let event = AuditEvent::new("auth.failure", AuditOutcome::Failure,
///         time::OffsetDateTime::now_utc(), &RequestContext::new())
///     .by(TenantId::new("acme")?, None)
///     .with_detail("subjects", serde_json::json!({ "account": "alice@example.com" }));
/// trail.record(&event).await?;
///
/// let text = std::fs::read_to_string(&path).map_err(|e| docaiche_core::Error::internal_with("read", e))?;
/// assert!(!text.contains("alice@example.com"));
/// assert!(text.contains(&hasher.hash_str("alice@example.com")));
/// # std::fs::remove_dir_all(dir).ok(); Ok(()) }
/// ```
pub struct ProtectedSink {
    inner: Arc<dyn AuditSink>,
    hasher: DetailHasher,
    paths: Vec<String>,
}

impl fmt::Debug for ProtectedSink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProtectedSink")
            .field("inner", &self.inner)
            .field("hasher", &self.hasher)
            .field("paths", &self.paths)
            .finish()
    }
}

impl ProtectedSink {
    /// Hash `paths` of every event with `hasher`, then record it in
    /// `inner`. [`DEFAULT_PROTECTED_PATHS`] covers what DocAIche's crates
    /// write; add your own events' paths to it.
    pub fn new(
        inner: Arc<dyn AuditSink>,
        hasher: DetailHasher,
        paths: impl IntoIterator<Item = impl Into<String>>,
    ) -> Self {
        let mut paths: Vec<String> = paths.into_iter().map(Into::into).collect();
        paths.sort();
        paths.dedup();
        Self {
            inner,
            hasher,
            paths,
        }
    }

    /// The protected paths (sorted, without duplicates).
    #[must_use]
    pub fn paths(&self) -> &[String] {
        &self.paths
    }

    /// `event` as the inner sink receives it: every protected path hashed.
    #[must_use]
    pub fn protect(&self, mut event: AuditEvent) -> AuditEvent {
        for path in &self.paths {
            self.hasher.protect_path(&mut event, path);
        }
        event
    }
}

#[async_trait::async_trait]
impl AuditSink for ProtectedSink {
    async fn record(&self, event: &AuditEvent) -> Result<AuditReceipt> {
        if event.details.is_empty() {
            return self.inner.record(event).await;
        }
        let protected = self.protect(event.clone());
        self.inner.record(&protected).await
    }

    async fn flush(&self) -> Result<()> {
        self.inner.flush().await
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use docaiche_core::RequestContext;
    use docaiche_core::audit::AuditOutcome;
    use std::sync::Mutex;

    /// Keeps what it receives.
    #[derive(Debug, Default)]
    struct Keep(Mutex<Vec<AuditEvent>>);

    #[async_trait::async_trait]
    impl AuditSink for Keep {
        async fn record(&self, event: &AuditEvent) -> Result<AuditReceipt> {
            self.0.lock().unwrap().push(event.clone());
            Ok(AuditReceipt::new(Some(7)))
        }
    }

    fn event(action: &str) -> AuditEvent {
        AuditEvent::new(
            action,
            AuditOutcome::Failure,
            time::OffsetDateTime::UNIX_EPOCH,
            &RequestContext::new(),
        )
    }

    #[tokio::test]
    async fn lockout_tracker_events_reach_the_sink_hashed() {
        let keep = Arc::new(Keep::default());
        let hasher = DetailHasher::from_bytes(&vec![3u8; 32].into()).unwrap();
        let sink = ProtectedSink::new(
            keep.clone(),
            hasher.clone(),
            DEFAULT_PROTECTED_PATHS.iter().copied(),
        );
        let failure = event("auth.failure").with_detail(
            "subjects",
            serde_json::json!({
                "account": "bob@example.com",
                "client_addr": "192.0.2.1",
                "key_prefix": "dk_abc",
            }),
        );
        let lockout = event("auth.lockout")
            .with_detail("subject_kind", "account".into())
            .with_detail("subject", "bob@example.com".into())
            .with_detail("retry_after_ms", 1000.into());
        let plain = event("document.read");
        assert_eq!(
            sink.record(&failure).await.unwrap(),
            AuditReceipt::new(Some(7))
        );
        sink.record(&lockout).await.unwrap();
        sink.record(&plain).await.unwrap();
        sink.flush().await.unwrap();

        let got = keep.0.lock().unwrap().clone();
        let hashed = hasher.hash_str("bob@example.com");
        assert_eq!(got[0].details["subjects"]["account"], hashed.as_str());
        assert_eq!(got[0].details["subjects"]["client_addr"], "192.0.2.1");
        assert_eq!(got[0].details["subjects"]["key_prefix"], "dk_abc");
        assert_eq!(got[1].details["subject"], hashed.as_str());
        assert_eq!(got[1].details["subject_kind"], "account");
        assert_eq!(got[1].details["retry_after_ms"], 1000);
        assert_eq!(got[2], plain);
        for e in &got {
            assert!(!serde_json::to_string(e).unwrap().contains("bob@"));
        }
        // The caller's event is untouched; Debug shows no key.
        assert_eq!(failure.details["subjects"]["account"], "bob@example.com");
        assert!(format!("{sink:?}").contains("DetailHasher([REDACTED])"));
        assert_eq!(sink.paths(), ["email", "subject", "subjects.account"]);
    }
}
