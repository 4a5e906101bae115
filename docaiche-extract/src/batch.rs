//! Batches: many documents, bounded concurrency, one result per document.

use std::sync::Arc;

use docaiche_core::extract::{ExtractInput, ExtractOptions, Extraction, Extractor};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

/// Extracts every input with at most `concurrency` in flight and returns the
/// results in input order. One bad document never fails the batch: each
/// slot holds its own `Result`.
///
/// ```
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// use std::sync::Arc;
/// use docaiche_extract::{Limits, PdfExtractor, extract_batch};
/// use docaiche_extract::contracts::{ExtractInput, ExtractOptions};
///
/// let extractor = Arc::new(PdfExtractor::new(Limits::default()));
/// let inputs = vec![ExtractInput::new(b"not a pdf".to_vec().into())];
/// let results = extract_batch(extractor, inputs, &ExtractOptions::default(), 4).await;
/// assert!(results[0].is_err());
/// # });
/// ```
pub async fn extract_batch(
    extractor: Arc<dyn Extractor>,
    inputs: Vec<ExtractInput>,
    options: &ExtractOptions,
    concurrency: usize,
) -> Vec<docaiche_core::Result<Extraction>> {
    let permits = Arc::new(Semaphore::new(concurrency.max(1)));
    let mut set = JoinSet::new();
    let count = inputs.len();
    for (index, input) in inputs.into_iter().enumerate() {
        let extractor = Arc::clone(&extractor);
        let options = options.clone();
        let permits = Arc::clone(&permits);
        set.spawn(async move {
            let _permit = permits.acquire_owned().await;
            (index, extractor.extract(input, &options).await)
        });
    }
    let mut results: Vec<Option<docaiche_core::Result<Extraction>>> =
        (0..count).map(|_| None).collect();
    while let Some(joined) = set.join_next().await {
        if let Ok((index, result)) = joined
            && let Some(slot) = results.get_mut(index)
        {
            *slot = Some(result);
        }
    }
    results
        .into_iter()
        .map(|r| r.unwrap_or_else(|| Err(docaiche_core::Error::internal("extraction task failed"))))
        .collect()
}
