//! DocAIche facade.
pub use docaiche_core as core;
