//! The `docaiche-server` binary: the command line of [`docaiche_server::cli`].

use std::process::ExitCode;

/// The global allocator: mimalloc, whose per-thread free lists suit the
/// many small, short-lived allocations of a request. The bare axum baseline
/// of the load report (`examples/hello.rs`) uses the same one.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    docaiche_server::main()
}
