//! Why a document was refused: [`ExtractError`], with a stable reason code.

use std::borrow::Cow;
use std::time::Duration;

/// A refusal or failure of intake and extraction.
///
/// Every variant signals a client mistake or a hostile file unless its docs
/// say otherwise. [`ExtractError::reason`] is the stable code (the `reason`
/// of [`docaiche_core::Error::DocumentRejected`]); messages are for humans.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ExtractError {
    /// The input is larger than [`Limits::max_input_bytes`](crate::Limits::max_input_bytes).
    #[error("document is larger than {limit} bytes")]
    TooLarge {
        /// The limit in bytes.
        limit: u64,
    },
    /// The input is empty.
    #[error("document is empty")]
    Empty,
    /// The bytes are not a PDF (no `%PDF-` header in the first 1024 bytes).
    #[error("content is not a pdf")]
    NotPdf,
    /// The bytes are another format (ZIP, PNG, …), whatever the name or the
    /// declared type says; this also catches polyglots that start with
    /// another format's magic and carry a `%PDF-` header later.
    #[error("content is {sniffed}, not a pdf")]
    SniffedOther {
        /// What the content looks like.
        sniffed: &'static str,
    },
    /// The declared media type is not a PDF type.
    #[error("declared media type is not application/pdf")]
    DeclaredTypeMismatch,
    /// The file ends before its last `%%EOF` marker (cut off in transit).
    #[error("document is truncated")]
    Truncated,
    /// The file cannot be parsed into a document.
    #[error("document is malformed: {0}")]
    Malformed(Cow<'static, str>),
    /// The document is encrypted with a non-empty user password.
    #[error("document is encrypted with a password")]
    Encrypted,
    /// The document uses a security handler we do not open (public-key,
    /// proprietary).
    #[error("document uses an unsupported security handler")]
    UnsupportedEncryption,
    /// More indirect objects than [`Limits::max_objects`](crate::Limits::max_objects).
    #[error("document has more than {limit} objects")]
    TooManyObjects {
        /// The limit.
        limit: usize,
    },
    /// Arrays or dictionaries nested deeper than [`Limits::max_nesting`](crate::Limits::max_nesting).
    #[error("objects are nested deeper than {limit} levels")]
    NestingTooDeep {
        /// The limit.
        limit: usize,
    },
    /// A stream, or the document in total, decompresses to more than allowed.
    #[error("decompressed content exceeds {limit} bytes")]
    DecompressionBomb {
        /// The limit that was hit, in bytes.
        limit: usize,
    },
    /// More pages than [`Limits::max_pages`](crate::Limits::max_pages).
    #[error("document has more than {limit} pages")]
    TooManyPages {
        /// The limit.
        limit: u32,
    },
    /// A reference cycle: a page tree that loops, an object that resolves to
    /// itself, a form that draws itself.
    #[error("document contains a reference cycle")]
    ReferenceCycle,
    /// Content-stream operators beyond [`Limits::max_operators`](crate::Limits::max_operators).
    #[error("document has more than {limit} content operators")]
    TooManyOperators {
        /// The limit.
        limit: u64,
    },
    /// The wall-time budget ran out.
    #[error("extraction took longer than {after:?}")]
    Timeout {
        /// The budget.
        after: Duration,
    },
    /// The parser panicked on this input (caught; a bug in the parser, and a
    /// hostile file).
    #[error("document could not be parsed")]
    ParserPanic,
    /// A bug or a lost worker: not the document's fault.
    #[error("extraction failed: {0}")]
    Internal(Cow<'static, str>),
}

impl ExtractError {
    /// The stable snake-case reason code.
    #[must_use]
    pub const fn reason(&self) -> &'static str {
        match self {
            Self::TooLarge { .. } => "too_large",
            Self::Empty => "empty",
            Self::NotPdf => "not_pdf",
            Self::SniffedOther { .. } => "type_mismatch",
            Self::DeclaredTypeMismatch => "declared_type_mismatch",
            Self::Truncated => "truncated",
            Self::Malformed(_) => "malformed",
            Self::Encrypted => "encrypted",
            Self::UnsupportedEncryption => "unsupported_encryption",
            Self::TooManyObjects { .. } => "too_many_objects",
            Self::NestingTooDeep { .. } => "nesting_too_deep",
            Self::DecompressionBomb { .. } => "decompression_bomb",
            Self::TooManyPages { .. } => "too_many_pages",
            Self::ReferenceCycle => "reference_cycle",
            Self::TooManyOperators { .. } => "too_many_operators",
            Self::Timeout { .. } => "timeout",
            Self::ParserPanic => "parser_panic",
            Self::Internal(_) => "internal",
        }
    }
}

impl From<ExtractError> for docaiche_core::Error {
    fn from(err: ExtractError) -> Self {
        match err {
            ExtractError::TooLarge { limit } => Self::PayloadTooLarge { limit },
            ExtractError::NotPdf
            | ExtractError::SniffedOther { .. }
            | ExtractError::DeclaredTypeMismatch => Self::UnsupportedMediaType {
                expected: "application/pdf".into(),
            },
            ExtractError::Timeout { after } => Self::Timeout {
                operation: "pdf extraction".into(),
                after,
            },
            ExtractError::Internal(message) => Self::internal(message),
            other => Self::DocumentRejected {
                reason: other.reason(),
                message: other.to_string().into(),
            },
        }
    }
}

/// `Result` with [`ExtractError`].
pub type Result<T, E = ExtractError> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;
    use docaiche_core::ErrorCode;

    #[test]
    fn rejections_map_to_the_core_codes() {
        let e: docaiche_core::Error = ExtractError::TooLarge { limit: 1 }.into();
        assert_eq!(e.code(), ErrorCode::PayloadTooLarge);
        let e: docaiche_core::Error = ExtractError::SniffedOther { sniffed: "zip" }.into();
        assert_eq!(e.code(), ErrorCode::UnsupportedMediaType);
        let e: docaiche_core::Error = ExtractError::ReferenceCycle.into();
        assert!(matches!(
            e,
            docaiche_core::Error::DocumentRejected {
                reason: "reference_cycle",
                ..
            }
        ));
        let e: docaiche_core::Error = ExtractError::Timeout {
            after: Duration::from_secs(1),
        }
        .into();
        assert_eq!(e.code(), ErrorCode::Timeout);
    }

    #[test]
    fn reason_codes_are_snake_case() {
        for e in [
            ExtractError::Encrypted,
            ExtractError::DecompressionBomb { limit: 1 },
            ExtractError::NestingTooDeep { limit: 1 },
            ExtractError::Malformed("x".into()),
        ] {
            assert!(
                e.reason()
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c == '_')
            );
            assert!(e.to_string().chars().next().is_some_and(char::is_lowercase));
        }
    }
}
