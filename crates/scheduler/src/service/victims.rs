//! Which tasks to stop first, as ECS chooses when a service scales in or
//! replaces tasks: tasks that are not running yet, then unhealthy ones,
//! then healthy ones taken so as to keep the service balanced the way its
//! placement strategies placed it — spread strategies take from the zone
//! or instance holding the most of the service's tasks, binpack from the
//! instance with the most room left, random at random. Protected tasks
//! are never chosen.

use super::pass::Pass;
use super::TaskView;
use crate::{BinpackField, Strategy};
use berth_core::task::TaskStatus;
use rand::Rng;
use std::cmp::Ordering;
use std::collections::BTreeMap;

/// Up to `n` unprotected, active tasks matching `pick`, in stop order.
pub(super) fn choose(pass: &mut Pass, n: usize, pick: impl Fn(&TaskView) -> bool) -> Vec<usize> {
    let now = pass.now;
    let mut candidates: Vec<usize> = (0..pass.tasks.len())
        .filter(|&i| {
            let t = &pass.tasks[i];
            pass.active(t) && !t.protected(now) && pick(t)
        })
        .collect();
    // The service's tasks that still count towards balance.
    let mut remaining: Vec<usize> = (0..pass.tasks.len())
        .filter(|&i| pass.active(&pass.tasks[i]))
        .collect();
    let tiebreak: BTreeMap<usize, u64> = candidates.iter().map(|&i| (i, pass.rng.gen())).collect();
    let mut out = Vec::new();
    while out.len() < n && !candidates.is_empty() {
        let best = *candidates
            .iter()
            .min_by(|&&a, &&b| compare(pass, &remaining, &tiebreak, a, b))
            .expect("not empty");
        candidates.retain(|&i| i != best);
        remaining.retain(|&i| i != best);
        out.push(best);
    }
    out
}

/// How far along a task is: not running yet, unhealthy, healthy.
fn rank(pass: &Pass, t: &TaskView) -> u8 {
    if t.status != TaskStatus::Running {
        0
    } else if !pass.healthy(t) {
        1
    } else {
        2
    }
}

fn compare(
    pass: &Pass,
    remaining: &[usize],
    tiebreak: &BTreeMap<usize, u64>,
    a: usize,
    b: usize,
) -> Ordering {
    let (ta, tb) = (&pass.tasks[a], &pass.tasks[b]);
    let o = rank(pass, ta).cmp(&rank(pass, tb));
    if o != Ordering::Equal {
        return o;
    }
    for s in &pass.spec.placement {
        let o = match s {
            Strategy::Spread(field) => {
                let count = |t: &TaskView| {
                    let v = field_value(pass, t, field);
                    remaining
                        .iter()
                        .filter(|&&i| field_value(pass, &pass.tasks[i], field) == v)
                        .count()
                };
                // More tasks on the same value: stop first.
                count(tb).cmp(&count(ta))
            }
            Strategy::Binpack(f) => {
                let room = |t: &TaskView| {
                    instance(pass, t).map_or(0, |i| match f {
                        BinpackField::Cpu => i.cpu,
                        BinpackField::Memory => i.memory,
                    })
                };
                // Leave the packed instances packed: the roomiest goes first.
                room(tb).cmp(&room(ta))
            }
            Strategy::Random => tiebreak[&a].cmp(&tiebreak[&b]),
        };
        if o != Ordering::Equal {
            return o;
        }
    }
    // The newest goes first; then an arbitrary but fixed order.
    tb.started_at
        .cmp(&ta.started_at)
        .then_with(|| tiebreak[&a].cmp(&tiebreak[&b]))
}

fn instance<'a>(pass: &Pass<'a>, t: &TaskView) -> Option<&'a super::InstanceView> {
    let id = t.instance.as_deref()?;
    pass.instances.iter().find(|i| i.id == id)
}

/// The value a spread field has for a task: its instance, its zone, or an
/// attribute of its instance ("" when it has none).
fn field_value(pass: &Pass, t: &TaskView, field: &str) -> String {
    match field {
        "instanceId" | "host" => t.instance.clone().unwrap_or_default(),
        "attribute:ecs.availability-zone" if t.zone.is_some() => t.zone.clone().unwrap_or_default(),
        f => {
            let name = f.strip_prefix("attribute:").unwrap_or(f);
            instance(pass, t)
                .and_then(|i| i.attributes.get(name).cloned().flatten())
                .unwrap_or_default()
        }
    }
}
