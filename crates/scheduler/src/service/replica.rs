//! REPLICA services: keep the desired count running, and replace a
//! revision by rolling update, by the traffic-shifting strategies run on
//! task counts, or (EXTERNAL controller) by task sets sized by someone else.

use super::pass::Pass;
use super::victims;
use super::*;

/// ⌊desired × max% / 100⌋: running and pending tasks never exceed it.
pub(super) fn maximum(desired: u32, percent: u32) -> u32 {
    (u64::from(desired) * u64::from(percent) / 100) as u32
}

/// ⌈desired × min% / 100⌉: healthy tasks the scheduler never stops below.
pub(super) fn minimum(desired: u32, percent: u32) -> u32 {
    (u64::from(desired) * u64::from(percent)).div_ceil(100) as u32
}

/// Rolling update: start the primary's missing tasks while running plus
/// pending stays within the maximum; stop older deployments' tasks
/// (unhealthy ones first) while healthy tasks stay at or above the
/// minimum. A failed deployment launches nothing and stops nothing.
pub(super) fn rolling(p: &mut Pass, desired: u32) {
    let Some(primary) = p.state.deployments.first().cloned() else {
        return;
    };
    let rules = &p.spec.rules;
    let max_total = maximum(desired, rules.maximum_percent);
    let min_healthy = minimum(desired, rules.minimum_healthy_percent);
    let failed = primary.rollout == Rollout::Failed;
    let scaling = StopWhy::Scaling {
        deployment: primary.id.clone(),
    };

    if !failed {
        let mut spare = p.count(|t| p.healthy(t)).saturating_sub(min_healthy);
        for i in victims::choose(p, usize::MAX, |t| t.deployment != primary.id) {
            if !p.looks_healthy(&p.tasks[i]) {
                p.stop(i, scaling.clone());
            } else if spare > 0 {
                spare -= 1;
                p.stop(i, scaling.clone());
            }
        }
        wake_for_protection(p, |t| t.deployment != primary.id);
    }
    let blocked = scale_in(p, &primary.id, desired, &scaling);
    note_blocked(p, blocked);
    if !failed {
        let active = p.count(|t| p.active(t) && t.deployment == primary.id);
        let room = max_total.saturating_sub(p.live_total());
        launch(
            p,
            &primary.id,
            desired.saturating_sub(active).min(room),
            None,
        );
    }
    complete_if_done(p, &primary.id, desired);
}

/// Stops the deployment's tasks beyond `target`; returns how many stay
/// above it because they are protected.
fn scale_in(p: &mut Pass, deployment: &str, target: u32, why: &StopWhy) -> Blocked {
    let active = p.count(|t| p.active(t) && t.deployment == deployment);
    let excess = active.saturating_sub(target) as usize;
    let chosen = victims::choose(p, excess, |t| t.deployment == deployment);
    let blocked = (excess - chosen.len()) as u32;
    for i in chosen {
        p.stop(i, why.clone());
    }
    if blocked > 0 {
        wake_for_protection(p, |t| t.deployment == deployment);
    }
    Blocked {
        tasks: blocked,
        deployment: deployment.to_string(),
    }
}

/// Protected tasks a scale-in had to leave, and whose they are.
#[derive(Default)]
struct Blocked {
    tasks: u32,
    deployment: String,
}

/// Says (once per change) that protected tasks hold a scale-in back.
fn note_blocked(p: &mut Pass, blocked: Blocked) {
    if blocked.tasks > 0 && p.state.scale_in_blocked != blocked.tasks {
        p.event(Event::ScaleInBlocked {
            deployment: blocked.deployment,
        });
    }
    p.state.scale_in_blocked = blocked.tasks;
}

/// Asks for a pass when the protection of a task matching `f` expires.
fn wake_for_protection(p: &mut Pass, f: impl Fn(&TaskView) -> bool) {
    let now = p.now;
    let next = p
        .tasks
        .iter()
        .filter(|t| p.active(t) && t.protected(now) && f(t))
        .filter_map(|t| t.protected_until)
        .min();
    if let Some(at) = next {
        p.wake(at);
    }
}

/// Starts `n` tasks of `deployment` unless the throttle holds launches back.
pub(super) fn launch(p: &mut Pass, deployment: &str, n: u32, instance: Option<String>) {
    if n == 0 {
        return;
    }
    match p.state.throttle.blocked_until(p.now) {
        Some(until) => p.wake(until),
        None => p.start(deployment, n, instance),
    }
}

/// COMPLETED once the primary alone runs the desired count, all healthy.
fn complete_if_done(p: &mut Pass, primary: &str, desired: u32) {
    let Some(d) = p.state.deployments.first().cloned() else {
        return;
    };
    let healthy = p.count(|t| t.deployment == primary && p.healthy_for(t, &d));
    let active = p.count(|t| p.active(t) && t.deployment == primary);
    let others = p.count(|t| t.live() && t.deployment != primary);
    if healthy >= desired && active == desired && others == 0 {
        p.complete_primary();
    }
}

/// The steps of a traffic-shifting strategy: the share of the desired
/// count the new revision runs at, and how long to bake there.
fn steps(strategy: &DeploymentStrategy) -> Vec<(f64, i64)> {
    match *strategy {
        DeploymentStrategy::Rolling => vec![(100.0, 0)],
        DeploymentStrategy::BlueGreen { bake_ms } => vec![(100.0, bake_ms)],
        DeploymentStrategy::Canary {
            percent,
            canary_bake_ms,
            bake_ms,
        } => vec![(percent, canary_bake_ms), (100.0, bake_ms)],
        DeploymentStrategy::Linear {
            step_percent,
            step_bake_ms,
            bake_ms,
        } => {
            let step = step_percent.max(0.1);
            let mut out = Vec::new();
            let mut k = 1.0;
            while k * step < 100.0 - 1e-9 {
                out.push((k * step, step_bake_ms));
                k += 1.0;
            }
            out.push((100.0, bake_ms));
            out
        }
    }
}

/// BLUE_GREEN, LINEAR and CANARY on task counts: the new (green) revision
/// grows step by step to the desired count, each step baking for its time
/// once all its tasks are healthy; the old (blue) tasks keep running until
/// the last bake ends, so a rollback before then loses nothing.
pub(super) fn staged(p: &mut Pass, desired: u32) {
    let Some(green) = p.state.deployments.first().cloned() else {
        return;
    };
    let scaling = StopWhy::Scaling {
        deployment: green.id.clone(),
    };
    // Blue is the last completed revision (else the newest older one still
    // running); anything between it and green was superseded and goes now.
    let has_tasks = |id: &str| p.tasks.iter().any(|t| p.active(t) && t.deployment == id);
    let blue = p
        .state
        .last_completed
        .clone()
        .filter(|id| *id != green.id && has_tasks(id))
        .or_else(|| {
            p.state.deployments[1..]
                .iter()
                .find(|d| has_tasks(&d.id))
                .map(|d| d.id.clone())
        });
    for i in victims::choose(p, usize::MAX, |t| {
        t.deployment != green.id && Some(&t.deployment) != blue.as_ref()
    }) {
        p.stop(i, scaling.clone());
    }
    if let Some(b) = &blue {
        // Blue never runs more than the desired count either.
        let blocked = scale_in(p, b, desired, &scaling);
        note_blocked(p, blocked);
    }
    let blue_left = p.count(|t| p.active(t) && t.deployment != green.id);
    if green.rollout == Rollout::Failed {
        // Without a rollback the failed revision holds where it is.
        complete_if_done(p, &green.id, desired);
        return;
    }
    if blue_left == 0 {
        // Nothing to shift from (a new service, or blue already gone).
        let blocked = scale_in(p, &green.id, desired, &scaling);
        note_blocked(p, blocked);
        let active = p.count(|t| p.active(t) && t.deployment == green.id);
        let room = (2 * desired).saturating_sub(p.live_total());
        launch(p, &green.id, desired.saturating_sub(active).min(room), None);
        complete_if_done(p, &green.id, desired);
        return;
    }
    let steps = steps(&p.spec.rules.strategy);
    let step = (green.step as usize).min(steps.len() - 1);
    let (percent, bake_ms) = steps[step];
    let target = ((f64::from(desired) * percent / 100.0).ceil() as u32).clamp(1, desired.max(1));
    let blocked = scale_in(p, &green.id, target, &scaling);
    note_blocked(p, blocked);
    let active = p.count(|t| p.active(t) && t.deployment == green.id);
    // Both revisions in full, and no more: tasks still stopping count.
    let room = (2 * desired).saturating_sub(p.live_total());
    launch(p, &green.id, target.saturating_sub(active).min(room), None);
    let healthy = p.count(|t| t.deployment == green.id && p.healthy_for(t, &green));
    let now = p.now;
    let d = p.state.deployments.first_mut().expect("green exists");
    if healthy < target {
        // A step bakes only while all of its tasks are healthy.
        d.step_reached_at = None;
        return;
    }
    let reached = *d.step_reached_at.get_or_insert(now);
    if now < reached + bake_ms {
        p.wake(reached + bake_ms);
        return;
    }
    if step + 1 < steps.len() {
        d.step = step as u32 + 1;
        d.step_reached_at = None;
        d.updated_at = now;
        p.wake(now + 1);
        return;
    }
    for i in victims::choose(p, usize::MAX, |t| t.deployment != green.id) {
        p.stop(i, scaling.clone());
    }
    wake_for_protection(p, |t| t.deployment != green.id);
}

/// EXTERNAL controller: every task set runs its target count; deleted
/// ones run none and go once empty.
pub(super) fn task_sets(p: &mut Pass) {
    let mut blocked = Blocked::default();
    for d in p.state.deployments.clone() {
        let target = if d.deleted { 0 } else { d.target.unwrap_or(0) };
        let why = StopWhy::Scaling {
            deployment: d.id.clone(),
        };
        let b = scale_in(p, &d.id, target, &why);
        if b.tasks > 0 {
            blocked.tasks += b.tasks;
            blocked.deployment = b.deployment;
        }
        let active = p.count(|t| p.active(t) && t.deployment == d.id);
        launch(p, &d.id, target.saturating_sub(active), None);
    }
    note_blocked(p, blocked);
}
