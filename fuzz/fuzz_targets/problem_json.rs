//! `Problem` deserialization on arbitrary bytes: no panic, and a parsed
//! problem re-serializes to JSON that parses back to an equal value.

#![no_main]

use docaiche_core::Problem;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(problem) = serde_json::from_slice::<Problem>(data) else {
        return;
    };
    let json = serde_json::to_vec(&problem).expect("a problem serializes");
    let back: Problem = serde_json::from_slice(&json).expect("own output parses");
    assert_eq!(back, problem);
    // Turning any parsed problem into a response must not panic either
    // (arbitrary status, retry-after).
    let _ = problem.status_code();
    let response: http::Response<String> = back.into_response();
    assert_eq!(response.status(), problem.status_code());
});
