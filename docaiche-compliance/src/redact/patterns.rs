//! The built-in detectors: one candidate pattern per kind, and the
//! validator that turns a candidate into a finding (or rejects it).
//!
//! Patterns are ASCII-only on purpose: no Unicode tables to compile in, and
//! the lazy DFA never has to give up on a Unicode word boundary. A pattern
//! that needs "not preceded by" (which the `regex` crate has no look-behind
//! for) consumes one leading context character, which the validator strips.

use std::net::{Ipv4Addr, Ipv6Addr};
use std::ops::Range;

/// ASCII word boundary (`\b` is Unicode-aware and would need tables).
const B: &str = r"(?-u:\b)";

pub(super) fn email() -> String {
    // Unbounded repetitions on purpose: counted ones (`{1,64}`) multiply
    // the automaton and make the lazy DFA thrash. Lengths are checked by
    // the validator.
    format!(r"[A-Za-z0-9._%+'-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{{2,24}}{B}")
}

pub(super) fn phone() -> String {
    [
        // International: +CC then 2 to 6 groups, optional separators.
        format!(r"(?:^|[^0-9A-Za-z+])\+[1-9][0-9]{{0,2}}(?:[ .-]?\(?[0-9]{{1,4}}\)?){{2,6}}{B}"),
        // North American: (555) 123-4567, 555-123-4567, 555.123.4567.
        format!(r"(?:\([0-9]{{3}}\) ?|{B}[0-9]{{3}}[.-])[0-9]{{3}}[.-][0-9]{{4}}{B}"),
        // National with trunk prefix 0: 020 7946 0958, 030 12345678, 07700 900123.
        format!(r"{B}0[1-9][0-9]{{1,3}}[ /-][0-9]{{3,4}}[ -]?[0-9]{{3,5}}{B}"),
        // French style: 01 23 45 67 89.
        format!(r"{B}0[1-9](?:[ .][0-9]{{2}}){{4}}{B}"),
    ]
    .join("|")
}

pub(super) fn card() -> String {
    format!(r"{B}[0-9](?:[ -]?[0-9]){{12,18}}{B}")
}

pub(super) fn iban() -> String {
    format!(r"{B}[A-Z]{{2}}[0-9]{{2}}(?: ?[A-Z0-9]{{4}}){{2,7}}(?: ?[A-Z0-9]{{1,3}})?{B}")
}

pub(super) fn ipv4() -> String {
    let octet = "(?:25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])";
    format!(r"(?:^|[^0-9A-Za-z_.])(?:{octet}\.){{3}}{octet}{B}")
}

pub(super) fn ipv6() -> String {
    // A candidate only: the validator parses it with `Ipv6Addr`.
    [
        r"(?:^|[^0-9A-Za-z_:.])[0-9A-Fa-f]{1,4}(?::[0-9A-Fa-f]{0,4}){2,7}",
        r"(?:^|[^0-9A-Za-z_:.])::[0-9A-Fa-f]{1,4}(?::[0-9A-Fa-f]{1,4}){0,6}",
    ]
    .join("|")
}

pub(super) fn jwt() -> String {
    // Header and payload are base64url JSON objects: both start `eyJ` (`{"`).
    format!(r"{B}eyJ[A-Za-z0-9_-]{{4,}}\.eyJ[A-Za-z0-9_-]{{4,}}\.[A-Za-z0-9_-]*")
}

pub(super) fn api_key(prefixes: &[String]) -> String {
    let alternatives: Vec<String> = prefixes.iter().map(|p| regex::escape(p)).collect();
    // The exact shape is 12 + 36 characters; a key with a character
    // missing or doubled is still a leaked secret, so the secret part may
    // be 20 characters or longer.
    format!(
        r"{B}(?:{})[0-9A-Za-z]{{12}}_[0-9A-Za-z]{{20}}[0-9A-Za-z]*{B}",
        alternatives.join("|")
    )
}

pub(super) fn bearer() -> String {
    r"[Bb][Ee][Aa][Rr][Ee][Rr][ \t]+[A-Za-z0-9._~+/-]{8,}=*".to_owned()
}

pub(super) fn private_key() -> String {
    // A whole block, or (a log line cut short) everything base64-looking
    // after the BEGIN line.
    r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----(?:(?s:.)*?-----END (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----|[A-Za-z0-9+/=\\ \t\r\n:-]*)".to_owned()
}

/// Which validator a detector runs on its candidates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Check {
    Email,
    Phone,
    Card,
    Iban,
    Ipv4,
    Ipv6,
    Jwt,
    ApiKey,
    Bearer,
    PrivateKey,
    UsSsn,
    UkNino,
    /// A custom national id format: the pattern alone decides.
    Pattern,
}

impl Check {
    /// The finding's span within `text`, or `None` to reject the candidate.
    pub(super) fn validate(self, text: &str, m: Range<usize>) -> Option<Range<usize>> {
        match self {
            Self::Email => email_ok(text, m),
            Self::Phone => phone_ok(text, m),
            Self::Card => card_span(text, m),
            Self::Iban => iban_span(text, m),
            Self::Ipv4 => ipv4_ok(text, m),
            Self::Ipv6 => ipv6_ok(text, m),
            Self::Bearer => bearer_span(text, m),
            Self::UsSsn => us_ssn_ok(&text[m.clone()]).then_some(m),
            Self::UkNino => uk_nino_ok(&text[m.clone()]).then_some(m),
            Self::Jwt | Self::ApiKey | Self::PrivateKey | Self::Pattern => Some(m),
        }
    }
}

/// Strip the one leading context character a pattern may have consumed.
fn strip_context(text: &str, m: Range<usize>, first: impl Fn(u8) -> bool) -> Range<usize> {
    let bytes = text.as_bytes();
    if m.start < m.end && !first(bytes[m.start]) {
        // The context character is ASCII (the classes are ASCII) or the
        // first byte of a multi-byte character: skip the whole character.
        let skip = text[m.start..].chars().next().map_or(1, char::len_utf8);
        (m.start + skip)..m.end
    } else {
        m
    }
}

fn email_ok(text: &str, m: Range<usize>) -> Option<Range<usize>> {
    // `'alice@example.com'`: the quote is punctuation, not the address.
    let quotes = text[m.clone()].bytes().take_while(|&b| b == b'\'').count();
    let m = (m.start + quotes)..m.end;
    let candidate = &text[m.clone()];
    let (local, domain) = candidate.split_once('@')?;
    if local.is_empty()
        || local.len() > 64
        || domain.len() > 253
        || local.starts_with('.')
        || local.ends_with('.')
        || local.contains("..")
    {
        return None;
    }
    // DNS labels: 1 to 63 characters, no hyphen at either end.
    let label_ok =
        |l: &str| !l.is_empty() && l.len() <= 63 && !l.starts_with('-') && !l.ends_with('-');
    if !domain.split('.').all(label_ok) {
        return None;
    }
    // `image@2x.png`: file names, not addresses.
    let tld = domain.rsplit('.').next()?.to_ascii_lowercase();
    if matches!(
        tld.as_str(),
        "png" | "jpg" | "jpeg" | "gif" | "svg" | "webp" | "css" | "js" | "ico"
    ) {
        return None;
    }
    // Started mid-word (the 64-byte bound cut a longer run): not an address.
    let before = text[..m.start].bytes().next_back();
    if before.is_some_and(|b| b.is_ascii_alphanumeric()) {
        return None;
    }
    Some(m)
}

fn phone_ok(text: &str, m: Range<usize>) -> Option<Range<usize>> {
    let m = strip_context(text, m, |b| b == b'+' || b == b'(' || b.is_ascii_digit());
    // Digits inside a longer token (a UUID such as a request id, a hex
    // digest, `req-0123-4567-8901`) are part of that token, not a number
    // someone dials.
    if glued_before(text, m.start) {
        return None;
    }
    let mut end = m.end;
    // The greedy pattern may have taken the first group of a following
    // number (`+44 20 7946 0958 123-45-6789`): drop trailing groups until
    // the rest stands alone.
    loop {
        let candidate = &text[m.start..end];
        let digits = candidate.bytes().filter(u8::is_ascii_digit).count();
        let min = if candidate.starts_with('+') { 8 } else { 9 };
        if digits < min {
            return None;
        }
        let open = candidate.bytes().filter(|&b| b == b'(').count();
        let close = candidate.bytes().filter(|&b| b == b')').count();
        // A trailing `.5` or `-3` continues some other number (a version,
        // a range).
        if digits <= 15
            && open == close
            && !continues_number(text, end, b".-:")
            && !glued_after(text, end)
        {
            return Some(m.start..end);
        }
        end = m.start + candidate.rfind([' ', '.', '-', '/'])?;
    }
}

/// Whether the text before `start` continues a token into it: a letter or
/// digit right before, or one joined by `-` or `_` (`…-9f01-` of a UUID).
fn glued_before(text: &str, start: usize) -> bool {
    match text.as_bytes()[..start] {
        [.., b] if b.is_ascii_alphanumeric() => true,
        [.., b, joint] => (joint == b'-' || joint == b'_') && b.is_ascii_alphanumeric(),
        _ => false,
    }
}

/// Whether the text after `end` continues a token out of it: a letter or
/// digit right after, or one joined by `-` or `_` (`-23456789abcd`).
fn glued_after(text: &str, end: usize) -> bool {
    match text.as_bytes()[end..] {
        [b, ..] if b.is_ascii_alphanumeric() => true,
        [joint, b, ..] => (joint == b'-' || joint == b'_') && b.is_ascii_alphanumeric(),
        _ => false,
    }
}

fn continues_number(text: &str, end: usize, separators: &[u8]) -> bool {
    let rest = &text.as_bytes()[end..];
    matches!(rest, [s, d, ..] if separators.contains(s) && d.is_ascii_digit())
}

fn card_span(text: &str, m: Range<usize>) -> Option<Range<usize>> {
    // `+4915112345678` is a phone number, however Luhn-valid.
    if text[..m.start].ends_with('+') {
        return None;
    }
    // The greedy pattern may have taken the first group of a following
    // number: drop trailing groups until a card number remains.
    let mut end = m.end;
    loop {
        let candidate = &text[m.start..end];
        if card_ok(candidate) {
            return Some(m.start..end);
        }
        end = m.start + candidate.rfind([' ', '-'])?;
    }
}

fn card_ok(candidate: &str) -> bool {
    let separators: Vec<u8> = candidate.bytes().filter(|b| !b.is_ascii_digit()).collect();
    // One separator kind, used consistently (or none).
    if separators.windows(2).any(|w| w[0] != w[1]) {
        return false;
    }
    if !separators.is_empty() {
        let groups: Vec<usize> = candidate.split([' ', '-']).map(str::len).collect();
        let four = groups.iter().all(|&g| g == 4) || {
            // Final group may be shorter (19-digit cards) .
            groups.len() > 1
                && groups[..groups.len() - 1].iter().all(|&g| g == 4)
                && groups.last().is_some_and(|&g| (1..=4).contains(&g))
        };
        let amex = groups == [4, 6, 5];
        let diners = groups == [4, 6, 4];
        if !(four || amex || diners) {
            return false;
        }
    }
    let digits: Vec<u8> = candidate
        .bytes()
        .filter(u8::is_ascii_digit)
        .map(|b| b - b'0')
        .collect();
    (13..=19).contains(&digits.len()) && issuer_known(&digits) && luhn(&digits)
}

/// Whether the leading digits belong to a card network that issues cards
/// of this length. Random Luhn-valid numbers are one in ten; the issuer
/// check removes most of those (epoch milliseconds start with 1, …).
fn issuer_known(digits: &[u8]) -> bool {
    let prefix = |n: usize| {
        digits
            .iter()
            .take(n)
            .fold(0u32, |acc, &d| acc * 10 + u32::from(d))
    };
    let len = digits.len();
    match digits[0] {
        4 => matches!(len, 13 | 16 | 19),
        2 => (2221..=2720).contains(&prefix(4)) && len == 16,
        3 => match prefix(2) {
            34 | 37 => len == 15,
            35 => (16..=19).contains(&len),
            30 | 36 | 38 | 39 => (14..=19).contains(&len),
            _ => false,
        },
        5 => (12..=19).contains(&len),
        6 => (12..=19).contains(&len),
        _ => false,
    }
}

/// The Luhn (mod 10) check.
pub(super) fn luhn(digits: &[u8]) -> bool {
    let sum: u32 = digits
        .iter()
        .rev()
        .enumerate()
        .map(|(i, &d)| {
            let d = u32::from(d);
            if i % 2 == 1 {
                let doubled = d * 2;
                if doubled > 9 { doubled - 9 } else { doubled }
            } else {
                d
            }
        })
        .sum();
    sum.is_multiple_of(10)
}

/// IBAN lengths of the countries most likely to appear; other countries
/// are accepted at any length from 15 to 34 if the check digits agree.
fn iban_length(country: &str) -> Option<usize> {
    Some(match country {
        "NO" => 15,
        "BE" => 16,
        "DK" | "FI" | "NL" => 18,
        "SI" => 19,
        "AT" | "EE" | "LU" | "KZ" => 20,
        "CH" | "LI" | "LV" | "LT" | "HR" => 21,
        "DE" | "GB" | "IE" | "BG" | "RS" | "ME" | "BH" => 22,
        "GI" | "IL" | "AE" => 23,
        "ES" | "SE" | "CZ" | "SK" | "RO" | "TN" | "SA" | "PK" => 24,
        "PT" => 25,
        "IS" | "TR" => 26,
        "FR" | "MC" | "IT" | "SM" | "GR" => 27,
        "PL" | "HU" | "CY" | "AL" | "DO" | "LB" => 28,
        "BR" | "QA" | "UA" => 29,
        "MT" | "KW" | "MU" => 30,
        _ => return None,
    })
}

fn iban_span(text: &str, m: Range<usize>) -> Option<Range<usize>> {
    let candidate = &text[m.clone()];
    let compact_len = candidate.bytes().filter(|&b| b != b' ').count();
    let wanted = match iban_length(&candidate[..2]) {
        Some(len) if compact_len >= len => len,
        Some(_) => return None,
        None if (15..=34).contains(&compact_len) => compact_len,
        None => return None,
    };
    // Cut the candidate after `wanted` alphanumerics (the greedy pattern
    // may have taken a following upper-case word such as `EUR`).
    let mut taken = 0;
    let mut end = m.start;
    for (i, b) in candidate.bytes().enumerate() {
        if b != b' ' {
            taken += 1;
            if taken == wanted {
                end = m.start + i + 1;
                break;
            }
        }
    }
    // The cut must fall at a word end.
    if text
        .as_bytes()
        .get(end)
        .is_some_and(u8::is_ascii_alphanumeric)
    {
        return None;
    }
    let compact: Vec<u8> = text[m.start..end].bytes().filter(|&b| b != b' ').collect();
    iban_checksum_ok(&compact).then_some(m.start..end)
}

/// ISO 13616 check: move the first four characters to the end, letters to
/// numbers (A = 10), the whole number mod 97 must be 1.
pub(super) fn iban_checksum_ok(compact: &[u8]) -> bool {
    let rotated = compact[4..].iter().chain(&compact[..4]);
    let mut remainder: u32 = 0;
    for &b in rotated {
        let value = match b {
            b'0'..=b'9' => u32::from(b - b'0'),
            b'A'..=b'Z' => u32::from(b - b'A') + 10,
            _ => return false,
        };
        remainder = if value >= 10 {
            (remainder * 100 + value) % 97
        } else {
            (remainder * 10 + value) % 97
        };
    }
    remainder == 1
}

fn ipv4_ok(text: &str, m: Range<usize>) -> Option<Range<usize>> {
    let m = strip_context(text, m, |b| b.is_ascii_digit());
    // `1.3.6.1.4.1.311`: an OID or a long version string, not an address.
    if continues_number(text, m.end, b".") {
        return None;
    }
    text[m.clone()].parse::<Ipv4Addr>().ok().map(|_| m)
}

fn ipv6_ok(text: &str, m: Range<usize>) -> Option<Range<usize>> {
    let m = strip_context(text, m, |b| b.is_ascii_hexdigit() || b == b':');
    let candidate = &text[m.clone()];
    // Followed by a word character: part of an identifier (`a::b`), or an
    // embedded IPv4 tail we leave to the IPv4 detector.
    let next = text.as_bytes().get(m.end);
    if next.is_some_and(|b| b.is_ascii_alphanumeric() || *b == b'_' || *b == b'.') {
        return None;
    }
    let addr: Ipv6Addr = candidate.parse().ok()?;
    if addr.is_unspecified() {
        return None;
    }
    Some(m)
}

fn bearer_span(text: &str, m: Range<usize>) -> Option<Range<usize>> {
    let candidate = &text[m.clone()];
    let token_start = candidate[6..]
        .find(|c: char| c != ' ' && c != '\t')
        .map(|i| m.start + 6 + i)?;
    let token = &text[token_start..m.end];
    let has_digit = token.bytes().any(|b| b.is_ascii_digit());
    let has_letter = token.bytes().any(|b| b.is_ascii_alphabetic());
    // `Bearer authentication`: a word, not a token.
    (has_digit && has_letter && token.len() >= 12).then_some(token_start..m.end)
}

pub(super) fn us_ssn() -> String {
    format!(r"{B}[0-9]{{3}}-[0-9]{{2}}-[0-9]{{4}}{B}")
}

fn us_ssn_ok(candidate: &str) -> bool {
    let parts: Vec<&str> = candidate.split('-').collect();
    let [area, group, serial] = parts.as_slice() else {
        return false;
    };
    *area != "000"
        && *area != "666"
        && !area.starts_with('9')
        && *group != "00"
        && *serial != "0000"
}

pub(super) fn uk_nino() -> String {
    format!(r"{B}[A-CEGHJ-PR-TW-Z][A-CEGHJ-NPR-TW-Z] ?[0-9]{{2}} ?[0-9]{{2}} ?[0-9]{{2}} ?[A-D]{B}")
}

fn uk_nino_ok(candidate: &str) -> bool {
    !matches!(
        &candidate[..2],
        "BG" | "GB" | "NK" | "KN" | "TN" | "NT" | "ZZ"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn luhn_accepts_test_cards_and_rejects_typos() {
        let digits = |s: &str| s.bytes().map(|b| b - b'0').collect::<Vec<_>>();
        assert!(luhn(&digits("4111111111111111")));
        assert!(luhn(&digits("378282246310005")));
        assert!(!luhn(&digits("4111111111111112")));
    }

    #[test]
    fn iban_check_digits() {
        assert!(iban_checksum_ok(b"DE89370400440532013000"));
        assert!(iban_checksum_ok(b"GB82WEST12345698765432"));
        assert!(!iban_checksum_ok(b"DE89370400440532013001"));
    }

    #[test]
    fn ssn_rules() {
        assert!(us_ssn_ok("123-45-6789"));
        assert!(!us_ssn_ok("000-45-6789"));
        assert!(!us_ssn_ok("666-45-6789"));
        assert!(!us_ssn_ok("923-45-6789"));
        assert!(!us_ssn_ok("123-00-6789"));
    }
}
