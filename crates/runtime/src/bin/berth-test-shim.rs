//! `berth shim` as a binary of its own, for this crate's integration tests
//! (see `ProcessRuntime::new`); the agent runs `berth shim` instead.

fn main() {
    let args = std::env::args().skip(1).collect();
    std::process::exit(berth_runtime::shim::main(args));
}
