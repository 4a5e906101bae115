//! Our own content-stream text extractor.
//!
//! lopdf gives us objects; this module interprets page content streams
//! (text state, matrices, `Tj`/`TJ`/`'`/`"`, form XObjects), decodes glyphs
//! through [`font`], and lays the glyphs out as text the way poppler's
//! `pdftotext` does in its default mode: a word breaks at an explicit space
//! or where the gap to the previous glyph exceeds 0.1 × the font size, a
//! line breaks where the baseline moves by more than half the font size, and
//! a line ending in a hyphen is joined to the next one without the hyphen.
//! Glyphs are kept in content-stream order (which for the producers we
//! measured is reading order), and glyphs outside the page's crop box are
//! dropped, as pdftotext drops them. Two more pdftotext habits are copied
//! because the fidelity measure sees them: ligature glyphs named in an
//! encoding (`/fi`) come out as their letters while a ToUnicode mapping to
//! U+FB01 is kept, and a spacing accent drawn over a letter (TeX's OT1
//! `\accent`) becomes the letter followed by the combining mark.
//!
//! Standard 14 fonts used without `/Widths` get Adobe's metrics
//! ([`std14`]), since word gaps are computed from glyph widths.

pub(crate) mod cmap;
pub(crate) mod font;
pub(crate) mod lexer;
pub(crate) mod std14;
pub(crate) mod tables;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use lopdf::{Dictionary, Document, Object, ObjectId};

use crate::document::{Budget, PageRef, get, get_dict, number, resolve};
use crate::error::{ExtractError, Result};
use crate::limits::{Deadline, Limits};
use font::Font;
use lexer::{Lexer, Operand, Token};

type Matrix = [f32; 6];
const IDENTITY: Matrix = [1.0, 0.0, 0.0, 1.0, 0.0, 0.0];

fn mul(m1: &Matrix, m2: &Matrix) -> Matrix {
    [
        m1[0] * m2[0] + m1[1] * m2[2],
        m1[0] * m2[1] + m1[1] * m2[3],
        m1[2] * m2[0] + m1[3] * m2[2],
        m1[2] * m2[1] + m1[3] * m2[3],
        m1[4] * m2[0] + m1[5] * m2[2] + m2[4],
        m1[4] * m2[1] + m1[5] * m2[3] + m2[5],
    ]
}

/// State shared by the page workers of one document.
#[derive(Debug)]
pub(crate) struct Shared<'a> {
    pub(crate) doc: &'a Document,
    pub(crate) limits: &'a Limits,
    pub(crate) deadline: Deadline,
    pub(crate) budget: Budget,
    operators: AtomicU64,
    fonts: Mutex<HashMap<ObjectId, Arc<Font>>>,
    forms: Mutex<HashMap<ObjectId, Arc<Vec<u8>>>>,
}

impl<'a> Shared<'a> {
    pub(crate) fn new(doc: &'a Document, limits: &'a Limits, deadline: Deadline) -> Self {
        Self {
            doc,
            limits,
            deadline,
            budget: Budget::new(limits),
            operators: AtomicU64::new(0),
            fonts: Mutex::new(HashMap::new()),
            forms: Mutex::new(HashMap::new()),
        }
    }

    fn font(&self, obj: &Object) -> Result<Option<Arc<Font>>> {
        let id = match obj {
            Object::Reference(id) => Some(*id),
            _ => None,
        };
        if let Some(id) = id
            && let Some(f) = self
                .fonts
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .get(&id)
        {
            return Ok(Some(Arc::clone(f)));
        }
        let Ok(Object::Dictionary(dict)) = resolve(self.doc, obj) else {
            return Ok(None);
        };
        let font = Arc::new(Font::parse(self.doc, dict, &self.budget)?);
        if let Some(id) = id {
            self.fonts
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .insert(id, Arc::clone(&font));
        }
        Ok(Some(font))
    }

    fn form_content(&self, id: ObjectId, stream: &lopdf::Stream) -> Result<Arc<Vec<u8>>> {
        if let Some(c) = self
            .forms
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&id)
        {
            return Ok(Arc::clone(c));
        }
        let data = Arc::new(self.budget.decode(stream)?);
        self.forms
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(id, Arc::clone(&data));
        Ok(data)
    }

    fn count_operators(&self, n: u64) -> Result<()> {
        let total = self.operators.fetch_add(n, Ordering::Relaxed) + n;
        if total > self.limits.max_operators {
            return Err(ExtractError::TooManyOperators {
                limit: self.limits.max_operators,
            });
        }
        self.deadline.check()
    }
}

#[derive(Debug, Clone)]
struct GState {
    ctm: Matrix,
    font: Option<Arc<Font>>,
    size: f32,
    char_space: f32,
    word_space: f32,
    hscale: f32,
    leading: f32,
    rise: f32,
}

impl Default for GState {
    fn default() -> Self {
        Self {
            ctm: IDENTITY,
            font: None,
            size: 0.0,
            char_space: 0.0,
            word_space: 0.0,
            hscale: 1.0,
            leading: 0.0,
            rise: 0.0,
        }
    }
}

/// One glyph of the line being assembled, in the line's frame: `u` runs
/// along the baseline, `v` across it.
#[derive(Debug, Clone)]
struct Ch {
    text: String,
    u0: f32,
    u1: f32,
    v: f32,
    size: f32,
    /// An explicit space glyph came before this one.
    space_before: bool,
}

/// A spacing accent drawn over a base glyph (TeX's OT1 `\\accent`) and the
/// combining mark pdftotext turns it into.
fn combining(text: &str) -> Option<char> {
    let mut chars = text.chars();
    let c = chars.next()?;
    if chars.next().is_some() {
        return None;
    }
    Some(match c {
        '\u{a8}' => '\u{308}',
        '\u{b4}' => '\u{301}',
        '`' => '\u{300}',
        '\u{2c6}' | '^' => '\u{302}',
        '\u{2dc}' => '\u{303}',
        '\u{af}' => '\u{304}',
        '\u{2d8}' => '\u{306}',
        '\u{2d9}' => '\u{307}',
        '\u{2da}' => '\u{30a}',
        '\u{b8}' => '\u{327}',
        '\u{2dd}' => '\u{30b}',
        '\u{2db}' => '\u{328}',
        '\u{2c7}' => '\u{30c}',
        _ => return None,
    })
}

/// Turns positioned glyphs into text, line by line, with poppler's rules:
/// a word breaks at an explicit space, a gap over 0.1 × the font size, a
/// baseline shift over half a point or a change of size; words get a space
/// between them when their gap is at least 0.03 × the font size, or, on a
/// line of single letters (letter-spaced text), 1.3 × the smallest gap.
#[derive(Debug, Default)]
struct Layout {
    out: String,
    line: Vec<Ch>,
    rot: u8,
    pending_space: bool,
    bbox: Option<[f32; 4]>,
    /// rot, baseline and size of the last flushed line.
    last_line: Option<(u8, f32, f32)>,
}

impl Layout {
    /// A glyph at device position `(x, y)`, writing in direction `dir`,
    /// `adv` wide, of device font size `size`.
    fn glyph(&mut self, text: &str, x: f32, y: f32, dir: (f32, f32), adv: f32, size: f32) {
        if text.is_empty() {
            return;
        }
        if text.chars().all(char::is_whitespace) {
            self.pending_space = true;
            return;
        }
        if let Some([x0, y0, x1, y1]) = self.bbox {
            let m = 1.0;
            if x < x0 - m || x > x1 + m || y < y0 - m || y > y1 + m {
                return;
            }
        }
        let (dx, dy) = dir;
        let rot = if dx.abs() >= dy.abs() {
            if dx >= 0.0 { 0 } else { 2 }
        } else if dy > 0.0 {
            1
        } else {
            3
        };
        let (u, v) = match rot {
            0 => (x, y),
            2 => (-x, -y),
            1 => (y, -x),
            _ => (-y, x),
        };
        let size = if size > 0.0 { size } else { 1.0 };
        if let Some(last) = self.line.last()
            && (rot != self.rot || (v - last.v).abs() > 0.5 * size.max(last.size))
        {
            self.flush_line();
        }
        // Duplicated text (fake bold, drop shadows): pdftotext keeps one.
        if let Some(last) = self.line.last()
            && last.text == text
            && (u - last.u0).abs() < 0.1 * size
            && (v - last.v).abs() < 0.2 * size
        {
            return;
        }
        self.rot = rot;
        self.line.push(Ch {
            text: text.to_owned(),
            u0: u,
            u1: u + adv,
            v,
            size,
            space_before: self.pending_space,
        });
        self.pending_space = false;
    }

    fn flush_line(&mut self) {
        if self.line.is_empty() {
            return;
        }
        let chars = combine_accents(std::mem::take(&mut self.line));
        let Some(first) = chars.first() else { return };
        let (rot, v, size) = (self.rot, first.v, first.size);
        // Words.
        let mut words: Vec<(String, f32, f32, usize)> = Vec::new(); // text, u0, u1, chars
        let mut word_v = first.v;
        let mut word_size = first.size;
        for ch in chars {
            let new_word = match words.last() {
                None => true,
                Some(w) => {
                    let gap = ch.u0 - w.2;
                    ch.space_before
                        || gap > 0.1 * word_size
                        || gap < -0.2 * word_size
                        || (ch.v - word_v).abs() > 0.5
                        || (ch.size - word_size).abs() > 0.01 * word_size
                }
            };
            if new_word {
                word_v = ch.v;
                word_size = ch.size;
                words.push((ch.text, ch.u0, ch.u1, 1));
            } else if let Some(w) = words.last_mut() {
                w.0.push_str(&ch.text);
                w.2 = w.2.max(ch.u1);
                w.3 += 1;
            }
        }
        // Inter-word space threshold.
        let mut space = 0.03 * size;
        if words.len() > 1 && words.iter().all(|w| w.3 == 1) {
            let min = words
                .windows(2)
                .map(|p| p[1].1 - p[0].2)
                .fold(f32::INFINITY, f32::min);
            if min > 0.0 {
                space = (1.3 * min).min(0.4 * size);
            }
        }
        // Line break from the previous line.
        if let Some((last_rot, last_v, last_size)) = self.last_line {
            let down = last_v - v;
            let next_line = rot == last_rot && down > 0.0 && down < 2.5 * size.max(last_size);
            let mut tail = self.out.chars().rev();
            if next_line && tail.next() == Some('-') && tail.next().is_some_and(char::is_alphabetic)
            {
                // pdftotext joins a hyphenated line with the next one.
                self.out.pop();
            } else {
                self.out.push('\n');
            }
        }
        let mut prev_end: Option<f32> = None;
        for (text, u0, u1, _) in &words {
            if let Some(end) = prev_end {
                let delta = u0 - end;
                if delta >= space || delta < -size {
                    self.out.push(' ');
                }
            }
            self.out.push_str(text);
            prev_end = Some(*u1);
        }
        self.last_line = Some((rot, v, size));
    }

    fn finish(mut self) -> String {
        self.flush_line();
        if !self.out.is_empty() {
            self.out.push('\n');
        }
        self.out
    }
}

/// Merges a spacing accent with the glyph it sits on (the accent's centre
/// inside the glyph's extent) into base + combining mark.
fn combine_accents(chars: Vec<Ch>) -> Vec<Ch> {
    if !chars.iter().any(|c| combining(&c.text).is_some()) {
        return chars;
    }
    let mut out: Vec<Ch> = Vec::with_capacity(chars.len());
    let mut iter = chars.into_iter().peekable();
    while let Some(ch) = iter.next() {
        if let Some(mark) = combining(&ch.text) {
            let centre = f32::midpoint(ch.u0, ch.u1);
            let over = |b: &Ch| {
                combining(&b.text).is_none()
                    && centre >= b.u0 - 0.1 * b.size
                    && centre <= b.u1 + 0.1 * b.size
            };
            if let Some(next) = iter.peek_mut()
                && over(next)
            {
                next.text.push(mark);
                next.space_before |= ch.space_before;
                continue;
            }
            if let Some(prev) = out.last_mut()
                && over(prev)
                && !prev
                    .text
                    .chars()
                    .last()
                    .is_some_and(|c| ('\u{300}'..='\u{36f}').contains(&c))
            {
                prev.text.push(mark);
                continue;
            }
        }
        out.push(ch);
    }
    out
}

/// Extracts the text of one page.
pub(crate) fn page_text(shared: &Shared<'_>, page: &PageRef<'_>) -> Result<String> {
    shared.deadline.check()?;
    let doc = shared.doc;
    let mut layout = Layout {
        bbox: page.bbox,
        ..Layout::default()
    };
    let contents: Vec<&lopdf::Stream> = match page.dict.get(b"Contents").map(|c| resolve(doc, c)) {
        Ok(Ok(Object::Stream(s))) => vec![s],
        Ok(Ok(Object::Array(items))) => {
            let mut v = Vec::with_capacity(items.len());
            for item in items {
                if let Object::Stream(s) = resolve(doc, item)? {
                    v.push(s);
                }
            }
            v
        }
        Ok(Err(e)) => return Err(e),
        _ => Vec::new(),
    };
    // Content arrays are one stream split anywhere: concatenate.
    let mut data = Vec::new();
    for s in contents {
        data.extend_from_slice(&shared.budget.decode(s)?);
        data.push(b'\n');
    }
    let mut interp = Interpreter {
        shared,
        layout: &mut layout,
        forms: Vec::new(),
        scratch: String::new(),
    };
    interp.run(&data, page.resources, GState::default())?;
    Ok(layout.finish())
}

struct Interpreter<'s, 'a, 'l> {
    shared: &'s Shared<'a>,
    layout: &'l mut Layout,
    /// Forms being drawn, for cycle detection.
    forms: Vec<ObjectId>,
    scratch: String,
}

impl Interpreter<'_, '_, '_> {
    fn run(&mut self, data: &[u8], resources: Option<&Dictionary>, gs: GState) -> Result<()> {
        let doc = self.shared.doc;
        let limits = self.shared.limits;
        let fonts = resources.and_then(|r| get_dict(doc, r, b"Font"));
        let xobjects = resources.and_then(|r| get_dict(doc, r, b"XObject"));
        let mut lexer = Lexer::new(data, limits.max_nesting);
        let mut ops: Vec<Operand<'_>> = Vec::with_capacity(8);
        let mut stack: Vec<GState> = Vec::new();
        let mut gs = gs;
        let mut tm = IDENTITY;
        let mut tlm = IDENTITY;
        let mut counted = 0u64;
        loop {
            let token = lexer
                .next_token()
                .map_err(|_| ExtractError::NestingTooDeep {
                    limit: limits.max_nesting,
                })?;
            let Some(token) = token else { break };
            let op = match token {
                Token::Operand(o) => {
                    if ops.len() < 64 {
                        ops.push(o);
                    }
                    continue;
                }
                Token::Operator(op) => op,
            };
            counted += 1;
            if counted == 4096 {
                self.shared.count_operators(counted)?;
                counted = 0;
            }
            let n = |i: usize| {
                ops.get(i).and_then(|o| match o {
                    Operand::Number(v) => Some(*v),
                    _ => None,
                })
            };
            let nums = |k: usize| -> Option<Vec<f32>> {
                if ops.len() < k {
                    return None;
                }
                ops[ops.len() - k..]
                    .iter()
                    .map(|o| match o {
                        Operand::Number(v) => Some(*v),
                        _ => None,
                    })
                    .collect()
            };
            match op {
                b"q" if stack.len() < 256 => stack.push(gs.clone()),
                b"Q" => {
                    if let Some(s) = stack.pop() {
                        gs = s;
                    }
                }
                b"cm" => {
                    if let Some(v) = nums(6) {
                        let m = [v[0], v[1], v[2], v[3], v[4], v[5]];
                        gs.ctm = mul(&m, &gs.ctm);
                    }
                }
                b"BT" => {
                    tm = IDENTITY;
                    tlm = IDENTITY;
                }
                b"Tf" => {
                    if let (Some(Operand::Name(name)), Some(size)) = (ops.first(), n(1)) {
                        gs.size = size;
                        gs.font = match fonts.and_then(|f| f.get(name).ok()) {
                            Some(obj) => self.shared.font(obj)?,
                            None => None,
                        };
                    }
                }
                b"Tc" => gs.char_space = n(0).unwrap_or(0.0),
                b"Tw" => gs.word_space = n(0).unwrap_or(0.0),
                b"Tz" => gs.hscale = n(0).unwrap_or(100.0) / 100.0,
                b"TL" => gs.leading = n(0).unwrap_or(0.0),
                b"Ts" => gs.rise = n(0).unwrap_or(0.0),
                b"Td" | b"TD" => {
                    if let Some(v) = nums(2) {
                        if op == b"TD" {
                            gs.leading = -v[1];
                        }
                        tlm = mul(&[1.0, 0.0, 0.0, 1.0, v[0], v[1]], &tlm);
                        tm = tlm;
                    }
                }
                b"Tm" => {
                    if let Some(v) = nums(6) {
                        tlm = [v[0], v[1], v[2], v[3], v[4], v[5]];
                        tm = tlm;
                    }
                }
                b"T*" => {
                    tlm = mul(&[1.0, 0.0, 0.0, 1.0, 0.0, -gs.leading], &tlm);
                    tm = tlm;
                }
                b"Tj" | b"'" | b"\"" => {
                    if op != b"Tj" {
                        if op == b"\"" {
                            gs.word_space = n(0).unwrap_or(gs.word_space);
                            gs.char_space = n(1).unwrap_or(gs.char_space);
                        }
                        tlm = mul(&[1.0, 0.0, 0.0, 1.0, 0.0, -gs.leading], &tlm);
                        tm = tlm;
                    }
                    if let Some(Operand::Str(s)) = ops.last() {
                        self.show(s, &gs, &mut tm);
                    }
                }
                b"TJ" => {
                    if let Some(Operand::Array(items)) = ops.last() {
                        for item in items {
                            match item {
                                Operand::Str(s) => self.show(s, &gs, &mut tm),
                                Operand::Number(k) => {
                                    let tx = -k / 1000.0 * gs.size * gs.hscale;
                                    tm = mul(&[1.0, 0.0, 0.0, 1.0, tx, 0.0], &tm);
                                }
                                _ => {}
                            }
                        }
                    }
                }
                b"Do" => {
                    if let (Some(Operand::Name(name)), Some(xo)) = (ops.first(), xobjects)
                        && let Ok(obj) = xo.get(name)
                    {
                        self.form(obj, resources, &gs)?;
                    }
                }
                b"ID" => lexer.skip_inline_image(),
                _ => {}
            }
            ops.clear();
        }
        self.shared.count_operators(counted)
    }

    fn form(&mut self, obj: &Object, parent: Option<&Dictionary>, gs: &GState) -> Result<()> {
        let doc = self.shared.doc;
        let Object::Reference(id) = obj else {
            return Ok(());
        };
        let Object::Stream(stream) = resolve(doc, obj)? else {
            return Ok(());
        };
        if stream.dict.get(b"Subtype").and_then(Object::as_name).ok() != Some(b"Form") {
            return Ok(());
        }
        if self.forms.contains(id) {
            return Err(ExtractError::ReferenceCycle);
        }
        if self.forms.len() >= self.shared.limits.max_nesting.min(32) {
            return Err(ExtractError::NestingTooDeep {
                limit: self.shared.limits.max_nesting.min(32),
            });
        }
        let data = self.shared.form_content(*id, stream)?;
        let resources = get_dict(doc, &stream.dict, b"Resources").or(parent);
        let mut inner = gs.clone();
        if let Some(Object::Array(m)) = get(doc, &stream.dict, b"Matrix") {
            let v: Vec<f32> = m.iter().filter_map(number).collect();
            if let [a, b, c, d, e, f] = v.as_slice() {
                inner.ctm = mul(&[*a, *b, *c, *d, *e, *f], &inner.ctm);
            }
        }
        self.forms.push(*id);
        let result = self.run(&data, resources, inner);
        self.forms.pop();
        result
    }

    fn show(&mut self, bytes: &[u8], gs: &GState, tm: &mut Matrix) {
        let Some(font) = gs.font.clone() else {
            return;
        };
        let mut scratch = std::mem::take(&mut self.scratch);
        let layout = &mut *self.layout;
        let trm_base = [gs.size * gs.hscale, 0.0, 0.0, gs.size, 0.0, gs.rise];
        font.decode(bytes, &mut scratch, |g| {
            let m = mul(tm, &gs.ctm);
            let trm = mul(&trm_base, &m);
            let glyph_width = g.width * gs.size;
            let mut tx = glyph_width + gs.char_space;
            if g.word_space {
                tx += gs.word_space;
            }
            tx *= gs.hscale;
            let scale = (m[0] * m[0] + m[1] * m[1]).sqrt();
            let size = (trm[2] * trm[2] + trm[3] * trm[3]).sqrt();
            // Like pdftotext, the glyph's box excludes Tc and Tw: spacing
            // added by them counts as a gap.
            let adv = glyph_width * gs.hscale * scale;
            layout.glyph(g.text, trm[4], trm[5], (m[0], m[1]), adv, size);
            *tm = mul(&[1.0, 0.0, 0.0, 1.0, tx, 0.0], tm);
        });
        self.scratch = scratch;
    }
}
