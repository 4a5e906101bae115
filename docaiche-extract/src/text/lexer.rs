//! A content-stream tokenizer: operands and operators, no recursion, no
//! allocation for numbers, names or escape-free strings.

use std::borrow::Cow;

/// An operand.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Operand<'a> {
    Number(f32),
    Name(&'a [u8]),
    Str(Cow<'a, [u8]>),
    /// A `[` … `]` array, flattened (nested arrays are dropped: no operator
    /// we interpret takes them).
    Array(Vec<Operand<'a>>),
    /// Anything else (`true`, `null`, dictionaries): kept as a placeholder
    /// so that operand counts stay right.
    Other,
}

/// A token.
#[derive(Debug, PartialEq)]
pub(crate) enum Token<'a> {
    Operand(Operand<'a>),
    Operator(&'a [u8]),
}

pub(crate) struct Lexer<'a> {
    data: &'a [u8],
    pos: usize,
    max_nesting: usize,
}

#[inline]
const fn is_white(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n' | b'\x0c' | b'\0')
}

#[inline]
const fn is_delim(b: u8) -> bool {
    matches!(
        b,
        b'(' | b')' | b'<' | b'>' | b'[' | b']' | b'{' | b'}' | b'/' | b'%'
    )
}

/// Returned when arrays or dictionaries nest deeper than allowed.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct TooDeep;

impl<'a> Lexer<'a> {
    pub(crate) const fn new(data: &'a [u8], max_nesting: usize) -> Self {
        Self {
            data,
            pos: 0,
            max_nesting,
        }
    }

    fn skip_white(&mut self) {
        while self.pos < self.data.len() {
            let b = self.data[self.pos];
            if is_white(b) {
                self.pos += 1;
            } else if b == b'%' {
                while self.pos < self.data.len() && !matches!(self.data[self.pos], b'\r' | b'\n') {
                    self.pos += 1;
                }
            } else {
                break;
            }
        }
    }

    /// The next token, `None` at the end.
    pub(crate) fn next_token(&mut self) -> Result<Option<Token<'a>>, TooDeep> {
        loop {
            self.skip_white();
            let Some(&b) = self.data.get(self.pos) else {
                return Ok(None);
            };
            match b {
                b'[' => {
                    self.pos += 1;
                    return self
                        .array()
                        .map(|a| Some(Token::Operand(Operand::Array(a))));
                }
                b'<' if self.data.get(self.pos + 1) == Some(&b'<') => {
                    self.skip_dict()?;
                    return Ok(Some(Token::Operand(Operand::Other)));
                }
                b']' | b'>' | b')' | b'{' | b'}' => {
                    // Stray closer: skip it.
                    self.pos += 1;
                }
                _ => {
                    if let Some(op) = self.simple() {
                        return Ok(Some(Token::Operand(op)));
                    }
                    let start = self.pos;
                    while self.pos < self.data.len()
                        && !is_white(self.data[self.pos])
                        && !is_delim(self.data[self.pos])
                    {
                        self.pos += 1;
                    }
                    let word = &self.data[start..self.pos];
                    return Ok(Some(match word {
                        b"true" | b"false" | b"null" => Token::Operand(Operand::Other),
                        _ => Token::Operator(word),
                    }));
                }
            }
        }
    }

    /// A number, name or string at the cursor; `None` (cursor unmoved) for
    /// anything else.
    fn simple(&mut self) -> Option<Operand<'a>> {
        let b = *self.data.get(self.pos)?;
        match b {
            b'/' => {
                self.pos += 1;
                let start = self.pos;
                while self.pos < self.data.len()
                    && !is_white(self.data[self.pos])
                    && !is_delim(self.data[self.pos])
                {
                    self.pos += 1;
                }
                Some(Operand::Name(&self.data[start..self.pos]))
            }
            b'(' => Some(Operand::Str(self.literal())),
            b'<' => Some(Operand::Str(Cow::Owned(self.hex()))),
            b'0'..=b'9' | b'+' | b'-' | b'.' => self.number(),
            _ => None,
        }
    }

    fn number(&mut self) -> Option<Operand<'a>> {
        let start = self.pos;
        let mut end = start;
        while end < self.data.len() && matches!(self.data[end], b'0'..=b'9' | b'+' | b'-' | b'.') {
            end += 1;
        }
        let text = &self.data[start..end];
        // Fast path for plain integers and decimals; malformed numbers
        // (`--3`, `1.2.3`) read as 0 like most readers.
        let mut neg = false;
        let mut int: f64 = 0.0;
        let mut frac: f64 = 0.0;
        let mut scale: f64 = 1.0;
        let mut seen_dot = false;
        let mut seen_digit = false;
        for (i, &c) in text.iter().enumerate() {
            match c {
                b'-' if i == 0 => neg = true,
                b'+' if i == 0 => {}
                b'.' if !seen_dot => seen_dot = true,
                b'0'..=b'9' => {
                    seen_digit = true;
                    if seen_dot {
                        scale /= 10.0;
                        frac += f64::from(c - b'0') * scale;
                    } else {
                        int = int * 10.0 + f64::from(c - b'0');
                    }
                }
                _ => {}
            }
        }
        if !seen_digit
            && text.len() <= 1
            && end < self.data.len()
            && !is_white(self.data[end])
            && !is_delim(self.data[end])
        {
            return None;
        }
        self.pos = end.max(start + 1);
        let v = int + frac;
        #[expect(
            clippy::cast_possible_truncation,
            reason = "content coordinates fit f32"
        )]
        let v = (if neg { -v } else { v }) as f32;
        Some(Operand::Number(if v.is_finite() { v } else { 0.0 }))
    }

    fn literal(&mut self) -> Cow<'a, [u8]> {
        self.pos += 1;
        let start = self.pos;
        let mut depth = 1usize;
        // Fast path: no escapes.
        let mut i = start;
        while i < self.data.len() {
            match self.data[i] {
                b'\\' => break,
                b'(' => depth += 1,
                b')' => {
                    depth -= 1;
                    if depth == 0 {
                        self.pos = i + 1;
                        return Cow::Borrowed(&self.data[start..i]);
                    }
                }
                _ => {}
            }
            i += 1;
        }
        let mut out = Vec::with_capacity(i - start + 16);
        depth = 1;
        let mut i = start;
        while i < self.data.len() {
            let c = self.data[i];
            i += 1;
            match c {
                b'(' => {
                    depth += 1;
                    out.push(c);
                }
                b')' => {
                    depth -= 1;
                    if depth == 0 {
                        break;
                    }
                    out.push(c);
                }
                b'\\' => {
                    let Some(&e) = self.data.get(i) else { break };
                    i += 1;
                    match e {
                        b'n' => out.push(b'\n'),
                        b'r' => out.push(b'\r'),
                        b't' => out.push(b'\t'),
                        b'b' => out.push(8),
                        b'f' => out.push(12),
                        b'0'..=b'7' => {
                            let mut v = u32::from(e - b'0');
                            for _ in 0..2 {
                                match self.data.get(i) {
                                    Some(&d @ b'0'..=b'7') => {
                                        v = v * 8 + u32::from(d - b'0');
                                        i += 1;
                                    }
                                    _ => break,
                                }
                            }
                            out.push(u8::try_from(v & 0xff).unwrap_or(0));
                        }
                        b'\r' => {
                            if self.data.get(i) == Some(&b'\n') {
                                i += 1;
                            }
                        }
                        b'\n' => {}
                        other => out.push(other),
                    }
                }
                _ => out.push(c),
            }
        }
        self.pos = i;
        Cow::Owned(out)
    }

    fn hex(&mut self) -> Vec<u8> {
        self.pos += 1;
        let mut out = Vec::new();
        let mut hi: Option<u8> = None;
        while self.pos < self.data.len() {
            let c = self.data[self.pos];
            self.pos += 1;
            let v = match c {
                b'>' => break,
                b'0'..=b'9' => c - b'0',
                b'a'..=b'f' => c - b'a' + 10,
                b'A'..=b'F' => c - b'A' + 10,
                _ => continue,
            };
            match hi.take() {
                Some(h) => out.push(h << 4 | v),
                None => hi = Some(v),
            }
        }
        if let Some(h) = hi {
            out.push(h << 4);
        }
        out
    }

    fn array(&mut self) -> Result<Vec<Operand<'a>>, TooDeep> {
        let mut out = Vec::new();
        let mut depth = 1usize;
        loop {
            self.skip_white();
            let Some(&b) = self.data.get(self.pos) else {
                return Ok(out);
            };
            match b {
                b'[' => {
                    depth += 1;
                    if depth > self.max_nesting {
                        return Err(TooDeep);
                    }
                    self.pos += 1;
                }
                b']' => {
                    self.pos += 1;
                    depth -= 1;
                    if depth == 0 {
                        return Ok(out);
                    }
                }
                b'<' if self.data.get(self.pos + 1) == Some(&b'<') => {
                    self.skip_dict()?;
                    out.push(Operand::Other);
                }
                _ => {
                    if let Some(op) = self.simple() {
                        if depth == 1 {
                            out.push(op);
                        }
                    } else {
                        // A keyword inside an array: the array is broken;
                        // end it here and let the keyword be read next.
                        let start = self.pos;
                        while self.pos < self.data.len()
                            && !is_white(self.data[self.pos])
                            && !is_delim(self.data[self.pos])
                        {
                            self.pos += 1;
                        }
                        let word = &self.data[start..self.pos];
                        if matches!(word, b"true" | b"false" | b"null") {
                            out.push(Operand::Other);
                        } else if word.is_empty() {
                            self.pos += 1;
                        } else {
                            self.pos = start;
                            return Ok(out);
                        }
                    }
                }
            }
        }
    }

    /// Skips a `<< … >>` dictionary (nesting bounded).
    fn skip_dict(&mut self) -> Result<(), TooDeep> {
        let mut depth = 0usize;
        while self.pos < self.data.len() {
            let b = self.data[self.pos];
            if b == b'<' && self.data.get(self.pos + 1) == Some(&b'<') {
                depth += 1;
                if depth > self.max_nesting {
                    return Err(TooDeep);
                }
                self.pos += 2;
            } else if b == b'>' && self.data.get(self.pos + 1) == Some(&b'>') {
                depth -= 1;
                self.pos += 2;
                if depth == 0 {
                    return Ok(());
                }
            } else if b == b'(' {
                let _ = self.literal();
            } else if b == b'<' {
                let _ = self.hex();
            } else {
                self.pos += 1;
            }
        }
        Ok(())
    }

    /// After `ID`: skips inline image data up to `EI` between whitespace.
    pub(crate) fn skip_inline_image(&mut self) {
        // One whitespace byte follows ID.
        self.pos += 1;
        while self.pos + 1 < self.data.len() {
            if self.data[self.pos] == b'E'
                && self.data[self.pos + 1] == b'I'
                && self.pos > 0
                && is_white(self.data[self.pos - 1])
                && self.data.get(self.pos + 2).is_none_or(|&b| is_white(b))
            {
                self.pos += 2;
                return;
            }
            self.pos += 1;
        }
        self.pos = self.data.len();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens(data: &[u8]) -> Vec<Token<'_>> {
        let mut lx = Lexer::new(data, 8);
        let mut out = Vec::new();
        while let Ok(Some(t)) = lx.next_token() {
            let id = t == Token::Operator(b"ID");
            out.push(t);
            if id {
                lx.skip_inline_image();
            }
        }
        out
    }

    #[test]
    fn reads_operands_and_operators() {
        let t =
            tokens(b"/F1 12 Tf 1 0 0 1 -3.5 .5 Tm (a\\(b\\)\\101) Tj [(x) -250 (y)] TJ <4142> Tj");
        assert_eq!(t[0], Token::Operand(Operand::Name(b"F1")));
        assert_eq!(t[1], Token::Operand(Operand::Number(12.0)));
        assert_eq!(t[2], Token::Operator(b"Tf"));
        assert_eq!(t[7], Token::Operand(Operand::Number(-3.5)));
        assert_eq!(t[8], Token::Operand(Operand::Number(0.5)));
        assert_eq!(t[10], Token::Operand(Operand::Str(Cow::Borrowed(b"a(b)A"))));
        assert!(matches!(&t[12], Token::Operand(Operand::Array(a)) if a.len() == 3));
        assert_eq!(t[14], Token::Operand(Operand::Str(Cow::Borrowed(b"AB"))));
    }

    #[test]
    fn deep_arrays_are_refused_not_recursed() {
        let deep = [vec![b'['; 100_000], vec![b']'; 100_000]].concat();
        let mut lx = Lexer::new(&deep, 64);
        assert_eq!(lx.next_token(), Err(TooDeep));
    }

    #[test]
    fn inline_images_are_skipped() {
        let t = tokens(b"BI /W 1 ID \x00EI\xff EI Q");
        assert_eq!(t.last(), Some(&Token::Operator(b"Q")));
    }
}
