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
pub fn place(instances: &[Instance], req: &Request) -> Vec<Placement> {
    let mut pool: Vec<Instance> = instances.to_vec();
    let mut rng = SmallRng::seed_from_u64(req.seed);
    let mut used_by_request: Vec<String> = Vec::new();
    (0..req.count)
        .map(|_| {
            let mut refusals = Vec::new();
            let mut feasible = Vec::new();
            for (i, inst) in pool.iter().enumerate() {
                let reason = if req.distinct_instance && used_by_request.contains(&inst.id) {
                    Some(Reason::DistinctInstance)
                } else {
                    feasibility::check(inst, &req.demand).or_else(|| {
                        let outside = req.member_of.iter().any(|e| !e.matches(inst));
                        outside.then_some(Reason::MemberOf)
                    })
                };
                match reason {
                    None => feasible.push(i),
                    Some(r) => refusals.push((inst.id.clone(), r)),
                }
            }
            match scoring::best(&pool, &feasible, &req.strategies, &mut rng) {
                Some(i) => {
                    pool[i].reserve(&req.demand, req.group.as_deref());
                    used_by_request.push(pool[i].id.clone());
                    Placement::Placed(pool[i].id.clone())
                }
                None => Placement::Unplaced(refusals),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests;
