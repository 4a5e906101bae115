//! Resilience primitives: circuit breaker, retry, timeout, single-flight.
#![expect(missing_docs, reason = "being written")]
