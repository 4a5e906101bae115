//! Fidelity against poppler's `pdftotext` on the shared corpus.
//!
//! **Metric.** For each document, the bag-of-words F1 between our text and
//! the reference text `pdf-text/<name>.txt` (what `pdftotext -enc UTF-8`
//! from poppler 22.12 prints in its default mode). Tokens are the
//! whitespace-separated words of the text (Unicode whitespace, including the
//! form feed between pages), compared exactly (case and punctuation
//! included). With `G` and `R` the multisets of our and the reference
//! tokens and `C = G ∩ R` (multiset intersection: each token counted
//! min(count in G, count in R) times): precision `|C|/|G|`, recall
//! `|C|/|R|`, F1 their harmonic mean. The bar is a mean F1 of at least 0.95
//! over documents whose reference has at least 20 words, and no document
//! below 0.80 unless listed in `EXPLAINED` with the reason. The table also
//! shows the looser metric of `extract_eval.py` (lower-cased runs of
//! letters and digits) for comparison.
//!
//! The corpus lives outside the repository: `$DOCAICHE_PDF_CORPUS` (default
//! `/work/shared/corpus`, holding `pdf/` and `pdf-text/`). Without it the
//! test says so and passes; CI machines that have it run the full check.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Instant;

use docaiche_extract::contracts::ExtractOptions;
use docaiche_extract::{Limits, extract_blocking};
use rayon::prelude::*;

/// Documents allowed below 0.80, and why.
const EXPLAINED: &[(&str, &str)] = &[];

const MIN_WORDS: usize = 20;

/// name, (F1, alnum F1) if scored, reference words, status.
type Row = (String, Option<(f64, f64)>, usize, String);

fn bag<'a>(tokens: impl Iterator<Item = &'a str>) -> HashMap<&'a str, usize> {
    let mut m = HashMap::new();
    for t in tokens {
        *m.entry(t).or_insert(0) += 1;
    }
    m
}

fn f1(got: &HashMap<&str, usize>, reference: &HashMap<&str, usize>) -> f64 {
    let common: usize = got
        .iter()
        .map(|(t, n)| (*n).min(reference.get(t).copied().unwrap_or(0)))
        .sum();
    if common == 0 {
        return 0.0;
    }
    #[expect(clippy::cast_precision_loss, reason = "token counts are small")]
    let (c, g, r) = (
        common as f64,
        got.values().sum::<usize>() as f64,
        reference.values().sum::<usize>() as f64,
    );
    let (p, rec) = (c / g, c / r);
    2.0 * p * rec / (p + rec)
}

fn alnum_tokens(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|t| !t.is_empty())
        .map(str::to_lowercase)
        .collect()
}

#[test]
fn mean_bag_of_words_f1_against_pdftotext_is_at_least_095() {
    let root = std::env::var_os("DOCAICHE_PDF_CORPUS")
        .map_or_else(|| PathBuf::from("/work/shared/corpus"), PathBuf::from);
    let Ok(dir) = std::fs::read_dir(root.join("pdf")) else {
        eprintln!("corpus not found at {}: skipping", root.display());
        return;
    };
    let mut docs: Vec<PathBuf> = dir
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "pdf"))
        .collect();
    docs.sort();
    if let Ok(only) = std::env::var("FIDELITY_ONLY") {
        docs.retain(|p| p.to_string_lossy().contains(&only));
    }
    let start = Instant::now();
    let limits = Limits::default();
    let rows: Vec<Row> = docs
        .par_iter()
        .map(|pdf| {
            let name = pdf
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default();
            let reference =
                std::fs::read_to_string(root.join("pdf-text").join(format!("{name}.txt")))
                    .unwrap_or_default();
            let ref_bag = bag(reference.split_whitespace());
            let words = ref_bag.values().sum::<usize>();
            let content = std::fs::read(pdf).unwrap_or_default();
            let (text, status) =
                match extract_blocking(&content, None, None, &ExtractOptions::default(), &limits) {
                    Ok(e) => (e.pages.join("\u{c}"), "ok".to_owned()),
                    Err(e) => (String::new(), format!("error: {e}")),
                };
            if words < MIN_WORDS {
                return (name, None, words, status);
            }
            if let Ok(dir) = std::env::var("FIDELITY_SAVE") {
                let _ = std::fs::write(PathBuf::from(dir).join(format!("{name}.txt")), &text);
            }
            let ws = f1(&bag(text.split_whitespace()), &ref_bag);
            let got_alnum = alnum_tokens(&text);
            let ref_alnum = alnum_tokens(&reference);
            let an = f1(
                &bag(got_alnum.iter().map(String::as_str)),
                &bag(ref_alnum.iter().map(String::as_str)),
            );
            (name, Some((ws, an)), words, status)
        })
        .collect();
    let elapsed = start.elapsed();
    println!(
        "{:<52} {:>7} {:>7} {:>8}  status",
        "document", "F1", "F1(an)", "words"
    );
    let mut scored = Vec::new();
    let mut failures = Vec::new();
    for (name, score, words, status) in &rows {
        match score {
            Some((ws, an)) => {
                println!("{name:<52} {ws:>7.4} {an:>7.4} {words:>8}  {status}");
                scored.push((*ws, *an));
                if *ws < 0.80 && !EXPLAINED.iter().any(|(n, _)| n == name) {
                    failures.push(format!("{name}: {ws:.4}"));
                }
            }
            None => println!(
                "{name:<52} {:>7} {:>7} {words:>8}  {status} (reference under {MIN_WORDS} words: not scored)",
                "-", "-"
            ),
        }
    }
    #[expect(clippy::cast_precision_loss, reason = "few documents")]
    let n = scored.len().max(1) as f64;
    let mean = scored.iter().map(|s| s.0).sum::<f64>() / n;
    let mean_an = scored.iter().map(|s| s.1).sum::<f64>() / n;
    println!(
        "mean F1 {mean:.4} (alnum metric {mean_an:.4}) over {} documents in {elapsed:.1?}",
        scored.len()
    );
    for (name, why) in EXPLAINED {
        println!("explained: {name}: {why}");
    }
    if std::env::var_os("FIDELITY_ONLY").is_none() {
        assert!(mean >= 0.95, "mean F1 {mean:.4} is under 0.95");
    }
    assert!(
        failures.is_empty(),
        "documents under 0.80 without a reason: {failures:?}"
    );
}
