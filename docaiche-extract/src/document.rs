//! The object layer: loading with lopdf under limits, reference resolution
//! with cycle detection, the page tree walk, bounded stream decoding and
//! metadata.

use std::collections::HashSet;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicUsize, Ordering};

use docaiche_core::extract::DocumentInfo;
use lopdf::{Dictionary, Document, Object, ObjectId, Stream};
use time::{Date, Month, OffsetDateTime, PrimitiveDateTime, Time, UtcOffset};

use crate::error::{ExtractError, Result};
use crate::limits::{Deadline, Limits};

/// Longest chain of indirect references followed before giving up.
const MAX_REFERENCE_CHAIN: usize = 32;

/// Loads `content` with lopdf, bounded and panic-proof.
pub(crate) fn load(content: &[u8], limits: &Limits) -> Result<Document> {
    // lopdf decodes object and cross-reference streams while loading, each
    // under one cap. Share the document budget between them so that many
    // streams cannot add up past it: count them first (they are never
    // compressed themselves, so their `/Type` is visible in the raw bytes).
    let streams = count(content, b"/ObjStm") + count(content, b"/XRef");
    let cap = limits
        .max_stream_bytes
        .min(limits.max_document_bytes / streams.max(1));
    let options = lopdf::LoadOptions {
        max_decompressed_size: Some(cap),
        ..lopdf::LoadOptions::default()
    };
    let loaded = catch_unwind(AssertUnwindSafe(|| {
        Document::load_mem_with_options(content, options)
    }))
    .map_err(|_| ExtractError::ParserPanic)?;
    let doc = loaded.map_err(|e| map_lopdf(&e, limits, cap))?;
    if doc.objects.len() > limits.max_objects {
        return Err(ExtractError::TooManyObjects {
            limit: limits.max_objects,
        });
    }
    if let Ok(encrypt) = doc.trailer.get(b"Encrypt") {
        // lopdf decrypts (and drops /Encrypt) when the user password is
        // empty; an /Encrypt still present means it could not.
        let filter = resolve(&doc, encrypt)
            .ok()
            .and_then(|o| o.as_dict().ok())
            .and_then(|d| d.get(b"Filter").ok())
            .and_then(|f| f.as_name().ok());
        return Err(match filter {
            Some(b"Standard") | None => ExtractError::Encrypted,
            Some(_) => ExtractError::UnsupportedEncryption,
        });
    }
    Ok(doc)
}

fn count(haystack: &[u8], needle: &[u8]) -> usize {
    haystack
        .windows(needle.len())
        .filter(|w| *w == needle)
        .count()
}

fn map_lopdf(err: &lopdf::Error, limits: &Limits, cap: usize) -> ExtractError {
    match err {
        lopdf::Error::Decompress(lopdf::DecompressError::MemoryLimitExceeded { .. }) => {
            ExtractError::DecompressionBomb { limit: cap }
        }
        lopdf::Error::UnsupportedSecurityHandler(_) => ExtractError::UnsupportedEncryption,
        lopdf::Error::InvalidPassword | lopdf::Error::Decryption(_) => ExtractError::Encrypted,
        lopdf::Error::ReferenceCycle(_) | lopdf::Error::ReferenceLimit => {
            ExtractError::ReferenceCycle
        }
        lopdf::Error::RecursionLimit => ExtractError::NestingTooDeep {
            limit: limits.max_nesting,
        },
        other => ExtractError::Malformed(other.to_string().into()),
    }
}

/// Follows references from `obj` to a direct object. A missing object is
/// `null` (as the spec says); a chain that loops is a cycle.
pub(crate) fn resolve<'a>(doc: &'a Document, mut obj: &'a Object) -> Result<&'a Object> {
    let mut first = None;
    for _ in 0..MAX_REFERENCE_CHAIN {
        match obj {
            Object::Reference(id) => {
                if first == Some(*id) {
                    return Err(ExtractError::ReferenceCycle);
                }
                first.get_or_insert(*id);
                match doc.objects.get(id) {
                    Some(next) => obj = next,
                    None => return Ok(&Object::Null),
                }
            }
            direct => return Ok(direct),
        }
    }
    Err(ExtractError::ReferenceCycle)
}

/// `dict[key]`, resolved.
pub(crate) fn get<'a>(doc: &'a Document, dict: &'a Dictionary, key: &[u8]) -> Option<&'a Object> {
    dict.get(key).ok().and_then(|o| resolve(doc, o).ok())
}

/// `dict[key]` as a dictionary (a stream's dictionary counts).
pub(crate) fn get_dict<'a>(
    doc: &'a Document,
    dict: &'a Dictionary,
    key: &[u8],
) -> Option<&'a Dictionary> {
    match get(doc, dict, key)? {
        Object::Dictionary(d) => Some(d),
        Object::Stream(s) => Some(&s.dict),
        _ => None,
    }
}

/// A number as `f32` (integers too).
pub(crate) fn number(obj: &Object) -> Option<f32> {
    match obj {
        #[expect(clippy::cast_precision_loss, reason = "PDF numbers are reals")]
        Object::Integer(i) => Some(*i as f32),
        Object::Real(r) => Some(*r),
        _ => None,
    }
}

/// One page: its object and its (possibly inherited) resources.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PageRef<'a> {
    pub(crate) dict: &'a Dictionary,
    pub(crate) resources: Option<&'a Dictionary>,
    /// The crop box (else media box), `[x0 y0 x1 y1]` normalised.
    pub(crate) bbox: Option<[f32; 4]>,
}

fn rect(doc: &Document, dict: &Dictionary, key: &[u8]) -> Option<[f32; 4]> {
    let Some(Object::Array(a)) = get(doc, dict, key) else {
        return None;
    };
    let v: Vec<f32> = a
        .iter()
        .filter_map(|o| resolve(doc, o).ok().and_then(number))
        .collect();
    match v.as_slice() {
        [a, b, c, d] => Some([a.min(*c), b.min(*d), a.max(*c), b.max(*d)]),
        _ => None,
    }
}

/// Walks the page tree depth-first without recursion. A node seen twice is a
/// cycle; more than `limits.max_pages` leaves is refused.
pub(crate) fn pages<'a>(
    doc: &'a Document,
    limits: &Limits,
    deadline: &Deadline,
) -> Result<Vec<PageRef<'a>>> {
    let catalog = doc
        .trailer
        .get(b"Root")
        .ok()
        .and_then(|r| resolve(doc, r).ok())
        .and_then(|o| o.as_dict().ok())
        .ok_or(ExtractError::Malformed("no document catalog".into()))?;
    let root = catalog
        .get(b"Pages")
        .map_err(|_| ExtractError::Malformed("no page tree".into()))?;
    let mut seen: HashSet<ObjectId> = HashSet::new();
    let mut out = Vec::new();
    // (node, inherited resources); children pushed in reverse for order.
    type Inherited<'d> = (Option<&'d Dictionary>, Option<[f32; 4]>, Option<[f32; 4]>);
    let mut stack: Vec<(&Object, Inherited<'a>, usize)> = vec![(root, (None, None, None), 0)];
    while let Some((node, (inherited, media, crop), depth)) = stack.pop() {
        deadline.check()?;
        if depth > limits.max_nesting {
            return Err(ExtractError::NestingTooDeep {
                limit: limits.max_nesting,
            });
        }
        if let Object::Reference(id) = node
            && !seen.insert(*id)
        {
            return Err(ExtractError::ReferenceCycle);
        }
        let Ok(Object::Dictionary(dict)) = resolve(doc, node) else {
            continue;
        };
        let resources = get_dict(doc, dict, b"Resources").or(inherited);
        let media = rect(doc, dict, b"MediaBox").or(media);
        let crop = rect(doc, dict, b"CropBox").or(crop);
        let kids = match get(doc, dict, b"Kids") {
            Some(Object::Array(kids)) => Some(kids),
            _ => None,
        };
        let is_page = dict.get(b"Type").and_then(Object::as_name).ok() == Some(b"Page")
            || (kids.is_none() && dict.has(b"Contents"));
        if is_page {
            if out.len() >= usize::try_from(limits.max_pages).unwrap_or(usize::MAX) {
                return Err(ExtractError::TooManyPages {
                    limit: limits.max_pages,
                });
            }
            out.push(PageRef {
                dict,
                resources,
                bbox: crop.or(media),
            });
        } else if let Some(kids) = kids {
            if stack.len() + kids.len() > limits.max_objects {
                return Err(ExtractError::TooManyObjects {
                    limit: limits.max_objects,
                });
            }
            for kid in kids.iter().rev() {
                stack.push((kid, (resources, media, crop), depth + 1));
            }
        }
    }
    Ok(out)
}

/// The per-document decompressed-bytes budget (the memory cap), shared by
/// the page workers.
#[derive(Debug)]
pub(crate) struct Budget {
    remaining: AtomicUsize,
    per_stream: usize,
    per_document: usize,
}

impl Budget {
    pub(crate) fn new(limits: &Limits) -> Self {
        Self {
            remaining: AtomicUsize::new(limits.max_document_bytes),
            per_stream: limits.max_stream_bytes,
            per_document: limits.max_document_bytes,
        }
    }

    /// Decodes `stream`, never past the per-stream cap nor the document's
    /// remaining budget.
    pub(crate) fn decode(&self, stream: &Stream) -> Result<Vec<u8>> {
        let remaining = self.remaining.load(Ordering::Relaxed);
        let cap = self.per_stream.min(remaining);
        let data = match stream.get_plain_content_with_limit(cap) {
            Ok(data) => data,
            Err(lopdf::Error::Decompress(lopdf::DecompressError::MemoryLimitExceeded {
                ..
            })) => {
                return Err(ExtractError::DecompressionBomb {
                    limit: if cap == self.per_stream {
                        self.per_stream
                    } else {
                        self.per_document
                    },
                });
            }
            // A stream that does not decode (bad data, unknown filter) is
            // skipped, as readers do.
            Err(_) => return Ok(Vec::new()),
        };
        let taken = self
            .remaining
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |r| {
                r.checked_sub(data.len())
            });
        if taken.is_err() {
            return Err(ExtractError::DecompressionBomb {
                limit: self.per_document,
            });
        }
        Ok(data)
    }
}

/// Metadata from the `/Info` dictionary and the header.
pub(crate) fn info(doc: &Document, page_count: u32) -> DocumentInfo {
    let dict = doc
        .trailer
        .get(b"Info")
        .ok()
        .and_then(|o| resolve(doc, o).ok())
        .and_then(|o| o.as_dict().ok());
    let text = |key: &[u8]| {
        dict.and_then(|d| get(doc, d, key))
            .and_then(|o| lopdf::decode_text_string(o).ok())
            .map(|s| s.trim_matches(char::from(0)).trim().to_owned())
            .filter(|s| !s.is_empty())
    };
    let date = |key: &[u8]| {
        dict.and_then(|d| get(doc, d, key))
            .and_then(|o| o.as_str().ok())
            .and_then(parse_pdf_date)
    };
    let mut info = DocumentInfo::default();
    info.title = text(b"Title");
    info.author = text(b"Author");
    info.producer = text(b"Producer");
    info.created = date(b"CreationDate");
    info.modified = date(b"ModDate");
    info.page_count = page_count;
    info.format_version = Some(doc.version.clone()).filter(|v| !v.is_empty());
    info
}

/// Parses a PDF date string, `D:YYYYMMDDHHmmSSOHH'mm'` with every part
/// after the year optional (and the common `Z00'00'` and missing-apostrophe
/// variants). Invalid fields give `None`.
#[must_use]
pub fn parse_pdf_date(raw: &[u8]) -> Option<OffsetDateTime> {
    let s = raw.strip_prefix(b"D:").unwrap_or(raw);
    let s: Vec<u8> = s
        .iter()
        .copied()
        .filter(|b| !b.is_ascii_whitespace())
        .collect();
    let digits = |from: usize, len: usize| -> Option<u32> {
        let part = s.get(from..from + len)?;
        if !part.iter().all(u8::is_ascii_digit) {
            return None;
        }
        std::str::from_utf8(part).ok()?.parse().ok()
    };
    let year = i32::try_from(digits(0, 4)?).ok()?;
    let field = |from: usize, default: u32| match s.get(from) {
        Some(b) if b.is_ascii_digit() => digits(from, 2),
        _ => Some(default),
    };
    let month = u8::try_from(field(4, 1)?).ok()?;
    let day = u8::try_from(field(6, 1)?).ok()?;
    let hour = u8::try_from(field(8, 0)?).ok()?;
    let minute = u8::try_from(field(10, 0)?).ok()?;
    let second = u8::try_from(field(12, 0)?).ok()?.min(59);
    let date = Date::from_calendar_date(year, Month::try_from(month).ok()?, day).ok()?;
    let time = Time::from_hms(hour, minute, second).ok()?;
    let consumed = s.iter().take(14).take_while(|b| b.is_ascii_digit()).count();
    let offset = match s.get(consumed) {
        Some(sign @ (b'+' | b'-')) => {
            let oh = digits(consumed + 1, 2).unwrap_or(0);
            let om_at = if s.get(consumed + 3) == Some(&b'\'') {
                consumed + 4
            } else {
                consumed + 3
            };
            let om = digits(om_at, 2).unwrap_or(0);
            let total = i32::try_from(oh * 3600 + om * 60).ok()?;
            UtcOffset::from_whole_seconds(if *sign == b'-' { -total } else { total }).ok()?
        }
        _ => UtcOffset::UTC,
    };
    Some(PrimitiveDateTime::new(date, time).assume_offset(offset))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pdf_dates_parse_with_and_without_parts() {
        let d = parse_pdf_date(b"D:20230122153045+01'30'").expect("full date");
        assert_eq!(d.year(), 2023);
        assert_eq!(d.offset().whole_minutes(), 90);
        assert_eq!(d.second(), 45);
        let d = parse_pdf_date(b"D:2019").expect("year only");
        assert_eq!((d.month(), d.day()), (Month::January, 1));
        let d = parse_pdf_date(b"D:20070907120000Z00'00'").expect("zulu");
        assert_eq!(d.offset(), UtcOffset::UTC);
        let d = parse_pdf_date(b"D:20110101000000-05'00").expect("no trailing quote");
        assert_eq!(d.offset().whole_hours(), -5);
        assert!(parse_pdf_date(b"D:20231340").is_none());
        assert!(parse_pdf_date(b"yesterday").is_none());
    }

    #[test]
    fn a_self_reference_is_a_cycle() {
        let mut doc = Document::with_version("1.4");
        doc.objects.insert((1, 0), Object::Reference((1, 0)));
        doc.objects.insert((2, 0), Object::Reference((3, 0)));
        doc.objects.insert((3, 0), Object::Reference((2, 0)));
        assert_eq!(
            resolve(&doc, &Object::Reference((1, 0))).err(),
            Some(ExtractError::ReferenceCycle)
        );
        assert_eq!(
            resolve(&doc, &Object::Reference((2, 0))).err(),
            Some(ExtractError::ReferenceCycle)
        );
        assert_eq!(
            resolve(&doc, &Object::Reference((9, 0))).ok(),
            Some(&Object::Null)
        );
    }
}
