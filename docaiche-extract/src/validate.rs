//! Validation before parsing: size, magic bytes, declared vs sniffed type,
//! truncation, nesting depth, filename and SHA-256.
//!
//! Header policy: like Acrobat and poppler we accept `%PDF-` anywhere in the
//! first 1024 bytes (some producers prepend junk), **unless** the file starts
//! with another format's magic number (`PK\x03\x04`, PNG, JPEG, …): such a
//! polyglot is refused as a type mismatch.

use sha2::{Digest, Sha256};

use crate::error::{ExtractError, Result};
use crate::limits::Limits;

/// Longest sanitised filename, in bytes.
pub const MAX_FILENAME_BYTES: usize = 255;

/// How far into the file the `%PDF-` header may start.
pub const HEADER_WINDOW: usize = 1024;

/// What validation learnt about an input.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Validated {
    /// Lowercase hex SHA-256 of the content.
    pub sha256: String,
    /// Offset of `%PDF-`.
    pub header_offset: usize,
    /// The filename, sanitised ([`sanitize_filename`]).
    pub filename: Option<String>,
}

/// Checks `content` (declared as `declared_type`, named `filename`) before any
/// parsing.
///
/// # Errors
/// [`ExtractError::TooLarge`], [`ExtractError::Empty`],
/// [`ExtractError::SniffedOther`], [`ExtractError::NotPdf`],
/// [`ExtractError::DeclaredTypeMismatch`], [`ExtractError::Truncated`] or
/// [`ExtractError::NestingTooDeep`].
pub fn validate(
    content: &[u8],
    declared_type: Option<&str>,
    filename: Option<&str>,
    limits: &Limits,
) -> Result<Validated> {
    if u64::try_from(content.len()).unwrap_or(u64::MAX) > limits.max_input_bytes {
        return Err(ExtractError::TooLarge {
            limit: limits.max_input_bytes,
        });
    }
    if content.is_empty() {
        return Err(ExtractError::Empty);
    }
    if let Some(sniffed) = sniff_other(content) {
        return Err(ExtractError::SniffedOther { sniffed });
    }
    let window = &content[..content.len().min(HEADER_WINDOW)];
    let header_offset = find(window, b"%PDF-").ok_or(ExtractError::NotPdf)?;
    if let Some(declared) = declared_type
        && !declared_is_pdf(declared)
    {
        return Err(ExtractError::DeclaredTypeMismatch);
    }
    check_not_truncated(content)?;
    check_nesting(&content[header_offset..], limits.max_nesting)?;
    Ok(Validated {
        sha256: sha256_hex(content),
        header_offset,
        filename: filename.and_then(sanitize_filename),
    })
}

/// Lowercase hex SHA-256.
#[must_use]
pub fn sha256_hex(content: &[u8]) -> String {
    hex::encode(Sha256::digest(content))
}

/// Whether a declared media type admits a PDF: `application/pdf`,
/// `application/x-pdf`, or the generic `application/octet-stream` (then the
/// sniffed type decides). Parameters (`; charset=…`) are ignored.
#[must_use]
pub fn declared_is_pdf(declared: &str) -> bool {
    let essence = declared.split(';').next().unwrap_or("").trim();
    [
        "application/pdf",
        "application/x-pdf",
        "application/octet-stream",
    ]
    .iter()
    .any(|t| essence.eq_ignore_ascii_case(t))
}

/// A filename safe to log, store and show: the last path component (either
/// separator), without control characters, bidi overrides or leading dots,
/// trimmed, at most [`MAX_FILENAME_BYTES`] bytes. `None` if nothing is left.
#[must_use]
pub fn sanitize_filename(name: &str) -> Option<String> {
    let last = name.rsplit(['/', '\\']).next().unwrap_or("");
    let mut out = String::with_capacity(last.len().min(MAX_FILENAME_BYTES));
    for c in last.chars() {
        let bidi = matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{200e}' | '\u{200f}');
        if c.is_control() || bidi || c == ':' {
            continue;
        }
        if out.len() + c.len_utf8() > MAX_FILENAME_BYTES {
            break;
        }
        out.push(c);
    }
    let trimmed = out.trim().trim_start_matches('.').trim();
    (!trimmed.is_empty()).then(|| trimmed.to_owned())
}

/// Magic numbers of formats that are commonly renamed to `.pdf`.
fn sniff_other(content: &[u8]) -> Option<&'static str> {
    const MAGICS: [(&[u8], &str); 9] = [
        (b"PK\x03\x04", "zip"),
        (b"PK\x05\x06", "zip"),
        (b"\x89PNG\r\n\x1a\n", "png"),
        (b"\xff\xd8\xff", "jpeg"),
        (b"GIF8", "gif"),
        (b"\x1f\x8b", "gzip"),
        (b"Rar!", "rar"),
        (b"7z\xbc\xaf\x27\x1c", "7z"),
        (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "ole"),
    ];
    MAGICS
        .iter()
        .find(|(magic, _)| content.starts_with(magic))
        .map(|(_, name)| *name)
}

/// The last `%%EOF` must sit in the last 1024 bytes (as Acrobat requires);
/// otherwise the upload was cut off.
fn check_not_truncated(content: &[u8]) -> Result<()> {
    let tail_start = content.len().saturating_sub(HEADER_WINDOW);
    if find(&content[tail_start..], b"%%EOF").is_some() {
        Ok(())
    } else {
        Err(ExtractError::Truncated)
    }
}

pub(crate) fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// One linear pass over the file's syntax (skipping strings, comments and
/// stream bodies) measuring how deep `[` and `<<` nest, so that a
/// 100 000-deep array is refused before any recursive parser sees it.
fn check_nesting(content: &[u8], limit: usize) -> Result<()> {
    let mut depth = 0usize;
    let mut i = 0;
    let n = content.len();
    while i < n {
        match content[i] {
            b'%' => {
                while i < n && content[i] != b'\n' && content[i] != b'\r' {
                    i += 1;
                }
            }
            b'(' => {
                // Literal string: balanced parentheses, backslash escapes.
                let mut level = 0usize;
                while i < n {
                    match content[i] {
                        b'\\' => i += 1,
                        b'(' => level += 1,
                        b')' => {
                            level -= 1;
                            if level == 0 {
                                break;
                            }
                        }
                        _ => {}
                    }
                    i += 1;
                }
            }
            b'<' if content.get(i + 1) == Some(&b'<') => {
                depth += 1;
                i += 1;
            }
            b'<' => {
                while i < n && content[i] != b'>' {
                    i += 1;
                }
            }
            b'>' if content.get(i + 1) == Some(&b'>') => {
                depth = depth.saturating_sub(1);
                i += 1;
            }
            b'[' => depth += 1,
            b']' => depth = depth.saturating_sub(1),
            b'e' if content[i..].starts_with(b"endobj") => {
                // Objects are independent: an unbalanced one does not carry over.
                depth = 0;
            }
            b's' if content[i..].starts_with(b"stream")
                && (i == 0 || !content[i - 1].is_ascii_alphabetic()) =>
            {
                match find(&content[i..], b"endstream") {
                    Some(end) => i += end + b"endstream".len() - 1,
                    None => return Ok(()),
                }
                depth = 0;
            }
            _ => {}
        }
        if depth > limit {
            return Err(ExtractError::NestingTooDeep { limit });
        }
        i += 1;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filenames_lose_paths_controls_and_length() {
        assert_eq!(
            sanitize_filename("../../etc/passwd").as_deref(),
            Some("passwd")
        );
        assert_eq!(sanitize_filename("C:\\x\\a.pdf").as_deref(), Some("a.pdf"));
        assert_eq!(
            sanitize_filename("a\u{0}b\nc.pdf").as_deref(),
            Some("abc.pdf")
        );
        assert_eq!(
            sanitize_filename("evil\u{202e}fdp.exe").as_deref(),
            Some("evilfdp.exe")
        );
        assert_eq!(sanitize_filename(".hidden").as_deref(), Some("hidden"));
        assert_eq!(sanitize_filename("/"), None);
        assert_eq!(sanitize_filename(" .. "), None);
        let long = "é".repeat(400);
        let s = sanitize_filename(&long).unwrap_or_default();
        assert!(s.len() <= MAX_FILENAME_BYTES && !s.is_empty());
    }

    #[test]
    fn declared_types() {
        assert!(declared_is_pdf("application/pdf"));
        assert!(declared_is_pdf("Application/PDF; charset=binary"));
        assert!(declared_is_pdf("application/octet-stream"));
        assert!(!declared_is_pdf("application/zip"));
        assert!(!declared_is_pdf("text/html"));
    }

    #[test]
    fn header_may_follow_junk_but_not_another_magic() {
        let limits = Limits::default();
        let mut junk = b"garbage\n%PDF-1.4\n".to_vec();
        junk.extend_from_slice(b"%%EOF\n");
        assert!(validate(&junk, None, None, &limits).is_ok());
        let mut zip = b"PK\x03\x04%PDF-1.4\n".to_vec();
        zip.extend_from_slice(b"%%EOF\n");
        assert_eq!(
            validate(&zip, None, None, &limits),
            Err(ExtractError::SniffedOther { sniffed: "zip" })
        );
        let late = [vec![b' '; 2000], b"%PDF-1.4 %%EOF".to_vec()].concat();
        assert_eq!(
            validate(&late, None, None, &limits),
            Err(ExtractError::NotPdf)
        );
    }

    #[test]
    fn nesting_is_measured_outside_strings_and_streams() {
        let ok = b"1 0 obj (((((((([[[[[[) endobj 2 0 obj <</Length 3>> stream\n[[[[[[[[\nendstream endobj";
        assert!(check_nesting(ok, 4).is_ok());
        let deep = [b"1 0 obj ".to_vec(), vec![b'['; 5], vec![b']'; 5]].concat();
        assert_eq!(
            check_nesting(&deep, 4),
            Err(ExtractError::NestingTooDeep { limit: 4 })
        );
    }
}
