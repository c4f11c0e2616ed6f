//! Whether an instance can take a task, and if not, the reason ECS reports.

use crate::{Demand, Instance};
use std::fmt;

/// Why an instance cannot take a task, named as ECS names RunTask failures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// The agent is disconnected.
    Agent,
    /// The instance is DRAINING (or otherwise not ACTIVE).
    Inactive,
    Cpu,
    Memory,
    Ports,
    /// A required attribute is missing or has another value.
    Attribute,
    /// `distinctInstance`: the instance already has a task of this request.
    DistinctInstance,
    /// `memberOf`: an expression does not select the instance.
    MemberOf,
}

impl Reason {
    /// The `reason` string of an ECS `Failure`.
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Agent => "AGENT",
            Reason::Inactive => "INACTIVE",
            Reason::Cpu => "RESOURCE:CPU",
            Reason::Memory => "RESOURCE:MEMORY",
            Reason::Ports => "RESOURCE:PORTS",
            Reason::Attribute => "ATTRIBUTE",
            Reason::DistinctInstance => "DistinctInstance placement constraint unsatisfied.",
            Reason::MemberOf => "MemberOf placement constraint unsatisfied.",
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `None` when `inst` can take a task needing `d`; otherwise the first
/// reason it cannot, checked in the order ECS reports them.
pub fn check(inst: &Instance, d: &Demand) -> Option<Reason> {
    if !inst.active {
        return Some(Reason::Inactive);
    }
    if !inst.connected {
        return Some(Reason::Agent);
    }
    let attributes_ok = d
        .attributes
        .iter()
        .all(|(name, want)| match inst.attributes.get(name) {
            None => false,
            Some(have) => want.is_none() || want == have,
        });
    if !attributes_ok {
        return Some(Reason::Attribute);
    }
    if d.cpu > inst.cpu {
        return Some(Reason::Cpu);
    }
    if d.memory > inst.memory {
        return Some(Reason::Memory);
    }
    if d.ports_on(inst.awsvpc_shares_host)
        .any(|p| inst.ports.contains(&p))
    {
        return Some(Reason::Ports);
    }
    None
}
