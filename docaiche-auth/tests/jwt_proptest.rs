//! Property tests: verification never panics on hostile input, and only a
//! correctly signed token passes.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod jwt_support;

use jwt_support::*;
use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn arbitrary_strings_are_rejected_without_panicking(token in ".{0,600}") {
        let (_, clock) = clock();
        let (_, verifier) = verifier(&clock);
        prop_assert!(verifier.verify(&token).is_err());
    }

    #[test]
    fn arbitrary_three_segment_tokens_are_rejected(
        header in proptest::collection::vec(any::<u8>(), 0..200),
        payload in proptest::collection::vec(any::<u8>(), 0..400),
        signature in proptest::collection::vec(any::<u8>(), 0..80),
    ) {
        let (_, clock) = clock();
        let (_, verifier) = verifier(&clock);
        let token = format!("{}.{}.{}", b64(&header), b64(&payload), b64(&signature));
        prop_assert!(verifier.verify(&token).is_err());
    }

    #[test]
    fn flipping_any_byte_of_a_valid_token_breaks_it(index in 0_usize..10_000, bit in 0_u8..7) {
        let (clock_handle, clock) = clock();
        let (_, verifier) = verifier(&clock);
        let token = hs256(&header("HS256", "hs"), &claims(now(&clock_handle)));
        let mut bytes = token.clone().into_bytes();
        let index = index % bytes.len();
        bytes[index] ^= 1 << bit;
        if let Ok(mutated) = String::from_utf8(bytes)
            && mutated != token
            && verifier.verify(&mutated).is_ok()
        {
            // base64url's last character may carry unused bits: a flip there
            // could decode to the same bytes; anything else must fail.
            prop_assert_eq!(base64_bytes(&mutated), base64_bytes(&token));
        }
    }
}

fn base64_bytes(token: &str) -> Vec<Vec<u8>> {
    use base64::Engine as _;
    token
        .split('.')
        .map(|part| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(part)
                .unwrap_or_default()
        })
        .collect()
}
