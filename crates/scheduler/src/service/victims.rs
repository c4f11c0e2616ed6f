//! Which tasks to stop first, as ECS chooses when a service scales in or
//! replaces tasks: tasks that are not running yet, then unhealthy ones,
//! then healthy ones taken so as to keep the service balanced the way its
//! placement strategies placed it — spread strategies take from the zone
//! or instance holding the most of the service's tasks, binpack from the
//! instance with the most room left, random at random. Protected tasks
//! are never chosen.
//!
//! Every key but the spread counts is computed once per task, and the
//! counts are updated as tasks are taken, so choosing k of n tasks costs
//! O(n·k) cheap comparisons.

use super::pass::Pass;
use super::TaskView;
use crate::{BinpackField, Strategy};
use berth_core::task::TaskStatus;
use rand::Rng;
use std::cmp::Ordering;
use std::collections::HashMap;

/// One strategy's key for a task.
#[derive(Clone, Copy)]
enum Key {
    /// The task's value of a spread field, interned.
    Spread(usize),
    /// Room left on its instance.
    Room(i64),
    Random(u64),
}

struct Candidate {
    task: usize,
    rank: u8,
    keys: Vec<Key>,
    started_at: Option<i64>,
    tiebreak: u64,
}

/// Up to `n` unprotected, active tasks matching `pick`, in stop order.
pub(super) fn choose(pass: &mut Pass, n: usize, pick: impl Fn(&TaskView) -> bool) -> Vec<usize> {
    let now = pass.now;
    let strategies = pass.spec.placement.clone();
    let mut interned: Vec<HashMap<String, usize>> = vec![HashMap::new(); strategies.len()];
    // For each spread strategy, how many of the service's active tasks
    // share each value: what balance is judged by.
    let mut counts: Vec<Vec<usize>> = vec![Vec::new(); strategies.len()];
    let mut candidates = Vec::new();
    for i in 0..pass.tasks.len() {
        if !pass.active(&pass.tasks[i]) {
            continue;
        }
        let keys = keys(pass, i, &strategies, &mut interned, &mut counts);
        for (s, k) in keys.iter().enumerate() {
            if let Key::Spread(id) = k {
                counts[s][*id] += 1;
            }
        }
        let t = &pass.tasks[i];
        if t.protected(now) || !pick(t) {
            continue;
        }
        candidates.push(Candidate {
            task: i,
            rank: rank(pass, t),
            keys,
            started_at: t.started_at,
            tiebreak: pass.rng.gen(),
        });
    }
    let mut out = Vec::new();
    while out.len() < n && !candidates.is_empty() {
        let best = (0..candidates.len())
            .min_by(|&a, &b| compare(&candidates[a], &candidates[b], &counts))
            .expect("not empty");
        let c = candidates.swap_remove(best);
        for (s, k) in c.keys.iter().enumerate() {
            if let Key::Spread(id) = k {
                counts[s][*id] -= 1;
            }
        }
        out.push(c.task);
    }
    out
}

/// A task's key under each strategy (interning spread values as it goes).
fn keys(
    pass: &mut Pass,
    i: usize,
    strategies: &[Strategy],
    interned: &mut [HashMap<String, usize>],
    counts: &mut [Vec<usize>],
) -> Vec<Key> {
    strategies
        .iter()
        .enumerate()
        .map(|(s, strategy)| match strategy {
            Strategy::Spread(field) => {
                let v = field_value(pass, &pass.tasks[i], field);
                let next = interned[s].len();
                let id = *interned[s].entry(v).or_insert(next);
                if counts[s].len() <= id {
                    counts[s].resize(id + 1, 0);
                }
                Key::Spread(id)
            }
            Strategy::Binpack(f) => {
                Key::Room(pass.instance_of(&pass.tasks[i]).map_or(0, |x| match f {
                    BinpackField::Cpu => x.cpu,
                    BinpackField::Memory => x.memory,
                }))
            }
            Strategy::Random => Key::Random(pass.rng.gen()),
        })
        .collect()
}

/// How far along a task is: not running yet, unhealthy, healthy.
fn rank(pass: &Pass, t: &TaskView) -> u8 {
    if t.status != TaskStatus::Running {
        0
    } else if !pass.looks_healthy(t) {
        1
    } else {
        2
    }
}

fn compare(a: &Candidate, b: &Candidate, counts: &[Vec<usize>]) -> Ordering {
    let o = a.rank.cmp(&b.rank);
    if o != Ordering::Equal {
        return o;
    }
    for (s, (ka, kb)) in a.keys.iter().zip(&b.keys).enumerate() {
        let o = match (ka, kb) {
            // More tasks on the same value: stop first.
            (Key::Spread(x), Key::Spread(y)) => counts[s][*y].cmp(&counts[s][*x]),
            // Leave packed instances packed: the roomiest goes first.
            (Key::Room(x), Key::Room(y)) => y.cmp(x),
            (Key::Random(x), Key::Random(y)) => x.cmp(y),
            _ => Ordering::Equal,
        };
        if o != Ordering::Equal {
            return o;
        }
    }
    // The newest goes first; then an arbitrary but fixed order.
    b.started_at
        .cmp(&a.started_at)
        .then_with(|| a.tiebreak.cmp(&b.tiebreak))
}

/// The value a spread field has for a task: its instance, its zone, or an
/// attribute of its instance ("" when it has none).
fn field_value(pass: &Pass, t: &TaskView, field: &str) -> String {
    match field {
        "instanceId" | "host" => t.instance.clone().unwrap_or_default(),
        "attribute:ecs.availability-zone" if t.zone.is_some() => t.zone.clone().unwrap_or_default(),
        f => {
            let name = f.strip_prefix("attribute:").unwrap_or(f);
            pass.instance_of(t)
                .and_then(|i| i.attributes.get(name).cloned().flatten())
                .unwrap_or_default()
        }
    }
}
