//! The shim as a binary of this crate, for its integration tests (the test
//! binary cannot serve as a shim). `berth` ships its own `berth-shim`.

fn main() {
    let args = std::env::args().skip(1).collect();
    std::process::exit(berth_runtime::shim::main(args));
}
