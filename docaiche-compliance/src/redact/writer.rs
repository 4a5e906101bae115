//! `tracing-subscriber` integration: every line the fmt layer writes passes
//! through the [`Redactor`].

use std::io::{self, Write};
use std::sync::Arc;

use tracing_subscriber::fmt::MakeWriter;

use super::Redactor;

/// Buffered bytes beyond which a writer redacts and passes on every
/// complete line it holds, so a long-lived writer stays bounded.
const MAX_BUFFER: usize = 64 * 1024;

/// A [`MakeWriter`] wrapper: the fmt layer formats an event into a
/// [`RedactingWriter`], which redacts the whole event when it is dropped
/// (the fmt layer drops its writer after each event) and writes the
/// result to the inner writer.
///
/// ```
/// use std::sync::Arc;
/// use docaiche_compliance::redact::{RedactingMakeWriter, Redactor};
///
/// let redactor = Arc::new(Redactor::new());
/// let subscriber = tracing_subscriber::fmt()
///     .with_ansi(false) // colour codes would split values apart
///     .with_writer(RedactingMakeWriter::new(std::io::stderr, redactor))
///     .finish();
/// tracing::subscriber::with_default(subscriber, || {
///     tracing::info!(user = "alice@example.com", "logged in"); // written as [REDACTED:email]
/// });
/// ```
///
/// Redacting the formatted line (rather than each field) catches personal
/// data wherever it hides: in the message, in a field, in an error's
/// `Display`. Turn ANSI colours off: escape codes between a field's name
/// and value do no harm, but inside a value they would split a match.
#[derive(Debug, Clone)]
pub struct RedactingMakeWriter<M> {
    inner: M,
    redactor: Arc<Redactor>,
}

impl<M> RedactingMakeWriter<M> {
    /// Wrap `inner`.
    pub const fn new(inner: M, redactor: Arc<Redactor>) -> Self {
        Self { inner, redactor }
    }

    /// The redactor.
    #[must_use]
    pub fn redactor(&self) -> &Arc<Redactor> {
        &self.redactor
    }
}

impl<'a, M: MakeWriter<'a>> MakeWriter<'a> for RedactingMakeWriter<M> {
    type Writer = RedactingWriter<'a, M::Writer>;

    fn make_writer(&'a self) -> Self::Writer {
        RedactingWriter::new(self.inner.make_writer(), &self.redactor)
    }

    fn make_writer_for(&'a self, meta: &tracing::Metadata<'_>) -> Self::Writer {
        RedactingWriter::new(self.inner.make_writer_for(meta), &self.redactor)
    }
}

/// A writer that buffers what it is given and writes it redacted on
/// [`flush`](Write::flush), on drop, or line by line once more than 64 KiB
/// are buffered.
#[derive(Debug)]
pub struct RedactingWriter<'a, W: Write> {
    inner: W,
    redactor: &'a Redactor,
    buffer: Vec<u8>,
}

impl<'a, W: Write> RedactingWriter<'a, W> {
    /// Wrap `inner`.
    pub const fn new(inner: W, redactor: &'a Redactor) -> Self {
        Self {
            inner,
            redactor,
            buffer: Vec::new(),
        }
    }

    /// Redact and write the first `len` buffered bytes.
    fn write_out(&mut self, len: usize) -> io::Result<()> {
        let chunk: Vec<u8> = self.buffer.drain(..len).collect();
        match std::str::from_utf8(&chunk) {
            Ok(text) => self.inner.write_all(self.redactor.redact(text).as_bytes()),
            Err(_) => {
                let text = String::from_utf8_lossy(&chunk);
                self.inner.write_all(self.redactor.redact(&text).as_bytes())
            }
        }
    }
}

impl<W: Write> Write for RedactingWriter<'_, W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.buffer.extend_from_slice(buf);
        if self.buffer.len() > MAX_BUFFER {
            if let Some(last_newline) = self.buffer.iter().rposition(|&b| b == b'\n') {
                self.write_out(last_newline + 1)?;
            } else {
                let len = self.buffer.len();
                self.write_out(len)?;
            }
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        let len = self.buffer.len();
        self.write_out(len)?;
        self.inner.flush()
    }
}

impl<W: Write> Drop for RedactingWriter<'_, W> {
    fn drop(&mut self) {
        if !self.buffer.is_empty() {
            // Nowhere to report a failed log write from a destructor; the
            // fmt layer itself ignores write errors the same way.
            let len = self.buffer.len();
            let _ = self.write_out(len);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;

    #[derive(Clone, Default)]
    struct Capture(Arc<Mutex<Vec<u8>>>);

    impl Write for Capture {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn fmt_layer_output_is_redacted() {
        let capture = Capture::default();
        let sink = capture.clone();
        let make = RedactingMakeWriter::new(move || sink.clone(), Arc::new(Redactor::new()));
        let subscriber = tracing_subscriber::fmt()
            .with_ansi(false)
            .with_writer(make)
            .finish();
        tracing::subscriber::with_default(subscriber, || {
            tracing::info!(
                email = "alice@example.com",
                auth = "Bearer abc123def456ghi789",
                "card 4111-1111-1111-1111 used"
            );
        });
        let out = String::from_utf8(capture.0.lock().map(|b| b.clone()).unwrap_or_default())
            .unwrap_or_default();
        assert!(out.contains("[REDACTED:email]"), "{out}");
        assert!(out.contains("[REDACTED:bearer_token]"), "{out}");
        assert!(out.contains("[REDACTED:card_number]"), "{out}");
        assert!(!out.contains("alice@"), "{out}");
        assert!(!out.contains("4111"), "{out}");
    }
}
