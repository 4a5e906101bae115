//! CMaps: `ToUnicode` (`bfchar`, `bfrange`, multi-byte codes) and the
//! codespace ranges of embedded encoding CMaps.

use std::collections::HashMap;

use super::lexer::{Lexer, Operand, Token};

/// Most code-to-text entries kept from one CMap (a hostile `bfrange` can
/// name 2^32 codes; we keep ranges unexpanded and cap the explicit ones).
const MAX_ENTRIES: usize = 1 << 17;

/// A parsed CMap.
#[derive(Debug, Default, Clone)]
pub(crate) struct CMap {
    /// `(code length in bytes, low, high)`.
    pub(crate) codespace: Vec<(u8, u32, u32)>,
    chars: HashMap<u32, String>,
    /// `(low, high, first target as UTF-16)`, the last unit incremented
    /// across the range.
    ranges: Vec<(u32, u32, Vec<u16>)>,
}

fn code_of(bytes: &[u8]) -> (u32, u8) {
    let mut v = 0u32;
    for &b in bytes.iter().take(4) {
        v = v << 8 | u32::from(b);
    }
    (v, u8::try_from(bytes.len().min(4)).unwrap_or(4))
}

fn utf16(bytes: &[u8]) -> Vec<u16> {
    bytes
        .chunks(2)
        .map(|c| match c {
            [a, b] => u16::from_be_bytes([*a, *b]),
            [a] => u16::from(*a),
            _ => 0,
        })
        .collect()
}

fn to_string(units: &[u16]) -> String {
    char::decode_utf16(units.iter().copied())
        .map(|r| r.unwrap_or('\u{fffd}'))
        .filter(|&c| c != '\0')
        .collect()
}

impl CMap {
    /// Parses a CMap program. Never fails: unreadable parts are skipped.
    pub(crate) fn parse(data: &[u8]) -> Self {
        let mut map = Self::default();
        let mut lexer = Lexer::new(data, 8);
        let mut operands: Vec<Operand<'_>> = Vec::new();
        let mut mode: &[u8] = b"";
        while let Ok(Some(token)) = lexer.next_token() {
            match token {
                Token::Operand(op) => {
                    if operands.len() < 4096 {
                        operands.push(op);
                    }
                    map.consume(mode, &mut operands);
                }
                Token::Operator(op) => {
                    match op {
                        b"begincodespacerange"
                        | b"beginbfchar"
                        | b"beginbfrange"
                        | b"begincidrange"
                        | b"begincidchar" => mode = op,
                        _ => mode = b"",
                    }
                    operands.clear();
                }
            }
        }
        map.ranges.sort_by_key(|r| r.0);
        map
    }

    fn consume(&mut self, mode: &[u8], ops: &mut Vec<Operand<'_>>) {
        match mode {
            b"begincodespacerange" if ops.len() == 2 => {
                if let [Operand::Str(lo), Operand::Str(hi)] = ops.as_slice() {
                    let (l, n) = code_of(lo);
                    let (h, _) = code_of(hi);
                    if n > 0 {
                        self.codespace.push((n, l, h));
                    }
                }
                ops.clear();
            }
            b"beginbfchar" if ops.len() == 2 => {
                if let [Operand::Str(src), dst] = ops.as_slice() {
                    let (code, _) = code_of(src);
                    let text = match dst {
                        Operand::Str(d) => to_string(&utf16(d)),
                        Operand::Name(n) => super::font::glyph_to_string(n).unwrap_or_default(),
                        _ => String::new(),
                    };
                    if self.chars.len() < MAX_ENTRIES {
                        self.chars.insert(code, text);
                    }
                }
                ops.clear();
            }
            b"beginbfrange" if ops.len() == 3 => {
                if let [Operand::Str(lo), Operand::Str(hi), dst] = ops.as_slice() {
                    let (l, _) = code_of(lo);
                    let (h, _) = code_of(hi);
                    match dst {
                        Operand::Str(d) if h >= l && self.ranges.len() < MAX_ENTRIES => {
                            self.ranges.push((l, h, utf16(d)));
                        }
                        Operand::Array(items) if h >= l => {
                            for (i, item) in items.iter().enumerate() {
                                let Some(code) =
                                    u32::try_from(i).ok().and_then(|i| l.checked_add(i))
                                else {
                                    break;
                                };
                                if code > h || self.chars.len() >= MAX_ENTRIES {
                                    break;
                                }
                                if let Operand::Str(d) = item {
                                    self.chars.insert(code, to_string(&utf16(d)));
                                }
                            }
                        }
                        _ => {}
                    }
                }
                ops.clear();
            }
            b"begincidrange" if ops.len() == 3 => ops.clear(),
            b"begincidchar" if ops.len() == 2 => ops.clear(),
            _ => {}
        }
    }

    /// Whether the map has any code-to-text entry.
    pub(crate) fn is_empty(&self) -> bool {
        self.chars.is_empty() && self.ranges.is_empty()
    }

    /// The text for `code`, appended to `out`; false if unmapped.
    pub(crate) fn lookup(&self, code: u32, out: &mut String) -> bool {
        if let Some(s) = self.chars.get(&code) {
            out.push_str(s);
            return true;
        }
        // Ranges are sorted by low end; find the last one starting at or
        // before `code` that covers it.
        let idx = self.ranges.partition_point(|r| r.0 <= code);
        for r in self.ranges[..idx].iter().rev().take(8) {
            if code <= r.1 {
                let mut units = r.2.clone();
                if let Some(last) = units.last_mut() {
                    let delta = u16::try_from(code - r.0).unwrap_or(0);
                    *last = last.wrapping_add(delta);
                }
                out.push_str(&to_string(&units));
                return true;
            }
        }
        false
    }

    /// Splits the next code off `bytes` by the codespace ranges: `(code,
    /// length)`. Falls back to `default_len` bytes.
    pub(crate) fn next_code(&self, bytes: &[u8], default_len: usize) -> (u32, usize) {
        for len in 1..=4u8 {
            let n = usize::from(len);
            if bytes.len() < n {
                break;
            }
            let (code, _) = code_of(&bytes[..n]);
            if self
                .codespace
                .iter()
                .any(|&(l, lo, hi)| l == len && (lo..=hi).contains(&code))
            {
                return (code, n);
            }
        }
        let n = default_len.clamp(1, 4).min(bytes.len()).max(1);
        (code_of(&bytes[..n.min(bytes.len())]).0, n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CMAP: &[u8] = b"/CIDInit /ProcSet findresource begin 12 dict begin begincmap
        1 begincodespacerange <0000> <FFFF> endcodespacerange
        2 beginbfchar <0003> <0020> <0011> <D835DC9C> endbfchar
        2 beginbfrange <0024> <0026> <0041> <0030> <0031> [<00660066> <00660069>] endbfrange
        endcmap";

    #[test]
    fn bfchar_bfrange_and_surrogates() {
        let map = CMap::parse(CMAP);
        let look = |c| {
            let mut s = String::new();
            map.lookup(c, &mut s).then_some(s)
        };
        assert_eq!(look(3).as_deref(), Some(" "));
        assert_eq!(look(0x11).as_deref(), Some("\u{1d49c}"));
        assert_eq!(look(0x25).as_deref(), Some("B"));
        assert_eq!(look(0x26).as_deref(), Some("C"));
        assert_eq!(look(0x31).as_deref(), Some("fi"));
        assert_eq!(look(0x27), None);
        assert_eq!(map.next_code(&[0, 0x24, 1], 1), (0x24, 2));
    }
}
