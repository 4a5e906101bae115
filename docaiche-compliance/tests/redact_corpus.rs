//! The labelled redaction corpus: precision and recall per kind.
//!
//! `testdata/redact_corpus.jsonl` holds one case per line:
//! `{"text": "...", "expect": [{"kind": "email", "value": "alice@example.com"}]}`
//! (an empty `expect` is a negative: nothing may be found). Expected spans
//! are the occurrences of `value` in `text`, in order. A finding is a true
//! positive when it has the expected kind and covers the whole expected
//! span (a partial redaction leaks the rest); every other finding is a
//! false positive, every uncovered expectation a false negative.
//!
//! Run with `--nocapture` to see the table.

use std::collections::BTreeMap;
use std::ops::Range;

use docaiche_compliance::redact::{PiiKind, Redactor};
use serde::Deserialize;

const FLOOR: f64 = 0.95;

#[derive(Deserialize)]
struct Case {
    text: String,
    expect: Vec<Expected>,
}

#[derive(Deserialize)]
struct Expected {
    kind: PiiKind,
    value: String,
}

#[derive(Default, Debug)]
struct Score {
    tp: u32,
    fp: u32,
    fn_: u32,
}

impl Score {
    fn precision(&self) -> f64 {
        let found = self.tp + self.fp;
        if found == 0 {
            1.0
        } else {
            f64::from(self.tp) / f64::from(found)
        }
    }
    fn recall(&self) -> f64 {
        let expected = self.tp + self.fn_;
        if expected == 0 {
            1.0
        } else {
            f64::from(self.tp) / f64::from(expected)
        }
    }
}

fn spans(case: &Case) -> Vec<(PiiKind, Range<usize>)> {
    let mut next_from: BTreeMap<&str, usize> = BTreeMap::new();
    case.expect
        .iter()
        .map(|e| {
            let from = next_from.get(e.value.as_str()).copied().unwrap_or(0);
            let start = case.text[from..]
                .find(&e.value)
                .map(|i| i + from)
                .unwrap_or_else(|| panic!("expected value {:?} not in {:?}", e.value, case.text));
            next_from.insert(&e.value, start + e.value.len());
            (e.kind, start..start + e.value.len())
        })
        .collect()
}

#[test]
fn corpus_precision_and_recall_per_kind_meet_the_floor() {
    let corpus = include_str!("../testdata/redact_corpus.jsonl");
    let redactor = Redactor::new();
    let mut scores: BTreeMap<PiiKind, Score> = PiiKind::ALL
        .iter()
        .map(|&k| (k, Score::default()))
        .collect();
    let mut misses = Vec::new();
    let mut cases = 0;
    for (line_no, line) in corpus.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        cases += 1;
        let case: Case =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("line {}: {e}", line_no + 1));
        let expected = spans(&case);
        let found = redactor.find(&case.text);
        let mut matched = vec![false; expected.len()];
        for finding in &found {
            let hit = expected.iter().enumerate().find(|(i, (kind, span))| {
                !matched[*i]
                    && *kind == finding.kind
                    && finding.range.start <= span.start
                    && finding.range.end >= span.end
            });
            let score = scores.entry(finding.kind).or_default();
            match hit {
                Some((i, _)) => {
                    matched[i] = true;
                    score.tp += 1;
                }
                None => {
                    score.fp += 1;
                    misses.push(format!(
                        "line {}: false {} {:?} in {:?}",
                        line_no + 1,
                        finding.kind,
                        &case.text[finding.range.clone()],
                        case.text
                    ));
                }
            }
        }
        for (i, (kind, span)) in expected.iter().enumerate() {
            if !matched[i] {
                scores.entry(*kind).or_default().fn_ += 1;
                misses.push(format!(
                    "line {}: missed {} {:?}",
                    line_no + 1,
                    kind,
                    &case.text[span.clone()]
                ));
            }
        }
    }
    println!("{cases} cases");
    println!(
        "{:<14} {:>4} {:>4} {:>4} {:>9} {:>7}",
        "kind", "tp", "fp", "fn", "precision", "recall"
    );
    for (kind, s) in &scores {
        println!(
            "{:<14} {:>4} {:>4} {:>4} {:>9.3} {:>7.3}",
            kind.as_str(),
            s.tp,
            s.fp,
            s.fn_,
            s.precision(),
            s.recall()
        );
    }
    for miss in &misses {
        println!("{miss}");
    }
    assert!(cases >= 150, "corpus too small: {cases} cases");
    for (kind, s) in &scores {
        assert!(s.tp >= 3, "{kind}: fewer than 3 positives in the corpus");
        assert!(
            s.precision() >= FLOOR,
            "{kind}: precision {:.3} below {FLOOR}",
            s.precision()
        );
        assert!(
            s.recall() >= FLOOR,
            "{kind}: recall {:.3} below {FLOOR}",
            s.recall()
        );
    }
}

#[test]
fn redacted_corpus_leaks_no_expected_value() {
    let corpus = include_str!("../testdata/redact_corpus.jsonl");
    let redactor = Redactor::new();
    let mut leaks = Vec::new();
    for line in corpus.lines().filter(|l| !l.trim().is_empty()) {
        let case: Case = serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}"));
        let redacted = redactor.redact(&case.text);
        for e in &case.expect {
            // A truncated IP keeps its network part by design.
            if e.kind != PiiKind::IpAddress && redacted.contains(&e.value) {
                leaks.push(format!("{} leaked: {:?}", e.kind, e.value));
            }
        }
    }
    assert!(leaks.len() <= 2, "{leaks:#?}");
}
