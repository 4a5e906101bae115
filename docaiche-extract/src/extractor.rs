//! [`PdfExtractor`]: the [`Extractor`] implementation, and the synchronous
//! core it runs off the async runtime.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;

use bytes::Bytes;
use docaiche_core::extract::{ExtractInput, ExtractOptions, Extraction, Extractor};
use rayon::prelude::*;
use tokio::sync::Semaphore;

use crate::document;
use crate::error::{ExtractError, Result};
use crate::limits::{Deadline, Limits};
use crate::risk;
use crate::text::{self, Shared};
use crate::validate::validate;

/// Identifies this extractor in cache keys; bump on any change to output.
pub const VERSION: &str = concat!("docaiche-extract/", env!("CARGO_PKG_VERSION"), "+text1");

/// Validates and extracts one document on the calling thread (pages in
/// parallel on rayon's pool). This is the whole pipeline without the async
/// wrapper: use it from CLIs, fuzzers and benches.
///
/// # Errors
/// An [`ExtractError`] naming why the document was refused.
pub fn extract_blocking(
    content: &[u8],
    declared_content_type: Option<&str>,
    filename: Option<&str>,
    options: &ExtractOptions,
    limits: &Limits,
) -> Result<Extraction> {
    let deadline = Deadline::new(limits.max_wall_time);
    let validated = validate(content, declared_content_type, filename, limits)?;
    let run = || -> Result<Extraction> {
        let doc = document::load(content, limits)?;
        deadline.check()?;
        let mut pages = document::pages(&doc, limits, &deadline)?;
        let page_count = u32::try_from(pages.len()).unwrap_or(u32::MAX);
        if let Some(max) = options.max_pages {
            pages.truncate(usize::try_from(max).unwrap_or(usize::MAX));
        }
        let shared = Shared::new(&doc, limits, deadline);
        let texts: Vec<String> = if pages.len() > 1 {
            pages
                .par_iter()
                .map(|p| text::page_text(&shared, p))
                .collect::<Result<_>>()?
        } else {
            pages
                .iter()
                .map(|p| text::page_text(&shared, p))
                .collect::<Result<_>>()?
        };
        let mut out = Extraction::default();
        out.pages = texts;
        out.info = document::info(&doc, page_count);
        out.risks = risk::scan(&doc);
        out.sha256.clone_from(&validated.sha256);
        if options.sanitize {
            deadline.check()?;
            out.sanitized = Some(Bytes::from(risk::sanitize(&doc)?));
        }
        Ok(out)
    };
    // lopdf (and, should it ever happen, our own code) may panic on hostile
    // input: contain it to this document.
    catch_unwind(AssertUnwindSafe(run)).unwrap_or(Err(ExtractError::ParserPanic))
}

/// The PDF [`Extractor`]: validation, limits, extraction and risk flags,
/// run with `spawn_blocking` behind a semaphore so that at most
/// `concurrency` documents use CPU at once.
///
/// ```
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// use docaiche_extract::{Limits, PdfExtractor};
/// use docaiche_extract::contracts::{ExtractInput, ExtractOptions, Extractor};
///
/// let extractor = PdfExtractor::new(Limits::default());
/// let err = extractor
///     .extract(ExtractInput::new(b"PK\x03\x04 not a pdf".to_vec().into()), &ExtractOptions::default())
///     .await
///     .unwrap_err();
/// assert_eq!(err.code(), docaiche_core::ErrorCode::UnsupportedMediaType);
/// # });
/// ```
#[derive(Debug, Clone)]
pub struct PdfExtractor {
    limits: Arc<Limits>,
    permits: Arc<Semaphore>,
}

impl PdfExtractor {
    /// An extractor with `limits`, running as many documents at once as
    /// there are cores.
    #[must_use]
    pub fn new(limits: Limits) -> Self {
        let cores = std::thread::available_parallelism().map_or(2, std::num::NonZero::get);
        Self::with_concurrency(limits, cores)
    }

    /// An extractor running at most `concurrency` documents at once (at
    /// least one).
    #[must_use]
    pub fn with_concurrency(limits: Limits, concurrency: usize) -> Self {
        Self {
            limits: Arc::new(limits),
            permits: Arc::new(Semaphore::new(concurrency.max(1))),
        }
    }

    /// The limits in force.
    #[must_use]
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Like [`Extractor::extract`] but with this crate's error, which keeps
    /// the precise reason for media-type and size refusals.
    ///
    /// # Errors
    /// An [`ExtractError`] naming why the document was refused.
    pub async fn extract_detailed(
        &self,
        input: ExtractInput,
        options: &ExtractOptions,
    ) -> Result<Extraction> {
        let permit = Arc::clone(&self.permits)
            .acquire_owned()
            .await
            .map_err(|_| ExtractError::Internal("extractor closed".into()))?;
        let limits = Arc::clone(&self.limits);
        let options = options.clone();
        let budget = limits.max_wall_time;
        let task = tokio::task::spawn_blocking(move || {
            let _permit = permit;
            extract_blocking(
                &input.content,
                input.declared_content_type.as_deref(),
                input.filename.as_deref(),
                &options,
                &limits,
            )
        });
        // The deadline is cooperative; the parser's load step is not, so
        // the caller stops waiting after twice the budget (the worker keeps
        // its permit until it ends, so concurrency stays bounded).
        match tokio::time::timeout(budget.saturating_mul(2), task).await {
            Ok(Ok(result)) => result,
            Ok(Err(join)) => Err(ExtractError::Internal(
                format!("extraction worker failed: {join}").into(),
            )),
            Err(_) => Err(ExtractError::Timeout { after: budget }),
        }
    }
}

#[async_trait::async_trait]
impl Extractor for PdfExtractor {
    fn version(&self) -> &str {
        VERSION
    }

    async fn extract(
        &self,
        input: ExtractInput,
        options: &ExtractOptions,
    ) -> docaiche_core::Result<Extraction> {
        crate::trace::extract(VERSION, async move {
            Ok(self.extract_detailed(input, options).await?)
        })
        .await
    }
}
