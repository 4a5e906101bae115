//! Fonts as far as text needs them: code → Unicode (ToUnicode, standard
//! encodings with `/Differences`, the Adobe Glyph List, `uniXXXX` names, the
//! built-in encoding of embedded Type 1 programs) and code → advance width.

use std::collections::HashMap;

use lopdf::{Dictionary, Document, Object};

use super::cmap::CMap;
use super::tables;
use crate::document::{Budget, get, get_dict, number};
use crate::error::Result;

/// One decoded glyph.
#[derive(Debug)]
pub(crate) struct Glyph<'t> {
    pub(crate) text: &'t str,
    /// Advance in text space (already divided by 1000 / scaled by the
    /// Type 3 font matrix).
    pub(crate) width: f32,
    /// A single-byte code 32 (word spacing `Tw` applies).
    pub(crate) word_space: bool,
}

#[derive(Debug)]
enum Kind {
    Simple {
        text: Box<[String]>,
        widths: Box<[f32; 256]>,
    },
    Composite {
        encoding: Option<CMap>,
        /// Predefined `Uni…-UCS2/UTF16` encodings: the code is Unicode.
        unicode_codes: bool,
        widths: HashMap<u32, f32>,
        default_width: f32,
    },
}

/// A font, parsed once per document.
#[derive(Debug)]
pub(crate) struct Font {
    kind: Kind,
    to_unicode: Option<CMap>,
}

/// Maps a glyph name to text: the AGL, `uniXXXX…`, `uXXXX[XX]`, and the
/// `base.suffix` / `a_b` conventions.
pub(crate) fn glyph_to_string(name: &[u8]) -> Option<String> {
    let name = std::str::from_utf8(name).ok()?;
    if let Ok(i) = tables::GLYPH_LIST.binary_search_by(|(n, _)| n.as_bytes().cmp(name.as_bytes())) {
        return char::from_u32(u32::from(tables::GLYPH_LIST[i].1)).map(String::from);
    }
    if let Some(hex) = name.strip_prefix("uni")
        && hex.len() >= 4
        && hex.len() % 4 == 0
        && hex.bytes().all(|b| b.is_ascii_hexdigit())
    {
        let units: Vec<u16> = hex
            .as_bytes()
            .chunks(4)
            .filter_map(|c| u16::from_str_radix(std::str::from_utf8(c).ok()?, 16).ok())
            .collect();
        return Some(
            char::decode_utf16(units)
                .filter_map(std::result::Result::ok)
                .collect(),
        );
    }
    if let Some(hex) = name.strip_prefix('u')
        && (4..=6).contains(&hex.len())
        && hex.bytes().all(|b| b.is_ascii_hexdigit())
    {
        return u32::from_str_radix(hex, 16)
            .ok()
            .and_then(char::from_u32)
            .map(String::from);
    }
    if let Some((base, _)) = name.split_once('.')
        && !base.is_empty()
    {
        return glyph_to_string(base.as_bytes());
    }
    if name.contains('_') {
        let parts: Option<String> = name
            .split('_')
            .map(|p| glyph_to_string(p.as_bytes()))
            .collect();
        return parts;
    }
    None
}

/// The metrics of a standard 14 text font (or a common alias), by base
/// font name without its subset prefix.
fn std14_widths(base_font: &[u8]) -> Option<&'static [(u16, u16)]> {
    let name = base_font
        .iter()
        .position(|&b| b == b'+')
        .map_or(base_font, |i| &base_font[i + 1..]);
    let name = String::from_utf8_lossy(name).replace(',', "-");
    let bold = name.contains("Bold");
    let italic = name.contains("Italic") || name.contains("Oblique");
    let times = name.starts_with("Times");
    let helvetica = name.starts_with("Helvetica") || name.starts_with("Arial");
    Some(match (times, helvetica, bold, italic) {
        (true, _, false, false) => &super::std14::TIMES_ROMAN,
        (true, _, true, false) => &super::std14::TIMES_BOLD,
        (true, _, false, true) => &super::std14::TIMES_ITALIC,
        (true, _, true, true) => &super::std14::TIMES_BOLD_ITALIC,
        (_, true, false, false) => &super::std14::HELVETICA,
        (_, true, true, false) => &super::std14::HELVETICA_BOLD,
        (_, true, false, true) => &super::std14::HELVETICA_OBLIQUE,
        (_, true, true, true) => &super::std14::HELVETICA_BOLD_OBLIQUE,
        _ => return None,
    })
}

fn expand_ligatures(s: &str) -> String {
    if !s.chars().any(|c| ('\u{fb00}'..='\u{fb06}').contains(&c)) {
        return s.to_owned();
    }
    let mut out = String::with_capacity(s.len() + 2);
    for c in s.chars() {
        match c {
            '\u{fb00}' => out.push_str("ff"),
            '\u{fb01}' => out.push_str("fi"),
            '\u{fb02}' => out.push_str("fl"),
            '\u{fb03}' => out.push_str("ffi"),
            '\u{fb04}' => out.push_str("ffl"),
            '\u{fb05}' | '\u{fb06}' => out.push_str("st"),
            other => out.push(other),
        }
    }
    out
}

fn table_for(name: &[u8]) -> Option<&'static [u16; 256]> {
    match name {
        b"WinAnsiEncoding" => Some(&tables::WIN_ANSI),
        b"MacRomanEncoding" => Some(&tables::MAC_ROMAN),
        b"StandardEncoding" => Some(&tables::STANDARD),
        b"MacExpertEncoding" => Some(&tables::MAC_EXPERT),
        _ => None,
    }
}

fn unit_to_string(u: u16) -> String {
    if u == 0 {
        String::new()
    } else {
        char::from_u32(u32::from(u))
            .map(String::from)
            .unwrap_or_default()
    }
}

impl Font {
    /// Parses the font dictionary `dict`.
    pub(crate) fn parse(doc: &Document, dict: &Dictionary, budget: &Budget) -> Result<Self> {
        let subtype = dict
            .get(b"Subtype")
            .and_then(Object::as_name)
            .unwrap_or(b"");
        let to_unicode = match get(doc, dict, b"ToUnicode") {
            Some(Object::Stream(s)) => {
                let data = budget.decode(s)?;
                Some(CMap::parse(&data)).filter(|m| !m.is_empty())
            }
            _ => None,
        };
        let kind = if subtype == b"Type0" {
            Self::composite(doc, dict, budget)?
        } else {
            Self::simple(doc, dict, subtype, to_unicode.as_ref(), budget)?
        };
        Ok(Self { kind, to_unicode })
    }

    fn simple(
        doc: &Document,
        dict: &Dictionary,
        subtype: &[u8],
        to_unicode: Option<&CMap>,
        budget: &Budget,
    ) -> Result<Kind> {
        let descriptor = get_dict(doc, dict, b"FontDescriptor");
        // Base encoding: named, else the font program's own, else Standard.
        let encoding = get(doc, dict, b"Encoding");
        let (named, differences) = match encoding {
            Some(Object::Name(n)) => (Some(n.as_slice()), None),
            Some(Object::Dictionary(d)) => (
                d.get(b"BaseEncoding").and_then(Object::as_name).ok(),
                match get(doc, d, b"Differences") {
                    Some(Object::Array(a)) => Some(a),
                    _ => None,
                },
            ),
            _ => (None, None),
        };
        let mut names: Vec<Option<Vec<u8>>> = vec![None; 256];
        let mut base: [u16; 256] = [0; 256];
        if let Some(table) = named.and_then(table_for) {
            base = *table;
        } else {
            let builtin = descriptor.and_then(|d| match get(doc, d, b"FontFile") {
                Some(Object::Stream(s)) => budget.decode(s).ok().map(|data| type1_encoding(&data)),
                _ => None,
            });
            match builtin {
                Some(Some(BuiltIn::Standard)) => base = tables::STANDARD,
                Some(Some(BuiltIn::Custom(list))) => {
                    for (code, name) in list {
                        names[usize::from(code)] = Some(name);
                    }
                }
                _ if subtype == b"TrueType" && differences.is_none() => base = tables::WIN_ANSI,
                _ => base = tables::STANDARD,
            }
        }
        if let Some(diffs) = differences {
            let mut code: usize = 0;
            for item in diffs {
                match item {
                    Object::Integer(i) => code = usize::try_from(*i).unwrap_or(256),
                    Object::Name(n) => {
                        if code < 256 {
                            names[code] = Some(n.clone());
                        }
                        code = code.saturating_add(1);
                    }
                    _ => {}
                }
            }
        }
        let mut text: Vec<String> = Vec::with_capacity(256);
        for code in 0..256u32 {
            let mut s = String::new();
            if let Some(map) = to_unicode
                && map.lookup(code, &mut s)
            {
                text.push(s);
                continue;
            }
            let i = usize::try_from(code).unwrap_or(0);
            // Ligatures named by glyph come out as their letters, as
            // pdftotext prints them (a ToUnicode mapping is kept as is).
            let from_name = names[i]
                .as_deref()
                .and_then(glyph_to_string)
                .map(|s| expand_ligatures(&s));
            text.push(from_name.unwrap_or_else(|| unit_to_string(base[i])));
        }
        // Widths.
        let scale = if subtype == b"Type3" {
            match get(doc, dict, b"FontMatrix") {
                Some(Object::Array(m)) => m.first().and_then(number).unwrap_or(0.001),
                _ => 0.001,
            }
        } else {
            0.001
        };
        let missing = descriptor
            .and_then(|d| get(doc, d, b"MissingWidth"))
            .and_then(number)
            .unwrap_or(0.0);
        let base_font = dict
            .get(b"BaseFont")
            .and_then(Object::as_name)
            .unwrap_or(b"");
        let fallback = if base_font.windows(7).any(|w| w == b"Courier") {
            600.0
        } else {
            500.0
        };
        let mut widths = Box::new([fallback * 0.001; 256]);
        let explicit = get(doc, dict, b"Widths");
        if !matches!(explicit, Some(Object::Array(_)))
            && let Some(table) = std14_widths(base_font)
        {
            for (slot, t) in widths.iter_mut().zip(text.iter()) {
                let unit = t.encode_utf16().next().unwrap_or(0);
                if let Ok(i) = table.binary_search_by_key(&unit, |e| e.0) {
                    *slot = f32::from(table[i].1) * 0.001;
                }
            }
        }
        if let Some(Object::Array(ws)) = explicit {
            widths.fill(missing * scale);
            let first = get(doc, dict, b"FirstChar")
                .and_then(number)
                .unwrap_or(0.0)
                .max(0.0);
            #[expect(
                clippy::cast_possible_truncation,
                clippy::cast_sign_loss,
                reason = "clamped"
            )]
            let first = first.min(255.0) as usize;
            for (i, w) in ws.iter().enumerate() {
                let Some(slot) = widths.get_mut(first + i) else {
                    break;
                };
                let w = match w {
                    Object::Reference(_) => crate::document::resolve(doc, w).ok().and_then(number),
                    other => number(other),
                };
                *slot = w.unwrap_or(missing) * scale;
            }
        }
        Ok(Kind::Simple {
            text: text.into_boxed_slice(),
            widths,
        })
    }

    fn composite(doc: &Document, dict: &Dictionary, budget: &Budget) -> Result<Kind> {
        let (encoding, unicode_codes) = match get(doc, dict, b"Encoding") {
            Some(Object::Stream(s)) => (Some(CMap::parse(&budget.decode(s)?)), false),
            Some(Object::Name(n)) => {
                let uni = n.starts_with(b"Uni")
                    && (n.windows(4).any(|w| w == b"UCS2") || n.windows(5).any(|w| w == b"UTF16"));
                (None, uni)
            }
            _ => (None, false),
        };
        let descendant = match get(doc, dict, b"DescendantFonts") {
            Some(Object::Array(a)) => a
                .first()
                .and_then(|o| crate::document::resolve(doc, o).ok())
                .and_then(|o| o.as_dict().ok()),
            _ => None,
        };
        let mut widths = HashMap::new();
        let mut default_width = 1.0;
        if let Some(cid) = descendant {
            if let Some(dw) = get(doc, cid, b"DW").and_then(number) {
                default_width = dw * 0.001;
            }
            if let Some(Object::Array(w)) = get(doc, cid, b"W") {
                parse_cid_widths(doc, w, &mut widths);
            }
        }
        Ok(Kind::Composite {
            encoding,
            unicode_codes,
            widths,
            default_width,
        })
    }

    /// Decodes `bytes` glyph by glyph.
    pub(crate) fn decode(&self, bytes: &[u8], scratch: &mut String, mut f: impl FnMut(Glyph<'_>)) {
        match &self.kind {
            Kind::Simple { text, widths } => {
                for &b in bytes {
                    let i = usize::from(b);
                    f(Glyph {
                        text: &text[i],
                        width: widths[i],
                        word_space: b == 32,
                    });
                }
            }
            Kind::Composite {
                encoding,
                unicode_codes,
                widths,
                default_width,
            } => {
                let mut rest = bytes;
                while !rest.is_empty() {
                    let (code, len) = match encoding {
                        Some(cmap) if !cmap.codespace.is_empty() => cmap.next_code(rest, 2),
                        _ => match rest {
                            [a, b, ..] => (u32::from(*a) << 8 | u32::from(*b), 2),
                            [a] => (u32::from(*a), 1),
                            [] => break,
                        },
                    };
                    rest = &rest[len.min(rest.len())..];
                    scratch.clear();
                    let mapped = self
                        .to_unicode
                        .as_ref()
                        .is_some_and(|m| m.lookup(code, scratch));
                    if !mapped
                        && *unicode_codes
                        && let Some(c) = char::from_u32(code)
                    {
                        scratch.push(c);
                    }
                    // CID = code for Identity (the common case); other
                    // encodings fall back to the default width.
                    let width = widths.get(&code).copied().unwrap_or(*default_width);
                    f(Glyph {
                        text: scratch,
                        width,
                        word_space: len == 1 && code == 32,
                    });
                }
            }
        }
    }
}

fn parse_cid_widths(doc: &Document, w: &[Object], out: &mut HashMap<u32, f32>) {
    const MAX: usize = 1 << 16;
    let mut i = 0;
    let val = |o: &Object| crate::document::resolve(doc, o).ok().and_then(number);
    while i < w.len() && out.len() < MAX {
        let Some(first) = val(&w[i]) else { break };
        #[expect(
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss,
            reason = "CIDs are small non-negative integers"
        )]
        let first = first.max(0.0) as u32;
        match w.get(i + 1).map(|o| crate::document::resolve(doc, o)) {
            Some(Ok(Object::Array(list))) => {
                for (k, wv) in list.iter().enumerate() {
                    if out.len() >= MAX {
                        break;
                    }
                    if let (Some(v), Ok(k)) = (val(wv), u32::try_from(k)) {
                        out.insert(first.saturating_add(k), v * 0.001);
                    }
                }
                i += 2;
            }
            Some(Ok(last)) => {
                let (Some(last), Some(v)) = (number(last), w.get(i + 2).and_then(val)) else {
                    break;
                };
                #[expect(
                    clippy::cast_possible_truncation,
                    clippy::cast_sign_loss,
                    reason = "CIDs are small non-negative integers"
                )]
                let last = last.max(0.0) as u32;
                let mut c = first;
                while c <= last && out.len() < MAX {
                    out.insert(c, v * 0.001);
                    let Some(next) = c.checked_add(1) else { break };
                    c = next;
                }
                i += 3;
            }
            _ => break,
        }
    }
}

enum BuiltIn {
    Standard,
    Custom(Vec<(u8, Vec<u8>)>),
}

/// The `/Encoding` of a Type 1 font program's clear-text part:
/// `StandardEncoding`, or `dup <code> /<name> put` entries.
fn type1_encoding(data: &[u8]) -> Option<BuiltIn> {
    let at = crate::validate::find(&data[..data.len().min(64 << 10)], b"/Encoding")?;
    let rest = &data[at + 9..data.len().min(at + 9 + (48 << 10))];
    let head = &rest[..rest.len().min(64)];
    if crate::validate::find(head, b"StandardEncoding").is_some() {
        return Some(BuiltIn::Standard);
    }
    let end = crate::validate::find(rest, b"readonly def")
        .or_else(|| crate::validate::find(rest, b"eexec"))
        .unwrap_or(rest.len());
    let text = String::from_utf8_lossy(&rest[..end]);
    let mut out = Vec::new();
    let mut words = text.split_ascii_whitespace();
    while let Some(w) = words.next() {
        if w == "dup"
            && let (Some(code), Some(name)) = (words.next(), words.next())
            && let (Ok(code), Some(name)) = (code.parse::<u8>(), name.strip_prefix('/'))
        {
            out.push((code, name.as_bytes().to_vec()));
        }
    }
    Some(BuiltIn::Custom(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glyph_names_map_to_unicode() {
        assert_eq!(glyph_to_string(b"A").as_deref(), Some("A"));
        assert_eq!(glyph_to_string(b"fi").as_deref(), Some("\u{fb01}"));
        assert_eq!(glyph_to_string(b"uni00E9").as_deref(), Some("é"));
        assert_eq!(
            glyph_to_string(b"uniD835DC9C").as_deref(),
            Some("\u{1d49c}")
        );
        assert_eq!(glyph_to_string(b"u1F600").as_deref(), Some("\u{1f600}"));
        assert_eq!(glyph_to_string(b"a.sc").as_deref(), Some("a"));
        assert_eq!(glyph_to_string(b"T_h").as_deref(), Some("Th"));
        assert_eq!(glyph_to_string(b"g123"), None);
    }

    #[test]
    fn cid_width_ranges_at_the_top_of_the_code_space_stop() {
        let doc = Document::with_version("1.5");
        let w = vec![
            Object::Integer(4_294_967_290),
            Object::Integer(4_294_967_295),
            Object::Integer(500),
            Object::Integer(1),
            Object::Array(vec![Object::Integer(250), Object::Real(333.0)]),
        ];
        let mut out = HashMap::new();
        parse_cid_widths(&doc, &w, &mut out);
        assert_eq!(out.get(&u32::MAX), Some(&0.5));
        assert_eq!(out.get(&2), Some(&0.333));
    }

    #[test]
    fn type1_builtin_encodings() {
        let std = b"%!PS-AdobeFont-1.0 /Encoding StandardEncoding def currentfile eexec";
        assert!(matches!(type1_encoding(std), Some(BuiltIn::Standard)));
        let custom = b"/Encoding 256 array 0 1 255 {1 index exch /.notdef put} for dup 12 /fi put dup 65 /A put readonly def";
        let Some(BuiltIn::Custom(list)) = type1_encoding(custom) else {
            panic!("custom encoding expected");
        };
        assert_eq!(list, vec![(12, b"fi".to_vec()), (65, b"A".to_vec())]);
    }
}
