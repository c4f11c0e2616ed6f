//! `berth-shim CONTAINER_DIR`: the process runtime's shim as a small binary
//! of its own, installed beside `berth`. It does what `berth shim` does
//! (see `berth_runtime::shim`), but the runtime execs it once per container,
//! and loading the whole server for that costs milliseconds per task.

fn main() {
    let args = std::env::args().skip(1).collect();
    std::process::exit(berth_runtime::shim::main(args));
}
