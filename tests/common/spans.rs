//! Spans recorded in memory (name, fields, parent), for the tests that
//! check each adapter's own spans.
//!
//! Only `std` and `tracing`, so any crate's tests can mount it:
//! `#[path = "../../tests/common/spans.rs"] mod spans;`.

#![allow(dead_code, unreachable_pub)]

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, LazyLock, Mutex, PoisonError};

use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::subscriber::Interest;
use tracing::{Dispatch, Event, Metadata, Subscriber};

/// One recorded span.
#[derive(Debug, Clone, Default)]
pub struct Captured {
    /// The `tracing` name (`backend`, `extract`).
    pub name: &'static str,
    /// Its fields as text, the ones recorded later included.
    pub fields: HashMap<String, String>,
    /// Its parent's index in the capture, if any.
    pub parent: Option<usize>,
}

impl Captured {
    /// Field `key`, if recorded.
    pub fn field(&self, key: &str) -> Option<&str> {
        self.fields.get(key).map(String::as_str)
    }
}

/// The spans a capture saw.
#[derive(Debug, Clone, Default)]
pub struct Spans(Arc<Mutex<Vec<Captured>>>);

impl Spans {
    /// Every span so far, in creation order.
    pub fn all(&self) -> Vec<Captured> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The spans whose `otel.name` is `name`.
    pub fn named(&self, name: &str) -> Vec<Captured> {
        self.all()
            .into_iter()
            .filter(|s| s.field("otel.name") == Some(name))
            .collect()
    }

    /// The one span named `name` (panics, listing them all, otherwise).
    pub fn one(&self, name: &str) -> Captured {
        let mut named = self.named(name);
        assert_eq!(named.len(), 1, "one {name:?} span in {:#?}", self.all());
        named.remove(0)
    }

    /// Forget the spans so far.
    pub fn clear(&self) {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
    }
}

/// Every span at every level, its fields and its parent (explicit, or the
/// span this thread is in).
#[derive(Debug, Default)]
struct Recorder {
    spans: Spans,
    stack: Mutex<Vec<u64>>,
}

struct Fields<'a>(&'a mut HashMap<String, String>);

impl Visit for Fields<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.0.insert(field.name().to_owned(), format!("{value:?}"));
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_owned(), value.to_owned());
    }
}

fn index(id: &Id) -> Option<usize> {
    usize::try_from(id.into_u64()).ok()?.checked_sub(1)
}

impl Subscriber for Recorder {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }

    fn new_span(&self, attributes: &Attributes<'_>) -> Id {
        let mut captured = Captured {
            name: attributes.metadata().name(),
            ..Captured::default()
        };
        attributes.record(&mut Fields(&mut captured.fields));
        let current = self
            .stack
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .last()
            .copied();
        captured.parent = match attributes.parent() {
            Some(parent) => index(parent),
            None if attributes.is_contextual() => current.and_then(|id| index(&Id::from_u64(id))),
            None => None,
        };
        let mut spans = self.spans.0.lock().unwrap_or_else(PoisonError::into_inner);
        spans.push(captured);
        Id::from_u64(spans.len() as u64)
    }

    fn record(&self, span: &Id, values: &Record<'_>) {
        let mut spans = self.spans.0.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(captured) = index(span).and_then(|i| spans.get_mut(i)) {
            values.record(&mut Fields(&mut captured.fields));
        }
    }

    fn record_follows_from(&self, _: &Id, _: &Id) {}

    fn event(&self, _: &Event<'_>) {}

    fn enter(&self, span: &Id) {
        self.stack
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(span.into_u64());
    }

    fn exit(&self, span: &Id) {
        let mut stack = self.stack.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(at) = stack.iter().rposition(|id| *id == span.into_u64()) {
            stack.remove(at);
        }
    }

    // Spans are never closed here: ids stay indexes into the capture.
    fn clone_span(&self, id: &Id) -> Id {
        id.clone()
    }
}

/// Record this thread's spans while the guard lives (run the code under
/// test on a current-thread runtime, so its spans are this thread's).
///
/// `tracing` caches each callsite's interest process-wide, and while only
/// one dispatcher is registered it asks the default of whichever thread
/// reaches a callsite first: a sibling test without a subscriber would
/// cache "never" and blind the capture. The anchor, a second dispatcher
/// for the whole process that answers "sometimes" and gives no level hint,
/// keeps every callsite asking its own thread's subscriber; the rebuild
/// mends a callsite cached before the anchor existed. (The server's
/// `test_support::capture_with` does the same, for the same reason.)
pub fn capture() -> (Spans, tracing::dispatcher::DefaultGuard) {
    static ANCHOR: LazyLock<Dispatch> = LazyLock::new(|| Dispatch::new(Anchor));
    LazyLock::force(&ANCHOR);
    let recorder = Recorder::default();
    let spans = recorder.spans.clone();
    let guard = tracing::dispatcher::set_default(&Dispatch::new(recorder));
    tracing::callsite::rebuild_interest_cache();
    (spans, guard)
}

/// Records nothing; asks for every callsite to be checked each time.
struct Anchor;

impl Subscriber for Anchor {
    fn register_callsite(&self, _: &'static Metadata<'static>) -> Interest {
        Interest::sometimes()
    }

    fn max_level_hint(&self) -> Option<tracing::level_filters::LevelFilter> {
        None
    }

    fn enabled(&self, _: &Metadata<'_>) -> bool {
        false
    }

    fn new_span(&self, _: &Attributes<'_>) -> Id {
        Id::from_u64(1)
    }

    fn record(&self, _: &Id, _: &Record<'_>) {}

    fn record_follows_from(&self, _: &Id, _: &Id) {}

    fn event(&self, _: &Event<'_>) {}

    fn enter(&self, _: &Id) {}

    fn exit(&self, _: &Id) {}
}
