//! DAEMON services: one task on every ACTIVE, connected instance that
//! satisfies the placement constraints — never two on one instance. A new
//! revision replaces them instance by instance: an old task stops (while
//! healthy tasks stay at or above the minimum, 0 % by default) before the
//! new one starts in its place.

use super::pass::{daemon_target, Pass};
use super::replica::{launch, maximum, minimum};
use super::*;
use std::collections::{BTreeMap, HashSet};

pub(super) fn reconcile(p: &mut Pass) {
    let Some(primary) = p.state.deployments.first().cloned() else {
        return;
    };
    let scaling = StopWhy::Scaling {
        deployment: primary.id.clone(),
    };
    let desired = p.desired_count();
    let failed = primary.rollout == Rollout::Failed;

    // Tasks whose instance drains, left the cluster or no longer qualifies
    // go; an instance whose agent is out of reach keeps its task.
    for i in 0..p.tasks.len() {
        let t = &p.tasks[i];
        if !p.active(t) {
            continue;
        }
        let keep = p.instance_of(t).is_some_and(|x| x.active && x.eligible);
        if !keep {
            p.stop(i, StopWhy::InstanceIneligible);
        }
    }
    // Never two on one instance: keep the best (primary, healthy) one.
    let mut by_instance: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    for (i, t) in p.tasks.iter().enumerate() {
        if let (true, Some(id)) = (p.active(t), t.instance.clone()) {
            by_instance.entry(id).or_default().push(i);
        }
    }
    for list in by_instance.values() {
        let best = *list
            .iter()
            .max_by_key(|&&i| {
                let t = &p.tasks[i];
                (t.deployment == primary.id, p.looks_healthy(t), t.started_at)
            })
            .expect("not empty");
        for &i in list.iter().filter(|&&i| i != best) {
            p.stop(i, scaling.clone());
        }
    }
    if failed {
        return;
    }
    // Older revisions give way, unhealthy ones first.
    let floor = match p.spec.rules.daemon_rollout {
        Some(r) => desired.saturating_sub(r.batch(desired)),
        None => minimum(desired, p.spec.rules.minimum_healthy_percent),
    };
    let mut spare = p.count(|t| p.healthy(t)).saturating_sub(floor);
    let now = p.now;
    let mut old: Vec<usize> = (0..p.tasks.len())
        .filter(|&i| {
            let t = &p.tasks[i];
            p.active(t) && t.deployment != primary.id && !t.protected(now)
        })
        .collect();
    old.sort_by_key(|&i| (p.looks_healthy(&p.tasks[i]), p.tasks[i].id.clone()));
    for i in old {
        if !p.looks_healthy(&p.tasks[i]) {
            p.stop(i, scaling.clone());
        } else if spare > 0 {
            spare -= 1;
            p.stop(i, scaling.clone());
        }
    }
    // The primary's task on every qualifying instance with none at all
    // (a task still stopping there counts), within the maximum.
    let mut room = maximum(desired, p.spec.rules.maximum_percent)
        .saturating_sub(p.count(|t| t.live() && p.instance_of(t).is_some_and(daemon_target)));
    let occupied: HashSet<&str> = p
        .tasks
        .iter()
        .filter(|t| t.live())
        .filter_map(|t| t.instance.as_deref())
        .collect();
    let empty: Vec<String> = p
        .instances
        .iter()
        .filter(|x| daemon_target(x) && !occupied.contains(x.id.as_str()))
        .map(|x| x.id.clone())
        .collect();
    for id in empty {
        if room == 0 {
            break;
        }
        room -= 1;
        launch(p, &primary.id, 1, Some(id));
    }
    // COMPLETED once every qualifying instance runs a healthy primary task
    // and no older task is left.
    let served: HashSet<&str> = p
        .tasks
        .iter()
        .filter(|t| t.deployment == primary.id && p.healthy_for(t, &primary))
        .filter_map(|t| t.instance.as_deref())
        .collect();
    let covered = p
        .instances
        .iter()
        .filter(|x| daemon_target(x))
        .all(|x| served.contains(x.id.as_str()));
    let others = p.count(|t| t.live() && t.deployment != primary.id);
    if covered && others == 0 {
        // A Daemon API deployment bakes there first.
        if let Some(r) = p.spec.rules.daemon_rollout.filter(|r| r.bake_ms > 0) {
            let now = p.now;
            let first = &mut p.state.deployments[0];
            if first.rollout == Rollout::InProgress {
                let reached = *first.step_reached_at.get_or_insert(now);
                if now < reached + r.bake_ms {
                    p.wake(reached + r.bake_ms);
                    return;
                }
            }
        }
        p.complete_primary();
    }
}
