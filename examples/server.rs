//! The whole system, as the `docaiche-server` binary runs it.
//!
//! ```text
//! cargo run --example server                  # development defaults, no setup
//! cargo run --example server -- --help
//! ```
fn main() -> std::process::ExitCode {
    docaiche_server::main()
}
