//! # docaiche-extract
//!
//! Secure PDF intake and extraction for DocAIche servers: validation before
//! parsing (size, magic bytes, sniffed vs declared type, sanitised
//! filenames, SHA-256), parsing limits against decompression bombs, cycles
//! and deep nesting, active-content detection and sanitisation, text and
//! metadata extraction with `lopdf`, batching, a result cache and
//! background jobs.
//!
//! **Status:** the crate is part of the workspace layout; its implementation
//! arrives with the extraction issue. The contract it implements is
//! [`Extractor`](docaiche_core::Extractor):
//!
//! ```
//! use docaiche_extract::contracts::{ExtractOptions, RiskFlag};
//!
//! let options = ExtractOptions::default();
//! assert!(!options.sanitize);
//! let _ = RiskFlag::JavaScript;
//! ```
//!
//! ## MSRV
//!
//! Rust 1.88.

/// The core contracts this crate implements.
pub mod contracts {
    pub use docaiche_core::extract::{
        DocumentInfo, ExtractInput, ExtractOptions, Extraction, Extractor, RiskFlag,
    };
}
