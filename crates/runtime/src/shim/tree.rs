//! Killing every descendant of the shim: what ends a container's
//! processes where there is no cgroup for it (and what catches anything a
//! cgroup missed). The shim is a child subreaper, so a process that
//! detached itself (`setsid`, double fork) is still its descendant.

use std::collections::HashMap;
use std::fs;
use std::time::{Duration, Instant};

/// A process as `/proc/<pid>/stat` shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stat {
    ppid: u32,
    state: char,
    start_ticks: u64,
}

fn parse_stat(text: &str) -> Option<Stat> {
    let rest = &text[text.rfind(')')? + 1..];
    let mut f = rest.split_whitespace();
    let state = f.next()?.chars().next()?;
    let ppid = f.next()?.parse().ok()?;
    // starttime is field 22: the 18th after ppid.
    let start_ticks = f.nth(17)?.parse().ok()?;
    Some(Stat {
        ppid,
        state,
        start_ticks,
    })
}

fn stat(pid: u32) -> Option<Stat> {
    parse_stat(&fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

/// Every process on the host by pid.
fn all_processes() -> HashMap<u32, Stat> {
    let Ok(dir) = fs::read_dir("/proc") else {
        return HashMap::new();
    };
    dir.filter_map(|e| {
        let pid: u32 = e.ok()?.file_name().to_str()?.parse().ok()?;
        Some((pid, stat(pid)?))
    })
    .collect()
}

/// The children of `pid` from `/proc/<pid>/task/*/children`; `None` where
/// the kernel has no such files.
fn children_of(pid: u32) -> Option<Vec<u32>> {
    let tasks = fs::read_dir(format!("/proc/{pid}/task")).ok()?;
    let mut out = Vec::new();
    for task in tasks.flatten() {
        match fs::read_to_string(task.path().join("children")) {
            Ok(text) => out.extend(
                text.split_whitespace()
                    .filter_map(|p| p.parse::<u32>().ok()),
            ),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !task.path().exists() => {}
            Err(_) => return None,
        }
    }
    Some(out)
}

/// The live descendants of `root` found by walking down from it: reads
/// only the processes of the tree, where [`live_descendants`] reads every
/// process of the host. `None` where the kernel cannot tell children.
fn walk_descendants(root: u32) -> Option<Vec<(u32, u64)>> {
    let mut found = Vec::new();
    let mut queue = vec![root];
    while let Some(p) = queue.pop() {
        let Some(children) = children_of(p) else {
            if p == root {
                return None;
            }
            continue; // gone meanwhile
        };
        for c in children {
            let Some(s) = stat(c) else { continue };
            queue.push(c);
            if s.state != 'Z' && s.state != 'X' {
                found.push((c, s.start_ticks));
            }
        }
    }
    Some(found)
}

/// The live (not zombie) descendants of `root`, with their start times.
fn live_descendants(root: u32) -> Vec<(u32, u64)> {
    let procs = all_processes();
    let mut children: HashMap<u32, Vec<u32>> = HashMap::new();
    for (&pid, s) in &procs {
        children.entry(s.ppid).or_default().push(pid);
    }
    let mut found = Vec::new();
    let mut queue = vec![root];
    while let Some(p) = queue.pop() {
        for &c in children.get(&p).into_iter().flatten() {
            queue.push(c);
            let s = procs[&c];
            if s.state != 'Z' && s.state != 'X' {
                found.push((c, s.start_ticks));
            }
        }
    }
    found
}

/// SIGKILL to `pid` if it is still the process that started at
/// `start_ticks`: through a pidfd where the kernel has them, so a pid
/// reused meanwhile is never hit.
fn kill_exactly(pid: u32, start_ticks: u64) {
    // SAFETY: pidfd_open(2) returns a new descriptor or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid as libc::pid_t, 0) } as i32;
    let same = stat(pid).is_some_and(|s| s.start_ticks == start_ticks);
    if fd >= 0 {
        if same {
            // SAFETY: pidfd_send_signal(2) on the descriptor just opened;
            // it names the process whose start time was checked after it
            // was opened.
            unsafe {
                libc::syscall(
                    libc::SYS_pidfd_send_signal,
                    fd,
                    libc::SIGKILL,
                    std::ptr::null::<libc::siginfo_t>(),
                    0,
                )
            };
        }
        // SAFETY: closing the descriptor opened above.
        unsafe { libc::close(fd) };
    } else if same {
        // SAFETY: kill(2) has no memory effects.
        unsafe { libc::kill(pid as i32, libc::SIGKILL) };
    }
}

/// Kills every descendant of `root` (except those in `spare`), round after
/// round, until none is alive or `patience` runs out; the number still
/// alive. The rounds walk the tree down from `root` (reading every process
/// of the host costs a millisecond or more per container); the kernel's
/// lists of children can miss a process that is being reparented while
/// others exit, so with `confirm` the round that finds none is repeated
/// over every process of the host (where no cgroup holds the container).
pub fn kill_descendants(root: u32, spare: &[u32], patience: Duration, confirm: bool) -> usize {
    let deadline = Instant::now() + patience;
    let mut walk = true;
    loop {
        let found = match walk.then(|| walk_descendants(root)).flatten() {
            Some(found) => found,
            None => live_descendants(root),
        };
        let left: Vec<_> = found
            .into_iter()
            .filter(|(pid, _)| !spare.contains(pid))
            .collect();
        if left.is_empty() && walk && confirm {
            walk = false;
            continue;
        }
        if left.is_empty() || Instant::now() >= deadline {
            return left.len();
        }
        for (pid, ticks) in left {
            kill_exactly(pid, ticks);
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_ppid_state_and_start_time() {
        let text =
            "4242 (a (b) c) S 77 4242 4242 0 -1 4194560 100 0 0 0 0 0 0 0 20 0 1 0 987654 1000 100";
        assert_eq!(
            parse_stat(text),
            Some(Stat {
                ppid: 77,
                state: 'S',
                start_ticks: 987654
            })
        );
    }

    #[test]
    fn this_process_is_a_descendant_of_its_parent() {
        let me = std::process::id();
        let parent = stat(me).unwrap().ppid;
        assert!(live_descendants(parent).iter().any(|(p, _)| *p == me));
        if let Some(walked) = walk_descendants(parent) {
            assert!(walked.iter().any(|(p, _)| *p == me));
        }
    }
}
