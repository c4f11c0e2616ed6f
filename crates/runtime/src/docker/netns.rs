//! A listening socket inside a container's network namespace, made from
//! the agent: a thread of its own enters the namespace (`setns`), binds,
//! and ends; the socket stays in that namespace and the agent serves it
//! like any other. Needs the container's process visible in `/proc` and
//! the right to enter its namespace (the agent runs on the host, as root).

use std::fs::File;
use std::io;
use std::net::TcpListener;
use std::os::fd::AsRawFd;

/// A listener on `127.0.0.1:port` in the network namespace of process `pid`.
pub fn listen(pid: u32, port: u16) -> io::Result<TcpListener> {
    let ns = File::open(format!("/proc/{pid}/ns/net"))?;
    // An agent in a container of its own sees other pids than the Engine
    // reports: a pid that names a process of its own network is not the
    // container's, and listening there would serve the task on the agent's
    // loopback.
    use std::os::unix::fs::MetadataExt;
    let own = std::fs::metadata("/proc/self/ns/net")?;
    let theirs = ns.metadata()?;
    if (own.dev(), own.ino()) == (theirs.dev(), theirs.ino()) {
        return Err(io::Error::other(format!(
            "process {pid} is in the agent's own network: the agent does not see the container's processes"
        )));
    }
    // Only this thread changes namespace, and it ends right after.
    std::thread::spawn(move || {
        // SAFETY: setns on a valid descriptor of a network namespace
        // changes only this thread's namespace.
        if unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
            return Err(io::Error::last_os_error());
        }
        TcpListener::bind(("127.0.0.1", port))
    })
    .join()
    .map_err(|_| io::Error::other("the namespace thread panicked"))?
}
