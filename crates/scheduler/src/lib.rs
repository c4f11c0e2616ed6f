//! Where tasks go: placement as a pure function of a cluster snapshot and a
//! request, in the manner of Nomad's scheduler — filter the instances that
//! can take a task (feasibility), order them by the placement strategies
//! (scoring), take the best, account for it, repeat. No I/O: the control
//! plane builds the snapshot from the store, calls [`place`], and commits
//! the resulting plan optimistically, so tests need no servers.

pub mod capacity;
mod feasibility;
pub mod scaling;
mod scoring;
pub mod service;
mod snapshot;

pub use berth_core::task::{Demand, Protocol};
pub use feasibility::Reason;
pub use snapshot::{Details, Instance};

use rand::rngs::SmallRng;
use rand::SeedableRng;
use std::collections::HashMap;

/// How to order feasible instances, as ECS placement strategies do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Strategy {
    Random,
    /// Spread across the values of a field: `instanceId` (or `host`) or an
    /// attribute such as `attribute:ecs.availability-zone`.
    Spread(String),
    /// Pack onto the instance with the least remaining `cpu` or `memory`.
    Binpack(BinpackField),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BinpackField {
    Cpu,
    Memory,
}

/// A placement request for `count` identical tasks.
#[derive(Debug, Clone)]
pub struct Request {
    pub demand: Demand,
    pub count: usize,
    /// Applied in order: later strategies break ties of earlier ones.
    pub strategies: Vec<Strategy>,
    /// `distinctInstance`: no two tasks of this request on one instance.
    pub distinct_instance: bool,
    /// `memberOf`: only instances every one of these expressions selects.
    pub member_of: Vec<berth_core::query::Expr>,
    /// The tasks' group (`task:group` in expressions counts them).
    pub group: Option<String>,
    /// Seeds the random choices, so a plan is reproducible in tests.
    pub seed: u64,
}

/// The outcome for one task of the request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Placement {
    /// Placed on the instance with this id.
    Placed(String),
    /// No instance could take it; why each instance refused, by instance id.
    Unplaced(Vec<(String, Reason)>),
}

/// Places `req.count` tasks on `instances`. Each placement is accounted
/// before the next, so a plan never oversubscribes an instance.
///
/// One pass per task over the pool, no copy of it: feasibility (with
/// `memberOf`) is decided once per instance and again only for the
/// instance a task just went to, the one whose facts changed; the spread
/// counts are kept up to date the same way; an instance is copied only
/// when a task of this request reserves on it.
pub fn place(instances: &[Instance], req: &Request) -> Vec<Placement> {
    place_among(instances, req, None)
}

/// [`place`], with `members[i]` the verdict of further `memberOf`
/// expressions (besides `req.member_of`) on instance `i`, decided before:
/// a caller that keeps the pool caches the verdicts of expressions that
/// read only what instances registered, instead of evaluating them for
/// every instance on every request.
pub fn place_among(
    instances: &[Instance],
    req: &Request,
    members: Option<&[bool]>,
) -> Vec<Placement> {
    let mut rng = SmallRng::seed_from_u64(req.seed);
    let refuse = |i: usize, inst: &Instance| {
        feasibility::check(inst, &req.demand).or_else(|| {
            let outside =
                members.is_some_and(|m| !m[i]) || req.member_of.iter().any(|e| !e.matches(inst));
            outside.then_some(Reason::MemberOf)
        })
    };
    let mut refusal: Vec<Option<Reason>> = instances
        .iter()
        .enumerate()
        .map(|(i, inst)| refuse(i, inst))
        .collect();
    let mut used = vec![false; instances.len()];
    let mut changed: HashMap<usize, Instance> = HashMap::new();
    let mut scorer = scoring::Scorer::new(instances, &req.strategies);
    let mut out = Vec::with_capacity(req.count);
    for _ in 0..req.count {
        let view = |i: usize| changed.get(&i).unwrap_or(&instances[i]);
        let feasible = (0..instances.len())
            .filter(|&i| refusal[i].is_none() && !(req.distinct_instance && used[i]));
        match scorer.best(feasible, view, &mut rng) {
            Some(i) => {
                let inst = changed.entry(i).or_insert_with(|| instances[i].clone());
                inst.reserve(&req.demand, req.group.as_deref());
                refusal[i] = refuse(i, inst);
                used[i] = true;
                scorer.placed(i);
                out.push(Placement::Placed(inst.id.clone()));
            }
            None => {
                let reasons = (0..instances.len())
                    .filter_map(|i| {
                        let r = if req.distinct_instance && used[i] {
                            Some(Reason::DistinctInstance)
                        } else {
                            refusal[i]
                        };
                        Some((instances[i].id.clone(), r?))
                    })
                    .collect();
                out.push(Placement::Unplaced(reasons));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests;
