//! API key parsing on arbitrary strings: `ApiKeyFormat::parse` and
//! `public_prefix` never panic; a key that parses keeps its prefix, and a
//! key with one character changed no longer parses (the checksum).

#![no_main]

use docaiche_auth::api_key::{ApiKeyFormat, public_prefix};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let input = String::from_utf8_lossy(data);
    let _ = public_prefix(&input);
    let format = ApiKeyFormat::default();
    if format.parse(&input).is_ok() {
        assert!(public_prefix(&input).is_some());
        let mut bytes = input.as_bytes().to_vec();
        let last = bytes.len() - 1;
        bytes[last] = if bytes[last] == b'0' { b'1' } else { b'0' };
        let changed = String::from_utf8(bytes).expect("ASCII key");
        assert!(format.parse(&changed).is_err(), "a one-character change passed the checksum");
    }
});
